package eherkenning

import (
	"bytes"
	"context"
	"crypto/sha1" //nolint:gosec // the artifact SourceID is defined as SHA-1 of the issuer's entityID
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/beevik/etree"
	"go.uber.org/zap"
)

// Result is an accepted answer from the broker.
type Result struct {
	// Request is the tracked request this answers. Before acting on the
	// result the caller must check that the browser presenting it holds the
	// secret behind Request.BrowserBinding and the session of
	// Request.AccountID.
	Request TrackedRequest
	// Issuer is the broker's entityID; AssertionID the assertion's ID.
	Issuer      string
	AssertionID string
	// Level is the achieved level of assurance (a URN; see ShortLevel).
	Level string
	// AuthenticatingAuthority is the entityID of the party that
	// authenticated the person, when given.
	AuthenticatingAuthority string
	// KvK is the 8-digit KvK number of the represented company; RSIN is
	// given when the broker sends it.
	KvK  string
	RSIN string
	// Branch is the 12-digit Vestigingsnummer when the machtiging is
	// restricted to one branch; SubdossierNr the legacy 4-digit restriction.
	Branch       string
	SubdossierNr string
	// CompanyName is the represented company's name, when sent.
	CompanyName string
	// Pseudonym identifies the acting person for this DV and company; it
	// is stable across logins.
	Pseudonym string
	// NameID and SessionIndex are kept for single logout.
	NameID       string
	SessionIndex string
	AuthnInstant time.Time
}

const maxFormBytes = 512 << 10

// HandleResponse handles the broker's answer at the ACS: a SAMLart by GET or
// POST (resolved over SOAP at the broker's ArtifactResolutionService) or a
// SAMLResponse by POST. It returns a [*Result] only when every check of the
// profile passed; otherwise an [*Error]. It never panics.
func (sp *ServiceProvider) HandleResponse(r *http.Request) (res *Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			sp.log.Error("eherkenning: panic while handling a response", zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
			res, err = nil, newErr(CodeInternal, "panic: %v", p)
		}
	}()
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return nil, newErr(CodeMalformed, "method %s", r.Method)
	}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(nil, r.Body, maxFormBytes)
	}
	if err := r.ParseForm(); err != nil {
		return nil, wrapErr(CodeMalformed, err, "reading the form")
	}
	arts, resps, relays := r.Form["SAMLart"], r.PostForm["SAMLResponse"], r.Form["RelayState"]
	if len(arts) > 1 || len(resps) > 1 || len(relays) > 1 {
		return nil, newErr(CodeMalformed, "repeated SAML parameters")
	}
	relay := r.Form.Get("RelayState")
	m, err := sp.metadata(r.Context())
	if err != nil {
		return nil, err
	}
	var respEl *etree.Element
	switch {
	case len(arts) == 1 && len(resps) == 0:
		if respEl, err = sp.resolveArtifact(r.Context(), arts[0], m); err != nil {
			return nil, err
		}
	case len(resps) == 1 && len(arts) == 0:
		raw, derr := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(resps[0]), ""))
		if derr != nil {
			return nil, wrapErr(CodeMalformed, derr, "SAMLResponse is not base64")
		}
		doc, perr := parseXML(raw)
		if perr != nil {
			return nil, wrapErr(CodeMalformed, perr, "SAMLResponse")
		}
		respEl = doc.Root()
	case r.URL.Query().Has("SAMLResponse"):
		return nil, newErr(CodeMalformed, "the HTTP-Redirect binding is not accepted for responses")
	default:
		return nil, newErr(CodeMalformed, "neither SAMLart nor SAMLResponse")
	}
	return sp.processResponse(r.Context(), respEl, relay, m)
}

// artifactTypeCode is the SAML 2.0 artifact type the profile uses.
const artifactTypeCode = 0x0004

