// Package mailtest runs a real SMTP server on 127.0.0.1 for tests, built on
// github.com/emersion/go-smtp. It records what it receives, decoded, so a
// test can check headers and pick a code out of the text:
//
//	srv := mailtest.NewServer(t, mailtest.WithSTARTTLS(), mailtest.WithAuth("u", "p"))
//	// ... configure the code under test with srv.Addr() and srv.TLSConfig() ...
//	got := srv.WaitFor(t, "jan@example.nl", 5*time.Second)
//	code := regexp.MustCompile(`\d{6}`).FindString(got.Text)
package mailtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/wijtechniek/wijgate/caddymodule/mail/internal/mimeparse"
)

// Received is one message the server accepted.
type Received struct {
	// From is the envelope sender (MAIL FROM).
	From string
	// To are the envelope recipients (RCPT TO).
	To []string
	// Subject is the decoded Subject header.
	Subject string
	// Text and HTML are the decoded text/plain and text/html bodies, with
	// LF line endings.
	Text, HTML string
	// Raw is the message as received, CRLF line endings.
	Raw []byte
	// Header is the message's top-level header, as received.
	Header mail.Header
}

// Option configures a Server.
type Option func(*config)

// config is what the Options set.
type config struct {
	startTLS, implicitTLS bool
	user, pass, mech      string
}

// WithSTARTTLS makes the server offer STARTTLS with a self-signed
// certificate for 127.0.0.1 and localhost; Server.TLSConfig returns a client
// configuration that trusts it.
func WithSTARTTLS() Option { return func(c *config) { c.startTLS = true } }

// WithImplicitTLS makes the server speak TLS from the first byte (like port
// 465), with the same self-signed certificate as WithSTARTTLS.
func WithImplicitTLS() Option { return func(c *config) { c.implicitTLS = true } }

// WithAuth makes the server require AUTH PLAIN with these credentials before
// MAIL FROM. With STARTTLS, AUTH is offered only after the upgrade; without
// any TLS it is offered in plain text.
func WithAuth(user, pass string) Option {
	return func(c *config) { c.user, c.pass, c.mech = user, pass, sasl.Plain }
}

// WithLoginAuth is WithAuth with AUTH LOGIN as the only mechanism offered,
// for testing clients' fallback to LOGIN.
func WithLoginAuth(user, pass string) Option {
	return func(c *config) { c.user, c.pass, c.mech = user, pass, sasl.Login }
}

// Server is a running test SMTP server. Its methods are safe for concurrent
// use.
type Server struct {
	t         testing.TB
	cfg       config
	addr      string
	serverTLS *tls.Config
	clientTLS *tls.Config

	mu       sync.Mutex
	srv      *smtp.Server // nil while stopped
	ln       net.Listener
	served   chan struct{}
	refuse   bool
	msgs     []Received
	consumed []bool
	arrived  chan struct{} // closed and replaced when a message arrives
	closed   bool          // the test is over: no more logging
}

// NewServer starts a server on 127.0.0.1 on a random port and registers a
// t.Cleanup that stops it.
func NewServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{t: t, arrived: make(chan struct{})}
	for _, o := range opts {
		o(&s.cfg)
	}
	if s.cfg.startTLS && s.cfg.implicitTLS {
		t.Fatal("mailtest: WithSTARTTLS and WithImplicitTLS exclude each other")
	}
	if s.cfg.startTLS || s.cfg.implicitTLS {
		s.serverTLS, s.clientTLS = selfSigned(t)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mailtest: listen: %v", err)
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	t.Cleanup(func() {
		s.Stop()
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
	})
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.addr }

// TLSConfig returns a client TLS configuration that trusts the server's
// certificate, or nil for a server without TLS.
func (s *Server) TLSConfig() *tls.Config {
	if s.clientTLS == nil {
		return nil
	}
	return s.clientTLS.Clone()
}

// Messages returns every message received so far, oldest first, whether
// WaitFor consumed it or not.
func (s *Server) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.msgs...)
}

// WaitFor returns the oldest message addressed (in the envelope) to `to`
// that no earlier WaitFor returned, waiting for it up to timeout; then it
// fails the test with t.Fatal. Addresses compare case-insensitively.
func (s *Server) WaitFor(t testing.TB, to string, timeout time.Duration) Received {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		for i, m := range s.msgs {
			if !s.consumed[i] && hasRecipient(m, to) {
				s.consumed[i] = true
				s.mu.Unlock()
				return m
			}
		}
		arrived := s.arrived
		n := len(s.msgs)
		s.mu.Unlock()
		select {
		case <-arrived:
		case <-timer.C:
			t.Fatalf("mailtest: no new message to %s within %s (%d received in all)", to, timeout, n)
		}
	}
}

// hasRecipient reports whether to is one of m's envelope recipients.
func hasRecipient(m Received, to string) bool {
	for _, r := range m.To {
		if strings.EqualFold(r, to) {
			return true
		}
	}
	return false
}

// SetRefuse makes the server answer MAIL FROM with 451 (temporary failure)
// while refuse is true.
func (s *Server) SetRefuse(refuse bool) {
	s.mu.Lock()
	s.refuse = refuse
	s.mu.Unlock()
}

