package caddymodule

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/internal/testport"
)

// brokerLogEntry is a log line with the fields the broker's warnings carry.
type brokerLogEntry struct {
	Level  string `json:"level"`
	Msg    string `json:"msg"`
	Source string `json:"source"`
	Error  string `json:"error"`
}

func readBrokerLog(t *testing.T, file string) []brokerLogEntry {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var entries []brokerLogEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e brokerLogEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		entries = append(entries, e)
	}
	return entries
}

// healthzShows polls /healthz until it contains want: the broker is
// checked in the background once the server has started.
func healthzShows(t *testing.T, g *gateway, want string) string {
	t.Helper()
	var body string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(g.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		body = readAll(resp)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/healthz answered %d:\n%s", resp.StatusCode, body)
		}
		if strings.Contains(body, want) {
			return body
		}
	}
	t.Fatalf("/healthz never showed %q:\n%s", want, body)
	return ""
}

func readAll(resp *http.Response) string {
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// switchableBroker serves the broker's metadata, or garbage, or a 503.
type switchableBroker struct {
	mu   sync.Mutex
	body []byte
	code int
}

func (s *switchableBroker) set(code int, body []byte) {
	s.mu.Lock()
	s.code, s.body = code, body
	s.mu.Unlock()
}

func (s *switchableBroker) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w.WriteHeader(s.code)
	_, _ = w.Write(s.body)
}

// While the broker's metadata cannot be loaded, our own metadata is
// served (and valid), the operator reads one warning at start naming the
// source and the reason, /healthz says so, and Login eHerkenning shows a
// plain page. When the broker is back, the next try loads it and all is
// well again.
func TestBrokerDown(t *testing.T) {
	fixture, err := os.ReadFile(filepath.Join("..", "testdata", "broker-metadata-onewelcome-staging.xml"))
	if err != nil {
		t.Fatal(err)
	}
	garbage := &switchableBroker{code: http.StatusOK, body: []byte("<html>Onderhoud</html>")}
	garbageSrv := httptest.NewServer(garbage)
	defer garbageSrv.Close()
	unavailable := &switchableBroker{code: http.StatusServiceUnavailable, body: []byte("down")}
	unavailableSrv := httptest.NewServer(unavailable)
	defer unavailableSrv.Close()
	closed := fmt.Sprintf("http://127.0.0.1:%d/metadata", testport.Pick(t))

	for _, tc := range []struct {
		name, url, reason string
		broker            *switchableBroker
	}{
		{"closed port", closed, "connection refused", nil},
		{"garbage", garbageSrv.URL + "/metadata", "no broker EntityDescriptor", garbage},
		{"503", unavailableSrv.URL + "/metadata", "503", unavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := useClock(t)
			dir := t.TempDir()
			g := startGateway(t, "brokerdown.caddyfile", gatewayParams{Storage: dir + "/store", Extra: tc.url})
			resp, err := http.Get(g.URL + "/eherkenning/metadata")
			if err != nil {
				t.Fatal(err)
			}
			md := readAll(resp)
			if resp.StatusCode != http.StatusOK || !strings.Contains(md, "EntityDescriptor") {
				t.Fatalf("our metadata while the broker is down: %d\n%s", resp.StatusCode, md)
			}
			validateMetadata(t, []byte(md))

			health := healthzShows(t, g, "broker: unavailable")
			if !strings.HasPrefix(health, "degraded\n") {
				t.Errorf("/healthz does not say it is degraded:\n%s", health)
			}

			g.addAccount(testEmail, "Jan", testPassword)
			b := g.newBrowser()
			b.login(testEmail, testPassword)
			resp, body := b.submit("/eherkenning", "/eherkenning/start", url.Values{})
			expectStatus(t, resp, body, http.StatusServiceUnavailable)
			if !strings.Contains(body, "niet bereikbaar") {
				t.Fatalf("no plain page for a broker that is down:\n%s", body)
			}
			// A retry that fails again is no news for the log.
			clk.Add(5 * time.Second)
			resp, body = b.submit("/eherkenning", "/eherkenning/start", url.Values{})
			expectStatus(t, resp, body, http.StatusServiceUnavailable)

			var warnings []brokerLogEntry
			for _, e := range readBrokerLog(t, dir+"/store-caddy.log") {
				if strings.Contains(e.Msg, "broker's metadata cannot be loaded") {
					warnings = append(warnings, e)
				}
			}
			if len(warnings) != 1 || warnings[0].Level != "warn" || warnings[0].Source != tc.url || !strings.Contains(warnings[0].Error, tc.reason) {
				t.Fatalf("want one warning naming %s and %q, got %+v", tc.url, tc.reason, warnings)
			}

			if tc.broker == nil {
				return
			}
			tc.broker.set(http.StatusOK, fixture)
			clk.Add(5 * time.Second)
			resp, body = b.submit("/eherkenning", "/eherkenning/start", url.Values{})
			expectStatus(t, resp, body, http.StatusOK)
			if !strings.Contains(body, "eh01.staging.iwelcome.nl") {
				t.Fatalf("the login did not go on to the broker that is back:\n%s", body)
			}
			if health := healthzShows(t, g, "broker: ok"); !strings.HasPrefix(health, "ok\n") {
				t.Errorf("/healthz after the broker is back:\n%s", health)
			}
			entries := readBrokerLog(t, dir+"/store-caddy.log")
			if !containsBrokerEntry(entries, "broker's metadata is loaded again") {
				t.Error("the log does not say the broker's metadata is loaded again")
			}
		})
	}
}

func containsBrokerEntry(entries []brokerLogEntry, msg string) bool {
	for _, e := range entries {
		if strings.Contains(e.Msg, msg) {
			return true
		}
	}
	return false
}

// validateMetadata checks our metadata against the SAML metadata schema
// with xmllint (Debian package libxml2-utils), which the test needs.
func validateMetadata(t *testing.T, md []byte) {
	t.Helper()
	bin, err := exec.LookPath("xmllint")
	if err != nil {
		t.Fatal("xmllint is required for schema validation: apt-get install libxml2-utils")
	}
	f := filepath.Join(t.TempDir(), "metadata.xml")
	if err := os.WriteFile(f, md, 0o600); err != nil {
		t.Fatal(err)
	}
	schema := filepath.Join("..", "testdata", "xsd", "saml-schema-metadata-2.0.xsd")
	if out, err := exec.Command(bin, "--noout", "--nonet", "--schema", schema, f).CombinedOutput(); err != nil {
		t.Fatalf("our metadata does not validate: %v\n%s\n%s", err, out, md)
	}
}
