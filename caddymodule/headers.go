package caddymodule

import (
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
)

// identityPrefix marks the headers wijgate sets; no client may send them.
const identityPrefix = "x-wij-"

// strippedPrefixes mark header families that carry identity to some
// upstream: ours, and those of peer gateways (authentik, Pomerium, Vouch)
// an old app may have been built against. No client may send them.
var strippedPrefixes = []string{identityPrefix, "x-authentik-", "x-pomerium-", "x-vouch-"}

// defaultStrippedHeaders are identity headers that legacy apps commonly
// trust, as set by oauth2-proxy, Authelia, caddy-security, Apache and
// nginx auth modules, Grafana/Gitea-style auth proxies and cloud access
// proxies. They are deleted from every client request; strip_headers
// adds to them.
var defaultStrippedHeaders = []string{
	// oauth2-proxy (to the upstream, and in --set-xauthrequest mode)
	"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Preferred-Username",
	"X-Forwarded-Groups", "X-Forwarded-Access-Token",
	"X-Auth-Request-User", "X-Auth-Request-Email", "X-Auth-Request-Preferred-Username",
	"X-Auth-Request-Groups", "X-Auth-Request-Access-Token",
	// Authelia, and CGI-style REMOTE_USER conventions
	"Remote-User", "Remote-Email", "Remote-Name", "Remote-Groups",
	"X-Remote-User", "X-Remote-Email", "X-Remote-Name", "X-Remote-Groups",
	// caddy-security
	"X-Token-User-Name", "X-Token-User-Email", "X-Token-User-Roles", "X-Token-Subject",
	// generic auth-proxy names (Grafana, Gitea, Kong and home-grown proxies)
	"X-User", "X-Email", "X-Username", "X-Authenticated-User", "X-Authenticated-Userid",
	"X-Authenticated-Email", "Auth-User", "X-Auth-User", "X-Auth-Email",
	"X-Webauth-User", "X-Webauth-Email", "X-Webauth-Fullname",
	// cloud access proxies
	"X-Ms-Client-Principal", "X-Ms-Client-Principal-Name", "X-Ms-Client-Principal-Id",
	"X-Goog-Authenticated-User-Email", "X-Goog-Authenticated-User-Id",
	"X-Amzn-Oidc-Identity", "X-Amzn-Oidc-Data", "X-Amzn-Oidc-Accesstoken",
	"Cf-Access-Authenticated-User-Email", "Cf-Access-Jwt-Assertion",
}

// maxStrippedNameLen bounds a stripped header name, so the lookup can
// fold a request's header name on the stack.
const maxStrippedNameLen = 128

// headerStripper removes client-supplied identity headers.
type headerStripper struct {
	// names are the stripped header names, folded (see foldHeaderName):
	// the defaults, strip_headers and every route's aliases.
	names  map[string]struct{}
	maxLen int
}

func newHeaderStripper(extra []string) *headerStripper {
	s := &headerStripper{names: make(map[string]struct{}, len(defaultStrippedHeaders)+len(extra))}
	for _, h := range defaultStrippedHeaders {
		s.add(h)
	}
	for _, h := range extra {
		s.add(h)
	}
	return s
}

// add makes one more header name strippable.
func (s *headerStripper) add(name string) {
	folded := foldHeaderName(name)
	s.names[folded] = struct{}{}
	s.maxLen = max(s.maxLen, len(folded))
}

// foldHeaderName gives the one spelling under which a header name is
// compared: lower case, with underscores as hyphens, because CGI-style
// upstreams map both X-Wij-User and X_Wij_User to HTTP_X_WIJ_USER.
func foldHeaderName(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), "_", "-")
}

// strip deletes every identity header from h, whatever its case, spelling
// or number of copies. Go keys a header under its canonical form only when
// the name has no underscore, so every key is examined.
func (s *headerStripper) strip(h http.Header) {
	for name := range h {
		if s.isIdentity(name) {
			delete(h, name)
		}
	}
}

// isIdentity tells whether a header name is one no client may send. It
// runs for every header of every request, so it does not allocate: the
// name is folded into a stack buffer for the map lookup.
func (s *headerStripper) isIdentity(name string) bool {
	for _, p := range strippedPrefixes {
		if len(name) >= len(p) && foldedEqual(name[:len(p)], p) {
			return true
		}
	}
	var buf [maxStrippedNameLen]byte
	if len(name) > s.maxLen || len(name) > len(buf) {
		return false
	}
	folded := buf[:len(name)]
	for i := 0; i < len(name); i++ {
		folded[i] = foldByte(name[i])
	}
	_, ok := s.names[string(folded)]
	return ok
}

func foldByte(c byte) byte {
	switch {
	case c >= 'A' && c <= 'Z':
		return c + 'a' - 'A'
	case c == '_':
		return '-'
	}
	return c
}

