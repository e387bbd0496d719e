package mail

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestTexts(t *testing.T) {
	when := time.Date(2026, time.January, 2, 14, 4, 0, 0, time.UTC) // 15:04 in Amsterdam
	summer := time.Date(2026, time.July, 2, 13, 30, 0, 0, time.UTC) // 15:30 in Amsterdam
	const (
		to          = "jan@example.nl"
		evilName    = `<script>alert("x")</script> & Co`
		evilHTML    = `&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co`
		loginURL    = "https://login.wij-techniek.nl/login?next=/a&b=1"
		resetURL    = "https://login.wij-techniek.nl/reset"
		registerURL = "https://login.wij-techniek.nl/register"
		acceptURL   = "https://login.wij-techniek.nl/invite/abc123"
	)
	tests := []struct {
		name    string
		m       Message
		subject string
		inBoth  []string // in Text and in HTML
		inText  []string
		inHTML  []string
		notIn   []string // in neither
		notHTML []string // not in HTML
	}{
		{
			name:    "nl verification code for register",
			m:       VerificationCodeMessage(LangNL, to, "482913", PurposeRegister, 15*time.Minute),
			subject: "Je code om je account te maken",
			inBoth:  []string{"482913", "15 minuten geldig", "e-mail negeren", "geen account gemaakt"},
		},
		{
			name:    "en verification code for register",
			m:       VerificationCodeMessage(LangEN, to, "482913", PurposeRegister, 15*time.Minute),
			subject: "Your code to create your account",
			inBoth:  []string{"482913", "valid for 15 minutes", "ignore this email", "No account will be created"},
		},
		{
			name:    "nl verification code for reset, rounded up to 1 minuut",
			m:       VerificationCodeMessage(LangNL, to, "000417", PurposeReset, 30*time.Second),
			subject: "Je code om een nieuw wachtwoord in te stellen",
			inBoth:  []string{"000417", "1 minuut geldig", "e-mail negeren", "wachtwoord blijft dan hetzelfde"},
		},
		{
			name:    "en verification code for reset, minutes rounded up",
			m:       VerificationCodeMessage(LangEN, to, "000417", PurposeReset, 10*time.Minute+time.Second),
			subject: "Your code to set a new password",
			inBoth:  []string{"000417", "valid for 11 minutes", "ignore this email", "password stays the same"},
		},
		{
			name:    "unknown purpose counts as register",
			m:       VerificationCodeMessage(LangEN, to, "123456", "other", time.Hour),
			subject: "Your code to create your account",
			inBoth:  []string{"123456", "valid for 60 minutes"},
		},
		{
			name:    "code is escaped in HTML",
			m:       VerificationCodeMessage(LangNL, to, "<b>1</b>", PurposeRegister, time.Minute),
			subject: "Je code om je account te maken",
			inText:  []string{"<b>1</b>"},
			inHTML:  []string{"&lt;b&gt;1&lt;/b&gt;"},
		},
		{
			name:    "nl already registered",
			m:       AlreadyRegisteredMessage(LangNL, to, loginURL, resetURL),
			subject: "Je hebt al een account bij Wij Techniek",
			inBoth:  []string{resetURL, "Inloggen", "Nieuw wachtwoord instellen", "geen nieuw account gemaakt"},
			inText:  []string{loginURL},
			inHTML:  []string{`href="https://login.wij-techniek.nl/login?next=/a&amp;b=1"`},
		},
		{
			name:    "en already registered",
			m:       AlreadyRegisteredMessage(LangEN, to, loginURL, resetURL),
			subject: "You already have a Wij Techniek account",
			inBoth:  []string{resetURL, "Log in", "Set a new password", "no new account was created"},
			inText:  []string{loginURL},
			inHTML:  []string{`href="https://login.wij-techniek.nl/login?next=/a&amp;b=1"`},
		},
		{
			name:    "links are escaped and unsafe URLs dropped",
			m:       AlreadyRegisteredMessage(LangEN, to, "javascript:alert(1)", `https://x.nl/"><script>`),
			subject: "You already have a Wij Techniek account",
			inHTML:  []string{`href="#ZgotmplZ"`, `https://x.nl/%22%3e%3cscript%3e`},
			notHTML: []string{`href="javascript:`},
		},
		{
			name:    "nl no account",
			m:       NoAccountMessage(LangNL, to, registerURL),
			subject: "Nieuw wachtwoord aangevraagd bij Wij Techniek",
			inBoth:  []string{registerURL, "Account aanmaken", "geen account bij Wij Techniek", "Was jij dit niet?"},
		},
		{
			name:    "en no account",
			m:       NoAccountMessage(LangEN, to, registerURL),
			subject: "New password requested at Wij Techniek",
			inBoth:  []string{registerURL, "Create an account", "no Wij Techniek account", "Was this not you?"},
		},
		{
			name:    "no account link is escaped",
			m:       NoAccountMessage(LangNL, to, `https://x.nl/"><script>`),
			subject: "Nieuw wachtwoord aangevraagd bij Wij Techniek",
			inHTML:  []string{`https://x.nl/%22%3e%3cscript%3e`},
			notHTML: []string{`"><script>`},
		},
		{
			name:    "nl password changed, in Dutch winter time",
			m:       PasswordChangedMessage(LangNL, to, when),
			subject: "Je wachtwoord is gewijzigd",
			inBoth:  []string{"2 januari 2026 om 15:04 (Nederlandse tijd)", "Was jij dit niet?"},
		},
		{
			name:    "en password changed, in Dutch summer time",
			m:       PasswordChangedMessage(LangEN, to, summer),
			subject: "Your password was changed",
			inBoth:  []string{"2 July 2026 at 15:30 (Amsterdam time)", "Was this not you?"},
		},
		{
			name:    "nl invitation",
			m:       InvitationMessage(LangNL, to, "Bouwbedrijf De Vries", "Piet Jansen", acceptURL, []string{"Planning", "Urenregistratie"}, when),
			subject: "Uitnodiging voor Bouwbedrijf De Vries",
			inBoth:  []string{"Piet Jansen nodigt je uit voor Bouwbedrijf De Vries", acceptURL, "Planning", "Urenregistratie", "Uitnodiging accepteren", "geldig tot 2 januari 2026 om 15:04"},
			inText:  []string{"- Planning\n"},
			inHTML:  []string{"<li style=\"margin:0 0 4px 0;\">Planning</li>"},
		},
		{
			name:    "en invitation",
			m:       InvitationMessage(LangEN, to, "Bouwbedrijf De Vries", "Piet Jansen", acceptURL, []string{"Planning"}, when),
			subject: "Invitation to join Bouwbedrijf De Vries",
			inBoth:  []string{"Piet Jansen invites you to join Bouwbedrijf De Vries", acceptURL, "Planning", "Accept invitation", "valid until 2 January 2026 at 15:04"},
		},
		{
			name:    "invitation without inviter or apps",
			m:       InvitationMessage(LangEN, to, "De Vries", "", acceptURL, nil, when),
			subject: "Invitation to join De Vries",
			inBoth:  []string{"You are invited to join De Vries", acceptURL},
			notIn:   []string{"these apps"},
			notHTML: []string{"<ul"},
		},
		{
			name:    "nl invitation escapes names in HTML",
			m:       InvitationMessage(LangNL, to, evilName, evilName, acceptURL, []string{evilName}, when),
			subject: "Uitnodiging voor " + evilName,
			inText:  []string{evilName + " nodigt je uit voor " + evilName},
			inHTML:  []string{evilHTML + " nodigt je uit voor " + evilHTML, "<li style=\"margin:0 0 4px 0;\">" + evilHTML + "</li>"},
			notHTML: []string{"<script>alert"},
		},
		{
			name:    "en invitation escapes names in HTML",
			m:       InvitationMessage(LangEN, to, evilName, evilName, acceptURL, nil, when),
			subject: "Invitation to join " + evilName,
			inText:  []string{evilName + " invites you to join " + evilName},
			inHTML:  []string{evilHTML + " invites you to join " + evilHTML},
			notHTML: []string{"<script>alert"},
		},
		{
			name:    "line breaks in names do not reach the subject",
			m:       InvitationMessage(LangEN, to, "De Vries\r\nBcc: x@example.com", "Piet\nJansen", acceptURL, nil, when),
			subject: "Invitation to join De Vries Bcc: x@example.com",
			inBoth:  []string{"Piet Jansen invites you"},
		},
		{
			name:    "unknown language falls back to Dutch",
			m:       VerificationCodeMessage(Lang("de"), to, "123456", PurposeRegister, 15*time.Minute),
			subject: "Je code om je account te maken",
			inBoth:  []string{"15 minuten geldig"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.m
			if m.To != to || m.Subject != tt.subject {
				t.Errorf("To %q Subject %q, want %q %q", m.To, m.Subject, to, tt.subject)
			}
			// Notably: the HTML may hold "&lt;script&gt;", never "<script>".
			for _, s := range append(tt.inBoth, tt.inText...) {
				if !strings.Contains(m.Text, s) {
					t.Errorf("Text lacks %q:\n%s", s, m.Text)
				}
			}
			for _, s := range append(tt.inBoth, tt.inHTML...) {
				if !strings.Contains(m.HTML, s) {
					t.Errorf("HTML lacks %q:\n%s", s, m.HTML)
				}
			}
			for _, s := range tt.notIn {
				if strings.Contains(m.Text, s) || strings.Contains(m.HTML, s) {
					t.Errorf("message contains %q", s)
				}
			}
			for _, s := range tt.notHTML {
				if strings.Contains(m.HTML, s) {
					t.Errorf("HTML contains %q", s)
				}
			}
			checkLayout(t, m)
			// Every constructed message must build for the wire.
			if _, _, err := buildMessage(mustFrom(t, testFrom), m, time.Now()); err != nil {
				t.Errorf("buildMessage: %v", err)
			}
		})
	}
}

