package caddymodule

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestAmbiguousPath(t *testing.T) {
	for _, tc := range []struct {
		path           string
		refused        bool
		allowedSlashes bool // refused unless the route allows encoded slashes
	}{
		{path: "/"},
		{path: "/declaratie/claims/7"},
		{path: "/website/caf%C3%A9%20menu"},
		{path: "/website/x.y..z/.well-known/...", refused: false},
		{path: "/website/..y/x..", refused: false},
		{path: "/website/%2e%2e%2e"},
		{path: "/website/a;b=c/x"},
		{path: "/website/%25/x"},
		{path: "/declaratie%2f..%2fwebsite/", refused: true},
		{path: "/a%2Fb", refused: true, allowedSlashes: true},
		{path: "/a%5cb", refused: true, allowedSlashes: true},
		{path: `/a\b`, refused: true, allowedSlashes: true},
		{path: "/a%252Fb", refused: true, allowedSlashes: true},
		{path: "/a%255cb", refused: true, allowedSlashes: true},
		{path: "/a/./b", refused: true},
		{path: "/a/../b", refused: true},
		{path: "/a/..", refused: true},
		{path: "/a/.", refused: true},
		{path: "/a/%2e/b", refused: true},
		{path: "/a/%2E%2e/b", refused: true},
		{path: "/a/.%2e", refused: true},
		{path: "/a/%252e%252E/b", refused: true},
		{path: "/a/..;/b", refused: true},
		{path: "/a/..;jsessionid=1/b", refused: true},
		{path: "/a/%2e%2e;x/b", refused: true},
		{path: "/a%2f..%2fb", refused: true},
		{path: "/a%2F.%2Fb", refused: true},
	} {
		for _, allow := range []bool{false, true} {
			want := tc.refused && !(allow && tc.allowedSlashes)
			if got := ambiguousPath(tc.path, allow); got != want {
				t.Errorf("ambiguousPath(%q, allow encoded slashes %v) = %v, want %v", tc.path, allow, got, want)
			}
		}
	}
}

func TestRequestedUpgrade(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header http.Header
		want   upgradeKind
	}{
		{"none", http.Header{"Connection": {"keep-alive"}}, noUpgrade},
		{"websocket", http.Header{"Connection": {"keep-alive, Upgrade"}, "Upgrade": {"websocket"}}, webSocketUpgrade},
		{"websocket, any case", http.Header{"Connection": {"upgrade"}, "Upgrade": {"WebSocket"}}, webSocketUpgrade},
		{"h2c", http.Header{"Connection": {"Upgrade, HTTP2-Settings"}, "Upgrade": {"h2c"}, "Http2-Settings": {"AAMAAABkAARAAAAAAAIAAAAA"}}, otherUpgrade},
		{"websocket offered with h2c", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket, h2c"}}, otherUpgrade},
		{"two Upgrade lines", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket", "h2c"}}, otherUpgrade},
		{"websocket without Connection: upgrade", http.Header{"Upgrade": {"websocket"}}, otherUpgrade},
		{"settings alone", http.Header{"Http2-Settings": {"AAMAAABkAARAAAAAAAIAAAAA"}}, otherUpgrade},
		{"anything else", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"TLS/1.2"}}, otherUpgrade},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/live/", nil)
			r.Header = tc.header
			if got := requestedUpgrade(r); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("extended CONNECT over HTTP/2", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodConnect, "/live/", nil)
		r.ProtoMajor, r.Header = 2, http.Header{":protocol": {"websocket"}}
		if got := requestedUpgrade(r); got != webSocketUpgrade {
			t.Fatalf("got %v, want a WebSocket upgrade", got)
		}
	})
}
