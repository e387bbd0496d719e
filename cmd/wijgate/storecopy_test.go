package main

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/wijtechniek/wijgate/caddymodule/store"
	"github.com/wijtechniek/wijgate/internal/pgtest"
)

// TestStoreCopyMovesAServerBetweenEngines moves a server's store from
// badger to PostgreSQL and back to a new badger directory with
// `wijgate store copy`, starting the server on each: the session cookie
// the first server made keeps working, and the badger copy's indexes
// agree with its records. The copy refuses the directory while the
// server holds it, a target that holds records, and a database it cannot
// reach or a URL it cannot read, without showing the password.
func TestStoreCopyMovesAServerBetweenEngines(t *testing.T) {
	pg, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	pgURL, err := pg.NewDatabase()
	if err != nil {
		t.Fatal(err)
	}

	s := newFaultServer(t)
	s.start()
	const email = "verhuizing@example.nl"
	if _, err := addAccountByAPI(http.DefaultClient, s.admin, email); err != nil {
		t.Fatal(err)
	}
	v := newVisitor("http://"+s.site, http.DefaultTransport)
	cookie, err := v.login(email)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.linkCompany("12345678", "jan"); err != nil {
		t.Fatal(err)
	}
	source := filepath.Join(s.dir, "store")
	out, err := run(t, "", nil, "store", "copy", "--from", source, "--to", pgURL)
	if err == nil || !strings.Contains(out, source) || !strings.Contains(out, "stop it first") {
		t.Fatalf("copying from the directory a running server holds: %v\n%s", err, out)
	}
	s.stop()

	out, err = run(t, "", nil, "store", "copy", "--from", source, "--to", pgURL)
	if err != nil || !strings.Contains(out, "copied; both sides hold the same records") {
		t.Fatalf("badger to PostgreSQL: %v\n%s", err, out)
	}
	t.Logf("badger to PostgreSQL:\n%s", out)
	useStorage(t, s, pgURL)
	s.start()
	expectGuarded(t, s, cookie, email)
	s.stop()

	moved := filepath.Join(s.dir, "moved")
	out, err = run(t, "", nil, "store", "copy", "--from", pgURL, "--to", moved)
	if err != nil || !strings.Contains(out, "copied; both sides hold the same records") {
		t.Fatalf("PostgreSQL to badger: %v\n%s", err, out)
	}
	out, err = run(t, "", nil, "store", "copy", "--from", pgURL, "--to", moved)
	if err == nil || !strings.Contains(out, "already holds") || !strings.Contains(out, "--force") {
		t.Fatalf("copying into a store that holds records: %v\n%s", err, out)
	}
	out, err = run(t, "", nil, "store", "copy", "--from", pgURL, "--to", moved, "--force")
	if err != nil || !strings.Contains(out, "copied; both sides hold the same records") {
		t.Fatalf("copying over it with --force: %v\n%s", err, out)
	}
	useStorage(t, s, moved)
	s.start()
	expectGuarded(t, s, cookie, email)
	s.stop()
	st, err := store.Open(store.Options{Dir: moved})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Check(); err != nil {
		t.Fatalf("the copy's indexes disagree with its records:\n%v", err)
	}

	const password = "s3cr3t-pw"
	for name, to := range map[string]string{
		"unreachable database": "postgres://wijgate:" + password + "@/wijgate?host=" + url.QueryEscape(t.TempDir()),
		"unreadable URL":       "postgres://wijgate:" + password + "@db:port/wijgate",
	} {
		out, err := run(t, "", nil, "store", "copy", "--from", pgURL, "--to", to)
		if err == nil || strings.Contains(out, password) || !strings.Contains(out, "postgres://") {
			t.Errorf("%s: %v\n%s", name, err, out)
		}
		t.Logf("%s: %s", name, out)
	}
}

var storageLine = regexp.MustCompile(`storage \S+`)

// useStorage points the server's Caddyfile at another store.
func useStorage(t *testing.T, s *faultServer, location string) {
	t.Helper()
	cfg, err := os.ReadFile(s.caddyfile)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, s.caddyfile, storageLine.ReplaceAllLiteralString(string(cfg), "storage "+location))
}

// expectGuarded requests the guarded route with a session cookie and
// expects the app's answer for email.
func expectGuarded(t *testing.T, s *faultServer, cookie, email string) {
	t.Helper()
	resp, err := getGuarded(http.DefaultClient, "http://"+s.site, cookie)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != email {
		t.Fatalf("the session cookie on the moved store: %d %q", resp.StatusCode, body)
	}
}
