package portal

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wijtechniek/wijgate/caddymodule/mail"
)

// TestLandingHandler: /account offers the start and a login to a visitor,
// and the dashboard to someone logged in.
func TestLandingHandler(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	h.account("jan@example.nl", "Jan Jansen")
	rec := h.browser().get("/account")
	wantPage(t, rec, http.StatusOK, Dutch, "account.title", "account.lead", "account.start", "account.haveaccount")
	if !strings.Contains(rec.Body.String(), `href="/eherkenning"`) || !strings.Contains(rec.Body.String(), `href="/login"`) {
		t.Fatalf("the landing page lacks its links:\n%s", rec.Body)
	}
	rec = h.loggedIn("jan@example.nl").get("/account")
	wantPage(t, rec, http.StatusOK, Dutch, "account.title", "dashboard.title")
	if strings.Contains(rec.Body.String(), pageText(Dutch, "account.haveaccount")) {
		t.Fatal("someone logged in is offered the login")
	}
}

// withOutbox makes the portal send its mail to a development outbox in a
// temporary directory and show it at /dev/mail.
func withOutbox(t *testing.T, share bool) (harnessOptions, *mail.Outbox) {
	outbox := &mail.Outbox{Dir: filepath.Join(t.TempDir(), "outbox")}
	return func(c *Config) {
		c.Mailer, c.Outbox, c.ShareOutbox = outbox, outbox, share
	}, outbox
}

// TestDevMailHandler: the development outbox lists and shows the mail
// sent, to clients on this machine only; another machine is refused and
// sees none of it.
func TestDevMailHandler(t *testing.T) {
	t.Parallel()
	opt, outbox := withOutbox(t, false)
	h := newPortalHarness(t, opt)
	b := h.browser()
	wantRedirect(t, b.registerAction("send", "email", "anna@example.nl"), "/register?sent=1")
	msgs, err := outbox.List()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("the outbox holds %v, %v", msgs, err)
	}
	code := codePattern.FindString(msgs[0].Text)
	if code == "" {
		t.Fatalf("the outbox message has no code:\n%s", msgs[0].Text)
	}

	for _, remote := range []string{"192.0.2.1:50000", "[2001:db8::1]:50000", "10.0.0.1:50000"} {
		for _, path := range []string{"/dev/mail", "/dev/mail/" + msgs[0].ID} {
			rec := b.getFrom(remote, path)
			wantPage(t, rec, http.StatusForbidden, Dutch, "devmail.remote")
			if strings.Contains(rec.Body.String(), msgs[0].Subject) || strings.Contains(rec.Body.String(), code) {
				t.Fatalf("%s from %s shows the mail:\n%s", path, remote, rec.Body)
			}
		}
	}

	for _, local := range []string{"127.0.0.1:50000", "[::1]:50000", "[::ffff:127.0.0.1]:50000"} {
		rec := b.getFrom(local, "/dev/mail")
		wantPage(t, rec, http.StatusOK, Dutch, "devmail.title", "devmail.intro")
		if !strings.Contains(rec.Body.String(), msgs[0].Subject) || !strings.Contains(rec.Body.String(), `href="/dev/mail/`+msgs[0].ID+`"`) {
			t.Fatalf("the list from %s lacks the message:\n%s", local, rec.Body)
		}
	}
	rec := b.getFrom("127.0.0.1:50000", "/dev/mail/"+msgs[0].ID)
	wantPage(t, rec, http.StatusOK, Dutch, "devmail.back")
	if !strings.Contains(rec.Body.String(), code) || !strings.Contains(rec.Body.String(), "anna@example.nl") {
		t.Fatalf("the message page lacks the code or the addressee:\n%s", rec.Body)
	}
	wantPage(t, b.getFrom("127.0.0.1:50000", "/dev/mail/20260101T000000000000000-0000000000000000"), http.StatusNotFound, Dutch, "error.notfound")
	wantPage(t, b.getFrom("127.0.0.1:50000", "/dev/mail/..%2f..%2fetc%2fpasswd"), http.StatusNotFound, Dutch, "error.notfound")
}

// TestDevMailShared: with ShareOutbox any client may read the outbox; an
// empty outbox says so.
func TestDevMailShared(t *testing.T) {
	t.Parallel()
	opt, _ := withOutbox(t, true)
	h := newPortalHarness(t, opt)
	wantPage(t, h.browser().getFrom("192.0.2.1:50000", "/dev/mail"), http.StatusOK, Dutch, "devmail.title", "devmail.empty")
}

// TestDevMailOnlyWithAnOutbox: a portal that sends real mail has no
// /dev/mail at all.
func TestDevMailOnlyWithAnOutbox(t *testing.T) {
	t.Parallel()
	h := newPortalHarness(t)
	wantPage(t, h.browser().getFrom("127.0.0.1:50000", "/dev/mail"), http.StatusNotFound, Dutch, "error.notfound")
}
