package mail

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/textproto"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Values for SMTPConfig.Security.
const (
	// SecuritySTARTTLS connects in plain text and upgrades with STARTTLS;
	// a server that does not offer STARTTLS gets no message.
	SecuritySTARTTLS = "starttls"
	// SecurityTLS speaks TLS from the first byte (implicit TLS, port 465).
	SecurityTLS = "tls"
	// SecurityNone sends in plain text; only allowed for loopback hosts
	// (a local relay or a test server).
	SecurityNone = "none"
)

// DefaultSMTPTimeout bounds one SMTP conversation when SMTPConfig.Timeout
// is zero.
const DefaultSMTPTimeout = 10 * time.Second

// SMTPConfig configures an SMTPSender.
type SMTPConfig struct {
	// Addr is the submission server as host:port.
	Addr string
	// Username and Password are the AUTH credentials. AUTH PLAIN is used,
	// or AUTH LOGIN if that is all the server offers. Both empty: no AUTH.
	Username, Password string
	// From is the sender, e.g. "Wij Techniek <noreply@wij-techniek.nl>". Its
	// address is also the envelope sender and gives the Message-ID domain.
	From string
	// Security is SecuritySTARTTLS (the default when empty), SecurityTLS
	// or SecurityNone.
	Security string
	// Timeout bounds the whole conversation, from dial to the server's
	// acceptance of the message. Zero means DefaultSMTPTimeout.
	Timeout time.Duration
	// HelloName is the name given in EHLO; empty means "localhost". Set it
	// to the gateway's own host name in production: some servers check it.
	HelloName string
	// TLSConfig is the client TLS configuration (optional; tests use it to
	// trust a self-signed certificate). An empty ServerName is filled in
	// from Addr.
	TLSConfig *tls.Config
}

// SMTPSender delivers messages to one SMTP submission server, one
// connection per message. It is safe for concurrent use.
//
// It speaks SMTP itself over net/textproto instead of using net/smtp's
// Client, because: every failure must name the step that failed with the
// server's reply, and net/smtp sends EHLO lazily inside other calls (and its
// Extension method drops EHLO errors); net/smtp has no AUTH LOGIN and its
// PlainAuth adds a host/TLS policy of its own on top of ours; and the
// STARTTLS upgrade should refuse replies pipelined before the handshake.
// The dozen commands needed are little code; net/smtp is frozen.
type SMTPSender struct {
	addr               string
	security           string
	from               *mail.Address
	username, password string
	timeout            time.Duration
	helloName          string
	tlsConfig          *tls.Config
}

var _ Sender = (*SMTPSender)(nil)

// NewSMTPSender checks cfg and returns a sender for it. It does not connect.
func NewSMTPSender(cfg SMTPConfig) (*SMTPSender, error) {
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("mail: SMTP Addr %q: want host:port: %w", cfg.Addr, err)
	}
	if p, err := strconv.ParseUint(port, 10, 16); host == "" || err != nil || p == 0 {
		return nil, fmt.Errorf("mail: SMTP Addr %q: want host:port with a port number", cfg.Addr)
	}
	s := &SMTPSender{
		addr:      cfg.Addr,
		security:  strings.ToLower(cfg.Security),
		username:  cfg.Username,
		password:  cfg.Password,
		timeout:   cfg.Timeout,
		helloName: cfg.HelloName,
	}
	switch s.security {
	case "":
		s.security = SecuritySTARTTLS
	case SecuritySTARTTLS, SecurityTLS:
	case SecurityNone:
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("mail: SMTP Security %q is only allowed for loopback hosts, not %q", SecurityNone, host)
		}
	default:
		return nil, fmt.Errorf("mail: SMTP Security %q: want %q, %q or %q", cfg.Security, SecuritySTARTTLS, SecurityTLS, SecurityNone)
	}
	if s.from, err = parseAddress("From", cfg.From); err != nil {
		return nil, fmt.Errorf("SMTP config: %w", err)
	}
	if (cfg.Username == "") != (cfg.Password == "") {
		return nil, errors.New("mail: SMTP Username and Password must be set together (or both left empty for no AUTH)")
	}
	switch {
	case s.timeout < 0:
		return nil, fmt.Errorf("mail: SMTP Timeout %s is negative", s.timeout)
	case s.timeout == 0:
		s.timeout = DefaultSMTPTimeout
	}
	if s.helloName == "" {
		s.helloName = "localhost"
	}
	if strings.ContainsFunc(s.helloName, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return nil, fmt.Errorf("mail: SMTP HelloName %q must be a host name", s.helloName)
	}
	s.tlsConfig = cfg.TLSConfig.Clone()
	if s.tlsConfig == nil {
		s.tlsConfig = &tls.Config{}
	}
	if s.tlsConfig.ServerName == "" {
		s.tlsConfig.ServerName = host
	}
	if s.tlsConfig.MinVersion == 0 {
		s.tlsConfig.MinVersion = tls.VersionTLS12
	}
	return s, nil
}

