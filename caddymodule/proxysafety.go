package caddymodule

import (
	"net/http"
	"net/textproto"
	"strings"
)

// upgradeKind is what a request asks of the connection it came on.
type upgradeKind int

const (
	noUpgrade upgradeKind = iota
	// webSocketUpgrade is an HTTP/1.1 upgrade to WebSocket, or its
	// HTTP/2 and HTTP/3 form, an extended CONNECT.
	webSocketUpgrade
	// otherUpgrade is any other protocol switch, h2c among them: after
	// it, the connection would carry requests the guard never sees.
	otherUpgrade
)

// requestedUpgrade tells which protocol switch, if any, a request asks
// for. A WebSocket upgrade is exactly one Upgrade value `websocket` with
// an `upgrade` token in Connection, as the proxy reads it.
func requestedUpgrade(r *http.Request) upgradeKind {
	if r.Method == http.MethodConnect &&
		(r.ProtoMajor == 2 && r.Header.Get(":protocol") == "websocket" || r.ProtoMajor == 3 && r.Proto == "websocket") {
		return webSocketUpgrade
	}
	upgrade, hasUpgrade := r.Header["Upgrade"]
	_, hasSettings := r.Header["Http2-Settings"]
	if !hasUpgrade && !hasSettings {
		return noUpgrade
	}
	if len(upgrade) == 1 && strings.EqualFold(textproto.TrimString(upgrade[0]), "websocket") &&
		hasToken(r.Header["Connection"], "upgrade") {
		return webSocketUpgrade
	}
	return otherUpgrade
}

// hasToken tells whether a comma-separated header holds a token, in any
// case.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(textproto.TrimString(t), token) {
				return true
			}
		}
	}
	return false
}

// ambiguousPath tells whether a path, as the client encoded it, could be
// read one way by Caddy's route matching (which decodes and cleans it)
// and another by the app (which receives it as sent): a `.` or `..`
// segment in any encoding, also `..;` as Java servers read it; an encoded
// `/` or `\` (%2F, %5C, double-encoded %252F, %255C, or a literal `\`)
// unless the route allows encoded slashes. A dot segment next to an
// encoded slash is refused even then.
func ambiguousPath(escaped string, allowEncodedSlashes bool) bool {
	dots, other, params := 0, false, false
	for i := 0; ; {
		n, encoded := separatorAt(escaped, i)
		if n > 0 || i == len(escaped) {
			if !other && (dots == 1 || dots == 2) {
				return true
			}
			if encoded && !allowEncodedSlashes {
				return true
			}
			if i == len(escaped) {
				return false
			}
			dots, other, params = 0, false, false
			i += n
			continue
		}
		switch d := dotAt(escaped, i); {
		case params:
			i++
		case escaped[i] == ';':
			params = true
			i++
		case d > 0:
			dots++
			i += d
		default:
			other = true
			i++
		}
	}
}

// separatorAt is the length of the path separator at escaped[i] (0 when
// there is none), and whether it is an encoded one.
func separatorAt(escaped string, i int) (n int, encoded bool) {
	if i >= len(escaped) {
		return 0, false
	}
	switch c := escaped[i]; {
	case c == '/':
		return 1, false
	case c == '\\':
		return 1, true
	case c != '%':
		return 0, false
	}
	for _, enc := range [...]string{"%2f", "%5c", "%252f", "%255c"} {
		if hasFoldedPrefix(escaped[i:], enc) {
			return len(enc), true
		}
	}
	return 0, false
}

// dotAt is the length of the dot at escaped[i], literal or encoded, or 0.
func dotAt(escaped string, i int) int {
	if escaped[i] == '.' {
		return 1
	}
	for _, enc := range [...]string{"%2e", "%252e"} {
		if hasFoldedPrefix(escaped[i:], enc) {
			return len(enc)
		}
	}
	return 0
}

// hasFoldedPrefix is strings.HasPrefix ignoring ASCII case, for a lower-
// case prefix.
func hasFoldedPrefix(s, lower string) bool {
	return len(s) >= len(lower) && strings.EqualFold(s[:len(lower)], lower)
}
