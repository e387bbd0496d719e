package caddymodule

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/privacy"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// storedSecrets are the secrets the store holds about an account, each
// named, in the forms an export could leak them: the password hash, the
// session keys, and the hashes of codes sent to its address.
func storedSecrets(t *testing.T, a storage.Account) map[string]string {
	t.Helper()
	app := runningApp(t)
	secrets := map[string]string{"the password hash": a.PasswordHash}
	sessions, err := app.privacy.Store.AccountSessions(a.ID)
	if err != nil || len(sessions) == 0 {
		t.Fatalf("sessions of %s: %v, %v", a.Email, sessions, err)
	}
	for _, s := range sessions {
		secrets["session key "+s.Key] = s.Key
	}
	codes := 0
	visitor := app.engine.(interface {
		VisitRecords(context.Context, func(storage.Record) error) error
	})
	if err := visitor.VisitRecords(context.Background(), func(r storage.Record) error {
		if r.Kind != storage.KindCode || !strings.HasSuffix(r.Key, "/"+a.Email) {
			return nil
		}
		var c storage.VerificationCode
		if err := json.Unmarshal(r.Value, &c); err != nil {
			return err
		}
		codes++
		secrets["a code hash"] = base64.StdEncoding.EncodeToString(c.Hash)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if codes == 0 {
		t.Fatalf("no code for %s is stored", a.Email)
	}
	return secrets
}

// TestExportAndDeletionThroughTheServer: through a real server, a
// verified admin downloads their data (the membership and the audit
// entries are there, no secret is), then removes their account: every
// browser of theirs is refused at the next guarded request, the old
// password opens nothing, the address registers anew, the organisation's
// audit page shows the pseudonym, and the colleague they invited keeps
// access through the other verified admin.
func TestExportAndDeletionThroughTheServer(t *testing.T) {
	g := startGateway(t, "gateway.caddyfile", gatewayParams{})
	const kvk = "11111111"
	ab, _ := admin(t, g, "anna@example.nl", kvk)
	jan := g.addAccount("jan@example.nl", "Jan Jansen", testPassword)
	linkOrg(t, jan.ID, kvk, "Bedrijf "+kvk, "loa3")
	jb := g.newBrowser()
	jb.login("jan@example.nl", testPassword)
	token := invite(t, g, jb, kvk, "piet@example.nl", "website")
	pb, _ := colleague(t, g, "piet@example.nl", token)
	other := g.newBrowser()
	other.login("jan@example.nl", testPassword)
	// A reset code for Jan's address is stored, to look for its hash.
	reset := g.newBrowser()
	resp, body := reset.resetAction("send", "email", "jan@example.nl")
	expectStatus(t, resp, body, http.StatusSeeOther)
	codeFrom(t, g, "jan@example.nl")

	resp, raw := jb.submit("/account/data", "/account/data/export", url.Values{})
	expectStatus(t, resp, raw, http.StatusOK)
	if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename="wijgate-gegevens-`) {
		t.Errorf("Content-Disposition %q", cd)
	}
	var x privacy.Export
	if err := json.Unmarshal([]byte(raw), &x); err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	if len(x.Memberships) != 1 || x.Memberships[0].KvK != kvk || x.Memberships[0].Organisation != "Bedrijf "+kvk || x.Memberships[0].Role != "admin" {
		t.Errorf("memberships: %+v", x.Memberships)
	}
	invited := false
	for _, e := range x.Audit {
		invited = invited || e.Action == "invite" && e.Target == "piet@example.nl" && e.Actor == jan.ID
	}
	if !invited {
		t.Errorf("the export lacks the invitation Jan sent: %+v", x.Audit)
	}
	if len(x.Sessions) != 2 {
		t.Errorf("sessions: %+v, want Jan's two browsers", x.Sessions)
	}
	stored, err := runningApp(t).accounts.Account(jan.ID)
	if err != nil {
		t.Fatal(err)
	}
	for what, secret := range storedSecrets(t, stored) {
		if strings.Contains(raw, secret) {
			t.Errorf("the export holds %s", what)
		}
	}

	for _, page := range []string{"/account/data", "/account/delete"} {
		resp, body := jb.page(page)
		expectStatus(t, resp, body, http.StatusOK)
		checkEnterKey(t, page, body)
	}

	cookie := jb.cookie("__Host-wijgate")
	resp, body = jb.submit("/account/delete", "/account/delete", url.Values{"password": {testPassword}, "confirm": {"yes"}})
	expectStatus(t, resp, body, http.StatusSeeOther)
	if loc := resp.Header.Get("Location"); loc != "/account/deleted?lang=nl" {
		t.Fatalf("after the removal went to %q", loc)
	}
	if jb.cookie("__Host-wijgate") != "" {
		t.Error("the session cookie is still set")
	}
	resp, body = jb.page("/account/deleted")
	expectStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, "Je account is verwijderd") {
		t.Errorf("the landing page:\n%s", body)
	}
	for name, b := range map[string]*browser{"the other browser": other, "the removed cookie": g.newBrowser()} {
		headers := []string{}
		if name == "the removed cookie" {
			headers = []string{"Cookie", "__Host-wijgate=" + cookie}
		}
		resp, _ := b.page("/website/", headers...)
		if resp.StatusCode != http.StatusFound || !strings.Contains(resp.Header.Get("Location"), "/login") {
			t.Errorf("%s at a guarded app: %d to %q, want the login page", name, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	resp, body = g.newBrowser().submit("/login", "/login", url.Values{"email": {"jan@example.nl"}, "password": {testPassword}})
	expectStatus(t, resp, body, http.StatusUnauthorized)

	if r, _ := pb.page("/website/"); r.StatusCode != http.StatusOK {
		t.Errorf("the colleague Jan invited lost access to an app he was given: %d", r.StatusCode)
	}
	resp, body = ab.page("/org/" + kvk)
	expectStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, account.Pseudonym(jan.ID)) {
		t.Errorf("the audit page does not show the pseudonym %s", account.Pseudonym(jan.ID))
	}
	for _, leak := range []string{"jan@example.nl", "Jan Jansen", jan.ID} {
		if strings.Contains(body, leak) {
			t.Errorf("the audit page still shows %q", leak)
		}
	}

	b := g.newBrowser()
	resp, body = b.registerAction("send", "email", "jan@example.nl")
	expectStatus(t, resp, body, http.StatusSeeOther)
	resp, body = b.registerAction("verify", "code", codeFrom(t, g, "jan@example.nl"))
	expectStatus(t, resp, body, http.StatusSeeOther)
	resp, body = b.registerAction("create", "password", testPassword, "password2", testPassword, "name", "Jan Opnieuw")
	expectStatus(t, resp, body, http.StatusSeeOther)
	again, err := runningApp(t).accounts.AccountByEmail("jan@example.nl")
	if err != nil || again.ID == jan.ID {
		t.Errorf("the address registered again: %+v, %v, want a new account", again, err)
	}
	if ms, _ := runningApp(t).orgs.Memberships(again.ID); len(ms) != 0 {
		t.Errorf("the new account inherited memberships: %+v", ms)
	}
}
