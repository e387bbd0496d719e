package eherkenning

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"github.com/beevik/etree"
)

// Metadata returns our signed SP metadata: one EntityDescriptor with only
// the elements the profile allows (no NameIDFormat), KeyName on every key,
// an HTTP-Artifact ACS (plus HTTP-POST when configured), and the
// AttributeConsumingService whose first RequestedAttribute is our
// ServiceID.
func (sp *ServiceProvider) Metadata() ([]byte, error) {
	ed := etree.NewElement("md:EntityDescriptor")
	ed.CreateAttr("xmlns:md", nsMD)
	ed.CreateAttr("xmlns:ds", nsDS)
	ed.CreateAttr("ID", randomID())
	ed.CreateAttr("entityID", sp.cfg.EntityID)
	spd := ed.CreateElement("md:SPSSODescriptor")
	spd.CreateAttr("AuthnRequestsSigned", "true")
	spd.CreateAttr("WantAssertionsSigned", "true")
	spd.CreateAttr("protocolSupportEnumeration", nsSAMLP)
	// Every key of the set is published, the current one first: a next
	// key before it signs, an old one while answers may be encrypted to it.
	keys := sp.active()
	for _, k := range keys.set.Keys {
		if k.SigningCert.Equal(k.EncryptionCert) {
			spd.AddChild(keyDescriptor("", k.SigningCert))
		} else {
			spd.AddChild(keyDescriptor("signing", k.SigningCert))
			spd.AddChild(keyDescriptor("encryption", k.EncryptionCert))
		}
	}
	acs := spd.CreateElement("md:AssertionConsumerService")
	acs.CreateAttr("Binding", BindingHTTPArtifact)
	acs.CreateAttr("Location", sp.cfg.ACSURL)
	acs.CreateAttr("index", "0")
	acs.CreateAttr("isDefault", "true")
	if sp.cfg.ResponseBinding == BindingHTTPPost {
		post := spd.CreateElement("md:AssertionConsumerService")
		post.CreateAttr("Binding", BindingHTTPPost)
		post.CreateAttr("Location", sp.cfg.ACSURL)
		post.CreateAttr("index", "1")
	}
	acsvc := spd.CreateElement("md:AttributeConsumingService")
	acsvc.CreateAttr("index", strconv.Itoa(sp.cfg.AttributeConsumingServiceIndex))
	acsvc.CreateAttr("isDefault", "true")
	sn := acsvc.CreateElement("md:ServiceName")
	sn.CreateAttr("xml:lang", "nl")
	sn.SetText(sp.cfg.ServiceName)
	ra := acsvc.CreateElement("md:RequestedAttribute")
	ra.CreateAttr("Name", sp.cfg.ServiceID)
	ra.CreateAttr("isRequired", "false")
	if err := keys.signer.sign(ed, false); err != nil {
		return nil, err
	}
	return serialize(ed)
}

// keyDescriptor is an md:KeyDescriptor with KeyName and certificate.
func keyDescriptor(use string, cert *x509.Certificate) *etree.Element {
	kd := etree.NewElement("md:KeyDescriptor")
	if use != "" {
		kd.CreateAttr("use", use)
	}
	ki := kd.CreateElement("ds:KeyInfo")
	ki.CreateElement("ds:KeyName").SetText(KeyName(cert))
	ki.CreateElement("ds:X509Data").CreateElement("ds:X509Certificate").SetText(base64.StdEncoding.EncodeToString(cert.Raw))
	return kd
}

// LocalizedText is a text in Dutch and (optionally) English.
type LocalizedText struct{ NL, EN string }

func (t LocalizedText) add(parent *etree.Element, tag string) {
	for _, v := range []struct{ lang, text string }{{"nl", t.NL}, {"en", t.EN}} {
		if v.text == "" {
			continue
		}
		e := parent.CreateElement(tag)
		e.CreateAttr("xml:lang", v.lang)
		e.SetText(v.text)
	}
}

// CatalogueOptions describe our service for the dienstcatalogus. Fields
// marked required must be set; the rest are optional.
type CatalogueOptions struct {
	// Version is esc:Version, e.g. "urn:etoegang:1.13:service-catalogue:T:1"
	// (T for test, P for production); required.
	Version string
	// BrokerOIN is the Herkenningsmakelaar's OIN (20 digits); required.
	BrokerOIN string
	// OrganizationDisplayName is our name as the broker shows it; required.
	OrganizationDisplayName LocalizedText
	// ServiceDefinitionUUID is the UUID of the service definition; the
	// instance UUID is Config.ServiceUUID. Required.
	ServiceDefinitionUUID string
	// ServiceName (≤ 64) and ServiceDescription (≤ 1024); required.
	ServiceName        LocalizedText
	ServiceDescription LocalizedText
	// ServiceURL and PrivacyPolicyURL of the service instance.
	ServiceURL       LocalizedText
	PrivacyPolicyURL LocalizedText
	// AllowBranchRestriction accepts machtigingen restricted to one branch
	// (Vestigingsnr); we then honour the restriction.
	AllowBranchRestriction bool
	// IsPublic marks the service as public in the catalogue.
	IsPublic bool
}

