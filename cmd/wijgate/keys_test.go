package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/eherkenning"
	"github.com/wijtechniek/wijgate/internal/testport"
)

// TestEHerkenningKeysCommands runs `wijgate eherkenning keys` against a
// real server and against its store with the server stopped: a
// PKIoverheid-style pair from files is checked and published as next,
// activation waits for the minimum unless forced, retirement works
// offline, and the server started again publishes what the store says.
func TestEHerkenningKeysCommands(t *testing.T) {
	dir := t.TempDir()
	site, admin := testport.Addr(t), testport.Addr(t)
	storage := filepath.Join(dir, "store")
	writeFile(t, filepath.Join(dir, "Caddyfile"), fmt.Sprintf(`{
	admin %[1]s
	auto_https off
	persist_config off
	wijgate {
		storage %[2]s
		portal_url http://%[3]s
		mail {
			outbox %[4]s
		}
		eherkenning {
			entity_id urn:etoegang:DV:00000009999999999999:entities:9001
			service_id urn:etoegang:DV:00000009999999999999:services:9001
			service_uuid 6a1f3b52-6b55-4f0e-9c43-2d7e8f1a0b90
			broker_metadata http://%[3]s/ehsim/metadata
		}
	}
}
http://%[3]s {
	wijgate portal
}
`, admin, storage, site, filepath.Join(dir, "outbox")))
	keys := func(args ...string) (string, error) {
		return runIn(t, dir, "", nil, append([]string{"eherkenning", "keys"}, args...)...)
	}

	out, err := keys("list")
	if err == nil || !strings.Contains(out, "start the server once") {
		t.Fatalf("list on a store that never served: %v\n%s", err, out)
	}

	stop := startServer(t, dir, nil, admin, "run", "--config", "Caddyfile")
	out, err = keys("list")
	if err != nil || strings.Count(out, "current") != 1 || strings.Contains(out, "no server answered") {
		t.Fatalf("list through the server: %v\n%s", err, out)
	}
	current := strings.Fields(strings.Split(out, "\n")[1])[1]

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "new.crt"), filepath.Join(dir, "new.key")
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})))
	writeFile(t, certFile, selfSigned(t, key, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour)))
	out, err = keys("add", "--cert", certFile, "--key", keyFile)
	if err == nil || !strings.Contains(out, "the server at "+admin+": eherkenning: the certificate expired on") {
		t.Fatalf("an expired certificate: %v\n%s", err, out)
	}
	out, err = keys("add", "--cert", certFile)
	if err == nil || !strings.Contains(out, "give both --cert and --key") {
		t.Fatalf("a certificate without its key: %v\n%s", err, out)
	}
	good := selfSigned(t, key, time.Now().Add(-time.Hour), time.Now().AddDate(3, 0, 0))
	writeFile(t, certFile, good)
	out, err = keys("add", "--cert", certFile, "--key", keyFile)
	block, _ := pem.Decode([]byte(good))
	cert, _ := x509.ParseCertificate(block.Bytes)
	next := eherkenning.KeyName(cert)
	if err != nil || roleIn(out, next) != "next" || roleIn(out, current) != "current" {
		t.Fatalf("add from files: %v\n%s", err, out)
	}
	if md := metadata(t, site); !strings.Contains(md, current) || !strings.Contains(md, next) {
		t.Fatalf("the metadata does not publish both keys:\n%s", md)
	}

	out, err = keys("activate")
	if err == nil || !strings.Contains(out, "not been published long enough") || !strings.Contains(out, "--force") {
		t.Fatalf("activate at once: %v\n%s", err, out)
	}
	out, err = keys("activate", "--force")
	if err != nil || roleIn(out, next) != "current" || roleIn(out, current) != "old" {
		t.Fatalf("activate --force: %v\n%s", err, out)
	}
	stop()

	out, err = keys("retire")
	if err != nil || !strings.Contains(out, "using the store") || strings.Contains(out, current) || roleIn(out, next) != "current" {
		t.Fatalf("retire with the server stopped: %v\n%s", err, out)
	}
	out, err = keys("retire")
	if err == nil || !strings.Contains(out, "no old key to retire") {
		t.Fatalf("retire twice: %v\n%s", err, out)
	}
	startServer(t, dir, nil, admin, "run", "--config", "Caddyfile")
	if md := metadata(t, site); strings.Contains(md, current) || !strings.Contains(md, next) {
		t.Fatalf("after a restart the metadata is not the stored set's:\n%s", md)
	}
}

// roleIn is the role `keys list` shows for the key with this fingerprint.
func roleIn(out, fingerprint string) string {
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[1] == fingerprint {
			return f[0]
		}
	}
	return ""
}

func metadata(t *testing.T, site string) string {
	t.Helper()
	return get(t, "http://"+site+"/eherkenning/metadata")
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// selfSigned is a PEM certificate for key, valid in [from, until).
func selfSigned(t *testing.T, key *rsa.PrivateKey, from, until time.Time) string {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "wijgate test PKIo"},
		NotBefore: from, NotAfter: until}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// TestTokenKeysCommands: `wijgate token keys` shows the identity-token
// keys and rotates them through a running server, which then publishes
// the new next key in its JWKS; a second rotation within two minutes is
// refused; with the server stopped the store's set is listed.
func TestTokenKeysCommands(t *testing.T) {
	dir := t.TempDir()
	site, admin := testport.Addr(t), testport.Addr(t)
	writeFile(t, filepath.Join(dir, "Caddyfile"), fmt.Sprintf(`{
	admin %[1]s
	auto_https off
	persist_config off
	wijgate {
		storage %[2]s
		mail {
			outbox %[3]s
		}
	}
}
http://%[4]s {
	wijgate portal
}
`, admin, filepath.Join(dir, "store"), filepath.Join(dir, "outbox"), site))
	tokenKeys := func(args ...string) (string, error) {
		return runIn(t, dir, "", nil, append([]string{"token", "keys"}, args...)...)
	}
	stop := startServer(t, dir, nil, admin, "run", "--config", "Caddyfile")
	out, err := tokenKeys("list")
	if err != nil || len(strings.Split(strings.TrimSpace(out), "\n")) != 3 {
		t.Fatalf("list: %v\n%s", err, out)
	}
	var current, next string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "current" {
			current = f[1]
		} else if len(f) > 1 && f[0] == "next" {
			next = f[1]
		}
	}
	out, err = tokenKeys("rotate")
	if err != nil || roleIn(out, next) != "current" || roleIn(out, current) != "previous" {
		t.Fatalf("rotate: %v\n%s", err, out)
	}
	var newNext string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "next" {
			newNext = f[1]
		}
	}
	if jwks := get(t, "http://"+site+"/.well-known/jwks.json"); !strings.Contains(jwks, newNext) || !strings.Contains(jwks, current) {
		t.Fatalf("the JWKS after the rotation does not publish the new next key and the previous one:\n%s", jwks)
	}
	out, err = tokenKeys("rotate")
	if err == nil || !strings.Contains(out, "published too recently") {
		t.Fatalf("a second rotation at once: %v\n%s", err, out)
	}
	stop()
	out, err = tokenKeys("list")
	if err != nil || !strings.Contains(out, "using the store") || roleIn(out, next) != "current" || roleIn(out, newNext) != "next" {
		t.Fatalf("list with the server stopped: %v\n%s", err, out)
	}
}
