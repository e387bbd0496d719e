package eherkenning

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rsa"
	_ "crypto/sha512" // OAEP digests
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/beevik/etree"
	"github.com/russellhaering/goxmldsig/etreeutils"
)

// XML Encryption algorithm identifiers.
const (
	encAES128CBC = nsXENC + "aes128-cbc"
	encAES192CBC = nsXENC + "aes192-cbc"
	encAES256CBC = nsXENC + "aes256-cbc"
	encAES128GCM = nsXENC1 + "aes128-gcm"
	encAES192GCM = nsXENC1 + "aes192-gcm"
	encAES256GCM = nsXENC1 + "aes256-gcm"

	keyRSAOAEPMGF1P = nsXENC + "rsa-oaep-mgf1p"
	keyRSAOAEP11    = nsXENC1 + "rsa-oaep"
)

var blockCiphers = map[string]struct {
	keySize int
	gcm     bool
}{
	encAES128CBC: {16, false}, encAES192CBC: {24, false}, encAES256CBC: {32, false},
	encAES128GCM: {16, true}, encAES192GCM: {24, true}, encAES256GCM: {32, true},
}

// OAEP digests. SHA-1 is allowed here only: RSA-OAEP's hash is not a
// collision-sensitive use, and the profile's key transport is
// rsa-oaep-mgf1p, whose default digest is SHA-1.
var oaepDigests = map[string]crypto.Hash{
	"http://www.w3.org/2000/09/xmldsig#sha1": crypto.SHA1,
	nsXENC + "sha256":                        crypto.SHA256,
	nsXENC + "sha512":                        crypto.SHA512,
}

var mgfDigests = map[string]crypto.Hash{
	nsXENC1 + "mgf1sha1":   crypto.SHA1,
	nsXENC1 + "mgf1sha256": crypto.SHA256,
	nsXENC1 + "mgf1sha512": crypto.SHA512,
}

// errNotForUs is decrypt's answer when no EncryptedKey is meant for this
// key, so that another of our keys may be tried.
var errNotForUs = errors.New("encrypted to none of our keys")

// decrypter holds our encryption identity.
type decrypter struct {
	entityID string
	key      *rsa.PrivateKey
	cert     *x509.Certificate
}

// decrypt opens an EncryptedID or EncryptedAttribute element that is part
// of a verified assertion and returns the single element it holds.
//
// Following SAML errata E43, the element may carry several EncryptedKeys for
// several recipients; ours is chosen by Recipient (our entityID), by KeyName
// (a fingerprint of our encryption certificate) and by CarriedKeyName
// matching the EncryptedData's KeyName. An EncryptedKey nested inside
// EncryptedData/KeyInfo is accepted too.
func (d decrypter) decrypt(el *etree.Element) (*etree.Element, error) {
	ed, err := mustChild(el, nsXENC, "EncryptedData")
	if err != nil {
		return nil, err
	}
	em, err := mustChild(ed, nsXENC, "EncryptionMethod")
	if err != nil {
		return nil, err
	}
	alg := em.SelectAttrValue("Algorithm", "")
	bc, ok := blockCiphers[alg]
	if !ok {
		return nil, fmt.Errorf("data encryption %q not supported", alg)
	}
	dataKeyName := ""
	var keys []*etree.Element
	if ki, _ := child(ed, nsDS, "KeyInfo"); ki != nil {
		if dataKeyName, err = childText(ki, nsDS, "KeyName"); err != nil {
			return nil, err
		}
		keys = append(keys, children(ki, nsXENC, "EncryptedKey")...)
	}
	keys = append(keys, children(el, nsXENC, "EncryptedKey")...)
	var mine []*etree.Element
	for _, k := range keys {
		if d.isForUs(k, dataKeyName) {
			mine = append(mine, k)
		}
	}
	if len(mine) == 0 {
		return nil, fmt.Errorf("%w: none of its %d EncryptedKeys", errNotForUs, len(keys))
	}
	ct, err := cipherValue(ed)
	if err != nil {
		return nil, err
	}
	var lastErr error
	for _, k := range mine {
		symKey, err := d.unwrapKey(k)
		if err != nil {
			lastErr = err
			continue
		}
		if len(symKey) != bc.keySize {
			lastErr = errors.New("decrypted key has the wrong length")
			continue
		}
		plain, err := decryptBlock(symKey, ct, bc.gcm)
		if err != nil {
			lastErr = err
			continue
		}
		return parseDecrypted(el, plain)
	}
	return nil, lastErr
}