var reOIN = regexp.MustCompile(`^[0-9]{20}$`)

// ServiceCatalogue returns our signed dienstcatalogus entry (namespace
// urn:etoegang:1.13:service-catalog) for submission to the broker: one
// ServiceDefinition at MinLevel accepting KvK numbers (set 1: RSIN and
// KvKnr; set 2: KvKnr), and one ServiceInstance with our ServiceID,
// ServiceUUID and encryption certificate.
func (sp *ServiceProvider) ServiceCatalogue(o CatalogueOptions) ([]byte, error) {
	switch {
	case o.Version == "":
		return nil, errors.New("eherkenning: catalogue Version is required")
	case !reOIN.MatchString(o.BrokerOIN):
		return nil, fmt.Errorf("eherkenning: BrokerOIN %q is not 20 digits", o.BrokerOIN)
	case o.OrganizationDisplayName.NL == "" || o.ServiceName.NL == "" || o.ServiceDescription.NL == "":
		return nil, errors.New("eherkenning: organisation name, service name and description (nl) are required")
	case o.ServiceDefinitionUUID == "":
		return nil, errors.New("eherkenning: ServiceDefinitionUUID is required")
	case len(o.ServiceName.NL) > 64 || len(o.ServiceName.EN) > 64 || len(o.OrganizationDisplayName.NL) > 64 || len(o.OrganizationDisplayName.EN) > 64:
		return nil, errors.New("eherkenning: names are limited to 64 characters")
	}
	public := strconv.FormatBool(o.IsPublic)
	root := etree.NewElement("esc:ServiceCatalogue")
	root.CreateAttr("xmlns:esc", nsESC)
	root.CreateAttr("xmlns:ds", nsDS)
	root.CreateAttr("xmlns:md", nsMD)
	root.CreateAttr("xmlns:saml", nsSAML)
	root.CreateAttr("ID", randomID())
	root.CreateAttr("esc:IssueInstant", samlTime(sp.cfg.Now()))
	root.CreateAttr("esc:Version", o.Version)
	prov := root.CreateElement("esc:ServiceProvider")
	prov.CreateAttr("esc:IsPublic", public)
	prov.CreateElement("esc:ServiceProviderID").SetText(sp.oin)
	o.OrganizationDisplayName.add(prov, "esc:OrganizationDisplayName")

	def := prov.CreateElement("esc:ServiceDefinition")
	def.CreateAttr("esc:IsPublic", public)
	def.CreateElement("esc:ServiceUUID").SetText(o.ServiceDefinitionUUID)
	o.ServiceName.add(def, "esc:ServiceName")
	o.ServiceDescription.add(def, "esc:ServiceDescription")
	def.CreateElement("saml:AuthnContextClassRef").SetText(sp.minLevel)
	def.CreateElement("esc:HerkenningsmakelaarId").SetText(o.BrokerOIN)
	for i, set := range [][]string{{QualifierRSIN, QualifierKvK}, {QualifierKvK}} {
		for _, t := range set {
			e := def.CreateElement("esc:EntityConcernedTypesAllowed")
			e.CreateAttr("setNumber", strconv.Itoa(i+1))
			e.SetText(t)
		}
	}
	if o.AllowBranchRestriction {
		def.CreateElement("esc:ServiceRestrictionsAllowed").SetText(AttrBranch)
	}

	inst := prov.CreateElement("esc:ServiceInstance")
	inst.CreateAttr("esc:IsPublic", public)
	inst.CreateElement("esc:ServiceID").SetText(sp.cfg.ServiceID)
	inst.CreateElement("esc:ServiceUUID").SetText(sp.cfg.ServiceUUID)
	inst.CreateElement("esc:InstanceOfService").SetText(o.ServiceDefinitionUUID)
	o.ServiceURL.add(inst, "esc:ServiceURL")
	o.PrivacyPolicyURL.add(inst, "esc:PrivacyPolicyURL")
	inst.CreateElement("esc:HerkenningsmakelaarId").SetText(o.BrokerOIN)
	inst.CreateElement("esc:SSOSupport").SetText("false")
	keys := sp.active()
	inst.CreateElement("esc:ServiceCertificate").AddChild(keyDescriptor("encryption", keys.set.Current().EncryptionCert))

	if err := keys.signer.sign(root, false); err != nil {
		return nil, err
	}
	return serialize(root)
}
