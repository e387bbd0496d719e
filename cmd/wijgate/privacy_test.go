package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/engine"
	"github.com/wijtechniek/wijgate/caddymodule/org"
	"github.com/wijtechniek/wijgate/caddymodule/pgstore"
	"github.com/wijtechniek/wijgate/caddymodule/privacy"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
	"github.com/wijtechniek/wijgate/caddymodule/store"
	"github.com/wijtechniek/wijgate/internal/pgtest"
	"github.com/wijtechniek/wijgate/internal/testport"
)

const (
	privacyKvK     = "12345678"
	privacyOrgName = "Bouwbedrijf Jansen B.V."
	// privacySessionKey is the stored key of Jan's session: the export
	// must never hold it.
	privacySessionKey = "sessie-sleutel-geheim-0123456789"
)

// seeded is what seedPrivacy wrote: Jan, the eHerkenning-verified admin
// of an organisation, and Piet, the colleague he invited.
type seeded struct {
	jan, piet storage.Account
}

// seedPrivacy writes the accounts and organisation the privacy commands
// work on, through the services, into an engine that is closed afterwards.
func seedPrivacy(t *testing.T, e engine.Engine) seeded {
	t.Helper()
	accounts := &account.Service{Store: e, Hasher: account.NewTestHasher()}
	orgs := &org.Service{Store: e}
	var s seeded
	var err error
	if s.jan, err = accounts.Create(context.Background(), "jan@example.nl", "Jan Jansen", password, "nl"); err != nil {
		t.Fatal(err)
	}
	if s.piet, err = accounts.Create(context.Background(), "piet@example.nl", "Piet Pieters", password, "nl"); err != nil {
		t.Fatal(err)
	}
	if _, err := orgs.Link(s.jan.ID, org.Verified{KvK: privacyKvK, Name: privacyOrgName, Level: "loa3", Pseudonym: "S-jan"}); err != nil {
		t.Fatal(err)
	}
	token, _, err := orgs.Invite(s.jan.ID, privacyKvK, s.piet.Email, []string{"rie"}, []string{"rie"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := orgs.Accept(token, s.piet); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := e.CreateSession(storage.Session{Key: privacySessionKey, AccountID: s.jan.ID, CreatedAt: now, LastSeen: now,
		ExpiresAt: now.Add(time.Hour), AMR: []string{"pwd"}, UserAgent: "Firefox/140.0", Address: "192.0.2.7"}); err != nil {
		t.Fatal(err)
	}
	return s
}

// checkPrivacyCommands runs export and delete on a store no server holds,
// named by --storage, and returns after the last account is removed.
func checkPrivacyCommands(t *testing.T, location string, s seeded, stored func() storage.Account) {
	t.Helper()
	where := []string{"--address=" + testport.Addr(t), "--storage", location}
	cmd := func(stdin string, args ...string) (string, error) {
		return run(t, stdin, nil, append(append([]string{"accounts"}, args...), where...)...)
	}

	out, err := cmd("", "export", "--email", "Jan@Example.nl")
	if err != nil {
		t.Fatalf("export to stdout: %v\n%s", err, out)
	}
	exportFile := filepath.Join(t.TempDir(), "jan.json")
	if out, err := cmd("", "export", "--email", "jan@example.nl", "--out", exportFile); err != nil || !strings.Contains(out, exportFile) {
		t.Fatalf("export --out: %v\n%s", err, out)
	}
	fi, err := os.Stat(exportFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("the export file is %v, want 0600", fi.Mode().Perm())
	}
	raw, err := os.ReadFile(exportFile)
	if err != nil {
		t.Fatal(err)
	}
	var x privacy.Export
	if err := json.Unmarshal(raw, &x); err != nil {
		t.Fatal(err)
	}
	if x.Version != privacy.ExportVersion || x.Account.Email != "jan@example.nl" || len(x.Memberships) != 1 ||
		x.Memberships[0].Organisation != privacyOrgName || len(x.Sessions) != 1 || x.Sessions[0].UserAgent != "Firefox/140.0" {
		t.Errorf("the export: %s", raw)
	}
	var actions []string
	for _, e := range x.Audit {
		actions = append(actions, e.Action)
	}
	slices.Sort(actions)
	if strings.Join(actions, ",") != "eh_verified,invite" {
		t.Errorf("the export's audit entries: %v, want Jan's verification and invitation", actions)
	}
	for what, secret := range map[string]string{"the password hash": stored().PasswordHash, "the session key": privacySessionKey, "the password": strings.TrimSpace(password)} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("the export holds %s", what)
		}
	}
	if out, err := cmd("", "export", "--email", "niemand@example.nl"); err == nil || !strings.Contains(out, "no account for niemand@example.nl") {
		t.Errorf("export of an unknown address: %v\n%s", err, out)
	}

	if out, err := cmd("no\n", "delete", "--email", "piet@example.nl"); err == nil || !strings.Contains(out, "nothing was removed") {
		t.Errorf("delete answered no: %v\n%s", err, out)
	}
	out, err = cmd("", "delete", "--email", "jan@example.nl", "--yes")
	if err == nil || !strings.Contains(out, privacyOrgName) || !strings.Contains(out, privacyKvK) || !strings.Contains(out, "make another member admin") {
		t.Errorf("delete of the last verified admin: %v, want a refusal naming the organisation\n%s", err, out)
	}
	if stored().ID != s.jan.ID {
		t.Fatal("a refused deletion removed the account")
	}
	if out, err := cmd("yes\n", "delete", "--email", "piet@example.nl"); err != nil || !strings.Contains(out, "removed piet@example.nl") {
		t.Fatalf("delete confirmed with yes: %v\n%s", err, out)
	}
	if out, err := cmd("", "delete", "--email", "jan@example.nl", "--yes"); err != nil || !strings.Contains(out, "removed jan@example.nl") {
		t.Fatalf("delete of the admin left alone: %v\n%s", err, out)
	}
	if out, err := cmd("", "list"); err != nil || strings.Contains(out, "@example.nl") {
		t.Errorf("accounts left: %v\n%s", err, out)
	}
	if out, err := cmd("", "delete", "--email", "jan@example.nl", "--yes"); err == nil || !strings.Contains(out, "no account for jan@example.nl") {
		t.Errorf("deleting it again: %v\n%s", err, out)
	}
}

