package eherkenning

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // SHA-1 fingerprints name keys (Logius practice); never used for signatures.
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/russellhaering/goxmldsig/etreeutils"
)

// Algorithms accepted in signatures. SHA-1 is refused everywhere.
var (
	allowedSignatureMethods = map[string]crypto.Hash{
		dsig.RSASHA256SignatureMethod: crypto.SHA256,
		dsig.RSASHA384SignatureMethod: crypto.SHA384,
		dsig.RSASHA512SignatureMethod: crypto.SHA512,
	}
	allowedDigestMethods = map[string]bool{
		"http://www.w3.org/2001/04/xmlenc#sha256":       true,
		"http://www.w3.org/2001/04/xmldsig-more#sha384": true,
		"http://www.w3.org/2001/04/xmlenc#sha512":       true,
	}
	allowedTransforms = map[string]bool{
		string(dsig.EnvelopedSignatureAltorithmId):      true,
		string(dsig.CanonicalXML10ExclusiveAlgorithmId): true,
	}
)

// namedCert is a trusted certificate with the KeyNames it may be referred to by.
type namedCert struct {
	cert  *x509.Certificate
	names []string
}

// KeyName returns the KeyName this package uses for cert: the lower-case hex
// SHA-256 fingerprint, as the eHerkenning brokers publish theirs.
func KeyName(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// keyNameAliases are the names a peer may use for one of our certificates:
// the SHA-256 and SHA-1 fingerprints, in lower case.
func keyNameAliases(cert *x509.Certificate) []string {
	s1 := sha1.Sum(cert.Raw) //nolint:gosec // a name, not a signature
	return []string{KeyName(cert), hex.EncodeToString(s1[:])}
}

func (n namedCert) hasName(name string) bool {
	name = strings.ToLower(strings.TrimSpace(name))
	for _, k := range n.names {
		if strings.ToLower(k) == name {
			return true
		}
	}
	return false
}

// verifySigned checks the enveloped signature of el against the trusted
// certificates and returns the signed content as goxmldsig reconstructed it
// from the digested bytes. Everything the caller reads must come from the
// returned element. el may sit inside a larger tree; its in-scope
// namespaces are carried along.
func verifySigned(el *etree.Element, trusted []namedCert, now time.Time) (*etree.Element, error) {
	nsCtx, err := etreeutils.NSBuildParentContext(el)
	if err != nil {
		return nil, err
	}
	el, err = etreeutils.NSDetatch(nsCtx, el)
	if err != nil {
		return nil, err
	}
	id := el.SelectAttrValue("ID", "")
	if id == "" {
		return nil, errors.New("signed element has no ID")
	}
	sigs := children(el, nsDS, "Signature")
	if len(sigs) != 1 {
		return nil, fmt.Errorf("%s carries %d signatures, want 1", el.Tag, len(sigs))
	}
	sig := sigs[0]
	// No other signature below el may claim to cover el itself.
	for _, other := range descendants(el, nsDS, "Signature") {
		if other == sig {
			continue
		}
		for _, si := range children(other, nsDS, "SignedInfo") {
			for _, ref := range children(si, nsDS, "Reference") {
				if uri := ref.SelectAttrValue("URI", ""); uri == "" || uri == "#"+id {
					return nil, errors.New("a nested signature refers to the signed element")
				}
			}
		}
	}
	if err := checkSignedInfo(sig, id); err != nil {
		return nil, err
	}
	candidates, err := selectCerts(sig, trusted)
	if err != nil {
		return nil, err
	}
	var lastErr error
	for _, c := range candidates {
		cp := el.Copy()
		for _, s := range children(cp, nsDS, "Signature") {
			for _, ki := range children(s, nsDS, "KeyInfo") {
				s.RemoveChild(ki)
			}
		}
		vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{c.cert}})
		vc.Clock = dsig.NewFakeClockAt(now)
		verified, err := vc.Validate(cp)
		if err == nil {
			if verified.SelectAttrValue("ID", "") != id {
				return nil, errors.New("verified element changed its ID")
			}
			return verified, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("signature does not verify: %w", lastErr)
}

// checkSignedInfo enforces the algorithm allow-list and the reference to
// the element's own ID.
func checkSignedInfo(sig *etree.Element, id string) error {
	si, err := mustChild(sig, nsDS, "SignedInfo")
	if err != nil {
		return err
	}
	cm, err := mustChild(si, nsDS, "CanonicalizationMethod")
	if err != nil {
		return err
	}
	if a := cm.SelectAttrValue("Algorithm", ""); a != string(dsig.CanonicalXML10ExclusiveAlgorithmId) {
		return fmt.Errorf("canonicalization %q not allowed", a)
	}
	sm, err := mustChild(si, nsDS, "SignatureMethod")
	if err != nil {
		return err
	}
	if a := sm.SelectAttrValue("Algorithm", ""); allowedSignatureMethods[a] == 0 {
		return fmt.Errorf("signature method %q not allowed", a)
	}
	refs := children(si, nsDS, "Reference")
	if len(refs) != 1 {
		return fmt.Errorf("%d references, want 1", len(refs))
	}
	ref := refs[0]
	if uri := ref.SelectAttrValue("URI", ""); uri != "#"+id {
		return fmt.Errorf("reference %q does not point at the signed element", uri)
	}
	if ts, _ := child(ref, nsDS, "Transforms"); ts != nil {
		list := children(ts, nsDS, "Transform")
		if len(list) > 2 {
			return errors.New("too many transforms")
		}
		for _, t := range list {
			if a := t.SelectAttrValue("Algorithm", ""); !allowedTransforms[a] {
				return fmt.Errorf("transform %q not allowed", a)
			}
		}
	}
	dm, err := mustChild(ref, nsDS, "DigestMethod")
	if err != nil {
		return err
	}
	if a := dm.SelectAttrValue("Algorithm", ""); !allowedDigestMethods[a] {
		return fmt.Errorf("digest method %q not allowed", a)
	}
	return nil
}

// selectCerts picks the trusted certificates a signature may have been made
// with: by KeyName when KeyInfo names one, by equality when KeyInfo carries
// a certificate (which must then be one of ours), else all of them.
func selectCerts(sig *etree.Element, trusted []namedCert) ([]namedCert, error) {
	if len(trusted) == 0 {
		return nil, errors.New("no trusted signing certificates")
	}
	ki, err := child(sig, nsDS, "KeyInfo")
	if err != nil {
		return nil, err
	}
	if ki == nil {
		return trusted, nil
	}
	out := trusted
	if names := children(ki, nsDS, "KeyName"); len(names) > 0 {
		out = nil
		for _, n := range names {
			name, err := strictText(n)
			if err != nil {
				return nil, err
			}
			for _, c := range trusted {
				if c.hasName(name) {
					out = append(out, c)
				}
			}
		}
		if len(out) == 0 {
			return nil, errors.New("KeyName names no certificate in the broker metadata")
		}
	}
	var inline []*x509.Certificate
	for _, xd := range children(ki, nsDS, "X509Data") {
		for _, xc := range children(xd, nsDS, "X509Certificate") {
			txt, err := strictText(xc)
			if err != nil {
				return nil, err
			}
			der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(txt), ""))
			if err != nil {
				return nil, errors.New("bad X509Certificate in KeyInfo")
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				return nil, errors.New("bad X509Certificate in KeyInfo")
			}
			inline = append(inline, cert)
		}
	}
	if len(inline) > 0 {
		var pinned []namedCert
		for _, c := range out {
			for _, ic := range inline {
				if c.cert.Equal(ic) {
					pinned = append(pinned, c)
				}
			}
		}
		if len(pinned) == 0 {
			return nil, errors.New("KeyInfo certificate is not in the broker metadata")
		}
		out = pinned
	}
	return out, nil
}

