package eherkenning

import (
	"bytes"
	"context"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beevik/etree"
)

// fixtureNow lies before the fixture certificate's expiry (2021-05-21).
var fixtureNow = time.Date(2020, 6, 1, 12, 0, 0, 0, time.UTC)

const fixtureEntityID = "urn:etoegang:HM:00000003520354760000:entities:9632"

func readFixture(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "broker-metadata-onewelcome-staging.xml"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBrokerMetadataFixture loads a real broker's published metadata (an
// EntitiesDescriptor signed as a whole, KeyName beside the certificate) and
// picks its endpoints.
func TestBrokerMetadataFixture(t *testing.T) {
	raw := readFixture(t)
	m, err := parseBrokerMetadata(raw, MetadataSource{}, fixtureNow)
	if err != nil {
		t.Fatal(err)
	}
	if m.entityID != fixtureEntityID || !m.wantsSigned || len(m.signing) != 1 {
		t.Fatalf("metadata %+v", m)
	}
	if !m.signing[0].hasName("e6e04e0a22bbc8a036a8a243abc9655e92907f73a4ba5a2ad28485ec3f4c82d1") {
		t.Fatalf("KeyName not read: %v", m.signing[0].names)
	}
	for _, b := range []string{BindingHTTPArtifact, BindingHTTPPost, BindingHTTPRedirect} {
		if m.sso[b] != "https://eh01.staging.iwelcome.nl/broker/sso/1.13" {
			t.Errorf("SSO %s = %q", b, m.sso[b])
		}
	}
	for _, idx := range []int{0, 1, 7} {
		if got := arsLocation(m.ars, idx); got != "https://eh02.staging.iwelcome.nl/broker/ars/1.13" {
			t.Errorf("ARS for index %d = %q", idx, got)
		}
	}

	t.Run("signature_verified_with_pinned_certificate", func(t *testing.T) {
		src := MetadataSource{TrustedCerts: []*x509.Certificate{m.signing[0].cert}}
		if _, err := parseBrokerMetadata(raw, src, fixtureNow); err != nil {
			t.Fatal(err)
		}
		if _, err := parseBrokerMetadata(raw, src, time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC)); err == nil {
			t.Fatal("accepted a signature by an expired certificate")
		}
		tampered := bytes.Replace(raw, []byte("eh01.staging.iwelcome.nl/broker/sso"), []byte("eh01.evil.example.nl/broker/sso"), 1)
		if _, err := parseBrokerMetadata(tampered, src, fixtureNow); err == nil {
			t.Fatal("accepted tampered metadata")
		}
		other := keys(t)["attacker"].cert
		if _, err := parseBrokerMetadata(raw, MetadataSource{TrustedCerts: []*x509.Certificate{other}}, fixtureNow); err == nil {
			t.Fatal("accepted metadata signed by another key")
		}
	})

	t.Run("service_provider_uses_it", func(t *testing.T) {
		k := keys(t)
		for _, tc := range []struct {
			binding, prefix string
		}{
			{"", "https://eh01.staging.iwelcome.nl/broker/sso/1.13"},
			{BindingHTTPRedirect, "https://eh01.staging.iwelcome.nl/broker/sso/1.13?SAMLRequest="},
		} {
			sp, err := New(Config{
				EntityID: testEntityID, ACSURL: "https://wij.example.nl/eherkenning/acs",
				SigningKey: k["sp-sign"].key, SigningCert: k["sp-sign"].cert,
				EncryptionKey: k["sp-enc"].key, EncryptionCert: k["sp-enc"].cert,
				BrokerMetadata: MetadataSource{XML: raw}, ServiceID: testServiceID, ServiceUUID: testServiceUUID,
				RequestBinding: tc.binding, Now: func() time.Time { return fixtureNow },
			}, newMemStore())
			if err != nil {
				t.Fatal(err)
			}
			start, err := sp.StartLogin(context.Background(), "a", "b", "/")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(start.URL, tc.prefix) || sp.BrokerEntityID() != fixtureEntityID {
				t.Fatalf("binding %q: %+v", tc.binding, start)
			}
		}
	})
}

