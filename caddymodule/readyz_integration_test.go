package caddymodule

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/wijtechniek/wijgate/caddymodule/internal/tmpfs"
)

// readyzAnswer is /readyz's JSON as a client reads it.
type readyzAnswer struct {
	Status string `json:"status"`
	Checks []struct {
		Name     string         `json:"name"`
		Critical bool           `json:"critical"`
		OK       bool           `json:"ok"`
		Detail   string         `json:"detail"`
		Facts    map[string]any `json:"facts"`
	} `json:"checks"`
}

func (g *gateway) readyz() (int, readyzAnswer) {
	g.t.Helper()
	resp, err := http.Get(g.URL + "/readyz")
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	var a readyzAnswer
	if err := jsonDecode(resp, &a); err != nil {
		g.t.Fatalf("/readyz: %v", err)
	}
	return resp.StatusCode, a
}

// check returns the named check, failing the test without it.
func (a readyzAnswer) check(t *testing.T, name string) (ok bool, detail string, facts map[string]any) {
	t.Helper()
	for _, c := range a.Checks {
		if c.Name == name {
			return c.OK, c.Detail, c.Facts
		}
	}
	t.Fatalf("/readyz has no %s check: %+v", name, a)
	return false, "", nil
}

// writeExpiringPair writes a service provider key pair whose certificate
// expires at notAfter.
func writeExpiringPair(t *testing.T, notAfter time.Time) (certFile, keyFile string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "wijgate expiring"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "sp.crt"), filepath.Join(dir, "sp.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestReadyzReportsCertificatesAndMail: a signing certificate that
// expires in 10 days and a mail relay that is down make /readyz degraded
// (200: the guarded apps still work), show in the expiry metric and in
// the mail counter, and the log warns of the certificate once a day.
func TestReadyzReportsCertificatesAndMail(t *testing.T) {
	clk := useClock(t)
	// Nine days and 23 hours left: days_left 9.
	notAfter := clk.Now().Add(10*24*time.Hour - time.Hour).Truncate(time.Second)
	certFile, keyFile := writeExpiringPair(t, notAfter)
	g := startGateway(t, "readyz.caddyfile", gatewayParams{Extra: fmt.Sprintf("signing_cert %s\n\t\t\tsigning_key %s", certFile, keyFile)})
	g.addAccount(testEmail, testName, testPassword)

	var answer readyzAnswer
	var status int
	// The broker's metadata is loaded by the watch that starts with the
	// server.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if status, answer = g.readyz(); len(answer.Checks) == 4 {
			if _, detail, _ := answer.check(t, "broker_metadata"); detail == "loaded" || time.Now().After(deadline) {
				break
			}
		}
	}
	if status != http.StatusOK || answer.Status != "degraded" {
		t.Fatalf("/readyz with an expiring certificate: %d %+v", status, answer)
	}
	if ok, _, _ := answer.check(t, "storage"); !ok {
		t.Errorf("storage not ok: %+v", answer)
	}
	if ok, detail, facts := answer.check(t, "broker_metadata"); !ok || facts["age_seconds"] == nil {
		t.Errorf("broker metadata: %v %s %v", ok, detail, facts)
	}
	ok, detail, facts := answer.check(t, "certificates")
	sp, _ := facts["sp_signing"].(map[string]any)
	if ok || detail != "expires within 30 days: sp_signing, sp_encryption" || sp == nil || sp["days_left"] != float64(9) {
		t.Errorf("certificates: %v %q %v", ok, detail, facts)
	}
	if _, hasBroker := facts["broker_signing"]; !hasBroker {
		t.Errorf("no broker certificate: %v", facts)
	}
	metrics := g.scrape()
	if got := metrics[`wijgate_certificate_expiry_timestamp_seconds{certificate="sp_signing"}`]; got != float64(notAfter.Unix()) {
		t.Errorf("sp_signing expiry metric %v, want %d", got, notAfter.Unix())
	}
	if metrics[`wijgate_certificate_expiry_timestamp_seconds{certificate="broker_signing"}`] == 0 {
		t.Error("no broker_signing expiry metric")
	}

	// The warning: once when the watch first looks, not again the same
	// day, again the next.
	v, err := caddy.ActiveContext().App("wijgate")
	if err != nil {
		t.Fatal(err)
	}
	certs := v.(*App).certificates
	logFile := g.Storage + ".log"
	warnings := func() int {
		n := 0
		for _, e := range waitForAuditEntries(t, logFile, 0) {
			if strings.Contains(e["msg"], "expires soon") && e["certificate"] == "sp_signing" {
				n++
			}
		}
		return n
	}
	for deadline := time.Now().Add(5 * time.Second); warnings() == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
	}
	if n := warnings(); n != 1 {
		t.Fatalf("%d warnings for sp_signing when the server started, want 1", n)
	}
	certs.warn()
	clk.Add(23 * time.Hour)
	certs.warn()
	if n := warnings(); n != 1 {
		t.Errorf("%d warnings for sp_signing within a day, want 1", n)
	}
	clk.Add(time.Hour)
	certs.warn()
	if n := warnings(); n != 2 {
		t.Errorf("%d warnings for sp_signing after a day, want 2", n)
	}

	// A mail relay that is down: the code is not sent, /readyz says so.
	before := g.scrape()
	g.SMTP.Stop()
	b := g.newBrowser()
	b.resetAction("send", "email", testEmail)
	status, answer = g.readyz()
	if ok, detail, facts := answer.check(t, "mail"); ok || !strings.Contains(detail, "could not take") || facts["last_at"] == nil {
		t.Errorf("mail with the relay down: %v %q %v", ok, detail, facts)
	}
	if status != http.StatusOK || answer.Status != "degraded" {
		t.Errorf("/readyz with the relay down: %d %s", status, answer.Status)
	}
	expectMoved(t, before, g.scrape(), map[string]float64{
		`wijgate_mail_messages_total{result="unavailable"}`: 1,
	})
	raw, _ := json.Marshal(answer)
	if strings.Contains(string(raw), testEmail) {
		t.Errorf("/readyz shows an address: %s", raw)
	}

	g.SMTP.Start()
	before = g.scrape()
	g.newBrowser().resetAction("send", "email", testEmail)
	g.SMTP.WaitFor(t, testEmail, 5*time.Second)
	if _, answer = g.readyz(); true {
		if ok, detail, _ := answer.check(t, "mail"); !ok || detail != "the last message was sent" {
			t.Errorf("mail with the relay back: %v %q", ok, detail)
		}
	}
	expectMoved(t, before, g.scrape(), map[string]float64{`wijgate_mail_messages_total{result="sent"}`: 1})
}

// TestReadyzNotReadyWhenTheStorageIsFull: a store that takes no writes
// takes the server out of rotation (503), and back when space returns.
func TestReadyzNotReadyWhenTheStorageIsFull(t *testing.T) {
	mnt := tmpfs.Mount(t, 64<<20)
	g := startGateway(t, "diskfull.caddyfile", gatewayParams{Storage: filepath.Join(mnt, "store"), Extra: filepath.Join(t.TempDir(), "caddy.log")})
	if status, answer := g.readyz(); status != http.StatusOK || answer.Status != "ready" {
		t.Fatalf("/readyz before the disk filled: %d %+v", status, answer)
	}
	release := tmpfs.Fill(t, mnt, 0)
	status, answer := g.readyz()
	if ok, detail, _ := answer.check(t, "storage"); status != http.StatusServiceUnavailable || answer.Status != "not_ready" || ok {
		t.Fatalf("/readyz on a full disk: %d %s %v %q", status, answer.Status, ok, detail)
	}
	release()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if status, _ = g.readyz(); status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz stays %d with space again", status)
		}
	}
}