// Stop closes the listener and all connections, as if the server went down;
// Start brings it back on the same address. Stopping a stopped server does
// nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	srv, ln, served := s.srv, s.ln, s.served
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	srv.Close()
	// Serve may not have registered ln with srv yet; closing it here too
	// makes sure that Serve returns.
	ln.Close()
	<-served
}

// Start listens again on the address of NewServer after Stop. Starting a
// running server does nothing. It fails the test if the address is taken.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	running := s.srv != nil
	s.mu.Unlock()
	if running {
		return
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Fatalf("mailtest: listen again on %s: %v", s.addr, err)
	}
	s.serve(ln)
}

// serve runs a new go-smtp server on ln.
func (s *Server) serve(ln net.Listener) {
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{s: s}, nil
	}))
	srv.Domain = "mailtest.localhost"
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.MaxMessageBytes = 10 << 20
	srv.MaxRecipients = 50
	srv.ErrorLog = logger{s}
	switch {
	case s.cfg.implicitTLS:
		ln = tls.NewListener(ln, s.serverTLS)
	case s.cfg.startTLS:
		srv.TLSConfig = s.serverTLS
	default:
		srv.AllowInsecureAuth = true
	}
	served := make(chan struct{})
	s.mu.Lock()
	s.srv, s.ln, s.served = srv, ln, served
	s.mu.Unlock()
	go func() {
		defer close(served)
		if err := srv.Serve(ln); err != nil {
			s.logf("mailtest: serve: %v", err)
		}
	}()
}

// logf logs to the test while it runs.
func (s *Server) logf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.t.Logf(format, args...)
	}
}

// logger sends go-smtp's error log to the test log.
type logger struct{ s *Server }

// Printf logs to the test.
func (l logger) Printf(format string, v ...any) { l.s.logf("mailtest: "+format, v...) }

// Println logs to the test.
func (l logger) Println(v ...any) { l.s.logf("mailtest: %s", fmt.Sprintln(v...)) }

// session is one SMTP session.
type session struct {
	s      *Server
	authed bool
	from   string
	to     []string
}

// AuthMechanisms lists the configured mechanism, if any.
func (se *session) AuthMechanisms() []string {
	if se.s.cfg.mech == "" {
		return nil
	}
	return []string{se.s.cfg.mech}
}

// Auth returns the SASL server for mech.
func (se *session) Auth(mech string) (sasl.Server, error) {
	if mech != se.s.cfg.mech {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	check := func(user, pass string) error {
		if user != se.s.cfg.user || pass != se.s.cfg.pass {
			return smtp.ErrAuthFailed
		}
		se.authed = true
		return nil
	}
	if mech == sasl.Login {
		return &loginServer{check: check}, nil
	}
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if identity != "" && identity != user {
			return smtp.ErrAuthFailed
		}
		return check(user, pass)
	}), nil
}

// Mail starts a message, unless AUTH is required and missing or the server
// refuses.
func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	if se.s.cfg.mech != "" && !se.authed {
		return smtp.ErrAuthRequired
	}
	se.s.mu.Lock()
	refuse := se.s.refuse
	se.s.mu.Unlock()
	if refuse {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "mailtest: temporary failure, try again later"}
	}
	se.from = from
	return nil
}

// Rcpt adds a recipient.
func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	se.to = append(se.to, to)
	return nil
}

// Data receives the message; one that does not parse is rejected with 554
// so that the sender's test fails.
func (se *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	p, err := mimeparse.Parse(raw)
	if err != nil {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "mailtest: cannot parse message: " + err.Error()}
	}
	m := Received{From: se.from, To: se.to, Subject: p.Subject, Text: p.Text, HTML: p.HTML, Raw: raw, Header: p.Header}
	s := se.s
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	s.consumed = append(s.consumed, false)
	close(s.arrived)
	s.arrived = make(chan struct{})
	s.mu.Unlock()
	return nil
}

// Reset forgets the current message.
func (se *session) Reset() {
	se.from, se.to = "", nil
}

// Logout ends the session.
func (se *session) Logout() error { return nil }

// loginServer is the server side of AUTH LOGIN (which go-sasl lacks): it
// asks for the user name, then the password.
type loginServer struct {
	check    func(user, pass string) error
	user     string
	gotUser  bool
	finished bool
}

// Next handles one client response.
func (l *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch {
	case l.finished:
		return nil, false, errors.New("mailtest: unexpected AUTH LOGIN response")
	case response == nil:
		return []byte("Username:"), false, nil
	case !l.gotUser:
		l.user, l.gotUser = string(response), true
		return []byte("Password:"), false, nil
	default:
		l.finished = true
		return nil, true, l.check(l.user, string(response))
	}
}

// selfSigned makes a certificate for 127.0.0.1, ::1 and localhost and
// returns a server configuration with it and a client configuration that
// trusts it.
func selfSigned(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("mailtest: key: %v", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatalf("mailtest: serial: %v", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "mailtest"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("mailtest: certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("mailtest: certificate: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}}
	client = &tls.Config{RootCAs: pool}
	return server, client
}
