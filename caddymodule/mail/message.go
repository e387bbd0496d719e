package mail

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"time"
)

// maxHeaderLine is the longest header line the builder will emit
// (RFC 5322 section 2.1.1 allows 998 characters plus CRLF).
const maxHeaderLine = 998

// envelope is the SMTP envelope of a built message: the bare addresses for
// MAIL FROM and RCPT TO.
type envelope struct {
	from, to string
}

// buildMessage renders m, sent by from at time now, as an RFC 5322 / MIME
// message with CRLF line endings. It is the only place that produces wire
// messages; SMTPSender and Outbox both use it.
//
// The result is 7-bit clean: header text is RFC 2047-encoded and the body
// parts are UTF-8 in quoted-printable, so no SMTP extension is needed to
// carry it.
func buildMessage(from *mail.Address, m Message, now time.Time) ([]byte, envelope, error) {
	to, err := parseAddress("To", m.To)
	if err != nil {
		return nil, envelope{}, err
	}
	if err := checkHeaderText("Subject", m.Subject); err != nil {
		return nil, envelope{}, err
	}
	if strings.TrimSpace(m.Text) == "" {
		return nil, envelope{}, fmt.Errorf("%w: the text body is empty", ErrInvalidMessage)
	}
	msgID, err := messageID(from.Address)
	if err != nil {
		return nil, envelope{}, err
	}

	var b bytes.Buffer
	var headerErr error
	header := func(name, value string) {
		for line := range strings.SplitSeq(name+": "+value, "\r\n") {
			if len(line) > maxHeaderLine && headerErr == nil {
				headerErr = fmt.Errorf("%w: %s header line longer than %d characters", ErrInvalidMessage, name, maxHeaderLine)
			}
		}
		b.WriteString(name)
		b.WriteString(": ")
		b.WriteString(value)
		b.WriteString("\r\n")
	}
	header("Date", now.Format(time.RFC1123Z))
	header("Message-ID", msgID)
	header("From", formatAddress(from))
	header("To", formatAddress(to))
	header("Subject", encodeSubject(m.Subject))
	header("MIME-Version", "1.0")
	// RFC 3834: automatic replies (out-of-office) should not answer us.
	header("Auto-Submitted", "auto-generated")
	if headerErr != nil {
		return nil, envelope{}, headerErr
	}

	if m.HTML == "" {
		header("Content-Type", "text/plain; charset=utf-8")
		header("Content-Transfer-Encoding", "quoted-printable")
		b.WriteString("\r\n")
		if err := writeQP(&b, m.Text); err != nil {
			return nil, envelope{}, err
		}
	} else {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		header("Content-Type", mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": mw.Boundary()}))
		b.WriteString("\r\n")
		for _, p := range []struct{ ctype, content string }{
			{"text/plain; charset=utf-8", m.Text},
			{"text/html; charset=utf-8", m.HTML},
		} {
			w, err := mw.CreatePart(textproto.MIMEHeader{
				"Content-Type":              {p.ctype},
				"Content-Transfer-Encoding": {"quoted-printable"},
			})
			if err != nil {
				return nil, envelope{}, err
			}
			if err := writeQP(w, p.content); err != nil {
				return nil, envelope{}, err
			}
		}
		if err := mw.Close(); err != nil {
			return nil, envelope{}, err
		}
		b.Write(body.Bytes())
	}

	return b.Bytes(), envelope{from: from.Address, to: to.Address}, nil
}

// parseAddress parses the value of the address header field (From or To)
// and checks that its address can go into an SMTP envelope as is.
func parseAddress(field, value string) (*mail.Address, error) {
	if err := checkHeaderText(field, value); err != nil {
		return nil, err
	}
	a, err := mail.ParseAddress(value)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %q is not a single valid address: %v", ErrInvalidMessage, field, value, err)
	}
	if !plainAddress(a.Address) {
		return nil, fmt.Errorf("%w: %s address %q is not supported: only plain ASCII addresses (no quoting, no IP literals)", ErrInvalidMessage, field, a.Address)
	}
	return a, nil
}

// checkHeaderText rejects header field values that would break out of their
// header line (CR or LF: header injection) or carry other control
// characters.
func checkHeaderText(field, value string) error {
	if strings.ContainsAny(value, "\r\n") {
		return fmt.Errorf("%w: %s contains a line break (CR or LF); refusing possible header injection", ErrInvalidMessage, field)
	}
	for _, r := range value {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return fmt.Errorf("%w: %s contains control character %U", ErrInvalidMessage, field, r)
		}
	}
	return nil
}

// plainAddress reports whether addr is local@domain made of printable ASCII
// without the characters that would need quoting in an SMTP path.
func plainAddress(addr string) bool {
	local, domain, ok := strings.Cut(addr, "@")
	if !ok || local == "" || domain == "" || strings.Contains(domain, "@") {
		return false
	}
	for i := 0; i < len(addr); i++ {
		c := addr[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"\<>()[],;:`, c) >= 0 {
			return false
		}
	}
	return true
}

// formatAddress renders a for a header: the bare address when there is no
// display name, otherwise the name (quoted or RFC 2047-encoded as needed)
// and the address in angle brackets.
func formatAddress(a *mail.Address) string {
	if a.Name == "" {
		return a.Address
	}
	return a.String()
}

// encodeSubject RFC 2047-encodes a subject that is not plain ASCII, folding
// between encoded words so that no header line grows too long.
func encodeSubject(s string) string {
	return strings.ReplaceAll(mime.QEncoding.Encode("utf-8", s), "?= =?", "?=\r\n =?")
}

// messageID returns a random Message-ID in the domain of the sender address.
func messageID(fromAddr string) (string, error) {
	_, domain, _ := strings.Cut(fromAddr, "@")
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", fmt.Errorf("mail: generating Message-ID: %w", err)
	}
	return "<" + hex.EncodeToString(id[:]) + "@" + domain + ">", nil
}

// writeQP writes s, with line endings normalised, quoted-printable encoded.
// The encoder emits CRLF line endings and keeps lines within 76 characters.
func writeQP(w io.Writer, s string) error {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	qp := quotedprintable.NewWriter(w)
	if _, err := qp.Write([]byte(s)); err != nil {
		return err
	}
	return qp.Close()
}
