package mail

import (
	"bytes"
	"html/template"
	"math"
	"strings"
	"time"
	// Embedded zone data: times in the texts are Dutch time even on hosts
	// without a zoneinfo database.
	_ "time/tzdata"
)

// Lang selects the language of the message texts.
type Lang string

// Supported languages. Any other Lang value gets Dutch.
const (
	LangNL Lang = "nl"
	LangEN Lang = "en"
)

// Purposes for VerificationCodeMessage.
const (
	PurposeRegister = "register"
	PurposeReset    = "reset"
)

// catalogue holds the texts of one language: texts_nl.go and texts_en.go.
type catalogue struct {
	lang      Lang
	greeting  string
	signature []string
	// buttonHelp introduces the plain links under the HTML buttons.
	buttonHelp string
	// footer says that the message was sent automatically.
	footer string

	verificationCode  func(code, purpose string, minutes int) content
	alreadyRegistered func(loginURL, resetURL string) content
	noAccount         func(registerURL string) content
	passwordChanged   func(when time.Time) content
	invitation        func(orgName, inviterName, acceptURL string, apps []string, expires time.Time) content
}

// content is one message in one language, before layout. All strings are
// plain text: the HTML layout escapes them.
type content struct {
	Subject string
	Lead    []string // paragraphs before the code, list and buttons
	Code    string   // shown large, on its own
	Items   []string // bullet list
	Buttons []link   // actions; the first is the main one
	After   []string // paragraphs after the buttons
}

// link is an action in a message.
type link struct {
	Label, URL string
}

// catalogueFor returns the texts for lang: English for LangEN, Dutch for
// everything else.
func catalogueFor(lang Lang) *catalogue {
	if lang == LangEN {
		return &textsEN
	}
	return &textsNL
}

// VerificationCodeMessage is the mail with a one-time code that proves the
// recipient owns the address: to create an account (purpose
// PurposeRegister) or to set a new password (PurposeReset; anything else
// counts as PurposeRegister). It says how many minutes the code is valid
// (validFor rounded up, at least 1) and to ignore the mail if the recipient
// did not ask for it.
func VerificationCodeMessage(lang Lang, to, code string, purpose string, validFor time.Duration) Message {
	minutes := max(1, int(math.Ceil(validFor.Minutes())))
	if purpose != PurposeReset {
		purpose = PurposeRegister
	}
	cat := catalogueFor(lang)
	return cat.message(to, cat.verificationCode(code, purpose, minutes))
}

// AlreadyRegisteredMessage is the mail sent instead of a code when someone
// tries to register an address that already has an account: it points to
// the login page (loginURL) and to setting a new password (resetURL), and
// tells the owner that nothing changed if it was not them.
func AlreadyRegisteredMessage(lang Lang, to, loginURL, resetURL string) Message {
	cat := catalogueFor(lang)
	return cat.message(to, cat.alreadyRegistered(loginURL, resetURL))
}

// NoAccountMessage answers a password-reset request for an address that
// has no account: it says so and points to registration (registerURL).
// Sending it keeps the reset page's answer and timing the same for known
// and unknown addresses.
func NoAccountMessage(lang Lang, to, registerURL string) Message {
	cat := catalogueFor(lang)
	return cat.message(to, cat.noAccount(registerURL))
}

// PasswordChangedMessage tells the account owner that the password was
// changed at when (shown in Dutch time) and what to do if that was not
// them.
func PasswordChangedMessage(lang Lang, to string, when time.Time) Message {
	cat := catalogueFor(lang)
	return cat.message(to, cat.passwordChanged(when.In(amsterdam)))
}

// InvitationMessage invites the recipient to join the organisation orgName,
// on behalf of inviterName (may be empty), with the apps they will get
// (may be empty) and the link to accept, valid until expires (shown in
// Dutch time).
func InvitationMessage(lang Lang, to, orgName, inviterName, acceptURL string, apps []string, expires time.Time) Message {
	cat := catalogueFor(lang)
	return cat.message(to, cat.invitation(oneLine(orgName), oneLine(inviterName), acceptURL, apps, expires.In(amsterdam)))
}

// amsterdam is the time zone for times in the texts.
var amsterdam = mustLoadLocation("Europe/Amsterdam")

// mustLoadLocation loads a zone from the embedded zone data.
func mustLoadLocation(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic("mail: " + err.Error())
	}
	return loc
}

// oneLine turns s into one line of text: control characters, line breaks
// included, become spaces. Names go into subjects, which may not break.
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return r == ' ' || r < 0x20 || r == 0x7f
	}), " ")
}

// message lays c out as plain text and HTML.
func (cat *catalogue) message(to string, c content) Message {
	return Message{To: to, Subject: oneLine(c.Subject), Text: cat.text(c), HTML: cat.html(c)}
}

