package caddymodule

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/wijtechniek/wijgate/caddymodule/eherkenning"
	"github.com/wijtechniek/wijgate/caddymodule/pgstore"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
	"github.com/wijtechniek/wijgate/caddymodule/store"
	"github.com/wijtechniek/wijgate/internal/pgtest"
)

// TestStoreCopyRoundTripKeepsEverything seeds a badger store through a
// running server (an account linked with eHerkenning, a member and an
// invitation, grouped refusals in the audit log, codes, counters, a
// parked answer and a login under way), copies it to PostgreSQL and from
// there to a new badger directory, and finds every record unchanged on
// all three. A server on each target accepts the source's session cookie
// and hands out the parked answer and the tracked login once.
func TestStoreCopyRoundTripKeepsEverything(t *testing.T) {
	ctx := context.Background()
	dirA := t.TempDir()
	g := startGateway(t, "eherkenning.caddyfile", gatewayParams{Storage: dirA})
	g.addAccount(testEmail, testName, testPassword)
	b := g.newBrowser()
	b.login(testEmail, testPassword)
	resp, body := b.verifyAt("12345678", "eh3")
	if !strings.Contains(body, "Jouw account is nu Admin account voor") {
		t.Fatalf("linking: %d\n%s", resp.StatusCode, body)
	}
	token := invite(t, g, b, "12345678", "piet@a.nl", "website")
	pb, piet := colleague(t, g, "piet@a.nl", token)
	for range 3 {
		resp, body := pb.post("/org/12345678/role/"+piet.ID, url.Values{"role": {"owner"}})
		expectStatus(t, resp, body, http.StatusForbidden)
	}
	invite(t, g, b, "12345678", "klaas@a.nl", "website")
	nb := g.newBrowser()
	resp, body = nb.registerAction("send", "email", "nieuw@a.nl")
	expectStatus(t, resp, body, http.StatusSeeOther)
	nb.registerAction("verify", "code", "000000")
	parked := parkAnswer(t, b, "87654321")
	// Another browser's login under way: a new one in b would replace the
	// cookie that binds the parked answer to b.
	pb.startEHerkenning()
	resp, body = b.page("/website/")
	expectStatus(t, resp, body, http.StatusOK)
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}

	pgURL := pgtest.Database(t)
	report, err := CopyStore(ctx, dirA, pgURL, CopyOptions{})
	if err != nil {
		t.Fatalf("badger to PostgreSQL: %v\n%+v", err, report)
	}
	for _, c := range report.Kinds {
		if c.Copied == 0 || c.Source != c.Target {
			t.Errorf("badger to PostgreSQL, %s: copied %d, source %d, target %d", c.Kind, c.Copied, c.Source, c.Target)
		}
	}
	dirB := t.TempDir()
	if report, err := CopyStore(ctx, pgURL, dirB, CopyOptions{}); err != nil || !report.Agrees() {
		t.Fatalf("PostgreSQL to badger: %v\n%+v", err, report)
	}
	checkIndexes(t, dirB)
	recA, recPG, recB := recordsAt(t, dirA), recordsAt(t, pgURL), recordsAt(t, dirB)
	if !slices.Equal(recA, recPG) {
		t.Errorf("PostgreSQL holds other records than the badger source:\n%s", recordDiff(recA, recPG))
	}
	if !slices.Equal(recA, recB) {
		t.Errorf("the round trip changed records:\n%s", recordDiff(recA, recB))
	}
	t.Logf("%d records in the source; badger to PostgreSQL, kind by kind: %+v", len(recA), report.Kinds)
	var requestIDs []string
	grouped := false
	for _, r := range recA {
		grouped = grouped || strings.HasPrefix(r, "audit|12345678|") && !strings.HasPrefix(r, "audit|12345678||")
		if id, ok := strings.CutPrefix(r, string(storage.KindSAMLRequest)+"|"); ok {
			requestIDs = append(requestIDs, strings.SplitN(id, "|", 2)[0])
		}
	}
	if !grouped {
		t.Error("no audit entry of a group was copied")
	}
	if len(requestIDs) != 1 {
		t.Fatalf("tracked logins in the source: %v", requestIDs)
	}

	// Each target meets the browser as it left the source: collecting the
	// answer on one ends the cookie that binds it.
	cookies := b.jar.Cookies(mustParse(g.URL))
	for _, target := range []string{pgURL, dirB} {
		g := startGateway(t, "eherkenning.caddyfile", gatewayParams{Storage: target})
		b := g.newBrowser()
		b.jar.SetCookies(mustParse(g.URL), cookies)
		resp, body := b.page("/website/")
		expectStatus(t, resp, body, http.StatusOK)
		if got := g.Upstream.last(t).Get("X-Wij-User-Email"); got != testEmail {
			t.Fatalf("on %s the source's session is %q's", RedactStorage(target), got)
		}
		resp, body = b.page("/eherkenning/complete?t=" + url.QueryEscape(parked))
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Admin account voor") {
			t.Fatalf("collecting the parked answer on %s: %d\n%s", RedactStorage(target), resp.StatusCode, body)
		}
		if resp, _ := b.page("/eherkenning/complete?t=" + url.QueryEscape(parked)); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("the parked answer was collected twice on %s: %d", RedactStorage(target), resp.StatusCode)
		}
		if err := caddy.Stop(); err != nil {
			t.Fatal(err)
		}
		takeOnce(t, target, requestIDs[0])
	}
}

