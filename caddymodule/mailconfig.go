package caddymodule

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/wijtechniek/wijgate/caddymodule/mail"
)

// MailConfig says how wijgate sends email. Set SMTP for real delivery or
// Outbox for development, not both.
type MailConfig struct {
	// From is the sender, e.g. `Wij Techniek <noreply@wij-techniek.nl>`.
	From string `json:"from,omitempty"`
	// SMTP is the submission server, `host:port`.
	SMTP string `json:"smtp,omitempty"`
	// Username and Password authenticate to the server (AUTH PLAIN or
	// LOGIN); `{env.*}` and `{file.*}` placeholders work.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// Security is `starttls` (default), `tls` (implicit TLS, port 465) or
	// `none` (loopback servers only).
	Security string `json:"security,omitempty"`
	// Timeout bounds one delivery. Default 10s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// HelloName is the name wijgate gives in EHLO.
	HelloName string `json:"hello_name,omitempty"`
	// Outbox is a directory where messages are written as .eml files
	// instead of sent, and shown at the portal's /dev/mail page.
	Outbox string `json:"outbox,omitempty"`
	// AllowRemote lets clients on other machines read /dev/mail. By
	// default only loopback clients may: it shows every code and
	// invitation link sent.
	AllowRemote bool `json:"allow_remote,omitempty"`
}

// checkDelivery refuses mail settings that do not say, in one way, where
// messages go.
func (m *MailConfig) checkDelivery() error {
	if m == nil || (m.SMTP == "" && m.Outbox == "") {
		return errors.New("wijgate: configure mail, either `smtp <host:port>` or, for development, `outbox <dir>`")
	}
	if m.SMTP != "" && m.Outbox != "" {
		return errors.New("wijgate mail: set smtp or outbox, not both")
	}
	return nil
}

// sender builds the configured mail sender; the outbox is returned too
// when that is what is configured, and logged once as a warning.
func (m *MailConfig) sender(repl *caddy.Replacer, logger *zap.Logger) (mail.Sender, *mail.Outbox, error) {
	if err := m.checkDelivery(); err != nil {
		return nil, nil, err
	}
	from := repl.ReplaceAll(m.From, "")
	if m.Outbox != "" {
		dir, err := filepath.Abs(repl.ReplaceAll(m.Outbox, ""))
		if err != nil {
			return nil, nil, fmt.Errorf("mail outbox: %w", err)
		}
		if from == "" {
			from = mail.DefaultOutboxFrom
		}
		if m.AllowRemote {
			logger.Warn("the development mail outbox is on, for clients on any machine (allow_remote): every code and invitation link sent is shown at /dev/mail on the portal",
				zap.String("outbox", dir))
		} else {
			logger.Warn("the development mail outbox is on, for loopback clients only: every code and invitation link sent is shown at /dev/mail on the portal",
				zap.String("outbox", dir))
		}
		o := &mail.Outbox{Dir: dir, From: from}
		return o, o, nil
	}
	if from == "" {
		return nil, nil, errors.New("wijgate mail: `from` is required with smtp, e.g. \"Wij Techniek <noreply@wij-techniek.nl>\"")
	}
	s, err := mail.NewSMTPSender(mail.SMTPConfig{
		Addr:      repl.ReplaceAll(m.SMTP, ""),
		Username:  repl.ReplaceAll(m.Username, ""),
		Password:  repl.ReplaceAll(m.Password, ""),
		From:      from,
		Security:  m.Security,
		Timeout:   time.Duration(m.Timeout),
		HelloName: repl.ReplaceAll(m.HelloName, ""),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("wijgate mail: %w", err)
	}
	return s, nil, nil
}