// TestBrokerMetadataRejected refuses metadata the SP cannot use.
func TestBrokerMetadataRejected(t *testing.T) {
	raw := readFixture(t)
	cases := map[string][]byte{
		"doctype":          append([]byte("<!DOCTYPE x [<!ENTITY a \"b\">]>"), raw[bytes.IndexByte(raw, '>')+1:]...),
		"no_idp":           bytes.ReplaceAll(raw, []byte("IDPSSODescriptor"), []byte("XDPSSODescriptor")),
		"expired":          bytes.Replace(raw, []byte(`cacheDuration="P7D"`), []byte(`validUntil="2019-01-01T00:00:00Z"`), 1),
		"no_certificate":   bytes.ReplaceAll(raw, []byte("X509Data"), []byte("X509Nope")),
		"not_xml":          []byte("not xml"),
		"entity_not_found": raw,
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			src := MetadataSource{}
			if name == "entity_not_found" {
				src.EntityID = "urn:etoegang:HM:00000000000000000000:entities:1"
			}
			if _, err := parseBrokerMetadata(b, src, fixtureNow); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// TestBrokerMetadataRefresh reloads metadata from a URL and keeps the last
// good copy when a reload fails.
func TestBrokerMetadataRefresh(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	var mu sync.Mutex
	body, status := h.sim.Metadata(), http.StatusOK
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		mu.Lock()
		defer mu.Unlock()
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	cfg := h.cfg
	cfg.BrokerMetadata = MetadataSource{URL: srv.URL, RefreshInterval: time.Hour}
	cfg.Now = func() time.Time { return time.Unix(0, clock.Load()) }
	sp, err := New(cfg, h.store)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	status, body = http.StatusInternalServerError, []byte("down")
	mu.Unlock()
	if err := sp.RefreshMetadata(context.Background()); err == nil {
		t.Fatal("a failed refresh reported success")
	}
	if sp.BrokerEntityID() != h.sim.EntityID() {
		t.Fatal("the last good copy was dropped")
	}
	clock.Add(int64(2 * time.Hour))
	_, _ = sp.metadata(context.Background())
	deadline := time.Now().Add(5 * time.Second)
	for fetches.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for sp.refreshing.Load() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if fetches.Load() != 3 || sp.BrokerEntityID() != h.sim.EntityID() {
		t.Fatalf("background refresh: %d fetches, entity %q", fetches.Load(), sp.BrokerEntityID())
	}
	mu.Lock()
	status, body = http.StatusOK, readFixture(t)
	mu.Unlock()
	if err := sp.RefreshMetadata(context.Background()); err != nil {
		t.Fatal(err)
	}
	if sp.BrokerEntityID() != fixtureEntityID {
		t.Fatalf("refresh did not replace the metadata: %q", sp.BrokerEntityID())
	}
}

// xmllint validates a document against one of the schemas in the
// top-level testdata/xsd.
// It needs xmllint (Debian package libxml2-utils); the test fails without
// it, because schema validity is a requirement.
func xmllint(t *testing.T, schema string, doc []byte) {
	t.Helper()
	bin, err := exec.LookPath("xmllint")
	if err != nil {
		t.Fatal("xmllint is required for schema validation: apt-get install libxml2-utils")
	}
	f := filepath.Join(t.TempDir(), "doc.xml")
	if err := os.WriteFile(f, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--noout", "--nonet", "--schema", filepath.Join("..", "..", "testdata", "xsd", schema), f).CombinedOutput()
	if err != nil {
		t.Fatalf("%s does not validate: %v\n%s\n%s", schema, err, out, doc)
	}
}

// TestGeneratedXMLValidates validates our metadata, catalogue,
// AuthnRequest (with and without RequestedAuthnContext) and ArtifactResolve
// against the official XSDs, and checks the profile's extra rules on the
// metadata.
func TestGeneratedXMLValidates(t *testing.T) {
	for _, same := range []bool{false, true} {
		h := newHarness(t, harnessOpts{sameKeyPair: same, responseBinding: map[bool]string{true: BindingHTTPPost}[same]})
		md, err := h.sp.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		xmllint(t, "saml-schema-metadata-2.0.xsd", md)
		s := string(md)
		for _, bad := range []string{"NameIDFormat", "rsa-sha1", "xmldsig#sha1", "validUntil"} {
			if strings.Contains(s, bad) {
				t.Errorf("metadata contains %s", bad)
			}
		}
		for _, want := range []string{`AuthnRequestsSigned="true"`, `WantAssertionsSigned="true"`, "<ds:KeyName>", `Binding="` + BindingHTTPArtifact + `"`, `<md:RequestedAttribute Name="` + testServiceID + `"`, `index="9052" isDefault="true"`} {
			if !strings.Contains(s, want) {
				t.Errorf("metadata lacks %s", want)
			}
		}
		if _, err := parseSignedOwn(md, h.sp); err != nil {
			t.Errorf("metadata signature: %v", err)
		}

		cat, err := h.sp.ServiceCatalogue(CatalogueOptions{
			Version:                 "urn:etoegang:1.13:service-catalogue:T:1",
			BrokerOIN:               "00000003520354760000",
			OrganizationDisplayName: LocalizedText{NL: "Stichting Wij Techniek", EN: "Stichting Wij Techniek"},
			ServiceDefinitionUUID:   "5a1b3c4d-0000-4000-8000-00000000d001",
			ServiceName:             LocalizedText{NL: "Verificatie Wij Techniek account", EN: "Wij Techniek account verification"},
			ServiceDescription:      LocalizedText{NL: "Koppel uw organisatie aan uw account.", EN: "Link your organisation to your account."},
			ServiceURL:              LocalizedText{NL: "https://wij.example.nl/"},
			PrivacyPolicyURL:        LocalizedText{NL: "https://wij.example.nl/privacy"},
			AllowBranchRestriction:  true,
		})
		if err != nil {
			t.Fatal(err)
		}
		xmllint(t, "eherkenning-service-catalogue-1.13.xsd", cat)
		if _, err := parseSignedOwn(cat, h.sp); err != nil {
			t.Errorf("catalogue signature: %v", err)
		}

		start := h.start(t)
		xmllint(t, "saml-schema-protocol-2.0.xsd", []byte(decodeField(t, start, "SAMLRequest")))
		withContext := h.cfg
		withContext.RequestedAuthnContext = true
		sp, err := New(withContext, h.store)
		if err != nil {
			t.Fatal(err)
		}
		contextStart, err := sp.StartLogin(context.Background(), "a", "b", "/")
		if err != nil {
			t.Fatal(err)
		}
		xmllint(t, "saml-schema-protocol-2.0.xsd", []byte(decodeField(t, contextStart, "SAMLRequest")))

		var captured []byte
		ars := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			captured, _ = io.ReadAll(r.Body)
			http.Error(w, "no", http.StatusTeapot)
		}))
		h.sp.cfg.ArtifactClient = &http.Client{Transport: redirectTo(ars.URL)}
		raw, err := h.sim.BuildResponse(h.answer(start))
		if err != nil {
			t.Fatal(err)
		}
		art, err := h.sim.IssueArtifact(raw)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = h.artifact(art, start.RelayState)
		ars.Close()
		doc := etree.NewDocument()
		if err := doc.ReadFromBytes(captured); err != nil {
			t.Fatal(err)
		}
		resolve := doc.FindElement("//ArtifactResolve")
		if resolve == nil {
			t.Fatalf("no ArtifactResolve in %s", captured)
		}
		out, err := serialize(resolve.Copy())
		if err != nil {
			t.Fatal(err)
		}
		xmllint(t, "saml-schema-protocol-2.0.xsd", out)
	}
}

