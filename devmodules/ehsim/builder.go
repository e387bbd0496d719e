package ehsim

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // OAEP with SHA-1 is the profile's key transport
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

// Levels of assurance the simulator can answer with.
const (
	LevelLoA2Plus = "urn:etoegang:core:assurance-class:loa2plus"
	LevelLoA3     = "urn:etoegang:core:assurance-class:loa3"
	LevelLoA4     = "urn:etoegang:core:assurance-class:loa4"
)

// SAML status codes used in error answers.
const (
	StatusResponder          = "urn:oasis:names:tc:SAML:2.0:status:Responder"
	StatusRequester          = "urn:oasis:names:tc:SAML:2.0:status:Requester"
	StatusAuthnFailed        = "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"
	StatusRequestUnsupported = "urn:oasis:names:tc:SAML:2.0:status:RequestUnsupported"
	statusSuccess            = "urn:oasis:names:tc:SAML:2.0:status:Success"
)

// Company is the represented organisation in an answer.
type Company struct {
	KvK    string // 8 digits
	RSIN   string // 9 digits, optional
	Name   string
	Branch string // 12-digit Vestigingsnummer: the machtiging is limited to it
}

// Status is a non-success answer: no assertion, these codes.
type Status struct {
	Top, Second, Message string
}

// Answer is the content of one answer of the broker to one AuthnRequest.
type Answer struct {
	// InResponseTo is the AuthnRequest ID.
	InResponseTo string
	// ACSURL is the SP's ACS: the Response Destination and the
	// SubjectConfirmationData Recipient.
	ACSURL string
	// SPEntityID is the Audience and the EncryptedKey Recipient.
	SPEntityID string
	// SPEncryptionCert encrypts the identifiers; SPEncryptionKeyName names
	// it (default: its SHA-256 fingerprint).
	SPEncryptionCert    *x509.Certificate
	SPEncryptionKeyName string
	// ServiceID and ServiceUUID are echoed as attributes.
	ServiceID, ServiceUUID string
	// Level is the AuthnContextClassRef (default loa3).
	Level     string
	Company   Company
	Pseudonym string
	// Status, when set, makes this an error answer without assertion.
	Status *Status
}

// XSW names a signature-wrapping attack. Each is applied before the
// Response is signed, so only the assertion-level defences stand between
// it and acceptance.
type XSW int

// The wrapping variants.
const (
	// XSWEvilFirst puts an unsigned forged assertion before the signed one.
	XSWEvilFirst XSW = iota + 1
	// XSWOriginalInExtensions moves the signed assertion into
	// samlp:Extensions and leaves a forged one in its place.
	XSWOriginalInExtensions
	// XSWOriginalInEvilAdvice wraps the signed assertion in the Advice of
	// a forged one.
	XSWOriginalInEvilAdvice
	// XSWOriginalInSignatureObject gives the forged assertion a copy of the
	// signature, with the signed assertion inside its ds:Object.
	XSWOriginalInSignatureObject
	// XSWSameIDCopiedSignature replaces the signed assertion by a forged one
	// with the same ID and the copied signature.
	XSWSameIDCopiedSignature
)

// Option changes how an answer is built: it is how tests make hostile
// variants.
type Option func(*build)

type build struct {
	key             *rsa.PrivateKey
	cert            *x509.Certificate
	keyInfoCert     bool
	sha1            bool
	sha1Digest      bool
	sha1Method      bool
	unsigned        bool
	noAssertionSig  bool
	noResponseSig   bool
	noArtifactSig   bool
	stripAssertion  bool
	twoAssertions   bool
	xsw             XSW
	issuer          string
	destination     *string
	recipient       *string
	audiences       *[]string
	timeShift       time.Duration
	issueShift      time.Duration
	conditions      *[2]time.Time
	scdNotOnOrAfter *time.Time
	otherOnly       bool
	encryptedAttr   bool
	nameIDComment   bool
	gcm             bool
	doctype         string
	tamperBefore    []func(*etree.Element)
	tamperAssertion []func(*etree.Element)
	tamperAfter     []func(*etree.Element)
}

// Unsigned leaves every message unsigned.
func Unsigned() Option { return func(b *build) { b.unsigned = true } }

// WithoutAssertionSignature leaves the assertion unsigned (the Response is
// still signed).
func WithoutAssertionSignature() Option { return func(b *build) { b.noAssertionSig = true } }