// TestPrivacyCommandsOnBadger: `wijgate accounts export|delete` on a
// badger directory: the export holds the membership and audit entry but
// no secret, the last verified admin is refused with the organisation
// named, and what is removed leaves a consistent store.
func TestPrivacyCommandsOnBadger(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	st, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	s := seedPrivacy(t, st)
	st.Close()
	stored := func() storage.Account {
		st, err := store.Open(store.Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		a, _ := st.Account(s.jan.ID)
		return a
	}
	checkPrivacyCommands(t, dir, s, stored)

	st, err = store.Open(store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Check(); err != nil {
		t.Errorf("the store after the removals: %v", err)
	}
	if _, err := st.Organisation(privacyKvK); err != nil {
		t.Errorf("the organisation without members: %v, want it kept", err)
	}
	if _, err := st.Session(privacySessionKey); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Jan's session: %v, want it gone", err)
	}
}

// TestPrivacyCommandsOnPostgres: the same on PostgreSQL.
func TestPrivacyCommandsOnPostgres(t *testing.T) {
	pg, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	url, err := pg.NewDatabase()
	if err != nil {
		t.Fatal(err)
	}
	st, err := pgstore.Open(context.Background(), pgstore.Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := seedPrivacy(t, st)
	stored := func() storage.Account {
		a, _ := st.Account(s.jan.ID)
		return a
	}
	checkPrivacyCommands(t, url, s, stored)
	if _, err := st.Session(privacySessionKey); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Jan's session: %v, want it gone", err)
	}
	if ms, err := st.Members(privacyKvK); err != nil || len(ms) != 0 {
		t.Errorf("members left: %+v, %v", ms, err)
	}
}

// TestPrivacyCommandsThroughTheRunningServer: while the server holds the
// badger directory, the commands go through its admin API and answer the
// same; opening the held directory directly is refused.
func TestPrivacyCommandsThroughTheRunningServer(t *testing.T) {
	dir := t.TempDir()
	storeDir := filepath.Join(dir, "store")
	st, err := store.Open(store.Options{Dir: storeDir})
	if err != nil {
		t.Fatal(err)
	}
	seedPrivacy(t, st)
	st.Close()
	site, admin := testport.Addr(t), testport.Addr(t)
	writeFile(t, filepath.Join(dir, "Caddyfile"), fmt.Sprintf(`{
	admin %s
	auto_https off
	persist_config off
	wijgate {
		storage %s
		mail {
			outbox %s/outbox
		}
	}
}
http://%s {
	wijgate portal
}
`, admin, storeDir, dir, site))
	startServer(t, dir, nil, admin, "run", "--config", "Caddyfile")

	out, err := runIn(t, dir, "", nil, "accounts", "export", "--email", "jan@example.nl")
	if err != nil || strings.Contains(out, "no server answered") || !strings.Contains(out, privacyOrgName) || strings.Contains(out, privacySessionKey) {
		t.Fatalf("export through the server: %v\n%s", err, out)
	}
	out, err = runIn(t, dir, "", nil, "accounts", "delete", "--email", "jan@example.nl", "--yes")
	if err == nil || !strings.Contains(out, "the server at "+admin+": ") || !strings.Contains(out, privacyOrgName) {
		t.Errorf("delete of the last verified admin through the server: %v\n%s", err, out)
	}
	out, err = run(t, "", nil, "accounts", "delete", "--email", "piet@example.nl", "--yes", "--address="+testport.Addr(t), "--storage", storeDir)
	if err == nil || strings.Contains(out, "removed") || !strings.Contains(out, "opening the store "+storeDir) {
		t.Errorf("delete on the directory the server holds: %v\n%s", err, out)
	}
	out, err = runIn(t, dir, "", nil, "accounts", "delete", "--email", "piet@example.nl", "--yes")
	if err != nil || !strings.Contains(out, "removed piet@example.nl") {
		t.Fatalf("delete through the server: %v\n%s", err, out)
	}
	out, _ = runIn(t, dir, "", nil, "accounts", "list")
	if strings.Contains(out, "piet@") || !strings.Contains(out, "jan@") {
		t.Errorf("accounts after the removal:\n%s", out)
	}
}
