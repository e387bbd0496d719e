package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
	"github.com/wijtechniek/wijgate/caddymodule/store"
	"github.com/wijtechniek/wijgate/internal/pgtest"
	"github.com/wijtechniek/wijgate/internal/testport"
)

// TestBackupUnderLoadRestoresEverything backs up a running server while
// writers register accounts and log in through it, restores the backup
// into a new directory and starts the server there: the backup is one
// snapshot (every account acknowledged before it began is in it, and
// the restored server holds exactly the accounts, organisations and
// memberships the backup counts), the keys came along (the session
// cookie made before the backup still works, the SP metadata is the
// same), and a backup of the stopped restored store, taken without a
// server, counts the same.
func TestBackupUnderLoadRestoresEverything(t *testing.T) {
	s := newFaultServer(t)
	s.start()
	const email = "voor-de-backup@example.nl"
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
	spCerts := certificates.FindAllString(getBody(t, "http://"+s.site+"/eherkenning/metadata"), -1)

	var (
		acked     sync.Map // email → account ID, once the server answered
		written   atomic.Int64
		stop      = make(chan struct{})
		wg        sync.WaitGroup
		failureMu sync.Mutex
		failures  []error
	)
	admin := &http.Client{Timeout: 30 * time.Second}
	for w := range 2 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				email := fmt.Sprintf("w%d-%d@example.nl", w, n)
				a, err := addAccountByAPI(admin, s.admin, email)
				if err == nil {
					acked.Store(email, a.ID)
					_, err = newVisitor("http://"+s.site, http.DefaultTransport).login(email)
				}
				if err != nil {
					failureMu.Lock()
					failures = append(failures, err)
					failureMu.Unlock()
					return
				}
				written.Add(1)
			}
		})
	}
	deadline := time.Now().Add(60 * time.Second)
	for written.Load() < 20 {
		if time.Now().After(deadline) {
			close(stop)
			wg.Wait()
			t.Fatalf("only %d accounts registered and logged in within a minute: %v", written.Load(), failures)
		}
		time.Sleep(20 * time.Millisecond)
	}
	before := map[string]string{}
	acked.Range(func(k, v any) bool { before[k.(string)] = v.(string); return true })
	file := filepath.Join(s.dir, "wijgate.backup")
	out, err := run(t, "", nil, "backup", "--to", file, "--config", s.caddyfile, "--adapter", "caddyfile")
	duringBackup := written.Load()
	close(stop)
	wg.Wait()
	if err != nil || !strings.Contains(out, "backing up the server at "+s.admin) || !strings.Contains(out, "backup written to "+file) {
		t.Fatalf("backup while the server runs: %v\n%s", err, out)
	}
	if len(failures) > 0 {
		t.Fatalf("writes failed during the backup: %v", failures)
	}
	t.Logf("backup under load (%d accounts registered and logged in so far):\n%s", duringBackup, out)
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("the backup holds the keys, yet its mode is %04o", st.Mode().Perm())
	}
	info, err := caddymodule.ReadBackup(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if info.Header.Engine != "badger" || info.Header.Version != 1 || time.Since(info.Header.TakenAt) > 5*time.Minute {
		t.Errorf("header: %+v", info.Header)
	}
	out, err = run(t, "", nil, "backup", "verify", file)
	if err != nil || !strings.Contains(out, "the backup is whole") || !regexp.MustCompile(fmt.Sprintf(`(?m)^\s*account\s+%d\s*$`, info.Summary.Counts[storage.KindAccount])).MatchString(out) {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	t.Logf("verify:\n%s", out)

	restored := filepath.Join(s.dir, "restored")
	out, err = run(t, "", nil, "restore", "--from", file, "--storage", restored)
	if err != nil || !strings.Contains(out, "restored; the target holds every record") {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	t.Logf("restore:\n%s", out)
	s.stop()
	var all int
	acked.Range(func(any, any) bool { all++; return true })

	useStorage(t, s, restored)
	s.start()
	expectGuarded(t, s, cookie, email)
	if got := certificates.FindAllString(getBody(t, "http://"+s.site+"/eherkenning/metadata"), -1); len(spCerts) == 0 || !slices.Equal(got, spCerts) {
		t.Errorf("the restored server publishes other SP certificates (another key):\n%q\nwas\n%q", got, spCerts)
	}
	var accounts []caddymodule.AccountSummary
	if err := getAdminJSON(admin, "http://"+s.admin+"/wijgate/accounts", &accounts); err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, a := range accounts {
		ids[a.Email] = a.ID
	}
	for e, id := range before {
		if ids[e] != id {
			t.Errorf("account %s, acknowledged before the backup began, restored as %q", e, ids[e])
		}
	}
	// The snapshot fell somewhere during the backup: it holds the accounts
	// made before it began, perhaps some made during it, and exactly what
	// its counts say.
	if n := len(accounts); n != info.Summary.Counts[storage.KindAccount] || n < len(before)+1 || n > all+1 {
		t.Errorf("restored %d accounts; the backup counts %d, %d were acknowledged before it began and %d by its end",
			n, info.Summary.Counts[storage.KindAccount], len(before)+1, all+1)
	}
	var orgs []caddymodule.OrgSummary
	if err := getAdminJSON(admin, "http://"+s.admin+"/wijgate/orgs", &orgs); err != nil {
		t.Fatal(err)
	}
	members := 0
	for _, o := range orgs {
		var org caddymodule.OrgSummary
		if err := getAdminJSON(admin, "http://"+s.admin+"/wijgate/orgs/"+o.KvK, &org); err != nil {
			t.Fatal(err)
		}
		members += len(org.Members)
	}
	if len(orgs) != info.Summary.Counts[storage.KindOrganisation] || members != info.Summary.Counts[storage.KindMembership] || members != 1 {
		t.Errorf("restored %d organisations with %d members; the backup counts %d and %d", len(orgs), members,
			info.Summary.Counts[storage.KindOrganisation], info.Summary.Counts[storage.KindMembership])
	}

	out, err = run(t, "", nil, "restore", "--from", file, "--storage", restored)
	if err == nil || !strings.Contains(out, "in use by a running server") {
		t.Errorf("restoring into the directory a running server holds: %v\n%s", err, out)
	}
	s.stop()

	// A snapshot holds no session or membership whose account it lacks.
	opened, err := store.Open(store.Options{Dir: restored})
	if err != nil {
		t.Fatal(err)
	}
	if err := opened.Check(); err != nil {
		t.Errorf("the restored store's records contradict each other:\n%v", err)
	}
	if err := opened.Close(); err != nil {
		t.Fatal(err)
	}

	// Without a server the command opens the store itself.
	again := filepath.Join(s.dir, "again.backup")
	out, err = run(t, "", nil, "backup", "--to", again, "--config", s.caddyfile, "--adapter", "caddyfile")
	if err != nil || !strings.Contains(out, "no server answered") {
		t.Fatalf("backup without a server: %v\n%s", err, out)
	}
	offline, err := caddymodule.ReadBackup(again, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []storage.Kind{storage.KindSecret, storage.KindAccount, storage.KindOrganisation, storage.KindMembership} {
		if offline.Summary.Counts[k] != info.Summary.Counts[k] {
			t.Errorf("%s: the restored store holds %d, the backup %d", k, offline.Summary.Counts[k], info.Summary.Counts[k])
		}
	}
}

// TestRestoreRefuses checks what restore and verify refuse: a target that
// holds records, a directory of other files, a truncated file, an altered
// byte, an unknown format version, a file that cannot be read; and that a
// restore whose counts disagree leaves a mark no server starts on, which
// --force clears.
func TestRestoreRefuses(t *testing.T) {
	s := newFaultServer(t)
	s.start()
	for i := range 3 {
		if _, err := addAccountByAPI(http.DefaultClient, s.admin, fmt.Sprintf("weiger%d@example.nl", i)); err != nil {
			t.Fatal(err)
		}
	}
	s.stop()
	file := filepath.Join(s.dir, "good.backup")
	if out, err := run(t, "", nil, "backup", "--to", file, "--storage", filepath.Join(s.dir, "store"), "--address", testport.Addr(t)); err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(good), "\n")
	account := -1
	for i, l := range lines {
		if strings.HasPrefix(l, `{"kind":"account"`) {
			account = i
			break
		}
	}
	if account < 0 {
		t.Fatalf("no account record in the backup:\n%s", good)
	}

	variant := func(name, content string) string {
		p := filepath.Join(s.dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	altered := []byte(string(good))
	at := len(strings.Join(lines[:account], "")) + len(`{"kind":"account","key":"`)
	altered[at] ^= 1
	header := strings.Replace(lines[0], `"version":1`, `"version":2`, 1)
	refused := map[string]struct {
		file, want string
	}{
		"truncated":       {variant("truncated.backup", string(good[:len(good)*2/3])), "is truncated"},
		"cut at a line":   {variant("cut.backup", strings.Join(lines[:len(lines)-2], "")), "is truncated"},
		"altered byte":    {variant("altered.backup", string(altered)), "has been altered or damaged"},
		"unknown version": {variant("v2.backup", header+strings.Join(lines[1:], "")), "has format version 2"},
		"not a backup":    {variant("Caddyfile.backup", "{\n\tadmin off\n}\n"), "is not a wijgate backup"},
		"unreadable":      {filepath.Join(s.dir, "missing.backup"), "cannot read the backup"},
	}
	for name, c := range refused {
		out, err := run(t, "", nil, "backup", "verify", c.file)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("verify, %s: %v\n%s", name, err, out)
		}
		target := filepath.Join(s.dir, "target-"+strings.ReplaceAll(name, " ", "-"))
		out, err = run(t, "", nil, "restore", "--from", c.file, "--storage", target)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("restore, %s: %v\n%s", name, err, out)
		}
		if _, err := os.Stat(target); !os.IsNotExist(err) {
			t.Errorf("restore, %s: the target was made (%v)", name, err)
		}
		t.Logf("%s: %s", name, out)
	}

	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, "", nil, "backup", "verify", file); err != nil || !strings.Contains(out, "chmod 600") {
		t.Errorf("verify of a backup others can read: %v\n%s", err, out)
	}

	// A backup that fails leaves the file of that name as it was.
	if out, err := run(t, "", nil, "backup", "--to", file, "--storage", filepath.Join(s.dir, "outbox"), "--address", testport.Addr(t)); err == nil || !strings.Contains(out, "not a badger store") {
		t.Errorf("backup of a directory that is no store: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(file); err != nil || !bytes.Equal(b, good) {
		t.Errorf("a failed backup changed the backup of the same name (%v)", err)
	}
	if leftover, _ := filepath.Glob(filepath.Join(s.dir, ".*partial*")); len(leftover) > 0 {
		t.Errorf("a failed backup left %v", leftover)
	}

	others := filepath.Join(s.dir, "others")
	if err := os.Mkdir(others, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(others, "notes.txt"), "not a store")
	if out, err := run(t, "", nil, "restore", "--from", file, "--storage", others); err == nil || !strings.Contains(out, "holds other files and no badger store") {
		t.Errorf("restore into a directory of other files: %v\n%s", err, out)
	}
	if out, err := run(t, "", nil, "restore", "--from", file, "--storage", filepath.Join(s.dir, "store")); err == nil || !strings.Contains(out, "already holds") {
		t.Errorf("restore into a store that holds records: %v\n%s", err, out)
	}

	// A backup whose checksum and counts agree but that names one account
	// twice: the target ends with one record fewer than the backup, so
	// the restore fails and leaves its mark.
	doubled := append(append([]string{}, lines[:account+1]...), lines[account:len(lines)-2]...)
	restored := filepath.Join(s.dir, "restored")
	out, err := run(t, "", nil, "restore", "--from", variant("doubled.backup", resummed(t, doubled)), "--storage", restored)
	if err == nil || !strings.Contains(out, "counts differ") || !strings.Contains(out, "incomplete restore") {
		t.Fatalf("restore of a backup with an account twice: %v\n%s", err, out)
	}
	t.Logf("doubled account:\n%s", out)
	useStorage(t, s, restored)
	// Were the mark ignored the server would keep running: the deadline
	// ends it, and its output names no incomplete copy.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	server := exec.CommandContext(ctx, binary, "run", "--config", s.caddyfile, "--adapter", "caddyfile")
	server.Env = append(os.Environ(), "XDG_DATA_HOME="+s.dir, "XDG_CONFIG_HOME="+s.dir)
	b, err := server.CombinedOutput()
	out = string(b)
	if err == nil || !strings.Contains(out, "incomplete copy (restore of") {
		t.Fatalf("a server on an incomplete restore: %v\n%s", err, out)
	}
	if out, err := run(t, "", nil, "restore", "--from", file, "--storage", restored); err == nil || !strings.Contains(out, "--force") {
		t.Errorf("restore over an incomplete restore without --force: %v\n%s", err, out)
	}
	if out, err := run(t, "", nil, "restore", "--from", file, "--storage", restored, "--force"); err != nil {
		t.Fatalf("restore over an incomplete restore with --force: %v\n%s", err, out)
	}
	s.start()
	var accounts []caddymodule.AccountSummary
	if err := getAdminJSON(http.DefaultClient, "http://"+s.admin+"/wijgate/accounts", &accounts); err != nil {
		t.Fatal(err)
	}
	if len(accounts) != 3 {
		t.Errorf("restored with --force: %d accounts, want 3", len(accounts))
	}
	s.stop()
}

var certificates = regexp.MustCompile(`<ds:X509Certificate>[^<]+`)

// resummed is a backup of the header and record lines given, closed with
// their counts and checksum as wijgate writes them.
func resummed(t *testing.T, lines []string) string {
	t.Helper()
	body := strings.Join(lines, "")
	counts := storage.Counts{}
	for _, l := range lines[1:] {
		var r struct{ Kind storage.Kind }
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		counts[r.Kind]++
	}
	sum := sha256.Sum256([]byte(body))
	end, err := json.Marshal(map[string]any{"summary": caddymodule.BackupSummary{Counts: counts, SHA256: hex.EncodeToString(sum[:])}})
	if err != nil {
		t.Fatal(err)
	}
	return body + string(end) + "\n"
}

// getBody returns the body of a GET that must answer 200.
func getBody(t *testing.T, target string) string {
	t.Helper()
	resp, err := http.Get(target)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || len(bytes.TrimSpace(b)) == 0 {
		t.Fatalf("GET %s: %d %v\n%s", target, resp.StatusCode, err, b)
	}
	return string(b)
}

// TestBackupAcrossEngines restores a badger server's backup into
// PostgreSQL and the PostgreSQL server's backup, streamed from it, into a
// new badger directory, starting the server on each: the session cookie
// made first works on both, and a database that holds records is refused
// as a target.
func TestBackupAcrossEngines(t *testing.T) {
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
	const email = "overstap@example.nl"
	if _, err := addAccountByAPI(http.DefaultClient, s.admin, email); err != nil {
		t.Fatal(err)
	}
	v := newVisitor("http://"+s.site, http.DefaultTransport)
	cookie, err := v.login(email)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.linkCompany("87654321", "piet"); err != nil {
		t.Fatal(err)
	}
	fromBadger := filepath.Join(s.dir, "badger.backup")
	if out, err := run(t, "", nil, "backup", "--to", fromBadger, "--config", s.caddyfile); err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	s.stop()

	if out, err := run(t, "", nil, "restore", "--from", fromBadger, "--storage", pgURL); err != nil || !strings.Contains(out, "restored;") {
		t.Fatalf("restore into PostgreSQL: %v\n%s", err, out)
	}
	useStorage(t, s, pgURL)
	s.start()
	expectGuarded(t, s, cookie, email)
	fromPostgres := filepath.Join(s.dir, "postgres.backup")
	if out, err := run(t, "", nil, "backup", "--to", fromPostgres, "--config", s.caddyfile); err != nil || !strings.Contains(out, "from a postgres store") {
		t.Fatalf("backup of the server on PostgreSQL: %v\n%s", err, out)
	}
	// With the database down the server ends the stream with the cause,
	// and nothing takes the backup's name.
	if err := pg.Pause(); err != nil {
		t.Fatal(err)
	}
	outage := filepath.Join(s.dir, "outage.backup")
	out, err := run(t, "", nil, "backup", "--to", outage, "--config", s.caddyfile)
	if err == nil || !strings.Contains(out, "sent is not a whole backup: the server stopped it after 0 records") {
		t.Errorf("backup while the database is down: %v\n%s", err, out)
	}
	t.Logf("backup while the database is down:\n%s", out)
	if _, err := os.Stat(outage); !os.IsNotExist(err) {
		t.Errorf("a backup that failed was named %s (%v)", outage, err)
	}
	if err := pg.Resume(); err != nil {
		t.Fatal(err)
	}
	s.stop()
	if out, err := run(t, "", nil, "restore", "--from", fromBadger, "--storage", pgURL); err == nil || !strings.Contains(out, "already holds") {
		t.Errorf("restore into a database that holds records: %v\n%s", err, out)
	}
	a, err := caddymodule.ReadBackup(fromBadger, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := caddymodule.ReadBackup(fromPostgres, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []storage.Kind{storage.KindSecret, storage.KindAccount, storage.KindSession, storage.KindOrganisation, storage.KindMembership} {
		if a.Summary.Counts[k] != b.Summary.Counts[k] || a.Summary.Counts[k] == 0 {
			t.Errorf("%s: %d in the badger backup, %d in the PostgreSQL one", k, a.Summary.Counts[k], b.Summary.Counts[k])
		}
	}

	restored := filepath.Join(s.dir, "restored")
	if out, err := run(t, "", nil, "restore", "--from", fromPostgres, "--storage", restored); err != nil {
		t.Fatalf("restore of the PostgreSQL backup into badger: %v\n%s", err, out)
	}
	useStorage(t, s, restored)
	s.start()
	expectGuarded(t, s, cookie, email)
	s.stop()
}