// WithoutResponseSignature leaves the Response unsigned (the assertion is
// still signed).
func WithoutResponseSignature() Option { return func(b *build) { b.noResponseSig = true } }

// WithoutArtifactResponseSignature leaves the SOAP ArtifactResponse
// unsigned.
func WithoutArtifactResponseSignature() Option { return func(b *build) { b.noArtifactSig = true } }

// StripAssertionSignature removes the assertion's signature after
// everything was signed.
func StripAssertionSignature() Option { return func(b *build) { b.stripAssertion = true } }

// SignWith signs with another key (for example an attacker's).
func SignWith(key *rsa.PrivateKey, cert *x509.Certificate) Option {
	return func(b *build) { b.key, b.cert = key, cert }
}

// KeyInfoCertificate puts the signing certificate in KeyInfo instead of the
// KeyName.
func KeyInfoCertificate() Option { return func(b *build) { b.keyInfoCert = true } }

// SHA1 signs with RSA-SHA1 and SHA-1 digests.
func SHA1() Option { return func(b *build) { b.sha1 = true } }

// SHA1Digest signs with RSA-SHA256 over SHA-1 reference digests.
func SHA1Digest() Option { return func(b *build) { b.sha1Digest = true } }

// SHA1SignatureMethod signs with RSA-SHA1 over SHA-256 reference digests.
func SHA1SignatureMethod() Option { return func(b *build) { b.sha1Method = true } }

// TwoAssertions adds a second, separately signed assertion.
func TwoAssertions() Option { return func(b *build) { b.twoAssertions = true } }

// Wrap applies a signature-wrapping variant.
func Wrap(v XSW) Option { return func(b *build) { b.xsw = v } }

// Issuer sets the Issuer of every message.
func Issuer(s string) Option { return func(b *build) { b.issuer = s } }

// Destination sets the Response Destination.
func Destination(s string) Option { return func(b *build) { b.destination = &s } }

// Recipient sets the SubjectConfirmationData Recipient.
func Recipient(s string) Option { return func(b *build) { b.recipient = &s } }

// Audiences sets the Audience values; none removes the AudienceRestriction.
func Audiences(a ...string) Option { return func(b *build) { b.audiences = &a } }

// TimeShift moves every instant of the answer by d.
func TimeShift(d time.Duration) Option { return func(b *build) { b.timeShift = d } }

// IssueInstantShift moves only the Response IssueInstant by d.
func IssueInstantShift(d time.Duration) Option { return func(b *build) { b.issueShift = d } }

// ConditionsWindow sets the assertion's Conditions NotBefore and
// NotOnOrAfter.
func ConditionsWindow(notBefore, notOnOrAfter time.Time) Option {
	return func(b *build) { b.conditions = &[2]time.Time{notBefore, notOnOrAfter} }
}

// ConfirmationNotOnOrAfter sets the SubjectConfirmationData NotOnOrAfter.
func ConfirmationNotOnOrAfter(t time.Time) Option { return func(b *build) { b.scdNotOnOrAfter = &t } }

// OnlyOtherRecipient encrypts the identifiers for the other recipient only.
func OnlyOtherRecipient() Option { return func(b *build) { b.otherOnly = true } }

// EncryptedAttribute sends LegalSubjectID as an EncryptedAttribute.
func EncryptedAttribute() Option { return func(b *build) { b.encryptedAttr = true } }

// NameIDComment puts an XML comment inside the encrypted KvK NameID.
func NameIDComment() Option { return func(b *build) { b.nameIDComment = true } }

// GCM encrypts the identifiers with AES-256-GCM instead of AES-256-CBC.
func GCM() Option { return func(b *build) { b.gcm = true } }

// Doctype puts a document type declaration (such as an entity bomb) before
// the serialized message.
func Doctype(dtd string) Option { return func(b *build) { b.doctype = dtd } }

// Tamper changes the Response before it is signed.
func Tamper(f func(resp *etree.Element)) Option {
	return func(b *build) { b.tamperBefore = append(b.tamperBefore, f) }
}

// TamperAssertion changes each assertion before it is signed.
func TamperAssertion(f func(assertion *etree.Element)) Option {
	return func(b *build) { b.tamperAssertion = append(b.tamperAssertion, f) }
}

