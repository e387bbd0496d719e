package mail

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/mail/mailtest"
)

const testFrom = "Wij Techniek <noreply@wij-techniek.nl>"

func newTestSender(t *testing.T, cfg SMTPConfig) *SMTPSender {
	t.Helper()
	s, err := NewSMTPSender(cfg)
	if err != nil {
		t.Fatalf("NewSMTPSender: %v", err)
	}
	return s
}

func TestSMTPSenderDelivers(t *testing.T) {
	tests := []struct {
		name string
		opts []mailtest.Option
		cfg  SMTPConfig // Addr, From and TLSConfig are filled in
	}{
		{"STARTTLS with AUTH PLAIN", []mailtest.Option{mailtest.WithSTARTTLS(), mailtest.WithAuth("wijgate", "geheim")},
			SMTPConfig{Security: SecuritySTARTTLS, Username: "wijgate", Password: "geheim"}},
		{"STARTTLS is the default", []mailtest.Option{mailtest.WithSTARTTLS()},
			SMTPConfig{}},
		{"STARTTLS with AUTH LOGIN when only LOGIN is offered", []mailtest.Option{mailtest.WithSTARTTLS(), mailtest.WithLoginAuth("wijgate", "geheim")},
			SMTPConfig{Username: "wijgate", Password: "geheim"}},
		{"implicit TLS with AUTH PLAIN", []mailtest.Option{mailtest.WithImplicitTLS(), mailtest.WithAuth("wijgate", "geheim")},
			SMTPConfig{Security: SecurityTLS, Username: "wijgate", Password: "geheim"}},
		{"no TLS on loopback with AUTH", []mailtest.Option{mailtest.WithAuth("wijgate", "geheim")},
			SMTPConfig{Security: SecurityNone, Username: "wijgate", Password: "geheim"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mailtest.NewServer(t, tt.opts...)
			cfg := tt.cfg
			cfg.Addr, cfg.From, cfg.TLSConfig, cfg.HelloName = srv.Addr(), testFrom, srv.TLSConfig(), "gateway.wij-techniek.nl"
			if err := newTestSender(t, cfg).Send(t.Context(), sample); err != nil {
				t.Fatalf("Send: %v", err)
			}
			got := srv.WaitFor(t, "jorg@example.nl", 5*time.Second)
			if got.From != "noreply@wij-techniek.nl" || len(got.To) != 1 || got.To[0] != "jorg@example.nl" {
				t.Errorf("envelope from %q to %q", got.From, got.To)
			}
			checkWire(t, got.Raw, sampleWire)
			if got.Subject != sample.Subject || got.Text != sample.Text || got.HTML != sample.HTML {
				t.Errorf("mailtest decoded subject %q text %q html %q", got.Subject, got.Text, got.HTML)
			}
			if n := len(srv.Messages()); n != 1 {
				t.Errorf("server received %d messages, want 1", n)
			}
		})
	}
}

