// Package ehsim is a stand-in eHerkenning broker (Herkenningsmakelaar) for
// development, acceptance environments and tests. It is clearly labelled as
// a simulator on every page and must never be enabled unless configured.
//
// It behaves like the real broker towards a service provider: it publishes
// signed metadata (SSO for HTTP-Redirect and HTTP-POST, a SOAP
// ArtifactResolutionService, two signing certificates named by KeyName),
// accepts only AuthnRequests signed with SHA-256 or better by a key in the
// SP's metadata, lets a person pick a test company and a scenario, and
// answers with a one-time artifact (type 0x0004, SHA-1 SourceID) resolved
// over SOAP, or with an HTTP-POST SAMLResponse when the request asked for
// that binding. Answers carry a signed ArtifactResponse, a signed Response
// and a signed Assertion (RSA-SHA256), LegalSubjectID and ActingSubjectID as
// EncryptedIDs for the SP and for a second recipient, the ServiceID and
// ServiceUUID, the level in the AuthnStatement and an Advice block.
//
// [Simulator.BuildResponse] and [Simulator.IssueArtifact] with [Option]s
// let tests make hostile variants of these answers.
package ehsim

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // the artifact SourceID is SHA-1 of the entityID by definition
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/beevik/etree"
)

// Config configures a [Simulator].
type Config struct {
	// BaseURL is the absolute URL the handler is mounted at, such as
	// http://localhost:8080/ehsim/.
	BaseURL string
	// EntityID is the simulated broker's (default
	// urn:etoegang:HM:00000009999999999001:entities:9001).
	EntityID string
	// SigningKey/SigningCert and SecondSigningKey/SecondSigningCert are the
	// two broker signing keys (the second one for the rollover scenario).
	// Missing pairs are generated.
	SigningKey        *rsa.PrivateKey
	SigningCert       *x509.Certificate
	SecondSigningKey  *rsa.PrivateKey
	SecondSigningCert *x509.Certificate
	// OtherRecipientCert is the second reader of the encrypted identifiers
	// (generated when nil).
	OtherRecipientCert *x509.Certificate
	// SPMetadata is the service provider's metadata, or SPMetadataURL where
	// to fetch it (re-fetched at most once a minute).
	SPMetadata    []byte
	SPMetadataURL string
	// ServiceUUID is echoed in answers, as the dienstcatalogus would
	// register it for the SP's service.
	ServiceUUID string
	// HTTPClient fetches SPMetadataURL (default: 10 s timeout).
	HTTPClient *http.Client
	// OrganizationName, ServiceName and RequiredLevel fill the text of the
	// "Kies hoe u wilt inloggen" page.
	OrganizationName string
	ServiceName      string
	RequiredLevel    string
	// Companies are the preset test companies (default: three).
	Companies []Company
	// Now is the clock (default time.Now).
	Now func() time.Time
}

type keyPair struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

// Simulator is the simulated broker; it is an http.Handler.
type Simulator struct {
	cfg      Config
	base     *url.URL
	keys     [2]keyPair
	other    keyPair
	client   *http.Client
	mux      *http.ServeMux
	metadata []byte

	mu        sync.Mutex
	sp        *spMetadata
	pending   map[string]*pending
	artifacts map[string]*artifactEntry
}

// pending is an accepted AuthnRequest waiting for the person.
type pending struct {
	requestID  string
	serviceID  string
	acsURL     string
	binding    string
	relayState string
	sp         *spMetadata
	expires    time.Time
}

type artifactEntry struct {
	response *etree.Element
	build    *build
	expires  time.Time
}

// DefaultCompanies are the preset test companies.
var DefaultCompanies = []Company{
	{KvK: "12345678", RSIN: "123456782", Name: "Wij Techniek Demo B.V.", Branch: "000012345678"},
	{KvK: "87654321", Name: "Installatiebedrijf De Vonk B.V.", Branch: "000087654321"},
	{KvK: "11223344", RSIN: "112233441", Name: "Bouw & Techniek Test V.O.F.", Branch: "000011223344"},
}

// New builds a simulator, generating whatever keys are missing.
func New(cfg Config) (*Simulator, error) {
	if !strings.HasSuffix(cfg.BaseURL, "/") {
		cfg.BaseURL += "/"
	}
	base, err := url.Parse(cfg.BaseURL)
	if err != nil || !base.IsAbs() {
		return nil, fmt.Errorf("ehsim: BaseURL %q must be absolute", cfg.BaseURL)
	}
	if (len(cfg.SPMetadata) == 0) == (cfg.SPMetadataURL == "") {
		return nil, errors.New("ehsim: set exactly one of SPMetadata and SPMetadataURL")
	}
	if cfg.EntityID == "" {
		cfg.EntityID = "urn:etoegang:HM:00000009999999999001:entities:9001"
	}
	if cfg.OrganizationName == "" {
		cfg.OrganizationName = "Stichting Wij Techniek"
	}
	if cfg.ServiceName == "" {
		cfg.ServiceName = "Verificatie Wij Techniek account"
	}
	if cfg.RequiredLevel == "" {
		cfg.RequiredLevel = "EH3"
	}
	if len(cfg.Companies) == 0 {
		cfg.Companies = DefaultCompanies
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Simulator{
		cfg:       cfg,
		base:      base,
		client:    cfg.HTTPClient,
		pending:   map[string]*pending{},
		artifacts: map[string]*artifactEntry{},
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: 10 * time.Second}
	}
	if s.keys[0], err = pairOrNew(cfg.SigningKey, cfg.SigningCert, "ehsim broker signing 1"); err != nil {
		return nil, err
	}
	if s.keys[1], err = pairOrNew(cfg.SecondSigningKey, cfg.SecondSigningCert, "ehsim broker signing 2"); err != nil {
		return nil, err
	}
	if cfg.OtherRecipientCert != nil {
		s.other = keyPair{cert: cfg.OtherRecipientCert}
	} else if s.other, err = pairOrNew(nil, nil, "ehsim other recipient"); err != nil {
		return nil, err
	}
	if s.metadata, err = s.buildMetadata(); err != nil {
		return nil, err
	}
	s.routes()
	return s, nil
}