// TamperAfterSigning changes the Response after it was signed.
func TamperAfterSigning(f func(resp *etree.Element)) Option {
	return func(b *build) { b.tamperAfter = append(b.tamperAfter, f) }
}

func (s *Simulator) newBuild(opts []Option) *build {
	b := &build{key: s.keys[0].key, cert: s.keys[0].cert, issuer: s.cfg.EntityID}
	for _, o := range opts {
		o(b)
	}
	return b
}

// SecondKey signs with the simulator's second (rollover) signing key.
func (s *Simulator) SecondKey() Option {
	return SignWith(s.keys[1].key, s.keys[1].cert)
}

// sign adds an enveloped signature after the Issuer.
func (b *build) sign(el *etree.Element) error {
	if b.sha1Digest || b.sha1Method {
		return b.signMixed(el)
	}
	ctx, err := dsig.NewSigningContext(b.key, [][]byte{b.cert.Raw})
	if err != nil {
		return err
	}
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	method := dsig.RSASHA256SignatureMethod
	if b.sha1 {
		method = dsig.RSASHA1SignatureMethod
	}
	if err := ctx.SetSignatureMethod(method); err != nil {
		return err
	}
	sig, err := ctx.ConstructSignature(el.Copy(), true)
	if err != nil {
		return err
	}
	if !b.keyInfoCert {
		for _, ki := range sig.SelectElements("KeyInfo") {
			sig.RemoveChild(ki)
		}
		sig.CreateElement("ds:KeyInfo").CreateElement("ds:KeyName").SetText(keyName(b.cert))
	}
	insertAfterIssuer(el, sig)
	return nil
}

func insertAfterIssuer(el, sig *etree.Element) {
	pos := 0
	for i, c := range el.Child {
		if e, ok := c.(*etree.Element); ok && e.Tag == "Issuer" {
			pos = i + 1
			break
		}
	}
	el.InsertChildAt(pos, sig)
}

// signMixed builds a signature whose signature method and reference digest
// use different hashes, one of them SHA-1, which goxmldsig cannot produce.
func (b *build) signMixed(el *etree.Element) error {
	exc := dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	canon, err := exc.Canonicalize(el.Copy())
	if err != nil {
		return err
	}
	digestHash, digestURI := crypto.SHA256, "http://www.w3.org/2001/04/xmlenc#sha256"
	sigHash, sigURI := crypto.SHA256, dsig.RSASHA256SignatureMethod
	if b.sha1Digest {
		digestHash, digestURI = crypto.SHA1, "http://www.w3.org/2000/09/xmldsig#sha1"
	}
	if b.sha1Method {
		sigHash, sigURI = crypto.SHA1, dsig.RSASHA1SignatureMethod
	}
	h := digestHash.New()
	h.Write(canon)
	sig := etree.NewElement("ds:Signature")
	sig.CreateAttr("xmlns:ds", nsDS)
	si := sig.CreateElement("ds:SignedInfo")
	si.CreateElement("ds:CanonicalizationMethod").CreateAttr("Algorithm", string(dsig.CanonicalXML10ExclusiveAlgorithmId))
	si.CreateElement("ds:SignatureMethod").CreateAttr("Algorithm", sigURI)
	ref := si.CreateElement("ds:Reference")
	ref.CreateAttr("URI", "#"+el.SelectAttrValue("ID", ""))
	ts := ref.CreateElement("ds:Transforms")
	ts.CreateElement("ds:Transform").CreateAttr("Algorithm", string(dsig.EnvelopedSignatureAltorithmId))
	ts.CreateElement("ds:Transform").CreateAttr("Algorithm", string(dsig.CanonicalXML10ExclusiveAlgorithmId))
	ref.CreateElement("ds:DigestMethod").CreateAttr("Algorithm", digestURI)
	ref.CreateElement("ds:DigestValue").SetText(base64.StdEncoding.EncodeToString(h.Sum(nil)))
	detached := si.Copy()
	detached.CreateAttr("xmlns:ds", nsDS)
	canonSI, err := exc.Canonicalize(detached)
	if err != nil {
		return err
	}
	sh := sigHash.New()
	sh.Write(canonSI)
	value, err := rsa.SignPKCS1v15(rand.Reader, b.key, sigHash, sh.Sum(nil))
	if err != nil {
		return err
	}
	sig.CreateElement("ds:SignatureValue").SetText(base64.StdEncoding.EncodeToString(value))
	sig.CreateElement("ds:KeyInfo").CreateElement("ds:KeyName").SetText(keyName(b.cert))
	insertAfterIssuer(el, sig)
	return nil
}

