package caddymodule

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

func TestIssuerFollowsTheRequestedSite(t *testing.T) {
	a := &App{lastIssuer: new(atomic.Pointer[string])}
	tests := []struct {
		name string
		tls  bool
		host string
		want string
	}{
		{"first site", false, "wij.localhost", "http://wij.localhost"},
		{"same site again", false, "wij.localhost", "http://wij.localhost"},
		{"same host over TLS", true, "wij.localhost", "https://wij.localhost"},
		{"another site of the same length", true, "wij.localhosu", "https://wij.localhosu"},
		{"a longer host that ends like the last one", true, "xwij.localhosu", "https://xwij.localhosu"},
		{"a shorter host that ends like the last one", true, "wij.localhosu", "https://wij.localhosu"},
		{"back to plain http", false, "wij.localhost", "http://wij.localhost"},
		{"plain http, one character longer", false, "xwij.localhost", "http://xwij.localhost"},
		{"TLS, the length of the last one", true, "wij.localhost", "https://wij.localhost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Host = tt.host
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			if got := a.issuer(r); got != tt.want {
				t.Fatalf("issuer = %q, want %q", got, tt.want)
			}
		})
	}
	a.PortalURL = "https://portal.wij-techniek.nl/"
	if got := a.issuer(httptest.NewRequest(http.MethodGet, "/", nil)); got != "https://portal.wij-techniek.nl" {
		t.Fatalf("issuer with a portal URL = %q", got)
	}
}