// parkAnswer walks an eHerkenning login for company up to the broker's
// answer, which the server verifies and parks, and returns the token
// that collects it, without collecting it.
func parkAnswer(t *testing.T, b *browser, company string) string {
	t.Helper()
	_, body := b.startEHerkenning()
	s := simSession.FindStringSubmatch(body)[1]
	b.page("/ehsim/login?s=" + url.QueryEscape(s) + "&provider=" + url.QueryEscape("Testleverancier Noord"))
	resp, body := b.do(http.MethodPost, "/ehsim/login", url.Values{"s": {s}, "company": {company}, "scenario": {"eh3"}, "person": {"jan"}})
	for range 20 {
		loc := resp.Header.Get("Location")
		if _, tok, ok := strings.Cut(loc, "/eherkenning/complete?t="); ok {
			tok, err := url.QueryUnescape(tok)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
		switch {
		case loc != "":
			next, _ := resp.Request.URL.Parse(loc)
			resp, body = b.page(next.String())
		case strings.Contains(body, `id="saml-post"`) || strings.Contains(body, " data-autosubmit"):
			form := url.Values{}
			for _, f := range hiddenField.FindAllStringSubmatch(body, -1) {
				form.Set(f[1], htmlUnescape(f[2]))
			}
			target, _ := resp.Request.URL.Parse(htmlUnescape(formAction.FindStringSubmatch(body)[1]))
			resp, body = b.do(http.MethodPost, target.String(), form)
		default:
			t.Fatalf("the login stopped before its answer was parked: %d\n%s", resp.StatusCode, body)
		}
	}
	t.Fatal("too many hops")
	return ""
}

// takeOnce takes the tracked login id from the store at location twice:
// the first take finds it, the second does not.
func takeOnce(t *testing.T, location, id string) {
	t.Helper()
	e, closeEngine, err := openEngine(context.Background(), location, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeEngine()
	if _, err := e.TakeRequest(context.Background(), id); err != nil {
		t.Fatalf("taking the tracked login on %s: %v", RedactStorage(location), err)
	}
	if _, err := e.TakeRequest(context.Background(), id); !errors.Is(err, eherkenning.ErrUnknownRequest) {
		t.Fatalf("the tracked login was taken twice on %s: %v", RedactStorage(location), err)
	}
}

// checkIndexes finds every index of the badger store in dir in
// agreement with its records.
func checkIndexes(t *testing.T, dir string) {
	t.Helper()
	st, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Check(); err != nil {
		t.Fatalf("the copy's indexes disagree with its records:\n%v", err)
	}
}

// recordsAt lists the records of the store at location, each as one
// sortable line with its JSON in one encoding (PostgreSQL's jsonb orders
// keys its own way).
func recordsAt(t *testing.T, location string) []string {
	t.Helper()
	st, closeStore, err := openRecordStore(context.Background(), location, false)
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore()
	var out []string
	err = st.VisitRecords(context.Background(), func(r storage.Record) error {
		value := hex.EncodeToString(r.Value)
		if r.Kind != storage.KindSecret && r.Value != nil {
			d := json.NewDecoder(bytes.NewReader(r.Value))
			d.UseNumber()
			var v any
			if err := d.Decode(&v); err != nil {
				return fmt.Errorf("%s %s: %w", r.Kind, r.Key, err)
			}
			b, _ := json.Marshal(v)
			value = string(b)
		}
		var expires int64
		if !r.ExpiresAt.IsZero() {
			expires = r.ExpiresAt.Unix()
		}
		out = append(out, fmt.Sprintf("%s|%s|%s|%d|%s", r.Kind, r.Key, r.Group, expires, value))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// recordDiff lists the lines only one side holds.
func recordDiff(a, b []string) string {
	var out strings.Builder
	for _, r := range a {
		if !slices.Contains(b, r) {
			fmt.Fprintf(&out, "- %s\n", r)
		}
	}
	for _, r := range b {
		if !slices.Contains(a, r) {
			fmt.Fprintf(&out, "+ %s\n", r)
		}
	}
	return out.String()
}

// TestStoreCopyRefuses covers the copies that must not start: a target
// holding records, a badger directory a server holds, a database that
// cannot be reached or a URL that cannot be read (no password in either
// message), a source that is no store, and a target left incomplete by a
// copy that failed half-way.
func TestStoreCopyRefuses(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	g := startGateway(t, "gateway.caddyfile", gatewayParams{Storage: dir})
	g.addAccount(testEmail, testName, testPassword)

	pgURL := pgtest.Database(t)
	_, err := CopyStore(ctx, dir, pgURL, CopyOptions{})
	if err == nil || !strings.Contains(err.Error(), "in use by a running server") || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "stop it first") {
		t.Fatalf("copying from a directory a server holds: %v", err)
	}
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}

	if report, err := CopyStore(ctx, dir, pgURL, CopyOptions{}); err != nil || !report.Agrees() {
		t.Fatalf("first copy: %v %+v", err, report)
	}
	_, err = CopyStore(ctx, dir, pgURL, CopyOptions{})
	if err == nil || !strings.Contains(err.Error(), "already holds") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("copying into a database that holds records: %v", err)
	}
	if report, err := CopyStore(ctx, dir, pgURL, CopyOptions{Force: true}); err != nil || !report.Agrees() {
		t.Fatalf("copying over it with Force: %v %+v", err, report)
	}

	const password = "s3cr3t-pw"
	for name, to := range map[string]string{
		"unreachable database": "postgres://wijgate:" + password + "@/wijgate?host=" + url.QueryEscape(t.TempDir()) + "&connect_timeout=2",
		"unreadable URL":       "postgres://wijgate:" + password + "@db:port/wijgate",
		"other scheme":         "mysql://wijgate:" + password + "@db/wijgate",
	} {
		_, err := CopyStore(ctx, dir, to, CopyOptions{})
		if err == nil || strings.Contains(err.Error(), password) || !strings.Contains(err.Error(), "postgres://") {
			t.Errorf("%s: %v", name, err)
		}
		t.Logf("%s: %v", name, err)
	}
	if _, err := CopyStore(ctx, t.TempDir()+"/none", pgtest.Database(t), CopyOptions{}); err == nil || !strings.Contains(err.Error(), "not a badger store") {
		t.Errorf("copying from a directory with no store: %v", err)
	}
	if _, err := CopyStore(ctx, dir, dir, CopyOptions{}); err == nil || !strings.Contains(err.Error(), "the same store") {
		t.Errorf("copying a store onto itself: %v", err)
	}

	// A flow that is no JSON passes badger but not PostgreSQL: the copy
	// stops at its batch, after the secrets and accounts went in.
	broken := t.TempDir()
	bs, err := store.Open(store.Options{Dir: broken})
	if err != nil {
		t.Fatal(err)
	}
	err = bs.WriteRecords(ctx, []storage.Record{
		{Kind: storage.KindSecret, Key: "cookie-keys", Value: []byte("k")},
		{Kind: storage.KindFlow, Key: "f1", Value: []byte("{not json"), ExpiresAt: time.Now().Add(time.Hour)},
	})
	if cerr := bs.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	half := pgtest.Database(t)
	_, err = CopyStore(ctx, broken, half, CopyOptions{})
	if err == nil || !strings.Contains(err.Error(), "marked as an incomplete copy") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("a copy that failed half-way: %v", err)
	}
	_, err = CopyStore(ctx, dir, half, CopyOptions{})
	if err == nil || !strings.Contains(err.Error(), "an incomplete copy (copy from "+broken) {
		t.Fatalf("copying into an incomplete copy: %v", err)
	}
	if _, err := CopyStore(ctx, half, t.TempDir(), CopyOptions{}); err == nil || !strings.Contains(err.Error(), "holds an incomplete copy") {
		t.Fatalf("copying from an incomplete copy: %v", err)
	}
	if err := loadGatewayErr(t, "gateway.caddyfile", gatewayParams{Storage: half}); err == nil || !strings.Contains(err.Error(), "holds an incomplete copy") {
		t.Fatalf("a server started on an incomplete copy: %v", err)
	}
	if report, err := CopyStore(ctx, dir, half, CopyOptions{Force: true}); err != nil || !report.Agrees() {
		t.Fatalf("copying over an incomplete copy with Force: %v %+v", err, report)
	}
	ps, err := pgstore.Open(ctx, pgstore.Options{URL: half})
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	if note, err := ps.CopyMark(); note != nil || err != nil {
		t.Fatalf("a finished copy is still marked: %q %v", note, err)
	}
}

// TestStoreCopyLeavesExpiredRecords copies a database that still holds
// rows past their expiry (its sweeper has not run): they are not handed
// over, and the counts agree.
func TestStoreCopyLeavesExpiredRecords(t *testing.T) {
	ctx := context.Background()
	from := pgtest.Database(t)
	ps, err := pgstore.Open(ctx, pgstore.Options{URL: from})
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	now := time.Now()
	if err := ps.CreateAccount(storage.Account{ID: "a1", Email: "a@example.nl", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	for i, expires := range []time.Time{now.Add(-time.Minute), now.Add(time.Hour)} {
		if err := ps.PutFlow(storage.Flow{ID: fmt.Sprint("flow", i), Purpose: "register", Stage: "email", CreatedAt: now, ExpiresAt: expires}); err != nil {
			t.Fatal(err)
		}
	}
	report, err := CopyStore(ctx, from, t.TempDir(), CopyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range report.Kinds {
		if c.Kind == storage.KindFlow && (c.Copied != 1 || c.Target != 1) {
			t.Fatalf("flows: %+v, want the live one copied and not the expired one", c)
		}
	}
}