func (d decrypter) isForUs(k *etree.Element, dataKeyName string) bool {
	if r := k.SelectAttrValue("Recipient", ""); r != "" && r != d.entityID {
		return false
	}
	if dataKeyName != "" {
		if carried, err := childText(k, nsXENC, "CarriedKeyName"); err != nil || (carried != "" && carried != dataKeyName) {
			return false
		}
	}
	ki, err := child(k, nsDS, "KeyInfo")
	if err != nil {
		return false
	}
	if ki == nil {
		return true
	}
	me := namedCert{cert: d.cert, names: keyNameAliases(d.cert)}
	if names := children(ki, nsDS, "KeyName"); len(names) > 0 {
		named := false
		for _, n := range names {
			if txt, err := strictText(n); err == nil && me.hasName(txt) {
				named = true
			}
		}
		if !named {
			return false
		}
	}
	for _, xd := range children(ki, nsDS, "X509Data") {
		for _, xc := range children(xd, nsDS, "X509Certificate") {
			txt, err := strictText(xc)
			if err != nil {
				return false
			}
			der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(txt), ""))
			if err != nil {
				return false
			}
			if c, err := x509.ParseCertificate(der); err != nil || !c.Equal(d.cert) {
				return false
			}
		}
	}
	return true
}

// unwrapKey decrypts the symmetric key in an EncryptedKey with RSA-OAEP.
// RSA PKCS#1 v1.5 key transport is refused.
func (d decrypter) unwrapKey(k *etree.Element) ([]byte, error) {
	em, err := mustChild(k, nsXENC, "EncryptionMethod")
	if err != nil {
		return nil, err
	}
	alg := em.SelectAttrValue("Algorithm", "")
	if alg != keyRSAOAEPMGF1P && alg != keyRSAOAEP11 {
		return nil, fmt.Errorf("key transport %q not supported", alg)
	}
	digest := crypto.SHA1
	if dm, err := child(em, nsDS, "DigestMethod"); err != nil {
		return nil, err
	} else if dm != nil {
		h, ok := oaepDigests[dm.SelectAttrValue("Algorithm", "")]
		if !ok {
			return nil, errors.New("OAEP digest not supported")
		}
		digest = h
	}
	mgf := crypto.SHA1
	if alg == keyRSAOAEP11 {
		if m, err := child(em, nsXENC1, "MGF"); err != nil {
			return nil, err
		} else if m != nil {
			h, ok := mgfDigests[m.SelectAttrValue("Algorithm", "")]
			if !ok {
				return nil, errors.New("OAEP MGF not supported")
			}
			mgf = h
		}
	}
	var label []byte
	if p, err := childText(em, nsXENC, "OAEPparams"); err != nil {
		return nil, err
	} else if p != "" {
		if label, err = base64.StdEncoding.DecodeString(p); err != nil {
			return nil, errors.New("bad OAEPparams")
		}
	}
	ct, err := cipherValue(k)
	if err != nil {
		return nil, err
	}
	return d.key.Decrypt(nil, ct, &rsa.OAEPOptions{Hash: digest, MGFHash: mgf, Label: label})
}

func cipherValue(el *etree.Element) ([]byte, error) {
	cd, err := mustChild(el, nsXENC, "CipherData")
	if err != nil {
		return nil, err
	}
	cv, err := mustChild(cd, nsXENC, "CipherValue")
	if err != nil {
		return nil, err
	}
	txt, err := strictText(cv)
	if err != nil {
		return nil, err
	}
	b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(txt), ""))
	if err != nil {
		return nil, errors.New("bad CipherValue")
	}
	return b, nil
}

func decryptBlock(key, ct []byte, gcm bool) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	if gcm {
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		if len(ct) < aead.NonceSize()+aead.Overhead() {
			return nil, errors.New("ciphertext too short")
		}
		return aead.Open(nil, ct[:aead.NonceSize()], ct[aead.NonceSize():], nil)
	}
	bs := block.BlockSize()
	if len(ct) < 2*bs || len(ct)%bs != 0 {
		return nil, errors.New("ciphertext has a bad length")
	}
	plain := make([]byte, len(ct)-bs)
	cipher.NewCBCDecrypter(block, ct[:bs]).CryptBlocks(plain, ct[bs:])
	pad := int(plain[len(plain)-1])
	if pad < 1 || pad > bs {
		return nil, errors.New("bad padding")
	}
	return plain[:len(plain)-pad], nil
}

// parseDecrypted parses the decrypted fragment in the namespace context of
// the encrypted element and returns its single element.
func parseDecrypted(encEl *etree.Element, plain []byte) (*etree.Element, error) {
	nsCtx, err := etreeutils.NSBuildParentContext(encEl)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString("<wrap")
	for prefix, uri := range nsCtx.Prefixes() {
		if prefix == "xml" || prefix == "xmlns" || prefix == "" {
			continue
		}
		fmt.Fprintf(&b, " xmlns:%s=%q", prefix, uri)
	}
	b.WriteString(">")
	b.Write(plain)
	b.WriteString("</wrap>")
	doc, err := parseXML([]byte(b.String()))
	if err != nil {
		return nil, fmt.Errorf("decrypted content: %w", err)
	}
	els := doc.Root().ChildElements()
	if len(els) != 1 {
		return nil, errors.New("decrypted content is not one element")
	}
	for _, t := range doc.Root().Child {
		if cd, ok := t.(*etree.CharData); ok && strings.TrimSpace(cd.Data) != "" {
			return nil, errors.New("decrypted content has stray text")
		}
	}
	return els[0], nil
}
