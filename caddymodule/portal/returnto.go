package portal

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// maxReturnLength caps a return address; longer ones fall back.
const maxReturnLength = 2048

// ReturnPolicy decides where a person may be sent after login: a path on
// the portal itself, or an http(s) URL on the portal's host or on one of
// the configured hosts. Everything else falls back to the dashboard, so
// the login page cannot be used to forward people to another site.
type ReturnPolicy struct {
	portal *url.URL // nil: the portal shares the guarded sites' host
	hosts  []string // lower-case; "*.example.nl" matches subdomains
}

// NewReturnPolicy builds the policy from the portal's external URL (may be
// empty) and the extra hosts.
func NewReturnPolicy(portalURL string, hosts []string) (*ReturnPolicy, error) {
	p := &ReturnPolicy{}
	if portalURL != "" {
		u, err := url.Parse(portalURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return nil, fmt.Errorf("portal_url %q: want an absolute http(s) URL", portalURL)
		}
		u.Path = strings.TrimSuffix(u.Path, "/")
		p.portal = u
	}
	for _, h := range hosts {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "" || strings.ContainsAny(h, "/\\@ ") || (strings.Contains(h, "*") && !strings.HasPrefix(h, "*.")) {
			return nil, errors.New("return_hosts: " + h + " is not a host name")
		}
		p.hosts = append(p.hosts, h)
	}
	return p, nil
}

// LoginURL is where a guard sends someone without a session.
func (p *ReturnPolicy) LoginURL(returnTo string) string {
	base := ""
	if p.portal != nil {
		base = p.portal.String()
	}
	return base + "/login?return=" + url.QueryEscape(returnTo)
}

// PortalURL makes an absolute URL for a portal path, for links in emails.
// requestHost is used when no portal URL is configured.
func (p *ReturnPolicy) PortalURL(scheme, requestHost, path string) string {
	if p.portal != nil {
		return p.portal.String() + path
	}
	return scheme + "://" + requestHost + path
}

// Safe returns raw when it is an acceptable return address for a request
// that arrived at requestHost, and "" otherwise.
func (p *ReturnPolicy) Safe(raw, requestHost string) string {
	if raw == "" || len(raw) > maxReturnLength || !cleanReturn(raw) {
		return ""
	}
	// An encoded address gets the same scrutiny once decoded, so that
	// "%2F%2Fevil.example" cannot slip past a check on the raw text.
	if dec, err := url.PathUnescape(raw); err != nil || !cleanReturn(dec) || (strings.HasPrefix(dec, "//") && strings.HasPrefix(raw, "/")) {
		return ""
	}
	if strings.HasPrefix(raw, "/") {
		if strings.HasPrefix(raw, "//") {
			return ""
		}
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || u.Host == "" || u.Opaque != "" {
		return ""
	}
	if !p.hostAllowed(strings.ToLower(u.Hostname()), strings.ToLower(u.Host), strings.ToLower(requestHost)) {
		return ""
	}
	return raw
}

func (p *ReturnPolicy) hostAllowed(hostname, hostport, requestHost string) bool {
	if p.portal != nil {
		if hostport == strings.ToLower(p.portal.Host) {
			return true
		}
	} else if hostport == requestHost {
		return true
	}
	for _, h := range p.hosts {
		if rest, ok := strings.CutPrefix(h, "*."); ok {
			if strings.HasSuffix(hostname, "."+rest) {
				return true
			}
			continue
		}
		if h == hostname || h == hostport {
			return true
		}
	}
	return false
}

// cleanReturn refuses backslashes (browsers read them as slashes), control
// characters and whitespace anywhere in a return address.
func cleanReturn(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\\' || c <= 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}
