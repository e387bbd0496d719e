package mail

import (
	"bytes"
	"errors"
	"net/mail"
	"strings"
	"testing"
	"time"
)

func mustFrom(t *testing.T, s string) *mail.Address {
	t.Helper()
	a, err := parseAddress("From", s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestBuildMessage(t *testing.T) {
	from := mustFrom(t, "Wij Techniek <noreply@wij-techniek.nl>")
	tests := []struct {
		name string
		m    Message
		want wantWire
	}{
		{"non-ASCII subject, name and body", sample, sampleWire},
		{
			name: "ASCII subject stays readable",
			m:    Message{To: "jan@example.nl", Subject: "Your code", Text: "Code: 123456\n", HTML: "<p>123456</p>"},
			want: wantWire{fromHeader: sampleWire.fromHeader, toHeader: "jan@example.nl", msgIDDomain: "wij-techniek.nl", subject: "Your code", text: "Code: 123456\n", html: "<p>123456</p>"},
		},
		{
			name: "long non-ASCII subject is folded between encoded words",
			m:    Message{To: "jan@example.nl", Subject: strings.Repeat("één twee ", 20), Text: "x", HTML: "x"},
			want: wantWire{fromHeader: sampleWire.fromHeader, toHeader: "jan@example.nl", msgIDDomain: "wij-techniek.nl", subject: strings.Repeat("één twee ", 20), text: "x", html: "x"},
		},
		{
			name: "CRLF and CR in bodies become line breaks",
			m:    Message{To: "jan@example.nl", Subject: "s", Text: "a\r\nb\rc", HTML: "<p>a</p>\r\n"},
			want: wantWire{fromHeader: sampleWire.fromHeader, toHeader: "jan@example.nl", msgIDDomain: "wij-techniek.nl", subject: "s", text: "a\nb\nc", html: "<p>a</p>\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, env, err := buildMessage(from, tt.m, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			checkWire(t, raw, tt.want)
			wantEnv := envelope{from: "noreply@wij-techniek.nl", to: "jan@example.nl"}
			if tt.m.To == sample.To {
				wantEnv.to = "jorg@example.nl"
			}
			if env != wantEnv {
				t.Errorf("envelope = %+v, want %+v", env, wantEnv)
			}
		})
	}
}

func TestBuildMessageFoldsLongSubject(t *testing.T) {
	raw, _, err := buildMessage(mustFrom(t, "noreply@wij-techniek.nl"), Message{To: "jan@example.nl", Subject: strings.Repeat("één twee ", 20), Text: "x"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	header := raw[:bytes.Index(raw, []byte("\r\n\r\n"))]
	if !bytes.Contains(header, []byte("?=\r\n =?utf-8?q?")) {
		t.Errorf("subject not folded:\n%s", header)
	}
	for line := range bytes.SplitSeq(header, []byte("\r\n")) {
		if len(line) > 78+len("Subject: ") {
			t.Errorf("header line of %d characters: %q", len(line), line)
		}
	}
}

func TestBuildMessageIDsDiffer(t *testing.T) {
	from := mustFrom(t, "noreply@wij-techniek.nl")
	m := Message{To: "jan@example.nl", Subject: "s", Text: "t"}
	a, _, err := buildMessage(from, m, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := buildMessage(from, m, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	idOf := func(raw []byte) string {
		msg, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		return msg.Header.Get("Message-ID")
	}
	if idOf(a) == idOf(b) {
		t.Errorf("two messages share Message-ID %s", idOf(a))
	}
}

func TestBuildMessageTextOnly(t *testing.T) {
	raw, _, err := buildMessage(mustFrom(t, "noreply@wij-techniek.nl"), Message{To: "jan@example.nl", Subject: "s", Text: "één\n"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if got := msg.Header.Get("Content-Type"); got != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type = %q", got)
	}
	if got := msg.Header.Get("Content-Transfer-Encoding"); got != "quoted-printable" {
		t.Errorf("Content-Transfer-Encoding = %q", got)
	}
	if !bytes.HasSuffix(raw, []byte("\r\n\r\n=C3=A9=C3=A9n\r\n")) {
		t.Errorf("body not quoted-printable UTF-8: %q", raw)
	}
}

func TestBuildMessageRejects(t *testing.T) {
	from := mustFrom(t, "noreply@wij-techniek.nl")
	ok := Message{To: "jan@example.nl", Subject: "Je code", Text: "123456"}
	tests := []struct {
		name   string
		edit   func(m *Message)
		detail string
	}{
		{"CRLF in To", func(m *Message) { m.To = "jan@example.nl\r\nBcc: victim@example.com" }, "To contains a line break"},
		{"LF in To", func(m *Message) { m.To = "jan@example.nl\nBcc: victim@example.com" }, "To contains a line break"},
		{"CR in Subject", func(m *Message) { m.Subject = "Je code\rBcc: victim@example.com" }, "Subject contains a line break"},
		{"LF in Subject", func(m *Message) { m.Subject = "Je code\nBcc: victim@example.com" }, "Subject contains a line break"},
		{"control character in Subject", func(m *Message) { m.Subject = "Je code\x00" }, "control character"},
		{"two recipients", func(m *Message) { m.To = "jan@example.nl, piet@example.nl" }, "not a single valid address"},
		{"no address", func(m *Message) { m.To = "jan" }, "not a single valid address"},
		{"quoted local part", func(m *Message) { m.To = `"jan de vries"@example.nl` }, "only plain ASCII addresses"},
		{"non-ASCII address", func(m *Message) { m.To = "jörg@example.nl" }, "only plain ASCII addresses"},
		{"empty text", func(m *Message) { m.Text = " \n" }, "text body is empty"},
		{"subject too long for one line", func(m *Message) { m.Subject = strings.Repeat("a", 1000) }, "longer than 998"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := ok
			tt.edit(&m)
			raw, _, err := buildMessage(from, m, time.Now())
			if !errors.Is(err, ErrInvalidMessage) || !strings.Contains(err.Error(), tt.detail) {
				t.Fatalf("err = %v, want ErrInvalidMessage saying %q", err, tt.detail)
			}
			if raw != nil {
				t.Errorf("message built anyway")
			}
		})
	}
	if _, _, err := buildMessage(from, ok, time.Now()); err != nil {
		t.Fatalf("the unedited message must pass: %v", err)
	}
}
