package eherkenning

import (
	"crypto/x509"
	"encoding/pem"
	"testing"
)

// TestParseKeyPair loads keys from PEM and refuses garbage and pairs that
// do not belong together.
func TestParseKeyPair(t *testing.T) {
	if _, _, err := ParseKeyPair([]byte("nope"), []byte("nope")); err == nil {
		t.Error("parsed garbage as a key pair")
	}
	k := keys(t)["sp-sign"]
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.cert.Raw})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k.key)})
	key, cert, err := ParseKeyPair(certPEM, keyPEM)
	if err != nil || !cert.Equal(k.cert) || !key.Equal(k.key) {
		t.Fatalf("ParseKeyPair: %v", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(k.key)
	if err != nil {
		t.Fatal(err)
	}
	if key, _, err := ParseKeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})); err != nil || !key.Equal(k.key) {
		t.Fatalf("ParseKeyPair with a PKCS#8 key: %v", err)
	}
	other := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(keys(t)["sp-enc"].key)})
	if _, _, err := ParseKeyPair(certPEM, other); err == nil {
		t.Error("accepted a key that does not match the certificate")
	}
}
