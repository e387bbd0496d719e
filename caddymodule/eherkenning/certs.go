package eherkenning

import (
	"crypto/x509"
	"time"
)

// CertificateExpiry is a certificate eHerkenning logins depend on and
// when it stops being valid.
type CertificateExpiry struct {
	// Name is sp_signing, sp_encryption or broker_signing: a fixed set,
	// fit for a metric label.
	Name     string
	Subject  string
	NotAfter time.Time
}

// Certificates lists our current key's signing and encryption
// certificates (the ones brokers use now; a next key published beside them
// does not count until it is activated) and, once
// the broker's metadata is loaded, the broker's signing certificate that
// stays valid longest: logins work until that one expires, so during the
// broker's own rollover the old one expiring is no alarm.
func (sp *ServiceProvider) Certificates() []CertificateExpiry {
	current := sp.KeySet().Current()
	out := []CertificateExpiry{expiry("sp_signing", current.SigningCert), expiry("sp_encryption", current.EncryptionCert)}
	m := sp.meta.Load()
	if m == nil {
		return out
	}
	var last *x509.Certificate
	for _, c := range m.signing {
		if last == nil || c.cert.NotAfter.After(last.NotAfter) {
			last = c.cert
		}
	}
	if last != nil {
		out = append(out, expiry("broker_signing", last))
	}
	return out
}

func expiry(name string, c *x509.Certificate) CertificateExpiry {
	return CertificateExpiry{Name: name, Subject: c.Subject.String(), NotAfter: c.NotAfter}
}