// resolveArtifact checks the artifact, sends a signed ArtifactResolve to the
// broker and returns the (not yet verified) Response element inside the
// verified ArtifactResponse.
func (sp *ServiceProvider) resolveArtifact(ctx context.Context, art string, m *brokerMetadata) (*etree.Element, error) {
	b, err := base64.StdEncoding.DecodeString(art)
	if err != nil || len(b) != 44 {
		return nil, newErr(CodeMalformed, "SAMLart is not a 44-byte artifact")
	}
	if binary.BigEndian.Uint16(b[0:2]) != artifactTypeCode {
		return nil, newErr(CodeMalformed, "artifact type %#04x", b[0:2])
	}
	src := sha1.Sum([]byte(m.entityID)) //nolint:gosec // defined by SAML bindings §3.6.4
	if subtle.ConstantTimeCompare(src[:], b[4:24]) != 1 {
		return nil, newErr(CodeIssuer, "artifact SourceID is not the broker's")
	}
	loc := arsLocation(m.ars, int(binary.BigEndian.Uint16(b[2:4])))
	if loc == "" {
		return nil, newErr(CodeBrokerUnavailable, "the broker metadata lists no SOAP ArtifactResolutionService")
	}
	now := sp.cfg.Now()
	id := randomID()
	ar := etree.NewElement("samlp:ArtifactResolve")
	ar.CreateAttr("xmlns:samlp", nsSAMLP)
	ar.CreateAttr("xmlns:saml", nsSAML)
	ar.CreateAttr("ID", id)
	ar.CreateAttr("Version", "2.0")
	ar.CreateAttr("IssueInstant", samlTime(now))
	ar.CreateAttr("Destination", loc)
	ar.CreateElement("saml:Issuer").SetText(sp.cfg.EntityID)
	ar.CreateElement("samlp:Artifact").SetText(art)
	if err := sp.signing().sign(ar, true); err != nil {
		return nil, wrapErr(CodeInternal, err, "signing the ArtifactResolve")
	}
	env := etree.NewElement("soapenv:Envelope")
	env.CreateAttr("xmlns:soapenv", nsSOAP)
	env.CreateElement("soapenv:Body").AddChild(ar)
	body, err := serialize(env)
	if err != nil {
		return nil, wrapErr(CodeInternal, err, "serializing the ArtifactResolve")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, loc, bytes.NewReader(body))
	if err != nil {
		return nil, wrapErr(CodeBrokerUnavailable, err, "artifact resolution service URL")
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("SOAPAction", "http://www.oasis-open.org/committees/security")
	resp, err := sp.cfg.ArtifactClient.Do(req)
	if err != nil {
		return nil, wrapErr(CodeBrokerUnavailable, err, "resolving the artifact")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, newErr(CodeBrokerUnavailable, "artifact resolution answered %s", resp.Status)
	}
	raw, err := readLimited(resp.Body, maxXMLBytes)
	if err != nil {
		return nil, wrapErr(CodeMalformed, err, "reading the ArtifactResponse")
	}
	doc, err := parseXML(raw)
	if err != nil {
		return nil, wrapErr(CodeMalformed, err, "ArtifactResponse")
	}
	envEl := doc.Root()
	if !is(envEl, nsSOAP, "Envelope") {
		return nil, newErr(CodeMalformed, "artifact resolution did not answer a SOAP envelope")
	}
	bodyEl, err := mustChild(envEl, nsSOAP, "Body")
	if err != nil {
		return nil, wrapErr(CodeMalformed, err, "SOAP")
	}
	if els := bodyEl.ChildElements(); len(els) != 1 || !is(els[0], nsSAMLP, "ArtifactResponse") {
		return nil, newErr(CodeMalformed, "SOAP body does not hold one ArtifactResponse")
	}
	arEl := bodyEl.ChildElements()[0]
	verified, err := verifySigned(arEl, m.signing, now)
	if err != nil {
		return nil, wrapErr(CodeSignature, err, "ArtifactResponse")
	}
	if err := checkIssuer(verified, m.entityID, true); err != nil {
		return nil, err
	}
	if got := verified.SelectAttrValue("InResponseTo", ""); got != id {
		return nil, newErr(CodeMalformed, "ArtifactResponse InResponseTo %q is not our ArtifactResolve", got)
	}
	if st, err := readStatus(verified); err != nil {
		return nil, err
	} else if !st.success() {
		e := st.err()
		e.Detail = "ArtifactResponse status: " + e.Detail
		return nil, e
	}
	responses := children(verified, nsSAMLP, "Response")
	switch len(responses) {
	case 0:
		return nil, newErr(CodeUnknownRequest, "the broker returned no message for the artifact (unknown or already used)")
	case 1:
		return responses[0], nil
	}
	return nil, newErr(CodeMalformed, "ArtifactResponse holds %d Responses", len(responses))
}

// arsLocation picks the ArtifactResolutionService for the artifact's
// endpoint index, falling back to the default one, then the lowest index.
func arsLocation(ars []endpoint, index int) string {
	for _, e := range ars {
		if e.index == index {
			return e.location
		}
	}
	for _, e := range ars {
		if e.isDefault {
			return e.location
		}
	}
	if len(ars) > 0 {
		return ars[0].location
	}
	return ""
}

func checkIssuer(el *etree.Element, want string, required bool) *Error {
	iss, err := child(el, nsSAML, "Issuer")
	if err != nil {
		return wrapErr(CodeIssuer, err, "%s", el.Tag)
	}
	if iss == nil {
		if required {
			return newErr(CodeIssuer, "%s has no Issuer", el.Tag)
		}
		return nil
	}
	if f := iss.SelectAttrValue("Format", ""); f != "" && f != "urn:oasis:names:tc:SAML:2.0:nameid-format:entity" {
		return newErr(CodeIssuer, "%s Issuer has Format %q", el.Tag, f)
	}
	got, err := strictText(iss)
	if err != nil {
		return wrapErr(CodeIssuer, err, "%s Issuer", el.Tag)
	}
	if got != want {
		return newErr(CodeIssuer, "%s Issuer %q is not the broker %q", el.Tag, got, want)
	}
	return nil
}

// status is a SAML Status.
type status struct {
	codes   []string
	message string
}

func (s status) success() bool { return len(s.codes) > 0 && s.codes[0] == statusSuccess }

func readStatus(el *etree.Element) (status, *Error) {
	st, err := mustChild(el, nsSAMLP, "Status")
	if err != nil {
		return status{}, wrapErr(CodeMalformed, err, "%s", el.Tag)
	}
	var s status
	cur := st
	for depth := 0; depth < 4; depth++ {
		sc, err := child(cur, nsSAMLP, "StatusCode")
		if err != nil {
			return status{}, wrapErr(CodeMalformed, err, "StatusCode")
		}
		if sc == nil {
			break
		}
		s.codes = append(s.codes, sc.SelectAttrValue("Value", ""))
		cur = sc
	}
	if len(s.codes) == 0 {
		return status{}, newErr(CodeMalformed, "%s has no StatusCode", el.Tag)
	}
	if msg, err := childText(st, nsSAMLP, "StatusMessage"); err == nil {
		s.message = msg
	}
	return s, nil
}

// err maps a non-success status to a code. The profile gives cancelling
// and a missing machtiging the same codes (Responder + AuthnFailed); only
// the StatusMessage can tell them apart, so a message about a missing
// authorisation gives CodeNoAuthorization and anything else CodeCancelled.
func (s status) err() *Error {
	code := CodeBrokerError
	second := ""
	if len(s.codes) > 1 {
		second = s.codes[1]
	}
	switch second {
	case statusAuthnFailed:
		code = CodeCancelled
		if mentionsNoAuthorization(s.message) {
			code = CodeNoAuthorization
		}
	case statusRequestUnsupported:
		code = CodeRequestUnsupported
	}
	return &Error{Code: code, Detail: "broker status " + strings.Join(s.codes, " / "), Status: s.codes, StatusMessage: s.message}
}

func mentionsNoAuthorization(msg string) bool {
	msg = strings.ToLower(msg)
	for _, w := range []string{"machtiging", "bevoegdheid", "no authoris", "no authoriz", "not authoris", "not authoriz", "mandate"} {
		if strings.Contains(msg, w) {
			return true
		}
	}
	return false
}

// processResponse verifies a Response element and everything in it.
func (sp *ServiceProvider) processResponse(ctx context.Context, respEl *etree.Element, relay string, m *brokerMetadata) (*Result, error) {
	now := sp.cfg.Now()
	skew := sp.cfg.MaxClockSkew
	if !is(respEl, nsSAMLP, "Response") {
		return nil, newErr(CodeMalformed, "not a samlp:Response")
	}
	resp, err := verifySigned(respEl, m.signing, now)
	if err != nil {
		return nil, wrapErr(CodeSignature, err, "Response")
	}
	if resp.SelectAttrValue("Version", "") != "2.0" {
		return nil, newErr(CodeMalformed, "Response Version is not 2.0")
	}
	if e := checkIssuer(resp, m.entityID, true); e != nil {
		return nil, e
	}
	if d := resp.SelectAttrValue("Destination", ""); d != sp.cfg.ACSURL {
		return nil, newErr(CodeDestination, "Response Destination %q is not %q", d, sp.cfg.ACSURL)
	}
	issued, ok, err := parseTime(resp, "IssueInstant")
	if err != nil || !ok {
		return nil, newErr(CodeMalformed, "Response IssueInstant missing or invalid")
	}
	if now.Sub(issued) > sp.cfg.MaxIssueDelay {
		return nil, newErr(CodeExpired, "Response issued at %s, more than %s ago", samlTime(issued), sp.cfg.MaxIssueDelay)
	}
	if issued.Sub(now) > skew {
		return nil, newErr(CodeExpired, "Response issued in the future (%s)", samlTime(issued))
	}
	inResponseTo := resp.SelectAttrValue("InResponseTo", "")
	if inResponseTo == "" {
		return nil, newErr(CodeUnknownRequest, "Response has no InResponseTo (unsolicited)")
	}
	st, serr := readStatus(resp)
	if serr != nil {
		return nil, serr
	}
	if len(children(resp, nsSAML, "EncryptedAssertion")) > 0 {
		return nil, newErr(CodeMalformed, "EncryptedAssertion is not part of the profile")
	}
	assertions := children(resp, nsSAML, "Assertion")
	var assertion *etree.Element
	if st.success() {
		if len(assertions) != 1 {
			return nil, newErr(CodeMalformed, "Response holds %d assertions, want exactly 1", len(assertions))
		}
		if assertion, err = verifySigned(assertions[0], m.signing, now); err != nil {
			return nil, wrapErr(CodeSignature, err, "Assertion")
		}
		id := assertion.SelectAttrValue("ID", "")
		first, err := sp.state.MarkAssertionSeen(ctx, m.entityID+" "+id, replayUntil(assertion, now, skew))
		if err != nil {
			return nil, wrapErr(CodeInternal, err, "replay cache")
		}
		if !first {
			return nil, newErr(CodeReplay, "assertion %s was seen before", id)
		}
	}
	tr, err := sp.state.TakeRequest(ctx, inResponseTo)
	if errors.Is(err, ErrUnknownRequest) {
		return nil, newErr(CodeUnknownRequest, "InResponseTo %q is not a pending request", inResponseTo)
	}
	if err != nil {
		return nil, wrapErr(CodeInternal, err, "taking the tracked request")
	}
	if tr.ID != inResponseTo || subtle.ConstantTimeCompare([]byte(relay), []byte(tr.RelayState)) != 1 {
		return nil, newErr(CodeUnknownRequest, "RelayState does not belong to request %q", inResponseTo)
	}
	if !now.Before(tr.ExpiresAt) {
		return nil, newErr(CodeUnknownRequest, "request %q expired at %s", inResponseTo, samlTime(tr.ExpiresAt))
	}
	withReq := func(e *Error) *Error {
		e.Request = &tr
		return e
	}
	if !st.success() {
		return nil, withReq(st.err())
	}
	res, e := sp.checkAssertion(assertion, inResponseTo, m, now)
	if e != nil {
		return nil, withReq(e)
	}
	res.Request = tr
	return res, nil
}

// replayUntil is how long an assertion ID must be remembered: past the
// latest NotOnOrAfter it carries, plus the skew.
func replayUntil(a *etree.Element, now time.Time, skew time.Duration) time.Time {
	until := now.Add(time.Hour)
	var latest time.Time
	for _, el := range append(descendants(a, nsSAML, "Conditions"), descendants(a, nsSAML, "SubjectConfirmationData")...) {
		if t, ok, err := parseTime(el, "NotOnOrAfter"); err == nil && ok && t.After(latest) {
			latest = t
		}
	}
	if !latest.IsZero() && latest.Add(skew).After(until) {
		until = latest.Add(skew)
	}
	return until
}

// checkAssertion applies the profile's checks to a verified assertion.
func (sp *ServiceProvider) checkAssertion(a *etree.Element, inResponseTo string, m *brokerMetadata, now time.Time) (*Result, *Error) {
	skew := sp.cfg.MaxClockSkew
	if a.SelectAttrValue("Version", "") != "2.0" {
		return nil, newErr(CodeMalformed, "Assertion Version is not 2.0")
	}
	if e := checkIssuer(a, m.entityID, true); e != nil {
		return nil, e
	}
	if issued, ok, err := parseTime(a, "IssueInstant"); err != nil || !ok {
		return nil, newErr(CodeMalformed, "Assertion IssueInstant missing or invalid")
	} else if issued.Sub(now) > skew {
		return nil, newErr(CodeExpired, "Assertion issued in the future")
	}
	res := &Result{Issuer: m.entityID, AssertionID: a.SelectAttrValue("ID", "")}

	subj, err := mustChild(a, nsSAML, "Subject")
	if err != nil {
		return nil, wrapErr(CodeMalformed, err, "Assertion")
	}
	if nid, _ := child(subj, nsSAML, "NameID"); nid != nil {
		if res.NameID, err = strictText(nid); err != nil {
			return nil, wrapErr(CodeMalformed, err, "NameID")
		}
	}
	if e := sp.checkSubjectConfirmation(subj, inResponseTo, now); e != nil {
		return nil, e
	}
	if e := sp.checkConditions(a, now); e != nil {
		return nil, e
	}

	as := children(a, nsSAML, "AuthnStatement")
	if len(as) != 1 {
		return nil, newErr(CodeMalformed, "%d AuthnStatements, want 1", len(as))
	}
	if t, ok, err := parseTime(as[0], "SessionNotOnOrAfter"); err != nil {
		return nil, wrapErr(CodeMalformed, err, "AuthnStatement")
	} else if ok && !now.Before(t.Add(skew)) {
		return nil, newErr(CodeExpired, "SessionNotOnOrAfter %s has passed", samlTime(t))
	}
	res.AuthnInstant, _, _ = parseTime(as[0], "AuthnInstant")
	res.SessionIndex = as[0].SelectAttrValue("SessionIndex", "")
	ac, err := mustChild(as[0], nsSAML, "AuthnContext")
	if err != nil {
		return nil, wrapErr(CodeMalformed, err, "AuthnStatement")
	}
	level, err := childText(ac, nsSAML, "AuthnContextClassRef")
	if err != nil {
		return nil, wrapErr(CodeMalformed, err, "AuthnContextClassRef")
	}
	if levelRank[level] == 0 {
		return nil, newErr(CodeLevelTooLow, "unknown level of assurance %q", level)
	}
	if levelRank[level] < levelRank[sp.minLevel] {
		return nil, newErr(CodeLevelTooLow, "level %s is below the required %s", ShortLevel(level), ShortLevel(sp.minLevel))
	}
	res.Level = level
	for _, aa := range children(ac, nsSAML, "AuthenticatingAuthority") {
		if res.AuthenticatingAuthority, err = strictText(aa); err != nil {
			return nil, wrapErr(CodeMalformed, err, "AuthenticatingAuthority")
		}
	}
	if e := sp.readAttributes(a, res); e != nil {
		return nil, e
	}
	return res, nil
}

// checkSubjectConfirmation requires a bearer confirmation for our ACS URL
// and this request that is valid now.
func (sp *ServiceProvider) checkSubjectConfirmation(subj *etree.Element, inResponseTo string, now time.Time) *Error {
	skew := sp.cfg.MaxClockSkew
	var firstErr *Error
	for _, sc := range children(subj, nsSAML, "SubjectConfirmation") {
		if sc.SelectAttrValue("Method", "") != cmBearer {
			continue
		}
		e := func() *Error {
			scd, err := mustChild(sc, nsSAML, "SubjectConfirmationData")
			if err != nil {
				return wrapErr(CodeRecipient, err, "SubjectConfirmation")
			}
			if r := scd.SelectAttrValue("Recipient", ""); r != sp.cfg.ACSURL {
				return newErr(CodeRecipient, "Recipient %q is not %q", r, sp.cfg.ACSURL)
			}
			if irt := scd.SelectAttrValue("InResponseTo", ""); irt != inResponseTo {
				return newErr(CodeUnknownRequest, "SubjectConfirmationData InResponseTo %q is not %q", irt, inResponseTo)
			}
			nooa, ok, err := parseTime(scd, "NotOnOrAfter")
			if err != nil || !ok {
				return newErr(CodeExpired, "SubjectConfirmationData without a valid NotOnOrAfter")
			}
			if !now.Before(nooa.Add(skew)) {
				return newErr(CodeExpired, "SubjectConfirmationData expired at %s", samlTime(nooa))
			}
			if nb, ok, err := parseTime(scd, "NotBefore"); err != nil {
				return wrapErr(CodeExpired, err, "SubjectConfirmationData")
			} else if ok && nb.After(now.Add(skew)) {
				return newErr(CodeExpired, "SubjectConfirmationData not valid before %s", samlTime(nb))
			}
			return nil
		}()
		if e == nil {
			return nil
		}
		if firstErr == nil {
			firstErr = e
		}
	}
	if firstErr == nil {
		firstErr = newErr(CodeRecipient, "no bearer SubjectConfirmation")
	}
	return firstErr
}

// checkConditions checks the validity window and requires an
// AudienceRestriction naming us (every one present must).
func (sp *ServiceProvider) checkConditions(a *etree.Element, now time.Time) *Error {
	skew := sp.cfg.MaxClockSkew
	conds := children(a, nsSAML, "Conditions")
	if len(conds) != 1 {
		return newErr(CodeAudience, "%d Conditions, want 1", len(conds))
	}
	c := conds[0]
	if nb, ok, err := parseTime(c, "NotBefore"); err != nil {
		return wrapErr(CodeExpired, err, "Conditions")
	} else if ok && nb.After(now.Add(skew)) {
		return newErr(CodeExpired, "assertion not valid before %s", samlTime(nb))
	}
	if na, ok, err := parseTime(c, "NotOnOrAfter"); err != nil {
		return wrapErr(CodeExpired, err, "Conditions")
	} else if ok && !now.Before(na.Add(skew)) {
		return newErr(CodeExpired, "assertion expired at %s", samlTime(na))
	}
	ars := children(c, nsSAML, "AudienceRestriction")
	if len(ars) == 0 {
		return newErr(CodeAudience, "no AudienceRestriction")
	}
	for _, ar := range ars {
		found := false
		for _, au := range children(ar, nsSAML, "Audience") {
			if txt, err := strictText(au); err == nil && txt == sp.cfg.EntityID {
				found = true
			}
		}
		if !found {
			return newErr(CodeAudience, "an AudienceRestriction does not name %q", sp.cfg.EntityID)
		}
	}
	return nil
}