// signer signs our messages with RSA-SHA256, SHA-256 digests and exclusive
// canonicalization.
type signer struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

// sign adds an enveloped signature to el, right after its Issuer (or first
// when it has none). With keyName set, KeyInfo carries only the KeyName, as
// the profile requires in messages; otherwise it carries the certificate, as
// the profile requires in metadata.
func (s signer) sign(el *etree.Element, keyName bool) error {
	ctx, err := dsig.NewSigningContext(s.key, [][]byte{s.cert.Raw})
	if err != nil {
		return err
	}
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := ctx.SetSignatureMethod(dsig.RSASHA256SignatureMethod); err != nil {
		return err
	}
	sig, err := ctx.ConstructSignature(el.Copy(), true)
	if err != nil {
		return err
	}
	if keyName {
		for _, ki := range sig.SelectElements("KeyInfo") {
			sig.RemoveChild(ki)
		}
		ki := sig.CreateElement("ds:KeyInfo")
		ki.CreateElement("ds:KeyName").SetText(KeyName(s.cert))
	}
	pos := 0
	for i, c := range el.Child {
		if e, ok := c.(*etree.Element); ok && e.Tag == "Issuer" {
			pos = i + 1
			break
		}
	}
	el.InsertChildAt(pos, sig)
	return nil
}

// signString signs a Redirect-binding query string with RSA-SHA256.
func (s signer) signString(octets string) ([]byte, error) {
	sum := sha256.Sum256([]byte(octets))
	return rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, sum[:])
}
