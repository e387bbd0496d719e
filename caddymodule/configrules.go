package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/contract"
	"github.com/wijtechniek/wijgate/caddymodule/eherkenning"
	"github.com/wijtechniek/wijgate/caddymodule/org"
)

// The rules for configuration values live here, one function each, and
// each is called once: by Validate, or by Provision where it needs what
// Provision resolves or builds. The Caddyfile reader reads syntax only, so
// a Caddyfile and its JSON get the same answer. Every message starts with
// the option's name.

// hasPlaceholder reports whether v is resolved only when provisioned
// ({env.*}, {file.*}), so it cannot be checked before.
func hasPlaceholder(v string) bool { return strings.Contains(v, "{") }

// checkAppName refuses an app name that could not travel in a header
// value, a token claim or a rights list.
func checkAppName(name string) error {
	if name == "" {
		return errors.New("app: name the guarded app")
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("app %q: use lower-case letters, digits, '-' and '_'", name)
		}
	}
	return nil
}

// checkAppURL refuses a dashboard link that is neither an absolute http(s)
// URL nor a path on this site.
func checkAppURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
	case u.Scheme == "" && u.Host == "" && strings.HasPrefix(u.Path, "/") && !strings.HasPrefix(raw, "//"):
		return nil
	case (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil:
		return nil
	}
	return fmt.Errorf("url %q: want an absolute http(s) URL or a path starting with /", raw)
}

func checkRequire(v string) error {
	switch v {
	case "", "session", "org", "app":
		return nil
	}
	return fmt.Errorf("require %q: want session, org or app", v)
}

func checkMinAssurance(v string) error {
	if v != "" && assuranceRank[v] == 0 {
		return fmt.Errorf("min_assurance %q: want invited, eh3 or eh4", v)
	}
	return nil
}

// checkFact finds a named identity fact, refusing one that does not
// exist; option is the option that named it.
func checkFact(option, name string) (contract.Fact, error) {
	f, ok := contract.ByName(name)
	if !ok {
		return 0, fmt.Errorf("%s: unknown fact %q (want %s)", option, name, strings.Join(contract.Names(), ", "))
	}
	return f, nil
}

// checkAliasHeader refuses an alias header the app would never receive
// under that name, or one that would overwrite a header wijgate owns. A
// '_' is refused: Go, nginx and Apache drop or fold such names, so the app
// would not see it, and a client's copy under the '-' spelling could reach
// it.
func checkAliasHeader(header string) error {
	if err := checkHeaderName(header); err != nil {
		return fmt.Errorf("alias: %w", err)
	}
	if strings.Contains(header, "_") {
		return fmt.Errorf("alias %s: a header name with '_' does not reach most apps; write %s", header, strings.ReplaceAll(header, "_", "-"))
	}
	if strings.HasPrefix(strings.ToLower(header), identityPrefix) || strings.EqualFold(header, "cookie") || strings.EqualFold(header, "host") {
		return fmt.Errorf("alias %q: choose a header name outside X-Wij-*, Cookie and Host", header)
	}
	return nil
}

// checkSessionDuration is the rule for idle_timeout and lifetime; zero
// means the default.
func checkSessionDuration(option string, d time.Duration) error {
	if d != 0 && (d < time.Second || d > 30*24*time.Hour) {
		return fmt.Errorf("%s: %s is not a duration between 1s and 720h", option, d)
	}
	return nil
}

// checkAuditRetention: an organisation's admins must at least see the
// last day; zero means the default.
func checkAuditRetention(d time.Duration) error {
	if d != 0 && d < 24*time.Hour {
		return fmt.Errorf("audit_retention: %s is not a duration of 24h or more", d)
	}
	return nil
}

// checkOutageGrace: while the storage is down a cached session is served
// without the store's word for up to the grace, so a logout or a withdrawn
// right elsewhere waits that long; beyond an hour that is no longer an
// outage to ride out. Zero means the default.
func checkOutageGrace(d time.Duration) error {
	if d != 0 && (d < time.Second || d > time.Hour) {
		return fmt.Errorf("storage_outage_grace: %s is not a duration between 1s and 1h", d)
	}
	return nil
}

// checkReverify: both periods positive, and the grace shorter than the
// period before it, so a verification is asked to be renewed for less
// time than it simply held. Zero means the default.
func checkReverify(after, grace time.Duration) error {
	if after < 0 {
		return fmt.Errorf("reverify_after: %s is not a positive duration", after)
	}
	if grace < 0 {
		return fmt.Errorf("reverify_grace: %s is not a positive duration", grace)
	}
	if after == 0 {
		after = org.DefaultReverifyAfter
	}
	if grace == 0 {
		grace = org.DefaultReverifyGrace
	}
	if grace >= after {
		return fmt.Errorf("reverify_grace: %s must be shorter than reverify_after (%s)", grace, after)
	}
	return nil
}

