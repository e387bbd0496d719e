package ehsim

import (
	"bytes"
	"compress/flate"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/beevik/etree"
)

const maxInflated = 64 << 10

// handleSSO accepts an AuthnRequest by HTTP-Redirect (GET) or HTTP-POST,
// checks it, and sends the person to the "Kies hoe u wilt inloggen" page.
func (s *Simulator) handleSSO(w http.ResponseWriter, r *http.Request) {
	lang := pageLang(r)
	p, err := s.acceptRequest(r)
	if err != nil {
		s.renderError(w, lang, http.StatusBadRequest, err)
		return
	}
	id := randomID()[1:]
	s.mu.Lock()
	s.expire()
	if len(s.pending) >= 10000 {
		s.mu.Unlock()
		s.renderError(w, lang, http.StatusServiceUnavailable, errors.New("too many pending logins"))
		return
	}
	s.pending[id] = p
	s.mu.Unlock()
	http.Redirect(w, r, s.URL("kies?s="+id+"&lang="+lang), http.StatusSeeOther)
}

// acceptRequest reads and checks the AuthnRequest.
func (s *Simulator) acceptRequest(r *http.Request) (*pending, error) {
	sp, err := s.spMeta(r.Context())
	if err != nil {
		return nil, err
	}
	var raw []byte
	var relay string
	if r.Method == http.MethodGet {
		if raw, relay, err = s.redirectRequest(r, sp); err != nil {
			return nil, err
		}
	} else {
		r.Body = http.MaxBytesReader(nil, r.Body, maxMessage)
		if err := r.ParseForm(); err != nil {
			return nil, err
		}
		if raw, err = base64.StdEncoding.DecodeString(r.PostForm.Get("SAMLRequest")); err != nil || len(raw) == 0 {
			return nil, errors.New("SAMLRequest is missing or not base64")
		}
		relay = r.PostForm.Get("RelayState")
	}
	if len(relay) > 80 {
		return nil, errors.New("RelayState is longer than 80 bytes")
	}
	doc, err := parseUntrusted(raw)
	if err != nil {
		return nil, fmt.Errorf("AuthnRequest: %w", err)
	}
	req := doc.Root()
	if !is(req, nsSAMLP, "AuthnRequest") {
		return nil, errors.New("not an AuthnRequest")
	}
	if r.Method == http.MethodPost {
		if err := verifyEnveloped(req, sp.signing); err != nil {
			return nil, fmt.Errorf("AuthnRequest signature: %w", err)
		}
	}
	if req.SelectAttrValue("Version", "") != "2.0" || req.SelectAttrValue("ID", "") == "" {
		return nil, errors.New("AuthnRequest without Version 2.0 or ID")
	}
	if iss := text(first(req, nsSAML, "Issuer")); iss != sp.entityID {
		return nil, fmt.Errorf("AuthnRequest Issuer %q is not the SP %q", iss, sp.entityID)
	}
	if d := req.SelectAttrValue("Destination", ""); d != s.URL("sso") {
		return nil, fmt.Errorf("AuthnRequest Destination %q is not %q", d, s.URL("sso"))
	}
	issued, err := time.Parse(time.RFC3339Nano, req.SelectAttrValue("IssueInstant", ""))
	if err != nil || s.now().Sub(issued) > 5*time.Minute || issued.Sub(s.now()) > 3*time.Minute {
		return nil, errors.New("AuthnRequest IssueInstant missing or not fresh")
	}
	binding := req.SelectAttrValue("ProtocolBinding", bindingArtifact)
	if binding != bindingArtifact && binding != bindingPOST {
		return nil, fmt.Errorf("ProtocolBinding %q not supported", binding)
	}
	acs := req.SelectAttrValue("AssertionConsumerServiceURL", "")
	if acs == "" && len(sp.acs[binding]) > 0 {
		acs = sp.acs[binding][0]
	}
	known := false
	for _, l := range sp.acs[binding] {
		known = known || l == acs
	}
	if !known {
		return nil, fmt.Errorf("ACS %q with binding %s is not in the SP metadata", acs, binding)
	}
	svc := sp.services[req.SelectAttrValue("AttributeConsumingServiceIndex", sp.defaultService)]
	if svc == "" {
		return nil, errors.New("AttributeConsumingServiceIndex names no service in the SP metadata")
	}
	return &pending{
		serviceID:  svc,
		requestID:  req.SelectAttrValue("ID", ""),
		acsURL:     acs,
		binding:    binding,
		relayState: relay,
		sp:         sp,
		expires:    s.now().Add(30 * time.Minute),
	}, nil
}