// parseSignedOwn verifies a document we signed with our own certificate.
func parseSignedOwn(raw []byte, sp *ServiceProvider) (*etree.Element, error) {
	doc, err := parseXML(raw)
	if err != nil {
		return nil, err
	}
	return verifySigned(doc.Root(), []namedCert{{cert: sp.cfg.SigningCert, names: keyNameAliases(sp.cfg.SigningCert)}}, time.Now())
}

// TestCatalogueOptionsChecked refuses incomplete catalogue options.
func TestCatalogueOptionsChecked(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	if _, err := h.sp.ServiceCatalogue(CatalogueOptions{Version: "v", BrokerOIN: "123"}); err == nil {
		t.Fatal("accepted a short broker OIN")
	}
	if _, err := h.sp.ServiceCatalogue(CatalogueOptions{}); err == nil {
		t.Fatal("accepted empty options")
	}
}

// TestServiceProviderWithoutTheBroker: built without the broker's
// metadata, the SP publishes its own at once; logins fail with
// CodeBrokerUnavailable, retrying at most once per gap, and work once the
// broker's metadata can be loaded.
func TestServiceProviderWithoutTheBroker(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	var mu sync.Mutex
	body, status := []byte("down"), http.StatusServiceUnavailable
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		mu.Lock()
		defer mu.Unlock()
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	cfg := h.cfg
	cfg.BrokerMetadata = MetadataSource{URL: srv.URL}
	cfg.Now = func() time.Time { return time.Unix(0, clock.Load()) }
	if _, err := New(cfg, h.store); err == nil {
		t.Fatal("New accepted a broker whose metadata cannot be loaded")
	}
	fetches.Store(0)
	sp, err := NewWithoutBrokerMetadata(cfg, h.store)
	if err != nil {
		t.Fatal(err)
	}
	md, err := sp.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	xmllint(t, "saml-schema-metadata-2.0.xsd", md)
	if st := sp.BrokerStatus(); st.Err != nil || !st.LoadedAt.IsZero() || st.Source != srv.URL {
		t.Fatalf("status before any load: %+v", st)
	}

	for range 2 {
		_, err = sp.StartLogin(context.Background(), "a", "b", "/")
		wantCode(t, err, CodeBrokerUnavailable)
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("%d fetches within the retry gap, want 1", n)
	}
	if st := sp.BrokerStatus(); st.Err == nil || !st.LoadedAt.IsZero() || st.FailingSince.IsZero() {
		t.Fatalf("status while the broker is down: %+v", st)
	}

	mu.Lock()
	status, body = http.StatusOK, h.sim.Metadata()
	mu.Unlock()
	clock.Add(int64(brokerRetryGap))
	if _, err := sp.StartLogin(context.Background(), "a", "b", "/"); err != nil {
		t.Fatalf("the broker is back, the login is not: %v", err)
	}
	if st := sp.BrokerStatus(); st.Err != nil || st.LoadedAt.IsZero() || !st.FailingSince.IsZero() || sp.BrokerEntityID() != h.sim.EntityID() {
		t.Fatalf("status after the broker came back: %+v", st)
	}
}
