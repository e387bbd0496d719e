package eherkenning

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/devmodules/ehsim"
)

// memStore is an in-memory StateStore for tests.
type memStore struct {
	mu       sync.Mutex
	now      func() time.Time
	requests map[string]TrackedRequest
	seen     map[string]time.Time
	parked   map[string]ParkedResult
}

func newMemStore() *memStore {
	return &memStore{now: time.Now, requests: map[string]TrackedRequest{}, seen: map[string]time.Time{}, parked: map[string]ParkedResult{}}
}

func (m *memStore) TrackRequest(_ context.Context, r TrackedRequest) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[r.ID] = r
	return nil
}

func (m *memStore) TakeRequest(_ context.Context, id string) (TrackedRequest, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.requests[id]
	delete(m.requests, id)
	if !ok {
		return TrackedRequest{}, ErrUnknownRequest
	}
	return r, nil
}

func (m *memStore) ParkResult(_ context.Context, key string, p ParkedResult) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.parked[key] = p
	return nil
}

func (m *memStore) TakeParkedResult(_ context.Context, key string) (ParkedResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.parked[key]
	delete(m.parked, key)
	if !ok {
		return ParkedResult{}, ErrUnknownResult
	}
	return p, nil
}

func (m *memStore) MarkAssertionSeen(_ context.Context, key string, until time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.seen[key]; ok && m.now().Before(t) {
		return false, nil
	}
	m.seen[key] = until
	return true, nil
}

type pair struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

// Keys are generated once per test binary: RSA key generation is slow
// under the race detector.
var (
	keysOnce sync.Once
	testKeys map[string]pair
)

func keys(t testing.TB) map[string]pair {
	t.Helper()
	keysOnce.Do(func() {
		testKeys = map[string]pair{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, n := range []string{"sp-sign", "sp-enc", "broker1", "broker2", "other", "attacker"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k, c, err := ehsim.GenerateKeyPair(n)
				if err != nil {
					panic(err)
				}
				mu.Lock()
				testKeys[n] = pair{k, c}
				mu.Unlock()
			}()
		}
		wg.Wait()
	})
	return testKeys
}

const (
	testEntityID    = "urn:etoegang:DV:00000001234567890000:entities:9001"
	testServiceID   = "urn:etoegang:DV:00000001234567890000:services:9052"
	testServiceUUID = "5a1b3c4d-0000-4000-8000-00000000a001"
)

// harness is an SP and a simulator talking over real HTTP servers.
type harness struct {
	sp     *ServiceProvider
	sim    *ehsim.Simulator
	store  *memStore
	spSrv  *httptest.Server
	simSrv *httptest.Server
	acs    string
	cfg    Config
}

type harnessOpts struct {
	requestBinding  string
	responseBinding string
	sameKeyPair     bool
}

func newHarness(t testing.TB, o harnessOpts) *harness {
	t.Helper()
	k := keys(t)
	h := &harness{store: newMemStore()}
	var spMu sync.Mutex
	h.spSrv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		spMu.Lock()
		sp := h.sp
		spMu.Unlock()
		if r.URL.Path != "/metadata" || sp == nil {
			http.NotFound(w, r)
			return
		}
		md, err := sp.Metadata()
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		_, _ = w.Write(md)
	}))
	t.Cleanup(h.spSrv.Close)
	h.simSrv = httptest.NewUnstartedServer(nil)
	h.simSrv.Start()
	t.Cleanup(h.simSrv.Close)
	sim, err := ehsim.New(ehsim.Config{
		BaseURL:            h.simSrv.URL + "/ehsim/",
		SigningKey:         k["broker1"].key,
		SigningCert:        k["broker1"].cert,
		SecondSigningKey:   k["broker2"].key,
		SecondSigningCert:  k["broker2"].cert,
		OtherRecipientCert: k["other"].cert,
		SPMetadataURL:      h.spSrv.URL + "/metadata",
		ServiceUUID:        testServiceUUID,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.sim = sim
	h.simSrv.Config.Handler = sim
	h.acs = h.spSrv.URL + "/acs"
	enc := k["sp-enc"]
	if o.sameKeyPair {
		enc = k["sp-sign"]
	}
	h.cfg = Config{
		EntityID:        testEntityID,
		ACSURL:          h.acs,
		SigningKey:      k["sp-sign"].key,
		SigningCert:     k["sp-sign"].cert,
		EncryptionKey:   enc.key,
		EncryptionCert:  enc.cert,
		BrokerMetadata:  MetadataSource{XML: sim.Metadata()},
		ServiceID:       testServiceID,
		ServiceUUID:     testServiceUUID,
		RequestBinding:  o.requestBinding,
		ResponseBinding: o.responseBinding,
	}
	sp, err := New(h.cfg, h.store)
	if err != nil {
		t.Fatal(err)
	}
	spMu.Lock()
	h.sp = sp
	spMu.Unlock()
	return h
}

// answer is the simulator's default answer to a started login.
func (h *harness) answer(start *LoginStart) ehsim.Answer {
	return ehsim.Answer{
		InResponseTo:     start.RequestID,
		ACSURL:           h.acs,
		SPEntityID:       testEntityID,
		SPEncryptionCert: h.cfg.EncryptionCert,
		ServiceID:        testServiceID,
		ServiceUUID:      testServiceUUID,
		Level:            ehsim.LevelLoA3,
		Company:          ehsim.Company{KvK: "12345678", RSIN: "123456782", Name: "Wij Techniek Demo B.V."},
		Pseudonym:        "S0123456789abcdef",
	}
}

func (h *harness) start(t testing.TB) *LoginStart {
	t.Helper()
	start, err := h.sp.StartLogin(context.Background(), "account-1", "binding-1", "/dashboard")
	if err != nil {
		t.Fatal(err)
	}
	return start
}

// postResponse delivers a SAMLResponse to the ACS by HTTP-POST.
func (h *harness) postResponse(raw []byte, relay string) (*Result, error) {
	form := url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(raw)}, "RelayState": {relay}}
	req := httptest.NewRequest(http.MethodPost, h.acs, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return h.sp.HandleResponse(req)
}