// checkLayout checks what every message shares: the HTML layout with inline
// styles only and the orange accent, and paragraphs in the text.
func checkLayout(t *testing.T, m Message) {
	t.Helper()
	for _, s := range []string{"<!DOCTYPE html>", "#F07D00", "Wij Techniek"} {
		if !strings.Contains(m.HTML, s) {
			t.Errorf("HTML lacks %q", s)
		}
	}
	if regexp.MustCompile(`(?i)<style|<link|<script`).MatchString(m.HTML) {
		t.Errorf("HTML has a style sheet or script:\n%s", m.HTML)
	}
	if !strings.HasSuffix(m.Text, "\n") || strings.Contains(m.Text, "\n\n\n") {
		t.Errorf("Text paragraphs badly separated:\n%q", m.Text)
	}
}

func TestTextsLanguageOfHTML(t *testing.T) {
	tests := []struct {
		lang Lang
		want string
	}{
		{LangNL, `<html lang="nl">`},
		{LangEN, `<html lang="en">`},
		{"", `<html lang="nl">`},
	}
	for _, tt := range tests {
		t.Run(string(tt.lang), func(t *testing.T) {
			if m := PasswordChangedMessage(tt.lang, "jan@example.nl", time.Now()); !strings.Contains(m.HTML, tt.want) {
				t.Errorf("HTML lacks %s", tt.want)
			}
		})
	}
}