func randomID() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	return "_" + hex.EncodeToString(b)
}

// BuildResponse builds a samlp:Response answering a, signed like the real
// broker's (Response and Assertion, RSA-SHA256, KeyName), unless options
// say otherwise.
func (s *Simulator) BuildResponse(a Answer, opts ...Option) ([]byte, error) {
	b := s.newBuild(opts)
	resp, err := s.buildResponse(a, b)
	if err != nil {
		return nil, err
	}
	return serialize(resp, b.doctype)
}

func serialize(el *etree.Element, doctype string) ([]byte, error) {
	doc := etree.NewDocument()
	doc.SetRoot(el)
	raw, err := doc.WriteToBytes()
	if err != nil {
		return nil, err
	}
	if doctype != "" {
		raw = append([]byte(doctype), raw...)
	}
	return raw, nil
}

func (s *Simulator) buildResponse(a Answer, b *build) (*etree.Element, error) {
	now := s.now().Add(b.timeShift)
	resp := etree.NewElement("samlp:Response")
	resp.CreateAttr("xmlns:samlp", nsSAMLP)
	resp.CreateAttr("xmlns:saml", nsSAML)
	resp.CreateAttr("ID", randomID())
	resp.CreateAttr("Version", "2.0")
	resp.CreateAttr("IssueInstant", samlTime(now.Add(b.issueShift)))
	dest := a.ACSURL
	if b.destination != nil {
		dest = *b.destination
	}
	resp.CreateAttr("Destination", dest)
	resp.CreateAttr("InResponseTo", a.InResponseTo)
	resp.CreateElement("saml:Issuer").SetText(b.issuer)
	st := resp.CreateElement("samlp:Status")
	if a.Status != nil {
		sc := st.CreateElement("samlp:StatusCode")
		sc.CreateAttr("Value", a.Status.Top)
		if a.Status.Second != "" {
			sc.CreateElement("samlp:StatusCode").CreateAttr("Value", a.Status.Second)
		}
		if a.Status.Message != "" {
			st.CreateElement("samlp:StatusMessage").SetText(a.Status.Message)
		}
	} else {
		st.CreateElement("samlp:StatusCode").CreateAttr("Value", statusSuccess)
		assertion, err := s.buildAssertion(a, b, now)
		if err != nil {
			return nil, err
		}
		if b.xsw != 0 || b.twoAssertions {
			evil := a
			evil.Company = Company{KvK: "66666666", Name: "Forged B.V."}
			forged, err := s.buildAssertion(evil, b, now)
			if err != nil {
				return nil, err
			}
			if err := s.wrap(resp, assertion, forged, b); err != nil {
				return nil, err
			}
		} else {
			resp.AddChild(assertion)
		}
	}
	for _, f := range b.tamperBefore {
		f(resp)
	}
	if !b.unsigned && !b.noResponseSig {
		if err := b.sign(resp); err != nil {
			return nil, err
		}
	}
	if b.stripAssertion {
		for _, as := range children(resp, nsSAML, "Assertion") {
			for _, sig := range children(as, nsDS, "Signature") {
				as.RemoveChild(sig)
			}
		}
	}
	for _, f := range b.tamperAfter {
		f(resp)
	}
	return resp, nil
}

