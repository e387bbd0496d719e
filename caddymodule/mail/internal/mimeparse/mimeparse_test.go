package mimeparse

import (
	"strings"
	"testing"
)

// crlf turns the LF line endings of a test message into CRLF.
func crlf(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }

func TestParse(t *testing.T) {
	tests := []struct {
		name                string
		raw                 string
		subject, text, html string
	}{
		{
			name: "multipart/alternative, quoted-printable, RFC 2047 subject",
			raw: `Subject: =?utf-8?q?=C3=A9=C3=A9n?=
 =?utf-8?q?_twee?=
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b1"

--b1
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

=C3=A9=C3=A9n lange regel die door=
loopt
--b1
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: quoted-printable

<p>=C3=A9=C3=A9n</p>
--b1--
`,
			subject: "één twee", text: "één lange regel die doorloopt", html: "<p>één</p>",
		},
		{
			name: "base64 text inside nested multipart/mixed, first part of each type wins",
			raw: `Subject: plain
Content-Type: multipart/mixed; boundary=outer

--outer
Content-Type: multipart/alternative; boundary=inner

--inner
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

w6nDqW4K
dHdlZQ==
--inner--
--outer
Content-Type: text/plain

second text
--outer
Content-Type: application/pdf
Content-Transfer-Encoding: base64

JVBERg==
--outer--
`,
			subject: "plain", text: "één\ntwee",
		},
		{
			name:    "no Content-Type is plain text",
			raw:     "Subject: hi\n\nline one\nline two\n",
			subject: "hi", text: "line one\nline two\n",
		},
		{
			name:    "single text/html part",
			raw:     "Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n<b>x</b>\n",
			subject: "", html: "<b>x</b>\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse(crlf(tt.raw))
			if err != nil {
				t.Fatal(err)
			}
			if m.Subject != tt.subject || m.Text != tt.text || m.HTML != tt.html {
				t.Errorf("got subject %q text %q html %q\nwant subject %q text %q html %q", m.Subject, m.Text, m.HTML, tt.subject, tt.text, tt.html)
			}
			if m.Header == nil {
				t.Error("no Header")
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	nested := "Content-Type: multipart/mixed; boundary=b0\n\n"
	for i := 1; i <= maxDepth+1; i++ {
		nested += "--b" + string(rune('0'+i-1)) + "\nContent-Type: multipart/mixed; boundary=b" + string(rune('0'+i)) + "\n\n"
	}
	tests := []struct {
		name, raw, detail string
	}{
		{"no header end", "Subject", "reading header"},
		{"bad Content-Type", "Content-Type: text/\n\nx", "Content-Type"},
		{"unknown transfer encoding", "Content-Type: text/plain\nContent-Transfer-Encoding: x-uuencode\n\nx", "unsupported Content-Transfer-Encoding"},
		{"bad base64", "Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n!!!!\n", "decoding text/plain"},
		{"broken multipart", "Content-Type: multipart/mixed; boundary=b\n\nno parts here", "reading multipart/mixed"},
		{"too deeply nested", nested, "nested deeper"},
		{"bad encoded subject", "Subject: =?x-unknown?q?a?=\n\nx", "decoding Subject"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(crlf(tt.raw))
			if err == nil || !strings.Contains(err.Error(), tt.detail) {
				t.Fatalf("err = %v, want one saying %q", err, tt.detail)
			}
		})
	}
}