func TestSMTPSenderFailures(t *testing.T) {
	tests := []struct {
		name     string
		opts     []mailtest.Option
		cfg      SMTPConfig // Addr and From are filled in; TLSConfig too unless noTrust
		noTrust  bool
		setup    func(*mailtest.Server)
		step     string
		code     int
		detail   string // in Error()
		wantTemp bool   // wraps ErrUnavailable
	}{
		{
			name:   "STARTTLS required but not offered",
			cfg:    SMTPConfig{Security: SecuritySTARTTLS},
			step:   "STARTTLS",
			detail: "does not offer STARTTLS",
		},
		{
			name:   "wrong password",
			opts:   []mailtest.Option{mailtest.WithSTARTTLS(), mailtest.WithAuth("wijgate", "geheim")},
			cfg:    SMTPConfig{Username: "wijgate", Password: "fout"},
			step:   "AUTH",
			code:   535,
			detail: "server replied 535 5.7.8 Authentication failed",
		},
		{
			name:   "wrong password over AUTH LOGIN",
			opts:   []mailtest.Option{mailtest.WithSTARTTLS(), mailtest.WithLoginAuth("wijgate", "geheim")},
			cfg:    SMTPConfig{Username: "wijgate", Password: "fout"},
			step:   "AUTH",
			code:   535,
			detail: "535",
		},
		{
			name:   "credentials but server offers no AUTH",
			opts:   []mailtest.Option{mailtest.WithSTARTTLS()},
			cfg:    SMTPConfig{Username: "wijgate", Password: "geheim"},
			step:   "AUTH",
			detail: "does not offer AUTH",
		},
		{
			name:   "no credentials but server requires AUTH",
			opts:   []mailtest.Option{mailtest.WithSTARTTLS(), mailtest.WithAuth("wijgate", "geheim")},
			step:   "MAIL FROM",
			code:   502,
			detail: "authenticate",
		},
		{
			name:     "server refuses with 451",
			opts:     []mailtest.Option{mailtest.WithSTARTTLS()},
			setup:    func(s *mailtest.Server) { s.SetRefuse(true) },
			step:     "MAIL FROM",
			code:     451,
			detail:   "server replied 451 4.3.0 mailtest: temporary failure",
			wantTemp: true,
		},
		{
			name:     "server down",
			opts:     []mailtest.Option{mailtest.WithSTARTTLS()},
			setup:    func(s *mailtest.Server) { s.Stop() },
			step:     "dial",
			detail:   "connection refused",
			wantTemp: true,
		},
		{
			name:    "untrusted certificate",
			opts:    []mailtest.Option{mailtest.WithSTARTTLS()},
			noTrust: true,
			step:    "STARTTLS",
			detail:  "certificate",
		},
		{
			name:   "implicit TLS against a plain server",
			cfg:    SMTPConfig{Security: SecurityTLS},
			step:   "TLS",
			detail: "tls",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mailtest.NewServer(t, tt.opts...)
			cfg := tt.cfg
			cfg.Addr, cfg.From, cfg.Timeout = srv.Addr(), testFrom, 3*time.Second
			if !tt.noTrust {
				cfg.TLSConfig = srv.TLSConfig()
			}
			if tt.setup != nil {
				tt.setup(srv)
			}
			start := time.Now()
			err := newTestSender(t, cfg).Send(t.Context(), sample)
			t.Logf("error: %v", err)
			if elapsed := time.Since(start); elapsed > cfg.Timeout {
				t.Errorf("Send took %s, more than its Timeout %s", elapsed, cfg.Timeout)
			}
			var se *SMTPError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v (%T), want *SMTPError", err, err)
			}
			if se.Step != tt.step || se.Code != tt.code {
				t.Errorf("step %q code %d, want %q %d", se.Step, se.Code, tt.step, tt.code)
			}
			if !strings.Contains(err.Error(), tt.detail) || !strings.Contains(err.Error(), "SMTP "+tt.step+" failed") {
				t.Errorf("error %q does not say %q and the step", err, tt.detail)
			}
			if got := errors.Is(err, ErrUnavailable); got != tt.wantTemp {
				t.Errorf("errors.Is(err, ErrUnavailable) = %v, want %v", got, tt.wantTemp)
			}
			if n := len(srv.Messages()); n != 0 {
				t.Errorf("server received %d messages after a failure", n)
			}
		})
	}
}

func TestSMTPSenderServerBackOnSameAddress(t *testing.T) {
	srv := mailtest.NewServer(t, mailtest.WithSTARTTLS())
	s := newTestSender(t, SMTPConfig{Addr: srv.Addr(), From: testFrom, TLSConfig: srv.TLSConfig(), Timeout: 3 * time.Second})
	srv.Stop()
	if err := s.Send(t.Context(), sample); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Send to a stopped server: %v, want ErrUnavailable", err)
	}
	srv.Start()
	if err := s.Send(t.Context(), sample); err != nil {
		t.Fatalf("Send after Start: %v", err)
	}
	srv.WaitFor(t, "jorg@example.nl", 5*time.Second)
}

// muteServer accepts TCP connections and then says nothing; with greet, it
// sends the greeting and reads the client's first command before falling
// silent. ready receives a value when a connection has got that far.
func muteServer(t *testing.T, greet bool) (addr string, ready <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{}, 16)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				if greet {
					if _, err := io.WriteString(c, "220 mute ESMTP\r\n"); err != nil {
						return
					}
					if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
						return
					}
				}
				ch <- struct{}{}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String(), ch
}

func TestSMTPSenderMuteServer(t *testing.T) {
	tests := []struct {
		name    string
		greet   bool
		timeout time.Duration
		cancel  bool // cancel ctx once the server is ready
		step    string
		cause   error
	}{
		{"Timeout bounds a server that never greets", false, 300 * time.Millisecond, false, "greeting", context.DeadlineExceeded},
		{"Timeout bounds a server that stops answering", true, 300 * time.Millisecond, false, "EHLO", context.DeadlineExceeded},
		{"cancelling ctx ends the wait", true, time.Minute, true, "EHLO", context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, ready := muteServer(t, tt.greet)
			s := newTestSender(t, SMTPConfig{Addr: addr, From: testFrom, Security: SecurityNone, Timeout: tt.timeout})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tt.cancel {
				go func() {
					<-ready
					cancel()
				}()
			}
			start := time.Now()
			errc := make(chan error, 1)
			go func() { errc <- s.Send(ctx, sample) }()
			var err error
			select {
			case err = <-errc:
			case <-time.After(300*time.Millisecond + 2*time.Second):
				t.Fatal("Send still waiting for the mute server")
			}
			t.Logf("error after %s: %v", time.Since(start), err)
			var se *SMTPError
			if !errors.As(err, &se) || se.Step != tt.step {
				t.Fatalf("err = %v, want an *SMTPError for step %s", err, tt.step)
			}
			if !errors.Is(err, tt.cause) || !errors.Is(err, ErrUnavailable) {
				t.Errorf("err = %v, want it to wrap %v and ErrUnavailable", err, tt.cause)
			}
		})
	}
}