// artifact delivers a SAMLart to the ACS by GET; the SP resolves it at the
// simulator.
func (h *harness) artifact(art, relay string) (*Result, error) {
	v := url.Values{"SAMLart": {art}, "RelayState": {relay}}
	return h.sp.HandleResponse(httptest.NewRequest(http.MethodGet, h.acs+"?"+v.Encode(), nil))
}

var (
	reHidden   = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
	reAction   = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
)

// browse follows the simulator's pages like a person: start, choose a
// provider, pick company and scenario. It returns the final answer as an
// ACS request.
func (h *harness) browse(t *testing.T, start *LoginStart, company, scenario string) *http.Request {
	t.Helper()
	var resp *http.Response
	var err error
	if start.Binding == BindingHTTPPost {
		form := url.Values{}
		for _, f := range start.Fields {
			form.Set(f.Name, f.Value)
		}
		resp, err = noRedirect.PostForm(start.URL, form)
	} else {
		resp, err = noRedirect.Get(start.URL)
	}
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sso: %d %s", resp.StatusCode, body)
	}
	choose := resp.Header.Get("Location")
	resp, err = http.Get(choose)
	if err != nil {
		t.Fatal(err)
	}
	body = readBody(t, resp)
	for _, want := range []string{"SIMULATOR — geen echte eHerkenning", "Kies hoe u wilt inloggen", "U wilt inloggen bij Stichting Wij Techniek voor Verificatie Wij Techniek account. U heeft hiervoor een inlogmiddel nodig van minimaal betrouwbaarheidsniveau EH3.", "Maak een keuze", "Verder"} {
		if !strings.Contains(body, want) {
			t.Fatalf("choose page lacks %q:\n%s", want, body)
		}
	}
	s := regexp.MustCompile(`name="s" value="([^"]+)"`).FindStringSubmatch(body)
	if s == nil {
		t.Fatal("no session on the choose page")
	}
	resp, err = http.Get(h.sim.URL("login?" + url.Values{"s": {s[1]}, "provider": {"Testleverancier Noord"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	if body = readBody(t, resp); !strings.Contains(body, "SIMULATOR — geen echte eHerkenning") {
		t.Fatalf("login page lacks the banner:\n%s", body)
	}
	form := url.Values{"s": {s[1]}, "company": {company}, "scenario": {scenario}, "person": {"Jan"}}
	if typed := strings.SplitN(company, ":", 3); len(typed) == 3 && typed[0] == "other" {
		form.Set("company", "other")
		form.Set("kvk", typed[1])
		form.Set("name", typed[2])
	}
	resp, err = noRedirect.PostForm(h.sim.URL("login"), form)
	if err != nil {
		t.Fatal(err)
	}
	body = readBody(t, resp)
	switch resp.StatusCode {
	case http.StatusSeeOther:
		return httptest.NewRequest(http.MethodGet, resp.Header.Get("Location"), nil)
	case http.StatusOK:
		action := reAction.FindStringSubmatch(body)
		if action == nil {
			t.Fatalf("no POST form:\n%s", body)
		}
		form = url.Values{}
		for _, m := range reHidden.FindAllStringSubmatch(body, -1) {
			form.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
		}
		req := httptest.NewRequest(http.MethodPost, html.UnescapeString(action[1]), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req
	}
	t.Fatalf("login: %d %s", resp.StatusCode, body)
	return nil
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func wantCode(t *testing.T, err error, want Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want %s", want)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not *Error", err)
	}
	if e.Code != want {
		t.Fatalf("code %s (%v); want %s", e.Code, err, want)
	}
}

func decodeField(t *testing.T, start *LoginStart, name string) string {
	t.Helper()
	for _, f := range start.Fields {
		if f.Name == name {
			b, err := base64.StdEncoding.DecodeString(f.Value)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
	}
	t.Fatalf("no field %s", name)
	return ""
}