// redirectRequest checks the query-string signature of the HTTP-Redirect
// binding and inflates the request, at most maxInflated bytes.
func (s *Simulator) redirectRequest(r *http.Request, sp *spMetadata) ([]byte, string, error) {
	raws := map[string]string{}
	for _, part := range strings.Split(r.URL.RawQuery, "&") {
		k, v, _ := strings.Cut(part, "=")
		if _, dup := raws[k]; dup {
			return nil, "", fmt.Errorf("repeated parameter %s", k)
		}
		raws[k] = v
	}
	q := r.URL.Query()
	sigAlg, sigB64 := q.Get("SigAlg"), q.Get("Signature")
	if sigAlg == "" || sigB64 == "" {
		return nil, "", errors.New("the AuthnRequest is not signed")
	}
	h, ok := strongSignatureMethods[sigAlg]
	if !ok {
		return nil, "", fmt.Errorf("signature algorithm %q is refused (SHA-1 or unknown)", sigAlg)
	}
	octets := "SAMLRequest=" + raws["SAMLRequest"]
	if _, has := raws["RelayState"]; has {
		octets += "&RelayState=" + raws["RelayState"]
	}
	octets += "&SigAlg=" + raws["SigAlg"]
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil {
		return nil, "", errors.New("signature is not base64")
	}
	hh := h.New()
	hh.Write([]byte(octets))
	digest := hh.Sum(nil)
	verified := false
	for _, c := range sp.signing {
		if pub, ok := c.cert.PublicKey.(*rsa.PublicKey); ok && rsa.VerifyPKCS1v15(pub, h, digest, sig) == nil {
			verified = true
		}
	}
	if !verified {
		return nil, "", errors.New("the AuthnRequest signature does not verify with the SP's metadata")
	}
	deflated, err := base64.StdEncoding.DecodeString(q.Get("SAMLRequest"))
	if err != nil {
		return nil, "", errors.New("SAMLRequest is not base64")
	}
	raw, err := inflate(deflated)
	if err != nil {
		return nil, "", err
	}
	return raw, q.Get("RelayState"), nil
}

// inflate decompresses at most maxInflated bytes and refuses more (a
// deflate bomb is stopped after that much work).
func inflate(b []byte) ([]byte, error) {
	fr := flate.NewReader(bytes.NewReader(b))
	defer fr.Close()
	out, err := io.ReadAll(io.LimitReader(fr, maxInflated+1))
	if err != nil {
		return nil, fmt.Errorf("SAMLRequest does not inflate: %w", err)
	}
	if len(out) > maxInflated {
		return nil, errors.New("SAMLRequest inflates to more than 64 KiB")
	}
	return out, nil
}

func (s *Simulator) lookup(id string) *pending {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire()
	return s.pending[id]
}

// handleChoose shows "Kies hoe u wilt inloggen".
func (s *Simulator) handleChoose(w http.ResponseWriter, r *http.Request) {
	lang := pageLang(r)
	id := r.URL.Query().Get("s")
	if s.lookup(id) == nil {
		s.renderError(w, lang, http.StatusBadRequest, errors.New("unknown or expired login"))
		return
	}
	s.render(w, r, "choose", lang, map[string]any{"S": id, "Providers": providers})
}

var providers = []string{"Testleverancier Noord", "Testleverancier Zuid", "Testleverancier eIDAS"}

// handleLoginPage shows the test login: company and scenario.
func (s *Simulator) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	lang := pageLang(r)
	q := r.URL.Query()
	id := q.Get("s")
	if s.lookup(id) == nil {
		s.renderError(w, lang, http.StatusBadRequest, errors.New("unknown or expired login"))
		return
	}
	known := false
	for _, p := range providers {
		known = known || p == q.Get("provider")
	}
	if !known {
		s.render(w, r, "choose", lang, map[string]any{"S": id, "Providers": providers, "Missing": true})
		return
	}
	s.render(w, r, "login", lang, map[string]any{
		"S": id, "Provider": q.Get("provider"), "Companies": s.cfg.Companies, "Scenarios": scenarios,
	})
}

// Scenario is one outcome a person can pick on the test login page.
type Scenario string