// wrap places the signed assertion and a forged one in resp as the build's
// variant says.
func (s *Simulator) wrap(resp, signed, forged *etree.Element, b *build) error {
	switch {
	case b.twoAssertions:
		if !b.unsigned && !b.noAssertionSig {
			for _, sig := range children(forged, nsDS, "Signature") {
				forged.RemoveChild(sig)
			}
			if err := b.sign(forged); err != nil {
				return err
			}
		}
		resp.AddChild(signed)
		resp.AddChild(forged)
	case b.xsw == XSWEvilFirst:
		resp.AddChild(stripSig(forged))
		resp.AddChild(signed)
	case b.xsw == XSWOriginalInExtensions:
		ext := etree.NewElement("samlp:Extensions")
		ext.AddChild(signed)
		resp.InsertChildAt(1, ext)
		resp.AddChild(stripSig(forged))
	case b.xsw == XSWOriginalInEvilAdvice:
		f := stripSig(forged)
		adv := f.FindElement("./Advice")
		if adv == nil {
			return errors.New("forged assertion has no Advice")
		}
		adv.AddChild(signed)
		resp.AddChild(f)
	case b.xsw == XSWOriginalInSignatureObject:
		f := stripSig(forged)
		sig := first(signed, nsDS, "Signature")
		if sig == nil {
			return errors.New("the assertion is not signed")
		}
		cp := sig.Copy()
		cp.CreateElement("ds:Object").AddChild(signed)
		f.InsertChildAt(1, cp)
		resp.AddChild(f)
	case b.xsw == XSWSameIDCopiedSignature:
		f := stripSig(forged)
		sig := first(signed, nsDS, "Signature")
		if sig == nil {
			return errors.New("the assertion is not signed")
		}
		f.CreateAttr("ID", signed.SelectAttrValue("ID", ""))
		f.InsertChildAt(1, sig.Copy())
		resp.AddChild(f)
	default:
		return errors.New("unknown wrapping variant")
	}
	return nil
}

func stripSig(el *etree.Element) *etree.Element {
	for _, sig := range children(el, nsDS, "Signature") {
		el.RemoveChild(sig)
	}
	return el
}

// recipient is one reader of the encrypted identifiers.
type recipient struct {
	entityID, keyName string
	cert              *x509.Certificate
}