func pairOrNew(key *rsa.PrivateKey, cert *x509.Certificate, cn string) (keyPair, error) {
	if key != nil && cert != nil {
		return keyPair{key, cert}, nil
	}
	if key != nil || cert != nil {
		return keyPair{}, errors.New("ehsim: give both key and certificate, or neither")
	}
	k, c, err := GenerateKeyPair(cn)
	return keyPair{k, c}, err
}

func (s *Simulator) now() time.Time { return s.cfg.Now() }

// EntityID returns the simulated broker's entityID.
func (s *Simulator) EntityID() string { return s.cfg.EntityID }

// Metadata returns the simulator's signed metadata.
func (s *Simulator) Metadata() []byte { return append([]byte(nil), s.metadata...) }

// SigningCerts returns the two broker signing certificates.
func (s *Simulator) SigningCerts() []*x509.Certificate {
	return []*x509.Certificate{s.keys[0].cert, s.keys[1].cert}
}

// URL returns the absolute URL of a path below BaseURL.
func (s *Simulator) URL(path string) string { return s.base.String() + path }

func (s *Simulator) buildMetadata() ([]byte, error) {
	ed := etree.NewElement("md:EntityDescriptor")
	ed.CreateAttr("xmlns:md", nsMD)
	ed.CreateAttr("xmlns:ds", nsDS)
	ed.CreateAttr("ID", randomID())
	ed.CreateAttr("entityID", s.cfg.EntityID)
	idp := ed.CreateElement("md:IDPSSODescriptor")
	idp.CreateAttr("WantAuthnRequestsSigned", "true")
	idp.CreateAttr("protocolSupportEnumeration", nsSAMLP)
	for _, k := range s.keys {
		kd := idp.CreateElement("md:KeyDescriptor")
		kd.CreateAttr("use", "signing")
		ki := kd.CreateElement("ds:KeyInfo")
		ki.CreateElement("ds:KeyName").SetText(keyName(k.cert))
		ki.CreateElement("ds:X509Data").CreateElement("ds:X509Certificate").SetText(base64.StdEncoding.EncodeToString(k.cert.Raw))
	}
	ars := idp.CreateElement("md:ArtifactResolutionService")
	ars.CreateAttr("Binding", bindingSOAP)
	ars.CreateAttr("Location", s.URL("ars"))
	ars.CreateAttr("index", "0")
	ars.CreateAttr("isDefault", "true")
	for _, b := range []string{bindingPOST, bindingRedirect} {
		sso := idp.CreateElement("md:SingleSignOnService")
		sso.CreateAttr("Binding", b)
		sso.CreateAttr("Location", s.URL("sso"))
	}
	b := &build{key: s.keys[0].key, cert: s.keys[0].cert, keyInfoCert: true}
	if err := b.sign(ed); err != nil {
		return nil, err
	}
	return serialize(ed, "")
}

// IssueArtifact stores a Response (from BuildResponse) for one resolution at
// the ArtifactResolutionService and returns the SAMLart. Options apply to
// the ArtifactResponse: signing key, SHA-1, no signature, DTD.
func (s *Simulator) IssueArtifact(response []byte, opts ...Option) (string, error) {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(response); err != nil {
		return "", err
	}
	art := make([]byte, 44)
	binary.BigEndian.PutUint16(art[0:2], 0x0004)
	src := sha1.Sum([]byte(s.cfg.EntityID)) //nolint:gosec // SAML bindings §3.6.4
	copy(art[4:24], src[:])
	if _, err := rand.Read(art[24:]); err != nil {
		return "", err
	}
	a := base64.StdEncoding.EncodeToString(art)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire()
	s.artifacts[a] = &artifactEntry{response: doc.Root(), build: s.newBuild(opts), expires: s.now().Add(5 * time.Minute)}
	return a, nil
}

// expire drops old pending requests and artifacts; s.mu is held.
func (s *Simulator) expire() {
	now := s.now()
	for k, p := range s.pending {
		if now.After(p.expires) {
			delete(s.pending, k)
		}
	}
	for k, a := range s.artifacts {
		if now.After(a.expires) {
			delete(s.artifacts, k)
		}
	}
}

// ServeHTTP serves the simulator below BaseURL's path.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-cache, no-store")
	h.Set("Pragma", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	prefix := strings.TrimSuffix(s.base.Path, "/")
	if !strings.HasPrefix(r.URL.Path, prefix+"/") {
		http.NotFound(w, r)
		return
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path = strings.TrimPrefix(r.URL.Path, prefix)
	s.mux.ServeHTTP(w, r2)
}

func (s *Simulator) routes() {
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /metadata", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/samlmetadata+xml")
		_, _ = w.Write(s.metadata)
	})
	s.mux.HandleFunc("GET /sso", s.handleSSO)
	s.mux.HandleFunc("POST /sso", s.handleSSO)
	s.mux.HandleFunc("GET /kies", s.handleChoose)
	s.mux.HandleFunc("GET /login", s.handleLoginPage)
	s.mux.HandleFunc("POST /login", s.handleLogin)
	s.mux.HandleFunc("POST /ars", s.handleARS)
	s.mux.HandleFunc("GET /static/{file}", s.handleStatic)
}