// The scenarios.
const (
	ScenarioEH3             Scenario = "eh3"
	ScenarioEH4             Scenario = "eh4"
	ScenarioLevelTooLow     Scenario = "eh2plus"
	ScenarioCancel          Scenario = "cancel"
	ScenarioNoAuthorization Scenario = "nomandate"
	ScenarioBranch          Scenario = "branch"
	ScenarioRollover        Scenario = "rollover"
)

var scenarios = []Scenario{ScenarioEH3, ScenarioEH4, ScenarioLevelTooLow, ScenarioCancel, ScenarioNoAuthorization, ScenarioBranch, ScenarioRollover}

var (
	reKvK  = regexp.MustCompile(`^[0-9]{8}$`)
	reName = regexp.MustCompile(`^[\p{L}\p{N} &.,'()-]{1,64}$`)
)

// handleLogin answers the AuthnRequest with the chosen scenario.
func (s *Simulator) handleLogin(w http.ResponseWriter, r *http.Request) {
	lang := pageLang(r)
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		s.renderError(w, lang, http.StatusBadRequest, err)
		return
	}
	id := r.PostForm.Get("s")
	s.mu.Lock()
	p := s.pending[id]
	delete(s.pending, id)
	s.mu.Unlock()
	if p == nil || s.now().After(p.expires) {
		s.renderError(w, lang, http.StatusBadRequest, errors.New("unknown or expired login"))
		return
	}
	scenario := Scenario(r.PostForm.Get("scenario"))
	company, err := s.chosenCompany(r)
	if err != nil && scenario != ScenarioCancel {
		s.renderError(w, lang, http.StatusBadRequest, err)
		return
	}
	person := strings.TrimSpace(r.PostForm.Get("person"))
	if person == "" {
		person = "testgebruiker"
	}
	answer, opts, err := s.scenarioAnswer(scenario, p, company, person)
	if err != nil {
		s.renderError(w, lang, http.StatusBadRequest, err)
		return
	}
	s.deliver(w, r, p, answer, opts)
}

func (s *Simulator) chosenCompany(r *http.Request) (Company, error) {
	f := r.PostForm
	if k := f.Get("company"); k != "" && k != "other" {
		for _, c := range s.cfg.Companies {
			if c.KvK == k {
				return c, nil
			}
		}
		return Company{}, errors.New("unknown preset company")
	}
	c := Company{KvK: strings.TrimSpace(f.Get("kvk")), Name: strings.TrimSpace(f.Get("name"))}
	if !reKvK.MatchString(c.KvK) || !reName.MatchString(c.Name) {
		return Company{}, errors.New("a KvK number has 8 digits; a name has 1 to 64 ordinary characters")
	}
	c.Branch = "0000" + c.KvK
	return c, nil
}

// scenarioAnswer turns a scenario into an Answer and build options.
func (s *Simulator) scenarioAnswer(sc Scenario, p *pending, c Company, person string) (Answer, []Option, error) {
	enc := p.sp.encryption[0]
	a := Answer{
		InResponseTo:        p.requestID,
		ACSURL:              p.acsURL,
		SPEntityID:          p.sp.entityID,
		SPEncryptionCert:    enc.cert,
		SPEncryptionKeyName: enc.name,
		ServiceID:           p.serviceID,
		ServiceUUID:         s.cfg.ServiceUUID,
		Level:               LevelLoA3,
		Company:             Company{KvK: c.KvK, RSIN: c.RSIN, Name: c.Name},
		Pseudonym:           pseudonym(p.sp.entityID, person, c.KvK),
	}
	var opts []Option
	switch sc {
	case ScenarioEH3:
	case ScenarioEH4:
		a.Level = LevelLoA4
	case ScenarioLevelTooLow:
		a.Level = LevelLoA2Plus
	case ScenarioBranch:
		a.Company.Branch = c.Branch
	case ScenarioRollover:
		opts = append(opts, s.SecondKey())
	case ScenarioCancel:
		a.Status = &Status{Top: StatusResponder, Second: StatusAuthnFailed, Message: "Authenticatie geannuleerd door de gebruiker"}
	case ScenarioNoAuthorization:
		a.Status = &Status{Top: StatusResponder, Second: StatusAuthnFailed, Message: "Geen machtiging gevonden voor deze dienst"}
	default:
		return Answer{}, nil, errors.New("unknown scenario")
	}
	return a, opts, nil
}