func (s *Simulator) buildAssertion(a Answer, b *build, now time.Time) (*etree.Element, error) {
	if a.SPEncryptionCert == nil {
		return nil, errors.New("ehsim: Answer.SPEncryptionCert is required")
	}
	as := etree.NewElement("saml:Assertion")
	as.CreateAttr("xmlns:saml", nsSAML)
	as.CreateAttr("xmlns:xenc", nsXENC)
	as.CreateAttr("xmlns:ds", nsDS)
	as.CreateAttr("ID", randomID())
	as.CreateAttr("Version", "2.0")
	as.CreateAttr("IssueInstant", samlTime(now))
	as.CreateElement("saml:Issuer").SetText(b.issuer)

	subj := as.CreateElement("saml:Subject")
	nid := subj.CreateElement("saml:NameID")
	nid.CreateAttr("Format", "urn:oasis:names:tc:SAML:2.0:nameid-format:transient")
	nid.CreateAttr("NameQualifier", s.adEntityID())
	nid.SetText(randomID())
	sc := subj.CreateElement("saml:SubjectConfirmation")
	sc.CreateAttr("Method", "urn:oasis:names:tc:SAML:2.0:cm:bearer")
	scd := sc.CreateElement("saml:SubjectConfirmationData")
	scd.CreateAttr("InResponseTo", a.InResponseTo)
	rcpt := a.ACSURL
	if b.recipient != nil {
		rcpt = *b.recipient
	}
	scd.CreateAttr("Recipient", rcpt)
	scdEnd := now.Add(2 * time.Minute)
	if b.scdNotOnOrAfter != nil {
		scdEnd = *b.scdNotOnOrAfter
	}
	scd.CreateAttr("NotOnOrAfter", samlTime(scdEnd))

	cond := as.CreateElement("saml:Conditions")
	nb, na := now.Add(-time.Minute), now.Add(2*time.Minute)
	if b.conditions != nil {
		nb, na = b.conditions[0], b.conditions[1]
	}
	cond.CreateAttr("NotBefore", samlTime(nb))
	cond.CreateAttr("NotOnOrAfter", samlTime(na))
	auds := []string{a.SPEntityID}
	if b.audiences != nil {
		auds = *b.audiences
	}
	if len(auds) > 0 {
		ar := cond.CreateElement("saml:AudienceRestriction")
		for _, au := range auds {
			ar.CreateElement("saml:Audience").SetText(au)
		}
	}

	level := a.Level
	if level == "" {
		level = LevelLoA3
	}
	advice, err := s.adviceAssertion(now, level)
	if err != nil {
		return nil, err
	}
	as.CreateElement("saml:Advice").AddChild(advice)

	authn := as.CreateElement("saml:AuthnStatement")
	authn.CreateAttr("AuthnInstant", samlTime(now))
	authn.CreateAttr("SessionIndex", randomID())
	ac := authn.CreateElement("saml:AuthnContext")
	ac.CreateElement("saml:AuthnContextClassRef").SetText(level)
	ac.CreateElement("saml:AuthenticatingAuthority").SetText(s.adEntityID())

	ours := recipient{entityID: a.SPEntityID, keyName: a.SPEncryptionKeyName, cert: a.SPEncryptionCert}
	if ours.keyName == "" {
		ours.keyName = keyName(a.SPEncryptionCert)
	}
	other := recipient{entityID: "urn:etoegang:DV:00000009999999999099:entities:9099", keyName: keyName(s.other.cert), cert: s.other.cert}
	rcpts := []recipient{other, ours}
	if b.otherOnly {
		rcpts = []recipient{other}
	}

	stmt := as.CreateElement("saml:AttributeStatement")
	plainAttr(stmt, "urn:etoegang:core:ServiceID", a.ServiceID)
	plainAttr(stmt, "urn:etoegang:core:ServiceUUID", a.ServiceUUID)
	legal := etree.NewElement("saml:Attribute")
	legal.CreateAttr("Name", "urn:etoegang:core:LegalSubjectID")
	kvkValue := a.Company.KvK
	if b.nameIDComment {
		kvkValue = a.Company.KvK + "<!---->"
	}
	ids := [][2]string{{"urn:etoegang:1.9:EntityConcernedID:KvKnr", kvkValue}}
	if a.Company.RSIN != "" {
		ids = append(ids, [2]string{"urn:etoegang:1.9:EntityConcernedID:RSIN", a.Company.RSIN})
	}
	for _, id := range ids {
		eid, err := encryptNameID(id[0], id[1], rcpts, b.gcm)
		if err != nil {
			return nil, err
		}
		legal.CreateElement("saml:AttributeValue").AddChild(eid)
	}
	if b.encryptedAttr {
		ea, err := encryptElement("saml:EncryptedAttribute", legal, rcpts, b.gcm)
		if err != nil {
			return nil, err
		}
		stmt.AddChild(ea)
	} else {
		stmt.AddChild(legal)
	}
	acting := stmt.CreateElement("saml:Attribute")
	acting.CreateAttr("Name", "urn:etoegang:core:ActingSubjectID")
	peid, err := encryptNameID("urn:etoegang:1.9:EntityConcernedID:Pseudo", a.Pseudonym, rcpts, b.gcm)
	if err != nil {
		return nil, err
	}
	acting.CreateElement("saml:AttributeValue").AddChild(peid)
	if a.Company.Branch != "" {
		plainAttr(stmt, "urn:etoegang:1.9:ServiceRestriction:Vestigingsnr", a.Company.Branch)
	}
	if a.Company.Name != "" {
		plainAttr(stmt, "urn:etoegang:1.11:attribute-represented:CompanyName", a.Company.Name)
	}
	for _, f := range b.tamperAssertion {
		f(as)
	}
	if !b.unsigned && !b.noAssertionSig {
		if err := b.sign(as); err != nil {
			return nil, err
		}
	}
	return as, nil
}

func plainAttr(stmt *etree.Element, name, value string) {
	at := stmt.CreateElement("saml:Attribute")
	at.CreateAttr("Name", name)
	at.CreateElement("saml:AttributeValue").SetText(value)
}

func (s *Simulator) adEntityID() string {
	return "urn:etoegang:AD:00000009999999999002:entities:9002"
}

// adviceAssertion is the authentication service's assertion the broker
// passes along in Advice, signed by the simulator's second key.
func (s *Simulator) adviceAssertion(now time.Time, level string) (*etree.Element, error) {
	as := etree.NewElement("saml:Assertion")
	as.CreateAttr("xmlns:saml", nsSAML)
	as.CreateAttr("ID", randomID())
	as.CreateAttr("Version", "2.0")
	as.CreateAttr("IssueInstant", samlTime(now))
	as.CreateElement("saml:Issuer").SetText(s.adEntityID())
	authn := as.CreateElement("saml:AuthnStatement")
	authn.CreateAttr("AuthnInstant", samlTime(now))
	authn.CreateElement("saml:AuthnContext").CreateElement("saml:AuthnContextClassRef").SetText(level)
	b := &build{key: s.keys[1].key, cert: s.keys[1].cert}
	if err := b.sign(as); err != nil {
		return nil, err
	}
	return as, nil
}

