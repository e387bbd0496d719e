package caddymodule

import (
	"net/http"
	"strings"
	"testing"
)

func TestHeaderStripper(t *testing.T) {
	s := newHeaderStripper([]string{"Remote-User", "x_forwarded_user"})
	for _, tc := range []struct {
		name  string
		key   string
		strip bool
	}{
		{"canonical", "X-Wij-User-Email", true},
		{"lower case", "x-wij-user-email", true},
		{"upper case", "X-WIJ-ORG-ROLE", true},
		{"underscores", "X_Wij_User_Email", true},
		{"mixed separators", "x_wij-user_id", true},
		{"bare prefix", "X-Wij-", true},
		{"alias", "Remote-User", true},
		{"alias other case", "remote-user", true},
		{"alias given with underscores, sent with hyphens", "X-Forwarded-User", true},
		{"alias with underscores", "Remote_User", true},
		{"default set", "X-Auth-Request-Email", true},
		{"default set, CGI spelling", "x_forwarded_email", true},
		{"peer gateway family", "X-Authentik-Username", true},
		{"peer gateway family, any member", "x-pomerium-claim-groups", true},
		{"longer than every stripped name", "X-Forwarded-User-With-A-Very-Long-Suffix-Beyond-Every-Stripped-Name-" + strings.Repeat("x", 200), false},
		{"similar but not ours", "X-Wijk", false},
		{"similar to a default", "X-Forwarded-Users", false},
		{"unrelated", "Accept", false},
		{"prefix elsewhere", "X-Not-Wij-User", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			h[tc.key] = []string{"forged", "forged again"}
			h["Accept"] = []string{"text/html"}
			s.strip(h)
			_, present := h[tc.key]
			if tc.strip == present {
				t.Fatalf("%q present after strip: %v, want stripped: %v", tc.key, present, tc.strip)
			}
			if tc.key != "Accept" && h.Get("Accept") != "text/html" {
				t.Fatal("an unrelated header was removed")
			}
		})
	}
}

func TestRemoveCookie(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []string
		want []string
	}{
		{"only ours", []string{"__Host-wijgate=abc"}, nil},
		{"ours among others", []string{"a=1; __Host-wijgate=abc; b=2"}, []string{"a=1; b=2"}},
		{"two lines", []string{"a=1", "__Host-wijgate=abc"}, []string{"a=1"}},
		{"similar name kept", []string{"__Host-wijgate2=x; __Host-wijgate=abc"}, []string{"__Host-wijgate2=x"}},
		{"csrf cookie too", []string{"__Host-wijgate_csrf=t; z=9"}, []string{"z=9"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{"Cookie": tc.in}
			removeCookie(h, []string{"__Host-wijgate", "__Host-wijgate_csrf"})
			got := h["Cookie"]
			if len(got) != len(tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %q, want %q", got, tc.want)
				}
			}
		})
	}
}

func TestSessionCookieValue(t *testing.T) {
	h := http.Header{"Cookie": {"a=1; __Host-wijgate2=x", "__Host-wijgate=value"}}
	if got := sessionCookie(h, "__Host-wijgate"); got != "value" {
		t.Fatalf("got %q", got)
	}
}

func TestSetHeadersSharesOneArraySafely(t *testing.T) {
	fields := []headerField{{header: "X-Wij-User-Id"}, {header: "X-Wij-User-Email"}, {header: "X-Wij-Org-Kvk"}}
	h := http.Header{}
	setHeaders(h, fields, []string{"u-1", "jan@example.nl", ""})
	if got := h["X-Wij-User-Id"]; len(got) != 1 || got[0] != "u-1" {
		t.Fatalf("X-Wij-User-Id = %q", got)
	}
	if _, ok := h["X-Wij-Org-Kvk"]; ok {
		t.Error("an empty fact became a header")
	}
	// A later handler adding a value to one header must not overwrite
	// the next header's value in the shared array.
	h.Add("X-Wij-User-Id", "appended")
	if got := h["X-Wij-User-Email"]; len(got) != 1 || got[0] != "jan@example.nl" {
		t.Fatalf("X-Wij-User-Email after an Add to its neighbour = %q", got)
	}
}

func TestDefaultStrippedHeadersAreStrippedWithoutConfiguration(t *testing.T) {
	s := newHeaderStripper(nil)
	for _, name := range defaultStrippedHeaders {
		if !s.isIdentity(name) || !s.isIdentity(strings.ToUpper(name)) || !s.isIdentity(strings.ReplaceAll(name, "-", "_")) {
			t.Errorf("%s is not stripped in every spelling", name)
		}
		if err := checkHeaderName(name); err != nil {
			t.Error(err)
		}
	}
}

func TestStripperDoesNotAllocate(t *testing.T) {
	s := newHeaderStripper([]string{"X-Legacy-Login"})
	h := http.Header{"Accept": {"*/*"}, "X-Forwarded-For": {"10.0.0.1"}, "Connection": {"keep-alive"}, "User-Agent": {"test"}}
	if n := testing.AllocsPerRun(100, func() {
		s.strip(h)
		s.cleanConnection(h, false)
	}); n != 0 {
		t.Fatalf("%v allocations per request without identity headers", n)
	}
}

func TestCleanConnection(t *testing.T) {
	s := newHeaderStripper([]string{"X-Legacy-Login"})
	for _, tc := range []struct {
		name        string
		in          []string
		dropUpgrade bool
		want        []string
	}{
		{"nothing to drop", []string{"keep-alive"}, false, []string{"keep-alive"}},
		{"identity and alias names", []string{"close, X-Wij-User-Id, Remote-User"}, false, []string{"close"}},
		{"any spelling, any line", []string{"Keep-Alive", " x_wij_org_role ,X-LEGACY-LOGIN,Foo"}, false, []string{"Keep-Alive", "Foo"}},
		{"upgrade kept for a WebSocket", []string{"Upgrade"}, false, []string{"Upgrade"}},
		{"upgrade dropped", []string{"Upgrade, HTTP2-Settings", "keep-alive"}, true, []string{"", "keep-alive"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{"Connection": append([]string(nil), tc.in...)}
			s.cleanConnection(h, tc.dropUpgrade)
			if got := h["Connection"]; strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("Connection %q became %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestCheckHeaderName(t *testing.T) {
	for _, name := range []string{"", "Remote User", "X-User:", "Naïve", strings.Repeat("x", maxStrippedNameLen+1)} {
		if checkHeaderName(name) == nil {
			t.Errorf("%q accepted as a header name", name)
		}
	}
	for _, name := range []string{"Remote-User", "x_forwarded_user", strings.Repeat("x", maxStrippedNameLen)} {
		if err := checkHeaderName(name); err != nil {
			t.Error(err)
		}
	}
}