// pseudonym is stable for one SP, person and company, like the real one.
func pseudonym(spEntity, person, kvk string) string {
	sum := sha256.Sum256([]byte(spEntity + "\x00" + strings.ToLower(person) + "\x00" + kvk))
	return "S" + hex.EncodeToString(sum[:20])
}

// deliver sends the answer: an artifact by redirect, or an auto-POST form.
func (s *Simulator) deliver(w http.ResponseWriter, r *http.Request, p *pending, a Answer, opts []Option) {
	lang := pageLang(r)
	raw, err := s.BuildResponse(a, opts...)
	if err != nil {
		s.renderError(w, lang, http.StatusInternalServerError, err)
		return
	}
	if p.binding == bindingPOST {
		s.renderPost(w, r, lang, p.acsURL, []field{
			{"SAMLResponse", base64.StdEncoding.EncodeToString(raw)},
			{"RelayState", p.relayState},
		})
		return
	}
	art, err := s.IssueArtifact(raw, opts...)
	if err != nil {
		s.renderError(w, lang, http.StatusInternalServerError, err)
		return
	}
	v := url.Values{"SAMLart": {art}}
	if p.relayState != "" {
		v.Set("RelayState", p.relayState)
	}
	sep := "?"
	if strings.Contains(p.acsURL, "?") {
		sep = "&"
	}
	http.Redirect(w, r, p.acsURL+sep+v.Encode(), http.StatusSeeOther)
}

// handleARS is the SOAP ArtifactResolutionService.
func (s *Simulator) handleARS(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/xml") {
		http.Error(w, "Content-Type must be text/xml", http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxMessage+1))
	if err != nil || len(body) > maxMessage {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	sp, err := s.spMeta(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	doc, err := parseUntrusted(body)
	if err != nil {
		http.Error(w, "bad SOAP: "+err.Error(), http.StatusBadRequest)
		return
	}
	env := doc.Root()
	bodyEl := first(env, nsSOAP, "Body")
	if !is(env, nsSOAP, "Envelope") || bodyEl == nil || first(bodyEl, nsSAMLP, "ArtifactResolve") == nil {
		http.Error(w, "not a SOAP ArtifactResolve", http.StatusBadRequest)
		return
	}
	ar := first(bodyEl, nsSAMLP, "ArtifactResolve")
	if err := verifyEnveloped(ar, sp.signing); err != nil {
		http.Error(w, "ArtifactResolve signature: "+err.Error(), http.StatusForbidden)
		return
	}
	if iss := text(first(ar, nsSAML, "Issuer")); iss != sp.entityID {
		http.Error(w, "ArtifactResolve Issuer is not the SP", http.StatusForbidden)
		return
	}
	art := text(first(ar, nsSAMLP, "Artifact"))
	s.mu.Lock()
	s.expire()
	entry := s.artifacts[art]
	delete(s.artifacts, art)
	s.mu.Unlock()
	b := s.newBuild(nil)
	if entry != nil {
		b = entry.build
	}
	out, err := s.artifactResponse(ar.SelectAttrValue("ID", ""), entry, b)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	_, _ = w.Write(out)
}

// artifactResponse wraps the stored Response (none when the artifact is
// unknown or used) in a signed ArtifactResponse inside a SOAP envelope.
func (s *Simulator) artifactResponse(inResponseTo string, entry *artifactEntry, b *build) ([]byte, error) {
	ar := etree.NewElement("samlp:ArtifactResponse")
	ar.CreateAttr("xmlns:samlp", nsSAMLP)
	ar.CreateAttr("xmlns:saml", nsSAML)
	ar.CreateAttr("ID", randomID())
	ar.CreateAttr("Version", "2.0")
	ar.CreateAttr("InResponseTo", inResponseTo)
	ar.CreateAttr("IssueInstant", samlTime(s.now()))
	ar.CreateElement("saml:Issuer").SetText(b.issuer)
	ar.CreateElement("samlp:Status").CreateElement("samlp:StatusCode").CreateAttr("Value", statusSuccess)
	if entry != nil {
		ar.AddChild(entry.response)
	}
	if !b.unsigned && !b.noArtifactSig {
		if err := b.sign(ar); err != nil {
			return nil, err
		}
	}
	env := etree.NewElement("soapenv:Envelope")
	env.CreateAttr("xmlns:soapenv", nsSOAP)
	env.CreateElement("soapenv:Body").AddChild(ar)
	return serialize(env, b.doctype)
}
