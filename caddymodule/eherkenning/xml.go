package eherkenning

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/beevik/etree"
	xrv "github.com/mattermost/xml-roundtrip-validator"
)

// XML namespaces and URIs used by the profile.
const (
	nsSAML  = "urn:oasis:names:tc:SAML:2.0:assertion"
	nsSAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
	nsMD    = "urn:oasis:names:tc:SAML:2.0:metadata"
	nsDS    = "http://www.w3.org/2000/09/xmldsig#"
	nsXENC  = "http://www.w3.org/2001/04/xmlenc#"
	nsXENC1 = "http://www.w3.org/2009/xmlenc11#"
	nsSOAP  = "http://schemas.xmlsoap.org/soap/envelope/"
	nsESC   = "urn:etoegang:1.13:service-catalog"

	statusSuccess            = "urn:oasis:names:tc:SAML:2.0:status:Success"
	statusAuthnFailed        = "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"
	statusRequestUnsupported = "urn:oasis:names:tc:SAML:2.0:status:RequestUnsupported"

	cmBearer = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
)

// SAML bindings.
const (
	BindingHTTPArtifact = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact"
	BindingHTTPPost     = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
	BindingHTTPRedirect = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
	BindingSOAP         = "urn:oasis:names:tc:SAML:2.0:bindings:SOAP"
)

// Limits on what is read from the network.
const (
	maxXMLBytes    = 512 << 10 // one SAML or SOAP message, decoded
	maxXMLDepth    = 48
	maxXMLElements = 4000
)

// parseXML reads one untrusted XML document. It refuses DTDs (and so entity
// declarations), processing instructions other than the XML declaration,
// duplicate attributes, duplicate ID values, deep or very large trees, and
// documents that do not survive an encoding/xml round trip.
func parseXML(raw []byte) (*etree.Document, error) {
	if len(raw) > maxXMLBytes {
		return nil, fmt.Errorf("document of %d bytes exceeds %d", len(raw), maxXMLBytes)
	}
	if err := prescanXML(raw); err != nil {
		return nil, err
	}
	if err := xrv.Validate(bytes.NewReader(raw)); err != nil {
		return nil, fmt.Errorf("xml round trip: %w", err)
	}
	doc := etree.NewDocument()
	doc.ReadSettings = etree.ReadSettings{MaxDepth: maxXMLDepth}
	if err := doc.ReadFromBytes(raw); err != nil {
		return nil, fmt.Errorf("xml: %w", err)
	}
	if doc.Root() == nil {
		return nil, errors.New("xml: no root element")
	}
	return doc, nil
}

func prescanXML(raw []byte) error {
	d := xml.NewDecoder(bytes.NewReader(raw))
	d.Strict = true
	depth, elements := 0, 0
	ids := map[string]bool{}
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("xml: %w", err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return errors.New("xml: DTDs and entity declarations are not allowed")
		case xml.ProcInst:
			if t.Target != "xml" {
				return fmt.Errorf("xml: processing instruction %q not allowed", t.Target)
			}
		case xml.StartElement:
			depth++
			elements++
			if depth > maxXMLDepth || elements > maxXMLElements {
				return errors.New("xml: document too deep or too large")
			}
			seen := make(map[xml.Name]bool, len(t.Attr))
			for _, a := range t.Attr {
				if seen[a.Name] {
					return fmt.Errorf("xml: duplicate attribute %s", a.Name.Local)
				}
				seen[a.Name] = true
				if a.Name.Space == "" && a.Name.Local == "ID" {
					if ids[a.Value] {
						return fmt.Errorf("xml: duplicate ID %q", a.Value)
					}
					ids[a.Value] = true
				}
			}
		case xml.EndElement:
			depth--
		}
	}
	return nil
}

// is reports whether el is the element {ns}local.
func is(el *etree.Element, ns, local string) bool {
	return el != nil && el.Tag == local && el.NamespaceURI() == ns
}

// children returns the child elements {ns}local of el.
func children(el *etree.Element, ns, local string) []*etree.Element {
	var out []*etree.Element
	for _, c := range el.ChildElements() {
		if is(c, ns, local) {
			out = append(out, c)
		}
	}
	return out
}

// child returns the only child element {ns}local of el, nil if there is
// none, and an error if there are several.
func child(el *etree.Element, ns, local string) (*etree.Element, error) {
	cs := children(el, ns, local)
	switch len(cs) {
	case 0:
		return nil, nil
	case 1:
		return cs[0], nil
	}
	return nil, fmt.Errorf("%d %s elements where one is allowed", len(cs), local)
}

// mustChild is child that also fails when the element is absent.
func mustChild(el *etree.Element, ns, local string) (*etree.Element, error) {
	c, err := child(el, ns, local)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, fmt.Errorf("missing %s in %s", local, el.Tag)
	}
	return c, nil
}

// descendants returns every element {ns}local below el, in document order.
func descendants(el *etree.Element, ns, local string) []*etree.Element {
	var out []*etree.Element
	for _, c := range el.ChildElements() {
		if is(c, ns, local) {
			out = append(out, c)
		}
		out = append(out, descendants(c, ns, local)...)
	}
	return out
}

// strictText returns the character data of el, refusing comments, child
// elements and processing instructions inside it (so "a<!---->b" cannot be
// read as "a").
func strictText(el *etree.Element) (string, error) {
	var b strings.Builder
	for _, t := range el.Child {
		switch c := t.(type) {
		case *etree.CharData:
			b.WriteString(c.Data)
		default:
			return "", fmt.Errorf("unexpected content inside %s", el.Tag)
		}
	}
	return strings.TrimSpace(b.String()), nil
}

// childText returns the strict text of the only {ns}local child of el, or
// "" when it is absent.
func childText(el *etree.Element, ns, local string) (string, error) {
	c, err := child(el, ns, local)
	if err != nil || c == nil {
		return "", err
	}
	return strictText(c)
}

// parseTime reads an xs:dateTime attribute in UTC as SAML requires.
func parseTime(el *etree.Element, attr string) (time.Time, bool, error) {
	v := el.SelectAttrValue(attr, "")
	if v == "" {
		return time.Time{}, false, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, true, fmt.Errorf("%s: bad time %q", attr, v)
	}
	return t.UTC(), true, nil
}

// samlTime formats t the way SAML messages carry instants.
func samlTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// serialize writes el as a standalone document.
func serialize(el *etree.Element) ([]byte, error) {
	doc := etree.NewDocument()
	doc.SetRoot(el)
	doc.WriteSettings = etree.WriteSettings{CanonicalEndTags: true, CanonicalText: true, CanonicalAttrVal: true}
	return doc.WriteToBytes()
}
