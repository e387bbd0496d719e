package ehsim_test

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // the tests make SHA-1 requests to see them refused
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/wijtechniek/wijgate/caddymodule/eherkenning"
	"github.com/wijtechniek/wijgate/devmodules/ehsim"
)

type pair struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

var (
	keysOnce sync.Once
	keys     map[string]pair
)

func testKeys(t testing.TB) map[string]pair {
	t.Helper()
	keysOnce.Do(func() {
		keys = map[string]pair{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, n := range []string{"sp", "b1", "b2", "other", "attacker"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k, c, err := ehsim.GenerateKeyPair(n)
				if err != nil {
					panic(err)
				}
				mu.Lock()
				keys[n] = pair{k, c}
				mu.Unlock()
			}()
		}
		wg.Wait()
	})
	return keys
}

const spEntity = "urn:etoegang:DV:00000001234567890000:entities:9001"

type env struct {
	sim    *ehsim.Simulator
	sp     *eherkenning.ServiceProvider
	simSrv *httptest.Server
	acs    string
}

// newEnv starts a simulator and an SP that know each other's metadata.
func newEnv(t testing.TB, requestBinding string) *env {
	t.Helper()
	k := testKeys(t)
	e := &env{}
	var mu sync.Mutex
	spSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sp := e.sp
		mu.Unlock()
		if sp == nil {
			http.NotFound(w, r)
			return
		}
		md, _ := sp.Metadata()
		_, _ = w.Write(md)
	}))
	t.Cleanup(spSrv.Close)
	e.simSrv = httptest.NewServer(nil)
	t.Cleanup(e.simSrv.Close)
	sim, err := ehsim.New(ehsim.Config{
		BaseURL: e.simSrv.URL + "/ehsim", SPMetadataURL: spSrv.URL,
		SigningKey: k["b1"].key, SigningCert: k["b1"].cert, SecondSigningKey: k["b2"].key, SecondSigningCert: k["b2"].cert,
		OtherRecipientCert: k["other"].cert, ServiceUUID: "uuid-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	e.sim = sim
	e.simSrv.Config.Handler = sim
	e.acs = spSrv.URL + "/acs"
	sp, err := eherkenning.New(eherkenning.Config{
		EntityID: spEntity, ACSURL: e.acs,
		SigningKey: k["sp"].key, SigningCert: k["sp"].cert, EncryptionKey: k["sp"].key, EncryptionCert: k["sp"].cert,
		BrokerMetadata: eherkenning.MetadataSource{XML: sim.Metadata()},
		ServiceID:      "urn:etoegang:DV:00000001234567890000:services:9052", ServiceUUID: "uuid-1",
		RequestBinding: requestBinding,
	}, nopStore{})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	e.sp = sp
	mu.Unlock()
	return e
}

type nopStore struct{}

func (nopStore) TrackRequest(context.Context, eherkenning.TrackedRequest) error { return nil }
func (nopStore) TakeRequest(context.Context, string) (eherkenning.TrackedRequest, error) {
	return eherkenning.TrackedRequest{}, eherkenning.ErrUnknownRequest
}
func (nopStore) MarkAssertionSeen(context.Context, string, time.Time) (bool, error) { return true, nil }
func (nopStore) ParkResult(context.Context, string, eherkenning.ParkedResult) error {
	return nil
}
func (nopStore) TakeParkedResult(context.Context, string) (eherkenning.ParkedResult, error) {
	return eherkenning.ParkedResult{}, eherkenning.ErrUnknownResult
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (e *env) start(t testing.TB) *eherkenning.LoginStart {
	t.Helper()
	s, err := e.sp.StartLogin(context.Background(), "acct", "bind", "/")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func postRequest(t *testing.T, e *env, xml []byte) *http.Response {
	t.Helper()
	resp, err := noRedirect.PostForm(e.sim.URL("sso"), url.Values{"SAMLRequest": {base64.StdEncoding.EncodeToString(xml)}, "RelayState": {"r"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func field(s *eherkenning.LoginStart, name string) string {
	for _, f := range s.Fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// signedRequest re-signs the SP's AuthnRequest with the given key and
// method, optionally changing it first.
func signedRequest(t *testing.T, e *env, key *rsa.PrivateKey, cert *x509.Certificate, method string, change func(*etree.Element)) []byte {
	t.Helper()
	raw, _ := base64.StdEncoding.DecodeString(field(e.start(t), "SAMLRequest"))
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		t.Fatal(err)
	}
	req := doc.Root()
	for _, s := range req.SelectElements("Signature") {
		req.RemoveChild(s)
	}
	if change != nil {
		change(req)
	}
	if key != nil {
		ctx, err := dsig.NewSigningContext(key, [][]byte{cert.Raw})
		if err != nil {
			t.Fatal(err)
		}
		ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
		if err := ctx.SetSignatureMethod(method); err != nil {
			t.Fatal(err)
		}
		sig, err := ctx.ConstructSignature(req.Copy(), true)
		if err != nil {
			t.Fatal(err)
		}
		req.InsertChildAt(1, sig)
	}
	out, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAuthnRequestChecks: only requests signed with SHA-256 or better by a
// key in the SP's metadata, for the simulator and a known ACS, get through.
func TestAuthnRequestChecks(t *testing.T) {
	e := newEnv(t, "")
	k := testKeys(t)
	cases := []struct {
		name string
		xml  func() []byte
		want int
	}{
		{"signed_sha256", func() []byte {
			return signedRequest(t, e, k["sp"].key, k["sp"].cert, dsig.RSASHA256SignatureMethod, nil)
		}, http.StatusSeeOther},
		{"unsigned", func() []byte { return signedRequest(t, e, nil, nil, "", nil) }, http.StatusBadRequest},
		{"sha1", func() []byte {
			return signedRequest(t, e, k["sp"].key, k["sp"].cert, dsig.RSASHA1SignatureMethod, nil)
		}, http.StatusBadRequest},
		{"other_key", func() []byte {
			return signedRequest(t, e, k["attacker"].key, k["attacker"].cert, dsig.RSASHA256SignatureMethod, nil)
		}, http.StatusBadRequest},
		{"tampered_after_signing", func() []byte {
			b := signedRequest(t, e, k["sp"].key, k["sp"].cert, dsig.RSASHA256SignatureMethod, nil)
			return bytes.Replace(b, []byte(`ForceAuthn="true"`), []byte(`ForceAuthn="false"`), 1)
		}, http.StatusBadRequest},
		{"unknown_acs", func() []byte {
			return signedRequest(t, e, k["sp"].key, k["sp"].cert, dsig.RSASHA256SignatureMethod, func(r *etree.Element) {
				r.CreateAttr("AssertionConsumerServiceURL", "https://evil.example/acs")
			})
		}, http.StatusBadRequest},
		{"wrong_destination", func() []byte {
			return signedRequest(t, e, k["sp"].key, k["sp"].cert, dsig.RSASHA256SignatureMethod, func(r *etree.Element) {
				r.CreateAttr("Destination", "https://other.example/sso")
			})
		}, http.StatusBadRequest},
		{"doctype", func() []byte {
			b := signedRequest(t, e, k["sp"].key, k["sp"].cert, dsig.RSASHA256SignatureMethod, nil)
			return append([]byte(`<!DOCTYPE x [<!ENTITY a "b">]>`), b...)
		}, http.StatusBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := postRequest(t, e, tc.xml()).StatusCode; got != tc.want {
				t.Fatalf("status %d, want %d", got, tc.want)
			}
		})
	}
}

// redirectQuery builds an HTTP-Redirect query for deflated, signed with
// key using sigAlg and hash h (no signature when key is nil).
func redirectQuery(deflated []byte, key *rsa.PrivateKey, sigAlg string, h crypto.Hash) string {
	q := "SAMLRequest=" + url.QueryEscape(base64.StdEncoding.EncodeToString(deflated)) + "&RelayState=r"
	if key == nil {
		return q
	}
	q += "&SigAlg=" + url.QueryEscape(sigAlg)
	hh := h.New()
	hh.Write([]byte(q))
	sig, _ := rsa.SignPKCS1v15(rand.Reader, key, h, hh.Sum(nil))
	return q + "&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig))
}

func deflate(b []byte) []byte {
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.BestCompression)
	_, _ = fw.Write(b)
	_ = fw.Close()
	return buf.Bytes()
}

// TestRedirectBinding: the query signature is required, SHA-1 is refused,
// and a deflate bomb is stopped quickly.
func TestRedirectBinding(t *testing.T) {
	e := newEnv(t, eherkenning.BindingHTTPRedirect)
	k := testKeys(t)
	start := e.start(t)
	u, _ := url.Parse(start.URL)
	deflated, _ := base64.StdEncoding.DecodeString(u.Query().Get("SAMLRequest"))
	cases := []struct {
		name  string
		query string
		want  int
	}{
		{"sp_built", u.RawQuery, http.StatusSeeOther},
		{"unsigned", redirectQuery(deflated, nil, "", 0), http.StatusBadRequest},
		{"sha1", redirectQuery(deflated, k["sp"].key, dsig.RSASHA1SignatureMethod, crypto.SHA1), http.StatusBadRequest},
		{"other_key", redirectQuery(deflated, k["attacker"].key, dsig.RSASHA256SignatureMethod, crypto.SHA256), http.StatusBadRequest},
		{"deflate_bomb", redirectQuery(deflate(make([]byte, 10<<20)), k["sp"].key, dsig.RSASHA256SignatureMethod, crypto.SHA256), http.StatusBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			began := time.Now()
			resp, err := noRedirect.Get(e.sim.URL("sso?" + tc.query))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if d := time.Since(began); d > time.Second {
				t.Fatalf("took %s", d)
			}
		})
	}
}

var reInlineScript = regexp.MustCompile(`<script>|<script [^>]*>[^<]+</script>|\son[a-z]+=`)

// TestPages checks the labels, the language switch and the CSP.
func TestPages(t *testing.T) {
	e := newEnv(t, "")
	resp := postRequest(t, e, mustDecode(field(e.start(t), "SAMLRequest")))
	choose := resp.Header.Get("Location")
	sess := regexp.MustCompile(`s=([0-9a-f]+)`).FindStringSubmatch(choose)[1]
	pages := []struct {
		name, url string
		want      []string
	}{
		{"choose_nl", choose, []string{"SIMULATOR — geen echte eHerkenning", "Kies hoe u wilt inloggen", "Maak een keuze", "Verder", "English"}},
		{"choose_en", e.sim.URL("kies?s=" + sess + "&lang=en"), []string{"SIMULATOR — not real eHerkenning", "Choose how you want to log in", "Nederlands"}},
		{"choose_missing_provider", e.sim.URL("login?s=" + sess), []string{"SIMULATOR — geen echte eHerkenning", "Kies eerst een leverancier."}},
		{"login_nl", e.sim.URL("login?s=" + sess + "&provider=Testleverancier+Zuid"), []string{"SIMULATOR — geen echte eHerkenning", "Testinlog", "12345678", "Geen machtiging", "Niveau te laag (EH2&#43;)", "tweede makelaarcertificaat"}},
		{"login_en", e.sim.URL("login?s=" + sess + "&provider=Testleverancier+Zuid&lang=en"), []string{"SIMULATOR — not real eHerkenning", "Test login", "Success at EH4"}},
		{"unknown_session", e.sim.URL("kies?s=nope"), []string{"SIMULATOR — geen echte eHerkenning", "Er ging iets mis"}},
	}
	for _, p := range pages {
		t.Run(p.name, func(t *testing.T) {
			resp, err := http.Get(p.url)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body := string(b)
			for _, w := range p.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q:\n%s", w, body)
				}
			}
			csp := resp.Header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || reInlineScript.MatchString(body) {
				t.Errorf("CSP %q or inline script in:\n%s", csp, body)
			}
			if resp.Header.Get("Cache-Control") != "no-cache, no-store" {
				t.Error("page is cacheable")
			}
		})
	}
}

func mustDecode(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// TestArtifactResolution: the artifact has the profile's format, the ARS
// wants text/xml and a signed request, the answer is valid against the
// official SAML protocol schema, and each artifact resolves once.
func TestArtifactResolution(t *testing.T) {
	e := newEnv(t, "")
	k := testKeys(t)
	start := e.start(t)
	raw, err := e.sim.BuildResponse(ehsim.Answer{
		InResponseTo: start.RequestID, ACSURL: e.acs, SPEntityID: spEntity, SPEncryptionCert: k["sp"].cert,
		ServiceID: "urn:etoegang:DV:00000001234567890000:services:9052", ServiceUUID: "uuid-1",
		Company: ehsim.Company{KvK: "12345678"}, Pseudonym: "p",
	})
	if err != nil {
		t.Fatal(err)
	}
	art, err := e.sim.IssueArtifact(raw)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := base64.StdEncoding.DecodeString(art)
	src := sha1.Sum([]byte(e.sim.EntityID())) //nolint:gosec // the SourceID definition
	if len(b) != 44 || binary.BigEndian.Uint16(b) != 4 || !bytes.Equal(b[4:24], src[:]) {
		t.Fatalf("artifact %x", b)
	}
	post := func(ct string, body []byte) (int, string) {
		resp, err := http.Post(e.sim.URL("ars"), ct, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(out)
	}
	resolve := func(key *rsa.PrivateKey, cert *x509.Certificate) []byte {
		ar := etree.NewElement("samlp:ArtifactResolve")
		ar.CreateAttr("xmlns:samlp", "urn:oasis:names:tc:SAML:2.0:protocol")
		ar.CreateAttr("xmlns:saml", "urn:oasis:names:tc:SAML:2.0:assertion")
		ar.CreateAttr("ID", "_r1")
		ar.CreateAttr("Version", "2.0")
		ar.CreateAttr("IssueInstant", time.Now().UTC().Format(time.RFC3339))
		ar.CreateElement("saml:Issuer").SetText(spEntity)
		ar.CreateElement("samlp:Artifact").SetText(art)
		if key != nil {
			ctx, _ := dsig.NewSigningContext(key, [][]byte{cert.Raw})
			ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
			sig, err := ctx.ConstructSignature(ar.Copy(), true)
			if err != nil {
				t.Fatal(err)
			}
			ar.InsertChildAt(1, sig)
		}
		env := etree.NewElement("soapenv:Envelope")
		env.CreateAttr("xmlns:soapenv", "http://schemas.xmlsoap.org/soap/envelope/")
		env.CreateElement("soapenv:Body").AddChild(ar)
		doc := etree.NewDocument()
		doc.SetRoot(env)
		out, _ := doc.WriteToBytes()
		return out
	}
	if code, _ := post("application/soap+xml", resolve(k["sp"].key, k["sp"].cert)); code != http.StatusUnsupportedMediaType {
		t.Fatalf("non text/xml: %d", code)
	}
	if code, _ := post("text/xml", resolve(nil, nil)); code != http.StatusForbidden {
		t.Fatalf("unsigned ArtifactResolve: %d", code)
	}
	if code, _ := post("text/xml", resolve(k["attacker"].key, k["attacker"].cert)); code != http.StatusForbidden {
		t.Fatalf("ArtifactResolve by another key: %d", code)
	}
	code, body := post("text/xml", resolve(k["sp"].key, k["sp"].cert))
	if code != http.StatusOK || !strings.Contains(body, "<samlp:Response") || !strings.Contains(body, `InResponseTo="_r1"`) {
		t.Fatalf("resolution: %d %s", code, body)
	}
	for _, want := range []string{"rsa-sha256", "<ds:KeyName>", "<saml:Advice>", "urn:etoegang:core:LegalSubjectID", "<xenc:CarriedKeyName>", "urn:etoegang:DV:00000009999999999099:entities:9099", `Recipient="` + spEntity + `"`, "urn:etoegang:core:ServiceUUID", ehsim.LevelLoA3} {
		if !strings.Contains(body, want) {
			t.Errorf("answer lacks %s", want)
		}
	}
	for _, bad := range []string{"rsa-sha1", "xmldsig#sha1\"/></ds:Reference", "<ds:X509Certificate>"} {
		if strings.Contains(body, bad) {
			t.Errorf("answer contains %s", bad)
		}
	}
	if n := strings.Count(body, "<ds:Signature"); n < 4 {
		t.Errorf("%d signatures; want ArtifactResponse, Response, Assertion and Advice signed", n)
	}
	answer := etree.NewDocument()
	if err := answer.ReadFromString(body); err != nil {
		t.Fatal(err)
	}
	artifactResponse := answer.FindElement("//ArtifactResponse")
	if artifactResponse == nil {
		t.Fatalf("no ArtifactResponse in %s", body)
	}
	doc := etree.NewDocument()
	doc.SetRoot(artifactResponse.Copy())
	out, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	xmllint(t, "saml-schema-protocol-2.0.xsd", out)
	if _, body := post("text/xml", resolve(k["sp"].key, k["sp"].cert)); strings.Contains(body, "<samlp:Response") {
		t.Fatal("artifact resolved twice")
	}
}

// TestMetadata checks the simulator's metadata against the XSD and the
// profile.
func TestMetadata(t *testing.T) {
	e := newEnv(t, "")
	md := e.sim.Metadata()
	resp, err := http.Get(e.sim.URL("metadata"))
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(served, md) {
		t.Fatal("served metadata differs")
	}
	s := string(md)
	for _, want := range []string{`WantAuthnRequestsSigned="true"`, eherkenning.BindingSOAP, eherkenning.BindingHTTPPost, eherkenning.BindingHTTPRedirect, "<ds:KeyName>"} {
		if !strings.Contains(s, want) {
			t.Errorf("metadata lacks %s", want)
		}
	}
	if n := strings.Count(s, `use="signing"`); n != 2 {
		t.Errorf("%d signing keys, want 2", n)
	}
	xmllint(t, "saml-schema-metadata-2.0.xsd", md)
}

// xmllint validates a document against one of the schemas in the
// top-level testdata/xsd. It needs xmllint (Debian package
// libxml2-utils).
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
	if out, err := exec.Command(bin, "--noout", "--nonet", "--schema", filepath.Join("..", "..", "testdata", "xsd", schema), f).CombinedOutput(); err != nil {
		t.Fatalf("%s does not validate: %s\n%s", schema, out, doc)
	}
}

// TestConfig refuses unusable configuration.
func TestConfig(t *testing.T) {
	if _, err := ehsim.New(ehsim.Config{BaseURL: "/relative", SPMetadata: []byte("x")}); err == nil {
		t.Error("accepted a relative BaseURL")
	}
	if _, err := ehsim.New(ehsim.Config{BaseURL: "http://x/ehsim/"}); err == nil {
		t.Error("accepted no SP metadata")
	}
}