func checkMetadataRefresh(d time.Duration) error {
	if d != 0 && d < time.Minute {
		return fmt.Errorf("eherkenning metadata_refresh: %s is shorter than 1m", d)
	}
	return nil
}

// checkCookieName refuses a name browsers would not send back.
func checkCookieName(name string) error {
	if name == "" || hasPlaceholder(name) {
		return nil
	}
	if err := (&http.Cookie{Name: name, Value: "x"}).Valid(); err != nil {
		return fmt.Errorf("cookie_name %q: not a cookie name", name)
	}
	return nil
}

// checkCookieDomain refuses anything but a bare domain name.
func checkCookieDomain(domain string) error {
	if domain == "" || hasPlaceholder(domain) {
		return nil
	}
	if err := (&http.Cookie{Name: "x", Value: "x", Domain: domain}).Valid(); err != nil || strings.ContainsAny(domain, ":/") {
		return fmt.Errorf("cookie_domain %q: want a domain name such as wij-techniek.nl", domain)
	}
	return nil
}

var reServiceUUID = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// checkServiceUUID refuses a service UUID that is not one; the service
// provider only needs it set. The other eHerkenning identifiers are
// checked by the service provider itself, when provisioned.
func checkServiceUUID(v string) error {
	if v != "" && !hasPlaceholder(v) && !reServiceUUID.MatchString(v) {
		return fmt.Errorf("eherkenning service_uuid: %q is not a UUID", v)
	}
	return nil
}

// checkBrokerMetadataSource refuses, when provisioning, broker metadata
// that is neither an http(s) URL nor a file this process can read, rather
// than failing at the first login.
func checkBrokerMetadataSource(resolved string) error {
	if strings.Contains(resolved, "://") {
		if err := eherkenning.CheckMetadataURL(resolved); err != nil {
			return fmt.Errorf("eherkenning broker_metadata: %w", err)
		}
		return nil
	}
	f, err := os.Open(resolved)
	if err == nil {
		var info os.FileInfo
		if info, err = f.Stat(); err == nil && info.IsDir() {
			err = errors.New("is a directory")
		}
		f.Close()
	}
	if err != nil {
		return fmt.Errorf("eherkenning broker_metadata %q is neither an http(s) URL nor a readable file: %w", resolved, err)
	}
	return nil
}

// checkFilePlaceholders finds every {file.*} placeholder in the app's
// configuration and refuses one whose file cannot be read, naming the
// option and the file: Caddy would put an empty value in its place, and
// the error would then be about the value.
func (a *App) checkFilePlaceholders() error {
	raw, err := json.Marshal(a)
	if err != nil {
		return err
	}
	var tree any
	if err := json.Unmarshal(raw, &tree); err != nil {
		return err
	}
	return walkFilePlaceholders("", tree)
}

var reFilePlaceholder = regexp.MustCompile(`\{file\.([^}]+)\}`)

func walkFilePlaceholders(option string, v any) error {
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			name := k
			if option != "" {
				name = option + " " + k
			}
			if err := walkFilePlaceholders(name, v[k]); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range v {
			if err := walkFilePlaceholders(option, e); err != nil {
				return err
			}
		}
	case string:
		for _, m := range reFilePlaceholder.FindAllStringSubmatch(v, -1) {
			if _, err := os.ReadFile(m[1]); err != nil {
				return fmt.Errorf("%s: {file.%s}: %w", option, m[1], err)
			}
		}
	}
	return nil
}

// checkSecondFactor checks the second_factor policy.
func checkSecondFactor(v string) error {
	_, err := account.ParsePolicy(v)
	return err
}

// checkPasskeyRPID checks passkey_rp_id: a host name, and when portal_url
// is set, that host or a parent domain of it, as WebAuthn requires.
func checkPasskeyRPID(rpID, portalURL string) error {
	if rpID == "" {
		return nil
	}
	hostName := rpID == strings.ToLower(rpID) && strings.Trim(rpID, ".") == rpID &&
		!strings.ContainsAny(rpID, ":/ ") && (strings.Contains(rpID, ".") || rpID == "localhost")
	if !hostName {
		return fmt.Errorf("passkey_rp_id %q: want a lower-case host name such as example.nl", rpID)
	}
	if portalURL == "" {
		return nil
	}
	u, err := url.Parse(portalURL)
	if err != nil {
		return nil // portal_url's own rule answers
	}
	if host := u.Hostname(); host != rpID && !strings.HasSuffix(host, "."+rpID) {
		return fmt.Errorf("passkey_rp_id %q: the portal's host %s must be it or under it", rpID, host)
	}
	return nil
}