func TestSMTPSenderRejectsInvalidMessageBeforeConnecting(t *testing.T) {
	addr, accepted := muteServer(t, false)
	s := newTestSender(t, SMTPConfig{Addr: addr, From: testFrom, Security: SecurityNone, Timeout: time.Second})
	tests := []struct {
		name string
		m    Message
	}{
		{"header injection in To", Message{To: "jan@example.nl\r\nBcc: victim@example.com", Subject: "s", Text: "t"}},
		{"header injection in Subject", Message{To: "jan@example.nl", Subject: "s\r\nBcc: victim@example.com", Text: "t"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Send(t.Context(), tt.m)
			if !errors.Is(err, ErrInvalidMessage) || !strings.Contains(err.Error(), "header injection") {
				t.Fatalf("err = %v, want ErrInvalidMessage about header injection", err)
			}
			select {
			case <-accepted:
				t.Error("Send connected to the server for an invalid message")
			default:
			}
		})
	}
}

func TestNewSMTPSenderValidates(t *testing.T) {
	valid := SMTPConfig{Addr: "smtp.example.nl:587", From: testFrom}
	tests := []struct {
		name   string
		edit   func(c *SMTPConfig)
		detail string // empty: valid
	}{
		{"valid", func(c *SMTPConfig) {}, ""},
		{"none on 127.0.0.1", func(c *SMTPConfig) { c.Addr, c.Security = "127.0.0.1:25", SecurityNone }, ""},
		{"none on localhost", func(c *SMTPConfig) { c.Addr, c.Security = "localhost:25", SecurityNone }, ""},
		{"none on ::1", func(c *SMTPConfig) { c.Addr, c.Security = "[::1]:25", SecurityNone }, ""},
		{"security is case-insensitive", func(c *SMTPConfig) { c.Security = "TLS" }, ""},
		{"none on a remote host", func(c *SMTPConfig) { c.Security = SecurityNone }, "only allowed for loopback"},
		{"none on a private address", func(c *SMTPConfig) { c.Addr, c.Security = "10.0.0.1:25", SecurityNone }, "only allowed for loopback"},
		{"unknown security", func(c *SMTPConfig) { c.Security = "ssl" }, `Security "ssl"`},
		{"no port", func(c *SMTPConfig) { c.Addr = "smtp.example.nl" }, "host:port"},
		{"no host", func(c *SMTPConfig) { c.Addr = ":587" }, "host:port"},
		{"bad port", func(c *SMTPConfig) { c.Addr = "smtp.example.nl:smtp" }, "port number"},
		{"no From", func(c *SMTPConfig) { c.From = "" }, "From"},
		{"header injection in From", func(c *SMTPConfig) { c.From = "noreply@wij-techniek.nl\r\nBcc: victim@example.com" }, "From contains a line break"},
		{"username without password", func(c *SMTPConfig) { c.Username = "wijgate" }, "set together"},
		{"password without username", func(c *SMTPConfig) { c.Password = "geheim" }, "set together"},
		{"negative timeout", func(c *SMTPConfig) { c.Timeout = -time.Second }, "negative"},
		{"HelloName with a space", func(c *SMTPConfig) { c.HelloName = "gate way" }, "HelloName"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.edit(&cfg)
			s, err := NewSMTPSender(cfg)
			switch {
			case tt.detail == "" && err != nil:
				t.Fatalf("err = %v, want none", err)
			case tt.detail != "" && (err == nil || !strings.Contains(err.Error(), tt.detail)):
				t.Fatalf("err = %v, want one saying %q", err, tt.detail)
			case tt.detail != "" && s != nil:
				t.Errorf("got a sender with an error")
			}
		})
	}
}

func TestNewSMTPSenderDefaults(t *testing.T) {
	own := &tls.Config{ServerName: "mail.example.nl"}
	tests := []struct {
		name string
		cfg  SMTPConfig
		want func(t *testing.T, s *SMTPSender)
	}{
		{"defaults", SMTPConfig{Addr: "smtp.example.nl:587", From: testFrom}, func(t *testing.T, s *SMTPSender) {
			if s.security != SecuritySTARTTLS || s.timeout != DefaultSMTPTimeout || s.helloName != "localhost" {
				t.Errorf("security %q timeout %s hello %q", s.security, s.timeout, s.helloName)
			}
			if s.tlsConfig.ServerName != "smtp.example.nl" || s.tlsConfig.MinVersion != tls.VersionTLS12 {
				t.Errorf("TLS ServerName %q MinVersion %x", s.tlsConfig.ServerName, s.tlsConfig.MinVersion)
			}
		}},
		{"own TLS config is copied, not changed", SMTPConfig{Addr: "smtp.example.nl:587", From: testFrom, TLSConfig: own}, func(t *testing.T, s *SMTPSender) {
			if s.tlsConfig == own || own.MinVersion != 0 || s.tlsConfig.ServerName != "mail.example.nl" {
				t.Errorf("TLS config shared or ServerName %q overridden", s.tlsConfig.ServerName)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.want(t, newTestSender(t, tt.cfg))
		})
	}
}
