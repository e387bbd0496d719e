package eherkenning

import (
	"fmt"
	"regexp"

	"github.com/beevik/etree"
)

// Attribute names and identifier types of the profile.
const (
	AttrServiceID       = "urn:etoegang:core:ServiceID"
	AttrServiceUUID     = "urn:etoegang:core:ServiceUUID"
	AttrLegalSubjectID  = "urn:etoegang:core:LegalSubjectID"
	AttrActingSubjectID = "urn:etoegang:core:ActingSubjectID"
	AttrBranch          = "urn:etoegang:1.9:ServiceRestriction:Vestigingsnr"
	AttrSubdossier      = "urn:etoegang:1.9:ServiceRestriction:SubdossierNr"
	AttrCompanyName     = "urn:etoegang:1.11:attribute-represented:CompanyName"

	QualifierKvK      = "urn:etoegang:1.9:EntityConcernedID:KvKnr"
	QualifierRSIN     = "urn:etoegang:1.9:EntityConcernedID:RSIN"
	QualifierPseudo   = "urn:etoegang:1.9:EntityConcernedID:Pseudo"
	QualifierPseudo13 = "urn:etoegang:1.13:EntityConcernedID:Pseudo"
)

var (
	reKvK    = regexp.MustCompile(`^[0-9]{8}$`)
	reRSIN   = regexp.MustCompile(`^[0-9]{9}$`)
	reBranch = regexp.MustCompile(`^[0-9]{12}$`)
	reSubdos = regexp.MustCompile(`^[0-9]{1,4}$`)
)

// readAttributes reads the attribute statements of the verified assertion:
// the service echo, the encrypted identifiers and the optional plain
// attributes. EncryptedAttribute elements are decrypted first.
func (sp *ServiceProvider) readAttributes(a *etree.Element, res *Result) *Error {
	var attrs []*etree.Element
	for _, st := range children(a, nsSAML, "AttributeStatement") {
		for _, c := range st.ChildElements() {
			switch {
			case is(c, nsSAML, "Attribute"):
				attrs = append(attrs, c)
			case is(c, nsSAML, "EncryptedAttribute"):
				at, err := sp.decrypt(c)
				if err != nil {
					return wrapErr(CodeIdentity, err, "EncryptedAttribute")
				}
				if !is(at, nsSAML, "Attribute") {
					return newErr(CodeIdentity, "EncryptedAttribute does not hold an Attribute")
				}
				attrs = append(attrs, at)
			}
		}
	}
	seen := map[string]bool{}
	var serviceID, serviceUUID string
	for _, at := range attrs {
		name := at.SelectAttrValue("Name", "")
		if seen[name] {
			return newErr(CodeMalformed, "attribute %s appears twice", name)
		}
		seen[name] = true
		var err error
		switch name {
		case AttrServiceID:
			serviceID, err = singleValue(at)
		case AttrServiceUUID:
			serviceUUID, err = singleValue(at)
		case AttrLegalSubjectID:
			err = sp.readLegalSubject(at, res)
		case AttrActingSubjectID:
			err = sp.readActingSubject(at, res)
		case AttrBranch:
			if res.Branch, err = singleValue(at); err == nil && !reBranch.MatchString(res.Branch) {
				err = fmt.Errorf("branch number %q is not 12 digits", res.Branch)
			}
		case AttrSubdossier:
			if res.SubdossierNr, err = singleValue(at); err == nil && !reSubdos.MatchString(res.SubdossierNr) {
				err = fmt.Errorf("SubdossierNr %q is not 1-4 digits", res.SubdossierNr)
			}
		case AttrCompanyName:
			res.CompanyName, err = singleValue(at)
		}
		if err != nil {
			return wrapErr(CodeIdentity, err, "attribute %s", name)
		}
	}
	if serviceID != sp.cfg.ServiceID {
		return newErr(CodeServiceMismatch, "ServiceID %q is not ours (%q)", serviceID, sp.cfg.ServiceID)
	}
	if serviceUUID != sp.cfg.ServiceUUID {
		return newErr(CodeServiceMismatch, "ServiceUUID %q is not ours (%q)", serviceUUID, sp.cfg.ServiceUUID)
	}
	if res.KvK == "" {
		return newErr(CodeIdentity, "no KvK number in LegalSubjectID")
	}
	if res.Pseudonym == "" {
		return newErr(CodeIdentity, "no pseudonym in ActingSubjectID")
	}
	return nil
}

// singleValue returns the text of the attribute's only AttributeValue.
func singleValue(at *etree.Element) (string, error) {
	vs := children(at, nsSAML, "AttributeValue")
	if len(vs) != 1 {
		return "", fmt.Errorf("%d values, want 1", len(vs))
	}
	return strictText(vs[0])
}

// encryptedIDs decrypts the EncryptedID inside each AttributeValue and
// returns the NameIDs.
func (sp *ServiceProvider) encryptedIDs(at *etree.Element) ([]*etree.Element, error) {
	vs := children(at, nsSAML, "AttributeValue")
	if len(vs) == 0 {
		return nil, fmt.Errorf("no values")
	}
	var out []*etree.Element
	for _, v := range vs {
		eid, err := mustChild(v, nsSAML, "EncryptedID")
		if err != nil {
			return nil, fmt.Errorf("value is not an EncryptedID: %w", err)
		}
		nid, err := sp.decrypt(eid)
		if err != nil {
			return nil, err
		}
		if !is(nid, nsSAML, "NameID") {
			return nil, fmt.Errorf("EncryptedID does not hold a NameID")
		}
		out = append(out, nid)
	}
	return out, nil
}

// readLegalSubject takes the KvK number and the RSIN (since 1.13 the
// attribute may carry both, told apart by NameQualifier).
func (sp *ServiceProvider) readLegalSubject(at *etree.Element, res *Result) error {
	nids, err := sp.encryptedIDs(at)
	if err != nil {
		return err
	}
	for _, nid := range nids {
		v, err := strictText(nid)
		if err != nil {
			return err
		}
		switch q := nid.SelectAttrValue("NameQualifier", ""); q {
		case QualifierKvK:
			if !reKvK.MatchString(v) || (res.KvK != "" && res.KvK != v) {
				return fmt.Errorf("KvK number %q is not 8 digits or not unique", v)
			}
			res.KvK = v
		case QualifierRSIN:
			if !reRSIN.MatchString(v) || (res.RSIN != "" && res.RSIN != v) {
				return fmt.Errorf("RSIN %q is not 9 digits or not unique", v)
			}
			res.RSIN = v
		default:
			return fmt.Errorf("legal subject identifier type %q is not supported", q)
		}
	}
	return nil
}

// readActingSubject takes the pseudonym (1.9 or 1.13 qualifier).
func (sp *ServiceProvider) readActingSubject(at *etree.Element, res *Result) error {
	nids, err := sp.encryptedIDs(at)
	if err != nil {
		return err
	}
	if len(nids) != 1 {
		return fmt.Errorf("%d acting subjects, want 1", len(nids))
	}
	q := nids[0].SelectAttrValue("NameQualifier", "")
	if q != QualifierPseudo && q != QualifierPseudo13 {
		return fmt.Errorf("acting subject identifier type %q is not a pseudonym", q)
	}
	v, err := strictText(nids[0])
	if err != nil {
		return err
	}
	if v == "" || len(v) > 256 {
		return fmt.Errorf("pseudonym is empty or too long")
	}
	res.Pseudonym = v
	return nil
}
