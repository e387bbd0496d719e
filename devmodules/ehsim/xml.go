package ehsim

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/russellhaering/goxmldsig/etreeutils"
)

const (
	nsSAML  = "urn:oasis:names:tc:SAML:2.0:assertion"
	nsSAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
	nsMD    = "urn:oasis:names:tc:SAML:2.0:metadata"
	nsDS    = "http://www.w3.org/2000/09/xmldsig#"
	nsXENC  = "http://www.w3.org/2001/04/xmlenc#"
	nsSOAP  = "http://schemas.xmlsoap.org/soap/envelope/"

	bindingArtifact = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact"
	bindingPOST     = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
	bindingRedirect = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
	bindingSOAP     = "urn:oasis:names:tc:SAML:2.0:bindings:SOAP"

	maxMessage = 256 << 10
)

// parseUntrusted reads XML from the network: no DTD, no processing
// instructions, bounded size and depth.
func parseUntrusted(raw []byte) (*etree.Document, error) {
	if len(raw) > maxMessage {
		return nil, errors.New("message too large")
	}
	d := xml.NewDecoder(bytes.NewReader(raw))
	d.Strict = true
	depth := 0
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.Directive:
			return nil, errors.New("DTDs are not allowed")
		case xml.ProcInst:
			if t.Target != "xml" {
				return nil, errors.New("processing instructions are not allowed")
			}
		case xml.StartElement:
			if depth++; depth > 32 {
				return nil, errors.New("too deep")
			}
		case xml.EndElement:
			depth--
		}
	}
	doc := etree.NewDocument()
	doc.ReadSettings = etree.ReadSettings{MaxDepth: 32}
	if err := doc.ReadFromBytes(raw); err != nil {
		return nil, err
	}
	if doc.Root() == nil {
		return nil, errors.New("empty document")
	}
	return doc, nil
}

func is(el *etree.Element, ns, local string) bool {
	return el != nil && el.Tag == local && el.NamespaceURI() == ns
}

func children(el *etree.Element, ns, local string) []*etree.Element {
	var out []*etree.Element
	for _, c := range el.ChildElements() {
		if is(c, ns, local) {
			out = append(out, c)
		}
	}
	return out
}

func first(el *etree.Element, ns, local string) *etree.Element {
	if cs := children(el, ns, local); len(cs) > 0 {
		return cs[0]
	}
	return nil
}

func text(el *etree.Element) string {
	if el == nil {
		return ""
	}
	return strings.TrimSpace(el.Text())
}

func samlTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// certFromBase64 reads a base64 DER certificate with whitespace.
func certFromBase64(s string) (*x509.Certificate, error) {
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

var strongSignatureMethods = map[string]crypto.Hash{
	dsig.RSASHA256SignatureMethod: crypto.SHA256,
	dsig.RSASHA384SignatureMethod: crypto.SHA384,
	dsig.RSASHA512SignatureMethod: crypto.SHA512,
}

var strongDigests = map[string]bool{
	"http://www.w3.org/2001/04/xmlenc#sha256":       true,
	"http://www.w3.org/2001/04/xmldsig-more#sha384": true,
	"http://www.w3.org/2001/04/xmlenc#sha512":       true,
}

// verifyEnveloped checks the enveloped XML signature of el (a root element)
// with one of the SP's signing certificates, refusing SHA-1 and unsigned
// messages. The certificate is picked by KeyName when the signature names
// one.
func verifyEnveloped(el *etree.Element, certs []spCert) error {
	ctx, err := etreeutils.NSBuildParentContext(el)
	if err != nil {
		return err
	}
	el, err = etreeutils.NSDetatch(ctx, el)
	if err != nil {
		return err
	}
	sigs := children(el, nsDS, "Signature")
	if len(sigs) != 1 {
		return errors.New("the message is not signed")
	}
	si := first(sigs[0], nsDS, "SignedInfo")
	if si == nil {
		return errors.New("signature without SignedInfo")
	}
	if sm := first(si, nsDS, "SignatureMethod"); sm == nil || strongSignatureMethods[sm.SelectAttrValue("Algorithm", "")] == 0 {
		return errors.New("signature method is missing or SHA-1")
	}
	refs := children(si, nsDS, "Reference")
	if len(refs) != 1 || refs[0].SelectAttrValue("URI", "") != "#"+el.SelectAttrValue("ID", "-") {
		return errors.New("signature does not reference the message")
	}
	if dm := first(refs[0], nsDS, "DigestMethod"); dm == nil || !strongDigests[dm.SelectAttrValue("Algorithm", "")] {
		return errors.New("digest method is missing or SHA-1")
	}
	candidates := certs
	if ki := first(sigs[0], nsDS, "KeyInfo"); ki != nil {
		if kn := first(ki, nsDS, "KeyName"); kn != nil {
			candidates = nil
			for _, c := range certs {
				if strings.EqualFold(c.name, text(kn)) {
					candidates = append(candidates, c)
				}
			}
		}
		sigs[0].RemoveChild(ki)
	}
	lastErr := errors.New("no signing certificate of the SP matches")
	for _, c := range candidates {
		vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{c.cert}})
		if _, err := vc.Validate(el); err == nil {
			return nil
		} else {
			lastErr = err
		}
	}
	return fmt.Errorf("signature does not verify: %w", lastErr)
}
