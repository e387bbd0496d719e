package caddymodule

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/eherkenning"
)

var (
	publishedKeyName = regexp.MustCompile(`<md:KeyDescriptor><ds:KeyInfo><ds:KeyName>([0-9a-f]{64})</ds:KeyName>`)
	samlRequestField = regexp.MustCompile(`name="SAMLRequest" value="([^"]+)"`)
	signedKeyName    = regexp.MustCompile(`<ds:KeyName>([0-9a-f]{64})</ds:KeyName>`)
)

// publishedKeys returns the KeyNames in our SP metadata, in order.
func (g *gateway) publishedKeys() []string {
	g.t.Helper()
	resp, body := g.newBrowser().do(http.MethodGet, "/eherkenning/metadata", nil)
	expectStatus(g.t, resp, body, http.StatusOK)
	var out []string
	for _, m := range publishedKeyName.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

// authnRequestKey starts an eHerkenning login and returns the KeyName
// its AuthnRequest is signed with (the POST binding's form).
func (b *browser) authnRequestKey() string {
	b.t.Helper()
	resp, body := b.post("/eherkenning/start", url.Values{})
	for resp.StatusCode >= 300 && resp.StatusCode < 400 {
		next, _ := resp.Request.URL.Parse(resp.Header.Get("Location"))
		resp, body = b.page(next.String())
	}
	m := samlRequestField.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatalf("no SAMLRequest form: %d\n%s", resp.StatusCode, body)
	}
	raw, err := base64.StdEncoding.DecodeString(htmlUnescape(m[1]))
	if err != nil {
		b.t.Fatal(err)
	}
	k := signedKeyName.FindStringSubmatch(string(raw))
	if k == nil {
		b.t.Fatalf("the AuthnRequest names no signing key:\n%s", raw)
	}
	return k[1]
}

// keyOp calls the key admin API as `wijgate eherkenning keys` does and
// returns the status and the key list or error.
func (g *gateway) keyOp(method, path string, req any) (int, []SPKeySummary, string) {
	g.t.Helper()
	var rd io.Reader
	if req != nil {
		b, _ := json.Marshal(req)
		rd = bytes.NewReader(b)
	}
	r, _ := http.NewRequest(method, g.Admin+path, rd)
	r.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var list []SPKeySummary
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &list); err != nil {
			g.t.Fatalf("%s: %v", body, err)
		}
	}
	return resp.StatusCode, list, string(body)
}

func (b *browser) linksCompany(kvk string) {
	b.t.Helper()
	resp, body := b.verifyAt(kvk, "eh3")
	expectStatus(b.t, resp, body, http.StatusOK)
	if !strings.Contains(body, "Admin account voor") {
		b.t.Fatalf("linking %s did not succeed:\n%s", kvk, body)
	}
}

