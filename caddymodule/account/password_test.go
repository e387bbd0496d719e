package account

import (
	"errors"
	"strings"
	"testing"
)

const testEmail = "jan.devries@example.nl"

func TestCheckPassword(t *testing.T) {
	// "kwtnbrqzplmx" is 12 letters that appear in no list and hold no name.
	base := "kwtnbrqzplmx"
	tests := []struct {
		name  string
		pw    string
		email string
		want  PasswordReason // "" means accepted
	}{
		{"11 chars rejected", base[:11], testEmail, ReasonTooShort},
		{"12 chars accepted", base, testEmail, ""},
		{"11 two-byte code points rejected", strings.Repeat("é", 11), testEmail, ReasonTooShort},
		{"12 two-byte code points accepted", strings.Repeat("é", 12), testEmail, ""},
		{"128 chars accepted", strings.Repeat(base, 11)[:128], testEmail, ""},
		{"129 chars rejected", strings.Repeat(base, 11)[:129], testEmail, ReasonTooLong},
		{"128 two-byte code points accepted", strings.Repeat("é", 128), testEmail, ""},
		{"invalid UTF-8 rejected", base + "\xff", testEmail, ReasonInvalidUTF8},
		{"passphrase with spaces accents and emoji accepted", "één koffie met mélk ☕🚲 graag", testEmail, ""},
		{"20 lowercase letters accepted", "kwtnbrqzplmxvhdgsjfc", testEmail, ""},
		{"common password rejected", "qazwsxedcrfv", testEmail, ReasonCommon},
		{"common password rejected case-insensitively", "QazWsxEdcRfv", testEmail, ReasonCommon},
		{"another common password rejected", "FinalFantasy", testEmail, ReasonCommon},
		{"email local part rejected", "mijn jan.devries wachtwoord", testEmail, ReasonContainsEmail},
		{"email local part rejected case-insensitively", "Mijn JAN.DeVries wachtwoord", testEmail, ReasonContainsEmail},
		{"short email local part ignored", "jo " + base, "jo@example.nl", ""},
		{"email domain not checked", "example " + base, testEmail, ""},
		{"service name rejected", "WijTechniek2026!!", testEmail, ReasonContainsService},
		{"service name with space rejected", "ik werk bij wij techniek", testEmail, ReasonContainsService},
		{"service name with hyphen rejected", "WIJ-TECHNIEK-" + base, testEmail, ReasonContainsService},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckPassword(NormalizePassword(tc.pw), tc.email)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("CheckPassword(%q) = %v, want nil", tc.pw, err)
				}
				return
			}
			var pe *PasswordError
			if !errors.As(err, &pe) {
				t.Fatalf("CheckPassword(%q) = %v, want *PasswordError %s", tc.pw, err, tc.want)
			}
			if pe.Reason != tc.want {
				t.Fatalf("CheckPassword(%q) reason = %s, want %s", tc.pw, pe.Reason, tc.want)
			}
		})
	}
}

func TestNormalizePassword(t *testing.T) {
	tests := []struct {
		name   string
		a, b   string
		mustEq bool
	}{
		{"NFC and NFD accents", "caf\u00e9 cr\u00e8me", "cafe\u0301 cre\u0300me", true},
		{"compatibility ligature", "\ufb01ets", "fiets", true},
		{"full-width letters", "\uff37\uff49\uff4a", "Wij", true},
		{"case kept", "Fiets", "fiets", false},
		{"spaces kept", " fiets ", "fiets", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := NormalizePassword(tc.a) == NormalizePassword(tc.b)
			if got != tc.mustEq {
				t.Fatalf("NormalizePassword(%q) == NormalizePassword(%q) is %v, want %v",
					tc.a, tc.b, got, tc.mustEq)
			}
		})
	}
}

func TestCommonPasswordList(t *testing.T) {
	set := commonPasswords()
	if len(set) < 10000 {
		t.Fatalf("common password list has %d entries, want at least 10000", len(set))
	}
	if _, ok := set["# top 10000 common passwords from zxcvbn@4.4.2 (mit)"]; ok {
		t.Fatal("comment line loaded as a password")
	}
	long := 0
	for pw := range set {
		if len([]rune(pw)) >= MinPasswordLength {
			long++
		}
	}
	// The list earns its keep only through entries the length rule lets through.
	if long == 0 {
		t.Fatal("no entry is long enough to matter")
	}
}

func TestPasswordErrorMessage(t *testing.T) {
	err := CheckPassword("short", testEmail)
	if err == nil || !strings.Contains(err.Error(), string(ReasonTooShort)) {
		t.Fatalf("error %v does not name its reason", err)
	}
}