// Send delivers m. It returns once the server has accepted the message
// (its reply to the end of DATA); QUIT is sent without waiting for the
// answer. The conversation ends by ctx or the configured Timeout, whichever
// comes first. Failures are *SMTPError values; those that may pass by
// themselves wrap ErrUnavailable. An invalid m gives an error wrapping
// ErrInvalidMessage and no connection is made.
func (s *SMTPSender) Send(ctx context.Context, m Message) error {
	raw, env, err := buildMessage(s.from, m, time.Now())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()

	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return newSMTPError(ctx, "dial", err)
	}
	// When ctx ends (cancelled, or its deadline of at most Timeout passed)
	// the connection's deadline moves to the past, so that a blocked read
	// or write returns at once: a server that says nothing cannot stall us.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	c := &smtpConn{ctx: ctx, conn: conn, text: textproto.NewConn(conn)}
	defer c.close()
	return c.deliver(s, env, raw)
}

// SMTPError reports a failed SMTP delivery: the step that failed and, when
// the server answered, its reply.
type SMTPError struct {
	// Step is the part of the conversation that failed: "dial", "TLS"
	// (implicit TLS handshake), "greeting", "EHLO", "STARTTLS", "AUTH",
	// "MAIL FROM", "RCPT TO" or "DATA".
	Step string
	// Code is the server's reply code; 0 when the failure was not a reply.
	Code int
	// Reply is the server's reply text (lines joined by "\n") when Code is
	// set.
	Reply string
	// Temporary reports a failure that may pass by itself (connection
	// problems, timeouts, 4xx replies); errors.Is(err, ErrUnavailable) is
	// true exactly then.
	Temporary bool
	// Err is the underlying error.
	Err error
}

// Error says which step failed and what the server replied, or why there
// was no reply.
func (e *SMTPError) Error() string {
	if e.Code != 0 {
		return fmt.Sprintf("mail: SMTP %s failed: server replied %d %s", e.Step, e.Code, strings.ReplaceAll(e.Reply, "\n", " / "))
	}
	return fmt.Sprintf("mail: SMTP %s failed: %v", e.Step, e.Err)
}

// Unwrap returns the underlying error.
func (e *SMTPError) Unwrap() error { return e.Err }

// Is reports whether target is ErrUnavailable and the failure is temporary.
func (e *SMTPError) Is(target error) bool { return target == ErrUnavailable && e.Temporary }

// newSMTPError classifies err, which ended step of a conversation bounded by
// ctx.
func newSMTPError(ctx context.Context, step string, err error) *SMTPError {
	e := &SMTPError{Step: step, Err: err}
	var reply *textproto.Error
	if errors.As(err, &reply) {
		e.Code, e.Reply = reply.Code, reply.Msg
		e.Temporary = reply.Code/100 == 4
		return e
	}
	if errors.Is(err, os.ErrDeadlineExceeded) || ctx.Err() != nil {
		cause := context.Cause(ctx)
		if cause == nil {
			// The connection deadline fired a moment before ctx's timer.
			cause = context.DeadlineExceeded
		}
		e.Err = fmt.Errorf("%w (%w)", cause, err)
	}
	var (
		certErr   *tls.CertificateVerificationError
		recordErr tls.RecordHeaderError
		protoErr  textproto.ProtocolError
		dnsErr    *net.DNSError
	)
	switch {
	case errors.As(err, &certErr), errors.As(err, &recordErr), errors.As(err, &protoErr):
		// Wrong certificate, not TLS, not SMTP: configuration, not luck.
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
	default:
		e.Temporary = true
	}
	return e
}

// policyError is a refusal by the client itself: nothing temporary about it.
func policyError(step, msg string) *SMTPError {
	return &SMTPError{Step: step, Err: errors.New(msg)}
}

// smtpConn is one client side SMTP conversation.
type smtpConn struct {
	ctx    context.Context
	conn   net.Conn // the TLS connection once TLS is up
	text   *textproto.Conn
	broken bool // a failure left the connection unusable for QUIT
}