// foldedEqual compares a header name with a folded one (lower case, '-'
// for '_') without allocating: it runs for every header of every request.
func foldedEqual(name, folded string) bool {
	if len(name) != len(folded) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if foldByte(name[i]) != folded[i] {
			return false
		}
	}
	return true
}

// sessionCookie returns the value of the named cookie in the request's
// Cookie headers without parsing all of them into http.Cookie values.
func sessionCookie(h http.Header, name string) string {
	for _, line := range h["Cookie"] {
		for len(line) > 0 {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimSpace(part)
			if k, v, ok := strings.Cut(part, "="); ok && k == name {
				return strings.Trim(v, `"`)
			}
		}
	}
	return ""
}

// removeCookie drops the named cookies from the Cookie headers, keeping
// the others, so the upstream never sees wijgate's own cookies. It runs
// for every guarded request: the request's own slice of lines is reused,
// and a line with one of the cookies costs one new string.
func removeCookie(h http.Header, names []string) {
	lines := h["Cookie"]
	if len(lines) == 0 {
		return
	}
	kept := lines[:0]
	for _, line := range lines {
		if containsAny(line, names) {
			if line = withoutCookies(line, names); line == "" {
				continue
			}
		}
		kept = append(kept, line)
	}
	if len(kept) == 0 {
		h.Del("Cookie")
		return
	}
	h["Cookie"] = kept
}

// withoutCookies is one Cookie line without the named cookies, its
// others joined by "; ". A line of only the named cookies, as an API
// client's usually is, costs nothing.
func withoutCookies(line string, names []string) string {
	var b strings.Builder
	for line != "" {
		var p string
		p, line, _ = strings.Cut(line, ";")
		p = strings.TrimSpace(p)
		if k, _, _ := strings.Cut(p, "="); p == "" || slices.Contains(names, k) {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		} else {
			b.Grow(len(p) + len(line))
		}
		b.WriteString(p)
	}
	return b.String()
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// setHeaders sets each field's header to its value, skipping empty ones.
// The header values share values' backing array, so a request costs one
// allocation for all of them rather than one per header; values must not
// be reused.
func setHeaders(h http.Header, fields []headerField, values []string) {
	for i, f := range fields {
		if values[i] != "" {
			h[f.header] = values[i : i+1 : i+1]
		}
	}
}

// checkHeaderName refuses a configured name that is not a header name,
// or is longer than the stripper folds.
func checkHeaderName(name string) error {
	if name == "" || len(name) > maxStrippedNameLen {
		return fmt.Errorf("%q: a header name has 1 to %d characters", name, maxStrippedNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return fmt.Errorf("%q is not a header name", name)
		}
	}
	return nil
}

// cleanConnection removes from the client's Connection header every token
// naming a header no client may send: the proxy deletes the headers that
// Connection names as hop-by-hop, which would let a client delete the
// identity headers the guard sets. With dropUpgrade it also removes the
// tokens of a protocol upgrade that is not let through.
func (s *headerStripper) cleanConnection(h http.Header, dropUpgrade bool) {
	values := h["Connection"]
	for i, v := range values {
		if !s.dropsAnyToken(v, dropUpgrade) {
			continue
		}
		var kept []string
		for token := range strings.SplitSeq(v, ",") {
			if token = textproto.TrimString(token); token != "" && !s.dropsToken(token, dropUpgrade) {
				kept = append(kept, token)
			}
		}
		values[i] = strings.Join(kept, ", ")
	}
}

// dropsAnyToken tells, without allocating, whether cleanConnection would
// change one Connection value.
func (s *headerStripper) dropsAnyToken(v string, dropUpgrade bool) bool {
	for v != "" {
		var token string
		token, v, _ = strings.Cut(v, ",")
		if s.dropsToken(textproto.TrimString(token), dropUpgrade) {
			return true
		}
	}
	return false
}

func (s *headerStripper) dropsToken(token string, dropUpgrade bool) bool {
	if dropUpgrade && (strings.EqualFold(token, "upgrade") || strings.EqualFold(token, "http2-settings")) {
		return true
	}
	return s.isIdentity(token)
}

// stripTrailers keeps identity headers out of the request's trailers.
// net/http fills in the trailers' values only when the body has been read
// to its end, and adds any trailer field the client sent, announced or
// not, so the names are deleted both now and at the end of the body,
// before the proxy copies the trailers upstream.
func (s *headerStripper) stripTrailers(r *http.Request) {
	if r.Trailer == nil {
		return
	}
	s.strip(r.Trailer)
	r.Body = &trailerStrippingBody{ReadCloser: r.Body, r: r, s: s}
}

// trailerStrippingBody strips identity headers from its request's
// trailers when the body reaches its end.
type trailerStrippingBody struct {
	io.ReadCloser
	r *http.Request
	s *headerStripper
}

func (b *trailerStrippingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.s.strip(b.r.Trailer)
	}
	return n, err
}