// encryptNameID makes an EncryptedID holding a persistent NameID.
func encryptNameID(qualifier, value string, rcpts []recipient, gcm bool) (*etree.Element, error) {
	plain := `<saml:NameID xmlns:saml="` + nsSAML + `" Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent" NameQualifier="` + qualifier + `">` + value + `</saml:NameID>`
	return encryptBytes("saml:EncryptedID", []byte(plain), rcpts, gcm)
}

// encryptElement encrypts el into a wrapper element (EncryptedAttribute).
func encryptElement(tag string, el *etree.Element, rcpts []recipient, gcm bool) (*etree.Element, error) {
	cp := el.Copy()
	cp.CreateAttr("xmlns:saml", nsSAML)
	cp.CreateAttr("xmlns:xenc", nsXENC)
	cp.CreateAttr("xmlns:ds", nsDS)
	doc := etree.NewDocument()
	doc.SetRoot(cp)
	raw, err := doc.WriteToBytes()
	if err != nil {
		return nil, err
	}
	return encryptBytes(tag, raw, rcpts, gcm)
}

// encryptBytes encrypts plain for several recipients (SAML errata E43):
// one EncryptedData whose KeyInfo names the key, and per recipient one
// EncryptedKey (RSA-OAEP) with Recipient, KeyName and CarriedKeyName.
func encryptBytes(tag string, plain []byte, rcpts []recipient, gcm bool) (*etree.Element, error) {
	symKey := make([]byte, 32)
	if _, err := rand.Read(symKey); err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(symKey)
	if err != nil {
		return nil, err
	}
	var ct []byte
	alg := nsXENC + "aes256-cbc"
	if gcm {
		alg = "http://www.w3.org/2009/xmlenc11#aes256-gcm"
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		nonce := make([]byte, aead.NonceSize())
		if _, err := rand.Read(nonce); err != nil {
			return nil, err
		}
		ct = aead.Seal(nonce, nonce, plain, nil)
	} else {
		pad := aes.BlockSize - len(plain)%aes.BlockSize
		padded := append(append([]byte{}, plain...), bytes.Repeat([]byte{byte(pad)}, pad)...)
		ct = make([]byte, aes.BlockSize+len(padded))
		if _, err := rand.Read(ct[:aes.BlockSize]); err != nil {
			return nil, err
		}
		cipher.NewCBCEncrypter(block, ct[:aes.BlockSize]).CryptBlocks(ct[aes.BlockSize:], padded)
	}
	dataKeyName := "sim-" + hex.EncodeToString(symKey[:6])
	wrapper := etree.NewElement(tag)
	ed := wrapper.CreateElement("xenc:EncryptedData")
	ed.CreateAttr("Type", nsXENC+"Element")
	ed.CreateElement("xenc:EncryptionMethod").CreateAttr("Algorithm", alg)
	ed.CreateElement("ds:KeyInfo").CreateElement("ds:KeyName").SetText(dataKeyName)
	ed.CreateElement("xenc:CipherData").CreateElement("xenc:CipherValue").SetText(base64.StdEncoding.EncodeToString(ct))
	for _, r := range rcpts {
		pub, ok := r.cert.PublicKey.(*rsa.PublicKey)
		if !ok {
			return nil, errors.New("ehsim: recipient certificate is not RSA")
		}
		wrapped, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, symKey, nil) //nolint:gosec // profile's key transport
		if err != nil {
			return nil, err
		}
		ek := wrapper.CreateElement("xenc:EncryptedKey")
		ek.CreateAttr("Recipient", r.entityID)
		em := ek.CreateElement("xenc:EncryptionMethod")
		em.CreateAttr("Algorithm", nsXENC+"rsa-oaep-mgf1p")
		em.CreateElement("ds:DigestMethod").CreateAttr("Algorithm", "http://www.w3.org/2000/09/xmldsig#sha1")
		ek.CreateElement("ds:KeyInfo").CreateElement("ds:KeyName").SetText(r.keyName)
		ek.CreateElement("xenc:CipherData").CreateElement("xenc:CipherValue").SetText(base64.StdEncoding.EncodeToString(wrapped))
		ek.CreateElement("xenc:CarriedKeyName").SetText(dataKeyName)
	}
	return wrapper, nil
}