// deliver runs the conversation from the greeting to the end of DATA.
func (c *smtpConn) deliver(s *SMTPSender, env envelope, raw []byte) error {
	if s.security == SecurityTLS {
		if err := c.handshake("TLS", s.tlsConfig); err != nil {
			return err
		}
	}
	if _, _, err := c.read("greeting", 220); err != nil {
		return err
	}
	ext, err := c.ehlo(s.helloName)
	if err != nil {
		return err
	}
	if s.security == SecuritySTARTTLS {
		if _, ok := ext["STARTTLS"]; !ok {
			return policyError("STARTTLS", `server does not offer STARTTLS; refusing to send without TLS (Security "starttls")`)
		}
		if _, _, err := c.cmd("STARTTLS", 220, "STARTTLS"); err != nil {
			return err
		}
		if c.text.R.Buffered() > 0 {
			return policyError("STARTTLS", "server sent data after its STARTTLS reply, before the TLS handshake; refusing (possible injection)")
		}
		if err := c.handshake("STARTTLS", s.tlsConfig); err != nil {
			return err
		}
		// RFC 3207: forget what was learnt before TLS and ask again.
		if ext, err = c.ehlo(s.helloName); err != nil {
			return err
		}
	}
	if s.username != "" {
		if err := c.auth(ext, s.username, s.password); err != nil {
			return err
		}
	}
	if _, _, err := c.cmd("MAIL FROM", 250, "MAIL FROM:<%s>", env.from); err != nil {
		return err
	}
	if _, _, err := c.cmd("RCPT TO", 25, "RCPT TO:<%s>", env.to); err != nil { // 250 or 251
		return err
	}
	if _, _, err := c.cmd("DATA", 354, "DATA"); err != nil {
		return err
	}
	w := c.text.DotWriter()
	if _, err := w.Write(raw); err != nil {
		return c.fail("DATA", err)
	}
	if err := w.Close(); err != nil {
		return c.fail("DATA", err)
	}
	_, _, err = c.read("DATA", 250)
	return err
}

// handshake starts TLS on the connection.
func (c *smtpConn) handshake(step string, cfg *tls.Config) error {
	tc := tls.Client(c.conn, cfg)
	if err := tc.HandshakeContext(c.ctx); err != nil {
		return c.fail(step, err)
	}
	c.conn = tc
	c.text = textproto.NewConn(tc)
	return nil
}

// ehlo greets the server and returns its extensions (keyword in upper case
// to parameters).
func (c *smtpConn) ehlo(name string) (map[string]string, error) {
	_, msg, err := c.cmd("EHLO", 250, "EHLO %s", name)
	if err != nil {
		return nil, err
	}
	ext := make(map[string]string)
	for _, line := range strings.Split(msg, "\n")[1:] {
		keyword, params, _ := strings.Cut(strings.TrimSpace(line), " ")
		ext[strings.ToUpper(keyword)] = params
	}
	return ext, nil
}

// auth authenticates with PLAIN, or LOGIN if that is all the server offers.
func (c *smtpConn) auth(ext map[string]string, username, password string) error {
	offered, ok := ext["AUTH"]
	if !ok {
		return policyError("AUTH", "server does not offer AUTH, but credentials are configured")
	}
	mechs := strings.Fields(strings.ToUpper(offered))
	b64 := base64.StdEncoding.EncodeToString
	switch {
	case slices.Contains(mechs, "PLAIN"):
		ir := b64([]byte("\x00" + username + "\x00" + password))
		code, msg, err := c.cmd("AUTH", 0, "AUTH PLAIN %s", ir)
		if err == nil && code == 334 {
			// The server wants the credentials after an empty challenge.
			code, msg, err = c.cmd("AUTH", 0, "%s", ir)
		}
		if err != nil {
			return err
		}
		return c.want("AUTH", 235, code, msg)
	case slices.Contains(mechs, "LOGIN"):
		if _, _, err := c.cmd("AUTH", 334, "AUTH LOGIN"); err != nil {
			return err
		}
		if _, _, err := c.cmd("AUTH", 334, "%s", b64([]byte(username))); err != nil {
			return err
		}
		_, _, err := c.cmd("AUTH", 235, "%s", b64([]byte(password)))
		return err
	default:
		return policyError("AUTH", fmt.Sprintf("server offers no AUTH mechanism this client supports (PLAIN, LOGIN); it offers %q", offered))
	}
}

// cmd sends one command line and reads the reply, which must have code
// expect (see textproto.Reader.ReadResponse; 0 accepts any).
func (c *smtpConn) cmd(step string, expect int, format string, args ...any) (int, string, error) {
	if err := c.text.PrintfLine(format, args...); err != nil {
		return 0, "", c.fail(step, err)
	}
	return c.read(step, expect)
}

// read reads one reply, which must have code expect.
func (c *smtpConn) read(step string, expect int) (int, string, error) {
	code, msg, err := c.text.ReadResponse(expect)
	if err != nil {
		return code, msg, c.fail(step, err)
	}
	return code, msg, nil
}

// want fails step unless the reply code is expect.
func (c *smtpConn) want(step string, expect, code int, msg string) error {
	if code != expect {
		return c.fail(step, &textproto.Error{Code: code, Msg: msg})
	}
	return nil
}

// fail wraps err, which ended step, in an *SMTPError.
func (c *smtpConn) fail(step string, err error) error {
	e := newSMTPError(c.ctx, step, err)
	if e.Code == 0 {
		c.broken = true
	}
	return e
}

// close says QUIT, unless the connection is broken, without waiting for the
// answer, and closes the connection. After a refused command QUIT is a
// courtesy; after success the message is already the server's.
func (c *smtpConn) close() {
	if !c.broken {
		_ = c.text.PrintfLine("QUIT")
	}
	c.conn.Close()
}