// text lays c out as plain text.
func (cat *catalogue) text(c content) string {
	var b strings.Builder
	para := func(s string) {
		b.WriteString(s)
		b.WriteString("\n\n")
	}
	para(cat.greeting)
	for _, p := range c.Lead {
		para(p)
	}
	if c.Code != "" {
		para("    " + c.Code)
	}
	if len(c.Items) > 0 {
		for _, item := range c.Items {
			b.WriteString("- " + item + "\n")
		}
		b.WriteString("\n")
	}
	for _, l := range c.Buttons {
		para(l.Label + ":\n" + l.URL)
	}
	for _, p := range c.After {
		para(p)
	}
	para(strings.Join(cat.signature, "\n"))
	b.WriteString(cat.footer + "\n")
	return b.String()
}

// html lays c out as an HTML mail with inline styles.
func (cat *catalogue) html(c content) string {
	var b bytes.Buffer
	err := htmlLayout.Execute(&b, struct {
		content
		Lang       Lang
		Greeting   string
		Signature  []string
		ButtonHelp string
		Footer     string
	}{c, cat.lang, cat.greeting, cat.signature, cat.buttonHelp, cat.footer})
	if err != nil {
		// The template is fixed and its data plain strings: only a bug
		// in the template gets here, and the tests run every branch.
		panic("mail: HTML layout: " + err.Error())
	}
	return b.String()
}

// htmlLayout is the HTML mail layout: tables and inline styles only, as mail
// clients ignore style sheets, with the orange #F07D00 of Wij Techniek as
// accent. html/template escapes every value and filters link URLs.
var htmlLayout = template.Must(template.New("mail").Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Subject}}</title>
</head>
<body style="margin:0;padding:0;background-color:#f5f5f5;">
<table role="presentation" width="100%" cellspacing="0" cellpadding="0" border="0" style="background-color:#f5f5f5;">
<tr><td align="center" style="padding:24px 12px;">
<table role="presentation" width="100%" cellspacing="0" cellpadding="0" border="0" style="max-width:560px;background-color:#ffffff;border-top:6px solid #F07D00;font-family:Arial,Helvetica,sans-serif;font-size:16px;line-height:24px;color:#333333;">
<tr><td style="padding:24px 32px 0 32px;font-size:22px;line-height:28px;font-weight:bold;color:#F07D00;">Wij Techniek</td></tr>
<tr><td style="padding:16px 32px 8px 32px;">
<p style="margin:0 0 16px 0;">{{.Greeting}}</p>
{{range .Lead}}<p style="margin:0 0 16px 0;">{{.}}</p>
{{end}}{{with .Code}}<p style="margin:0 0 16px 0;padding:12px 16px;background-color:#fff4e8;border-left:4px solid #F07D00;font-family:Consolas,'Courier New',monospace;font-size:28px;line-height:36px;font-weight:bold;letter-spacing:4px;">{{.}}</p>
{{end}}{{with .Items}}<ul style="margin:0 0 16px 0;padding-left:24px;">
{{range .}}<li style="margin:0 0 4px 0;">{{.}}</li>
{{end}}</ul>
{{end}}{{with .Buttons}}{{range $i, $b := .}}<table role="presentation" cellspacing="0" cellpadding="0" border="0" style="margin:0 0 16px 0;"><tr>
{{if eq $i 0}}<td style="border-radius:4px;background-color:#F07D00;"><a href="{{$b.URL}}" style="display:inline-block;padding:12px 24px;font-weight:bold;color:#ffffff;text-decoration:none;">{{$b.Label}}</a></td>
{{else}}<td style="border-radius:4px;border:2px solid #F07D00;"><a href="{{$b.URL}}" style="display:inline-block;padding:10px 22px;font-weight:bold;color:#F07D00;text-decoration:none;">{{$b.Label}}</a></td>
{{end}}</tr></table>
{{end}}<p style="margin:0 0 16px 0;font-size:13px;line-height:20px;color:#666666;">{{$.ButtonHelp}}{{range .}}<br>{{.Label}}: <a href="{{.URL}}" style="color:#F07D00;word-break:break-all;">{{.URL}}</a>{{end}}</p>
{{end}}{{range .After}}<p style="margin:0 0 16px 0;">{{.}}</p>
{{end}}<p style="margin:24px 0 16px 0;">{{range $i, $l := .Signature}}{{if $i}}<br>{{end}}{{$l}}{{end}}</p>
</td></tr>
<tr><td style="padding:16px 32px 24px 32px;border-top:1px solid #eeeeee;font-size:12px;line-height:18px;color:#888888;">{{.Footer}}</td></tr>
</table>
</td></tr>
</table>
</body>
</html>
`))
