package caddymodule

import (
	"net/http"
	"slices"
	"strings"
)

// identityPrefix marks the headers wijgate sets; no client may send them.
const identityPrefix = "x-wij-"

// Identity headers set for the upstream (see the header contract in the
// README).
const (
	HeaderUserID    = "X-Wij-User-Id"
	HeaderUserEmail = "X-Wij-User-Email"
	HeaderUserName  = "X-Wij-User-Name"
	HeaderOrgKvK    = "X-Wij-Org-Kvk"
	HeaderOrgName   = "X-Wij-Org-Name"
	HeaderOrgRole   = "X-Wij-Org-Role"
	HeaderApps      = "X-Wij-Apps"
	HeaderAssurance = "X-Wij-Assurance"
	HeaderAssertion = "X-Wij-Assertion"
)

// headerStripper removes client-supplied identity headers.
type headerStripper struct {
	// extra holds configured header names, lower-cased with '_' as '-'.
	extra map[string]struct{}
}

func newHeaderStripper(extra []string) *headerStripper {
	s := &headerStripper{extra: make(map[string]struct{}, len(extra))}
	for _, h := range extra {
		s.extra[foldHeaderName(h)] = struct{}{}
	}
	return s
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

func (s *headerStripper) isIdentity(name string) bool {
	if len(name) >= len(identityPrefix) && foldedEqual(name[:len(identityPrefix)], identityPrefix) {
		return true
	}
	for extra := range s.extra {
		if foldedEqual(name, extra) {
			return true
		}
	}
	return false
}

// foldedEqual compares a header name with a folded one (lower case, '-'
// for '_') without allocating: it runs for every header of every request.
func foldedEqual(name, folded string) bool {
	if len(name) != len(folded) {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c == '_':
			c = '-'
		}
		if c != folded[i] {
			return false
		}
	}
	return true
}

// encodeHeaderValue makes any text safe for a header value: bytes outside
// printable ASCII, and '%' itself, become %XX of their UTF-8 encoding.
// Upstreams decode it as a URL path segment.
func encodeHeaderValue(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '%' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) * 3)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '%' {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
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
// the others, so the upstream never sees wijgate's own cookies.
func removeCookie(h http.Header, names ...string) {
	lines := h["Cookie"]
	if len(lines) == 0 {
		return
	}
	kept := make([]string, 0, 4)
	for _, line := range lines {
		if !containsAny(line, names) {
			kept = append(kept, line)
			continue
		}
		var parts []string
		for p := range strings.SplitSeq(line, ";") {
			p = strings.TrimSpace(p)
			if k, _, _ := strings.Cut(p, "="); p == "" || slices.Contains(names, k) {
				continue
			}
			parts = append(parts, p)
		}
		if len(parts) > 0 {
			kept = append(kept, strings.Join(parts, "; "))
		}
	}
	if len(kept) == 0 {
		h.Del("Cookie")
		return
	}
	h["Cookie"] = kept
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
