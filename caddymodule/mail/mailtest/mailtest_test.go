package mailtest_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/smtp"
	"net/textproto"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/mail/mailtest"
)

// message is a small MIME message with a quoted-printable body.
func message(to, subject, text string) []byte {
	return []byte("To: " + to + "\r\nSubject: " + subject + "\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + text + "\r\n")
}

// send delivers msg with net/smtp, over STARTTLS when tlsConfig is set.
func send(srv *mailtest.Server, tlsConfig *tls.Config, auth smtp.Auth, to string, msg []byte) error {
	c, err := smtp.Dial(srv.Addr())
	if err != nil {
		return err
	}
	defer c.Close()
	if tlsConfig != nil {
		tlsConfig.ServerName = "127.0.0.1"
		if err := c.StartTLS(tlsConfig); err != nil {
			return fmt.Errorf("STARTTLS: %w", err)
		}
	}
	if auth != nil {
		if err := c.Auth(auth); err != nil {
			return fmt.Errorf("AUTH: %w", err)
		}
	}
	if err := c.Mail("sender@example.nl"); err != nil {
		return fmt.Errorf("MAIL: %w", err)
	}
	if err := c.Rcpt(to); err != nil {
		return fmt.Errorf("RCPT: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("DATA end: %w", err)
	}
	return c.Quit()
}

// replyCode is the SMTP reply code in err, or 0.
func replyCode(err error) int {
	var tpErr *textproto.Error
	if errors.As(err, &tpErr) {
		return tpErr.Code
	}
	return 0
}

func TestReceivedIsDecoded(t *testing.T) {
	srv := mailtest.NewServer(t)
	if srv.TLSConfig() != nil {
		t.Error("TLSConfig of a server without TLS is not nil")
	}
	msg := message("Jan <jan@example.nl>", "=?utf-8?q?Je_code_=E2=80=94_=C3=A9=C3=A9n?=", "Je code is 123=\r\n456 =E2=82=AC")
	if err := send(srv, nil, nil, "jan@example.nl", msg); err != nil {
		t.Fatal(err)
	}
	got := srv.WaitFor(t, "JAN@example.nl", 5*time.Second)
	if got.From != "sender@example.nl" || len(got.To) != 1 || got.To[0] != "jan@example.nl" {
		t.Errorf("envelope %q -> %q", got.From, got.To)
	}
	if got.Subject != "Je code — één" || got.Text != "Je code is 123456 €\n" || got.HTML != "" {
		t.Errorf("subject %q text %q html %q", got.Subject, got.Text, got.HTML)
	}
	if got.Header.Get("To") != "Jan <jan@example.nl>" || !strings.HasPrefix(string(got.Raw), "To: Jan") {
		t.Errorf("Header %v / Raw %q", got.Header, got.Raw)
	}
}

func TestWaitForConsumesInOrder(t *testing.T) {
	srv := mailtest.NewServer(t)
	for _, m := range []struct{ to, subject string }{
		{"a@example.nl", "a1"}, {"b@example.nl", "b1"}, {"a@example.nl", "a2"},
	} {
		if err := send(srv, nil, nil, m.to, message(m.to, m.subject, "x")); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []struct{ to, subject string }{
		{"a@example.nl", "a1"}, {"a@example.nl", "a2"}, {"b@example.nl", "b1"},
	} {
		if got := srv.WaitFor(t, want.to, 5*time.Second); got.Subject != want.subject {
			t.Errorf("WaitFor(%s) = %q, want %q", want.to, got.Subject, want.subject)
		}
	}
	if n := len(srv.Messages()); n != 3 {
		t.Errorf("Messages has %d, want 3 (consumed ones too)", n)
	}
}

func TestWaitForWaits(t *testing.T) {
	srv := mailtest.NewServer(t)
	errc := make(chan error, 1)
	go func() { errc <- send(srv, nil, nil, "late@example.nl", message("late@example.nl", "late", "x")) }()
	if got := srv.WaitFor(t, "late@example.nl", 5*time.Second); got.Subject != "late" {
		t.Errorf("got %q", got.Subject)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// fatalRecorder is a testing.TB whose Fatalf records the failure and ends
// the goroutine, as the real one does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestWaitForTimesOut(t *testing.T) {
	srv := mailtest.NewServer(t)
	if err := send(srv, nil, nil, "other@example.nl", message("other@example.nl", "s", "x")); err != nil {
		t.Fatal(err)
	}
	rec := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.WaitFor(rec, "nobody@example.nl", 50*time.Millisecond)
	}()
	<-done
	if !strings.Contains(rec.msg, "no new message to nobody@example.nl within 50ms (1 received in all)") {
		t.Errorf("Fatalf message %q", rec.msg)
	}
}

func TestOptionsAndControls(t *testing.T) {
	tests := []struct {
		name      string
		opts      []mailtest.Option
		startTLS  bool
		auth      smtp.Auth
		setup     func(*mailtest.Server)
		wantCode  int // 0: delivered
		wantError string
	}{
		{"plain server delivers", nil, false, nil, nil, 0, ""},
		{"STARTTLS", []mailtest.Option{mailtest.WithSTARTTLS()}, true, nil, nil, 0, ""},
		{"AUTH PLAIN over STARTTLS", []mailtest.Option{mailtest.WithSTARTTLS(), mailtest.WithAuth("u", "p")}, true, smtp.PlainAuth("", "u", "p", "127.0.0.1"), nil, 0, ""},
		{"AUTH required", []mailtest.Option{mailtest.WithAuth("u", "p")}, false, nil, nil, 502, ""},
		{"AUTH with wrong password", []mailtest.Option{mailtest.WithAuth("u", "p")}, false, smtp.PlainAuth("", "u", "x", "127.0.0.1"), nil, 535, ""},
		{"AUTH PLAIN not offered with LOGIN", []mailtest.Option{mailtest.WithLoginAuth("u", "p")}, false, smtp.PlainAuth("", "u", "p", "127.0.0.1"), nil, 504, ""},
		{"refusing", nil, false, nil, func(s *mailtest.Server) { s.SetRefuse(true) }, 451, ""},
		{"refusing switched off again", nil, false, nil, func(s *mailtest.Server) { s.SetRefuse(true); s.SetRefuse(false) }, 0, ""},
		{"stopped", nil, false, nil, func(s *mailtest.Server) { s.Stop() }, 0, "connection refused"},
		{"stopped twice and started twice", nil, false, nil, func(s *mailtest.Server) { s.Stop(); s.Stop(); s.Start(); s.Start() }, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mailtest.NewServer(t, tt.opts...)
			addr := srv.Addr()
			if tt.setup != nil {
				tt.setup(srv)
			}
			if srv.Addr() != addr {
				t.Errorf("Addr changed from %s to %s", addr, srv.Addr())
			}
			var tlsConfig *tls.Config
			if tt.startTLS {
				tlsConfig = srv.TLSConfig()
			}
			err := send(srv, tlsConfig, tt.auth, "jan@example.nl", message("jan@example.nl", "s", "x"))
			switch {
			case tt.wantError != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantError) {
					t.Fatalf("err = %v, want %q", err, tt.wantError)
				}
			case replyCode(err) != tt.wantCode || (tt.wantCode == 0 && err != nil):
				t.Fatalf("err = %v, want reply code %d", err, tt.wantCode)
			}
			if n := len(srv.Messages()); (n == 1) != (err == nil) {
				t.Errorf("%d messages recorded after err = %v", n, err)
			}
		})
	}
}

func TestImplicitTLS(t *testing.T) {
	srv := mailtest.NewServer(t, mailtest.WithImplicitTLS(), mailtest.WithAuth("u", "p"))
	cfg := srv.TLSConfig()
	cfg.ServerName = "127.0.0.1"
	conn, err := tls.Dial("tcp", srv.Addr(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := smtp.NewClient(conn, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(smtp.PlainAuth("", "u", "p", "127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("sender@example.nl"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("jan@example.nl"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(message("jan@example.nl", "tls", "x")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := srv.WaitFor(t, "jan@example.nl", 5*time.Second); got.Subject != "tls" {
		t.Errorf("subject %q", got.Subject)
	}
}

func TestUnparseableMessageIsRejected(t *testing.T) {
	srv := mailtest.NewServer(t)
	bad := []byte("Content-Type: multipart/mixed; boundary=b\r\n\r\nno parts\r\n")
	if err := send(srv, nil, nil, "jan@example.nl", bad); replyCode(err) != 554 {
		t.Fatalf("err = %v, want 554", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d messages recorded", n)
	}
}
