package mail

import (
	"strings"
	"testing"
	"time"
)

// TestEmailChangeTexts: each message of an email change in both
// languages, saying what it must, with its links, in text and HTML.
func TestEmailChangeTexts(t *testing.T) {
	when := time.Date(2026, time.January, 2, 14, 4, 0, 0, time.UTC) // 15:04 in Amsterdam
	until := when.Add(7 * 24 * time.Hour)
	const (
		resetURL = "https://login.wij-techniek.nl/password/forgot"
		undoURL  = "https://login.wij-techniek.nl/account/email/undo/ABC"
	)
	for _, tc := range []struct {
		name    string
		m       Message
		to      string
		subject string
		inBoth  []string
		notIn   []string
	}{
		{"nl code", EmailChangeCodeMessage(LangNL, "nieuw@example.nl", "482913", 10*time.Minute), "nieuw@example.nl",
			"Je code om je e-mailadres te wijzigen", []string{"482913", "10 minuten geldig", "verandert dan niets"}, nil},
		{"en code", EmailChangeCodeMessage(LangEN, "nieuw@example.nl", "482913", 10*time.Minute), "nieuw@example.nl",
			"Your code to change your email address", []string{"482913", "valid for 10 minutes", "Nothing will change"}, nil},
		{"nl in use", AddressInUseMessage(LangNL, "piet@example.nl", resetURL), "piet@example.nl",
			"Iemand wilde jouw e-mailadres gebruiken", []string{"niets veranderd", "Nieuw wachtwoord instellen", resetURL}, []string{"code"}},
		{"en in use", AddressInUseMessage(LangEN, "piet@example.nl", resetURL), "piet@example.nl",
			"Someone tried to use your email address", []string{"nothing was changed", "Set a new password", resetURL}, []string{"code"}},
		{"nl changed", EmailChangedMessage(LangNL, "jan@example.nl", "jan@nieuw.nl", when, undoURL, until), "jan@example.nl",
			"Het e-mailadres van je account is gewijzigd", []string{"oud: jan@example.nl", "nieuw: jan@nieuw.nl", "2 januari 2026 om 15:04", "9 januari 2026 om 15:04", "Dit was ik niet", undoURL}, nil},
		{"en changed", EmailChangedMessage(LangEN, "jan@example.nl", "jan@nieuw.nl", when, undoURL, until), "jan@example.nl",
			"The email address of your account was changed", []string{"old: jan@example.nl", "new: jan@nieuw.nl", "2 January 2026 at 15:04", "9 January 2026 at 15:04", "This was not me", undoURL}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.m.To != tc.to || tc.m.Subject != tc.subject {
				t.Fatalf("to %q subject %q, want %q and %q", tc.m.To, tc.m.Subject, tc.to, tc.subject)
			}
			for _, want := range tc.inBoth {
				if !strings.Contains(tc.m.Text, want) || !strings.Contains(tc.m.HTML, want) {
					t.Errorf("%q missing from text or HTML:\n%s", want, tc.m.Text)
				}
			}
			for _, not := range tc.notIn {
				if strings.Contains(strings.ToLower(tc.m.Text), not) {
					t.Errorf("%q in the text:\n%s", not, tc.m.Text)
				}
			}
		})
	}
}
