package mail

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"regexp"
	"strings"
	"testing"
	"time"
)

// wantWire is what checkWire expects of a built message.
type wantWire struct {
	fromHeader, toHeader string // header values, as written
	msgIDDomain          string
	subject              string // decoded
	text, html           string // decoded, LF line endings
}

// checkWire checks raw, a built message, with the standard library alone
// (not the package's own parser): 7-bit CRLF lines, the RFC 5322 headers,
// and multipart/alternative with quoted-printable UTF-8 parts.
func checkWire(t *testing.T, raw []byte, want wantWire) {
	t.Helper()
	for i, c := range raw {
		if c >= 0x80 {
			t.Fatalf("byte %d is %#x: message is not 7-bit", i, c)
		}
	}
	if lf, crlf := bytes.Count(raw, []byte("\n")), bytes.Count(raw, []byte("\r\n")); lf != crlf {
		t.Errorf("%d LF but %d CRLF: bare line feeds on the wire", lf, crlf)
	}
	for line := range bytes.SplitSeq(raw, []byte("\r\n")) {
		if len(line) > 998 {
			t.Errorf("line of %d characters: %.60q", len(line), line)
		}
	}

	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("ReadMessage: %v", err)
	}
	h := m.Header
	date, err := h.Date()
	if err != nil || time.Since(date).Abs() > time.Minute {
		t.Errorf("Date = %q (%v), want about now", h.Get("Date"), err)
	}
	if id := h.Get("Message-ID"); !regexp.MustCompile(`^<[0-9a-f]{32}@` + regexp.QuoteMeta(want.msgIDDomain) + `>$`).MatchString(id) {
		t.Errorf("Message-ID = %q, want random @%s", id, want.msgIDDomain)
	}
	for name, v := range map[string]string{
		"From":           want.fromHeader,
		"To":             want.toHeader,
		"MIME-Version":   "1.0",
		"Auto-Submitted": "auto-generated",
	} {
		if got := h.Get(name); got != v {
			t.Errorf("%s = %q, want %q", name, got, v)
		}
	}
	rawSubject := h.Get("Subject")
	var dec mime.WordDecoder
	if got, err := dec.DecodeHeader(rawSubject); err != nil || got != want.subject {
		t.Errorf("Subject decodes to %q (%v), want %q", got, err, want.subject)
	}
	if isASCII(want.subject) != !strings.Contains(rawSubject, "=?utf-8?q?") {
		t.Errorf("Subject %q: RFC 2047 encoding used wrongly for %q", rawSubject, want.subject)
	}

	mediaType, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mediaType != "multipart/alternative" {
		t.Fatalf("Content-Type = %q (%v), want multipart/alternative", h.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	wantParts := []struct{ ctype, body string }{
		{"text/plain; charset=utf-8", want.text},
		{"text/html; charset=utf-8", want.html},
	}
	for i := 0; ; i++ {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			if i != len(wantParts) {
				t.Errorf("%d parts, want %d", i, len(wantParts))
			}
			break
		}
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		if i >= len(wantParts) {
			t.Fatalf("unexpected part %d: %v", i, p.Header)
		}
		if got := p.Header.Get("Content-Type"); got != wantParts[i].ctype {
			t.Errorf("part %d Content-Type = %q, want %q", i, got, wantParts[i].ctype)
		}
		if got := p.Header.Get("Content-Transfer-Encoding"); got != "quoted-printable" {
			t.Errorf("part %d Content-Transfer-Encoding = %q", i, got)
		}
		body, err := io.ReadAll(quotedprintable.NewReader(p))
		if err != nil {
			t.Fatalf("part %d: quoted-printable: %v", i, err)
		}
		if got := strings.ReplaceAll(string(body), "\r\n", "\n"); got != wantParts[i].body {
			t.Errorf("part %d body =\n%q\nwant\n%q", i, got, wantParts[i].body)
		}
	}
}

// isASCII reports whether s is printable ASCII.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// sample is a message that exercises the encoder: non-ASCII text, a long
// line, trailing spaces, '=' signs and lines starting with dots (which SMTP
// must dot-stuff).
var sample = Message{
	To:      "Jörg de Vries <jorg@example.nl>",
	Subject: "Je code: één keer geldig — ‘test’",
	Text:    "Hallo Jörg,\n\nJe code is 123456.\n.\n..twee punten\n" + strings.Repeat("lang ", 30) + "\nprijs: € 10 = tien \n",
	HTML:    "<p>Hallo Jörg,</p>\n<p>Je code is <b>123456</b>.</p>\n.\n<p style=\"color:#F07D00\">€</p>\n",
}

// sampleWire is what checkWire expects of sample sent from
// "Wij Techniek <noreply@wij-techniek.nl>".
var sampleWire = wantWire{
	fromHeader:  `"Wij Techniek" <noreply@wij-techniek.nl>`,
	toHeader:    `=?utf-8?q?J=C3=B6rg_de_Vries?= <jorg@example.nl>`,
	msgIDDomain: "wij-techniek.nl",
	subject:     sample.Subject,
	text:        sample.Text,
	html:        sample.HTML,
}
