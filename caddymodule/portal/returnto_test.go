package portal

import "testing"

func TestReturnPolicy(t *testing.T) {
	sameSite, err := NewReturnPolicy("", []string{"apps.example.nl", "*.wij-techniek.nl"})
	if err != nil {
		t.Fatal(err)
	}
	ownPortal, err := NewReturnPolicy("https://account.wij-techniek.nl", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		policy *ReturnPolicy
		raw    string
		ok     bool
	}{
		{"path", sameSite, "/declaratie/", true},
		{"path with query", sameSite, "/a?b=c&d=%2F", true},
		{"request host", sameSite, "http://gate.local:8080/x", true},
		{"listed host", sameSite, "https://apps.example.nl/x", true},
		{"wildcard subdomain", sameSite, "https://rie.wij-techniek.nl/", true},
		{"wildcard does not match apex look-alike", sameSite, "https://evilwij-techniek.nl/", false},
		{"portal host", ownPortal, "https://account.wij-techniek.nl/dashboard", true},
		{"portal's sibling not listed", ownPortal, "https://rie.wij-techniek.nl/", false},
		{"empty", sameSite, "", false},
		{"protocol-relative", sameSite, "//evil.example", false},
		{"backslash", sameSite, `/\evil.example`, false},
		{"backslashes only", sameSite, `\\evil.example`, false},
		{"encoded double slash", sameSite, "/%2F%2Fevil.example", false},
		{"encoded backslash", sameSite, "/%5Cevil.example", false},
		{"foreign", sameSite, "https://evil.example/", false},
		{"javascript", sameSite, "javascript:alert(1)", false},
		{"JavaScript mixed case", sameSite, "JaVaScRiPt:alert(1)", false},
		{"data", sameSite, "data:text/html;base64,xx", false},
		{"userinfo", sameSite, "https://apps.example.nl@evil.example/", false},
		{"control character", sameSite, "/a\x00b", false},
		{"newline", sameSite, "/a\nb", false},
		{"too long", sameSite, "/" + string(make([]byte, 3000)), false},
		{"ftp", sameSite, "ftp://apps.example.nl/", false},
		{"bad escape", sameSite, "/%zz", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.policy.Safe(tc.raw, "gate.local:8080")
			if (got != "") != tc.ok {
				t.Fatalf("Safe(%q) = %q, want accepted %v", tc.raw, got, tc.ok)
			}
		})
	}
}

func TestNewReturnPolicyRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name, portal string
		hosts        []string
	}{
		{"relative portal URL", "account.example.nl", nil},
		{"portal with userinfo", "https://a@b.nl", nil},
		{"host with path", "", []string{"example.nl/x"}},
		{"inner wildcard", "", []string{"a.*.nl"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewReturnPolicy(tc.portal, tc.hosts); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
