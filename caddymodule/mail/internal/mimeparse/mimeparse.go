// Package mimeparse reads back the messages that package mail builds: it
// decodes the RFC 2047 subject and the text/plain and text/html bodies
// (quoted-printable or base64, also inside nested multiparts). It is shared
// by the outbox and the mailtest SMTP server.
package mimeparse

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
)

// Message is a parsed message.
type Message struct {
	// Header is the top-level header, as read (not decoded).
	Header mail.Header
	// Subject is the decoded Subject header.
	Subject string
	// Text is the decoded first text/plain part, with LF line endings.
	Text string
	// HTML is the decoded first text/html part, with LF line endings.
	HTML string
}

// maxDepth bounds multipart nesting.
const maxDepth = 5

// Parse parses raw as an RFC 5322 message with a MIME body.
func Parse(raw []byte) (Message, error) {
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Message{}, fmt.Errorf("mimeparse: reading header: %w", err)
	}
	var dec mime.WordDecoder
	subject, err := dec.DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		return Message{}, fmt.Errorf("mimeparse: decoding Subject: %w", err)
	}
	out := Message{Header: m.Header, Subject: subject}
	ctype := m.Header.Get("Content-Type")
	if ctype == "" {
		ctype = "text/plain; charset=us-ascii"
	}
	if err := out.walk(ctype, m.Header.Get("Content-Transfer-Encoding"), m.Body, 0); err != nil {
		return Message{}, err
	}
	return out, nil
}

// walk decodes one entity of type ctype and stores its text, recursing into
// multiparts.
func (m *Message) walk(ctype, cte string, body io.Reader, depth int) error {
	mediaType, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		return fmt.Errorf("mimeparse: Content-Type %q: %w", ctype, err)
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		if depth >= maxDepth {
			return fmt.Errorf("mimeparse: multipart nested deeper than %d", maxDepth)
		}
		mr := multipart.NewReader(body, params["boundary"])
		for {
			// NextPart decodes quoted-printable parts itself and then
			// hides their Content-Transfer-Encoding header.
			p, err := mr.NextPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("mimeparse: reading %s: %w", mediaType, err)
			}
			pt := p.Header.Get("Content-Type")
			if pt == "" {
				pt = "text/plain; charset=us-ascii"
			}
			if err := m.walk(pt, p.Header.Get("Content-Transfer-Encoding"), p, depth+1); err != nil {
				return err
			}
		}
	}
	if mediaType != "text/plain" && mediaType != "text/html" {
		return nil
	}
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body) // skips CR and LF
	case "", "7bit", "8bit", "binary":
	default:
		return fmt.Errorf("mimeparse: unsupported Content-Transfer-Encoding %q", cte)
	}
	content, err := io.ReadAll(body)
	if err != nil {
		return fmt.Errorf("mimeparse: decoding %s body: %w", mediaType, err)
	}
	text := strings.ReplaceAll(string(content), "\r\n", "\n")
	switch {
	case mediaType == "text/plain" && m.Text == "":
		m.Text = text
	case mediaType == "text/html" && m.HTML == "":
		m.HTML = text
	}
	return nil
}