// TestEHerkenningKeyRollover walks the rollover through the simulator:
// a new key is published before it signs; after activation requests are
// signed with it and the simulator accepts them, while an answer
// encrypted to the old key (the simulator's cached copy of our metadata)
// still decrypts; after retirement such an answer fails with a message
// that says why, and the simulator's fresh copy works again. The stored
// set outlives a restart, whatever pair seeded it.
func TestEHerkenningKeyRollover(t *testing.T) {
	clk := useClock(t)
	storage := filepath.Join(t.TempDir(), "store")
	g := startGateway(t, "rollover.caddyfile", gatewayParams{Storage: storage})
	g.addAccount(testEmail, testName, testPassword)
	b := g.newBrowser()
	b.login(testEmail, testPassword)

	before := g.publishedKeys()
	if len(before) != 1 {
		t.Fatalf("published before the rollover: %v", before)
	}
	oldKey := before[0]
	b.linksCompany("12345678")

	status, list, body := g.keyOp(http.MethodPost, "/wijgate/eherkenning/keys", SPKeyRequest{})
	if status != http.StatusOK || len(list) != 2 || list[1].Role != eherkenning.RoleNext {
		t.Fatalf("add: %d %s", status, body)
	}
	newKey := list[1].Fingerprint
	if got := g.publishedKeys(); len(got) != 2 || got[0] != oldKey || got[1] != newKey {
		t.Fatalf("after add the metadata publishes %v, want the old key then the new one", got)
	}
	if got := b.authnRequestKey(); got != oldKey {
		t.Fatalf("after add the AuthnRequest is signed with %s, not the current key", got)
	}
	// The simulator's copy of our metadata is a minute old: it fetches
	// the one with both keys.
	clk.Add(61 * time.Second)
	b.linksCompany("87654321")

	status, _, body = g.keyOp(http.MethodPost, "/wijgate/eherkenning/keys/activate", SPKeyRequest{})
	if status != http.StatusBadRequest || !strings.Contains(body, "not been published long enough") || !strings.Contains(body, "--force") {
		t.Fatalf("activating a key published a minute ago: %d %s", status, body)
	}
	status, list, body = g.keyOp(http.MethodPost, "/wijgate/eherkenning/keys/activate", SPKeyRequest{Force: true})
	if status != http.StatusOK || list[0].Fingerprint != newKey || list[1].Role != eherkenning.RoleOld {
		t.Fatalf("forced activate: %d %s", status, body)
	}
	if got := g.publishedKeys(); len(got) != 2 || got[0] != newKey || got[1] != oldKey {
		t.Fatalf("after activate the metadata publishes %v, want the new key then the old one", got)
	}
	if got := b.authnRequestKey(); got != newKey {
		t.Fatalf("after activate the AuthnRequest is signed with %s, not the new key", got)
	}
	// Still within the minute: the simulator encrypts to the first key of
	// its cached copy, the old one, and checks our signature against both.
	b.linksCompany("11223344")

	status, list, body = g.keyOp(http.MethodPost, "/wijgate/eherkenning/keys/retire", SPKeyRequest{})
	if status != http.StatusOK || len(list) != 1 || list[0].Fingerprint != newKey {
		t.Fatalf("retire: %d %s", status, body)
	}
	if got := g.publishedKeys(); len(got) != 1 || got[0] != newKey {
		t.Fatalf("after retire the metadata publishes %v", got)
	}
	resp, page := b.verifyAt("12345678", "eh3")
	expectStatus(t, resp, page, http.StatusBadRequest)
	logged, err := os.ReadFile(storage + "-caddy.log")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(logged, []byte("eHerkenning answer refused")) || !bytes.Contains(logged, []byte("encrypted to none of our keys")) ||
		!bytes.Contains(logged, []byte("was retired")) {
		t.Fatalf("an answer encrypted to the retired key is not logged clearly:\n%s", logged)
	}
	if !bytes.Contains(logged, []byte("eHerkenning key set changed through the admin API")) || !bytes.Contains(logged, []byte(`"eHerkenning signing key changed","current":"`+newKey+`","before":"`+oldKey+`"`)) {
		t.Fatalf("the key operations are not in the log:\n%s", logged)
	}

	clk.Add(61 * time.Second)
	b.linksCompany("12345678")

	g.restart()
	if got := g.publishedKeys(); len(got) != 1 || got[0] != newKey {
		t.Fatalf("after a restart the metadata publishes %v; the stored set must rule, not the generated pair", got)
	}
}

// TestConfiguredKeyFilesSeedTheStoredSet: key files in the Caddyfile are
// the first current key. After a rollover away from them they are no
// longer in the set, and a server still naming them refuses to start
// with a message that says what to do, rather than publish keys the set
// does not know.
func TestConfiguredKeyFilesSeedTheStoredSet(t *testing.T) {
	dir := t.TempDir()
	key, cert, err := eherkenning.GenerateKeyPair("pkio test")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "sp.crt"), filepath.Join(dir, "sp.key")
	writePEM(t, certFile, "CERTIFICATE", cert.Raw)
	writePEM(t, keyFile, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key))
	storage := filepath.Join(dir, "store")
	files := "signing_cert " + certFile + "\n\t\t\tsigning_key " + keyFile
	g := startGateway(t, "rollover.caddyfile", gatewayParams{Storage: storage, Extra: files})
	if got := g.publishedKeys(); len(got) != 1 || got[0] != eherkenning.KeyName(cert) {
		t.Fatalf("published %v, want the configured certificate", got)
	}
	for _, op := range []struct {
		path string
		req  SPKeyRequest
	}{
		{"/wijgate/eherkenning/keys", SPKeyRequest{}},
		{"/wijgate/eherkenning/keys/activate", SPKeyRequest{Force: true}},
		{"/wijgate/eherkenning/keys/retire", SPKeyRequest{}},
	} {
		if status, _, body := g.keyOp(http.MethodPost, op.path, op.req); status != http.StatusOK {
			t.Fatalf("%s: %d %s", op.path, status, body)
		}
	}
	err = loadGatewayErr(t, "rollover.caddyfile", gatewayParams{Storage: storage, Extra: files})
	if err == nil || !strings.Contains(err.Error(), "is not in the stored key set") || !strings.Contains(err.Error(), "wijgate eherkenning keys add") {
		t.Fatalf("a server naming retired key files: %v", err)
	}
}

func writePEM(t *testing.T, file, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
