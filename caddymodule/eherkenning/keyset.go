package eherkenning

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"
)

// KeyStore keeps the service provider's key set where every server on the
// same store reads it; every storage engine satisfies it (it is
// token.KeyStore's shape).
type KeyStore interface {
	// Secret returns the value stored under name, storing generate's
	// result first when there is none; concurrent first calls agree.
	Secret(name string, generate func() ([]byte, error)) ([]byte, error)
	// SetSecret replaces the value stored under name.
	SetSecret(name string, value []byte) error
}

// KeySetSecret is the KeyStore secret that holds the key set.
const KeySetSecret = "eherkenning-sp-keys"

// Roles of a key in the set. The current key signs; every key is
// published in our metadata and decrypts answers encrypted to it.
const (
	RoleCurrent = "current"
	RoleNext    = "next" // published, not signing yet
	RoleOld     = "old"  // stopped signing, decrypts until retired
)

// MinPublished is how long a next key must have been in our metadata
// before ActivateNext makes it sign, unless forced. Brokers fetch an SP's
// metadata on their own schedule (typically daily); a request signed with
// a key their copy does not hold is refused.
const MinPublished = 24 * time.Hour

// keySetReadEvery bounds the age of the key set a server works from, so an
// activation or retirement on another server (another replica) takes
// effect here within it.
const keySetReadEvery = time.Minute

// Refusals of the key-set operations.
var (
	ErrNoKeySet      = errors.New("eherkenning: the store holds no key set yet; start the server once with its eherkenning configuration, which stores its current key")
	ErrNextKeyExists = errors.New("eherkenning: a next key is published already; activate it, or retire it to withdraw it, before adding another")
	ErrKeyInSet      = errors.New("eherkenning: this certificate is in the key set already")
	ErrNoNextKey     = errors.New("eherkenning: there is no next key to activate; add one first")
	ErrNextKeyTooNew = errors.New("eherkenning: the next key has not been published long enough")
	ErrNoOldKey      = errors.New("eherkenning: there is no old key to retire")
	ErrRetireCurrent = errors.New("eherkenning: the current key signs and cannot be retired; activate a next key first")
	ErrUnknownKey    = errors.New("eherkenning: no key in the set has this fingerprint")
)

// SPKey is one key of the set: a signing pair and the encryption pair
// published with it (the same pair unless configured apart).
type SPKey struct {
	Role           string
	SigningKey     *rsa.PrivateKey
	SigningCert    *x509.Certificate
	EncryptionKey  *rsa.PrivateKey
	EncryptionCert *x509.Certificate
	// Published is when the key entered our metadata.
	Published time.Time
}

// Fingerprint is the key's KeyName: the SHA-256 fingerprint of its
// signing certificate.
func (k SPKey) Fingerprint() string { return KeyName(k.SigningCert) }

// KeySet is the service provider's keys: one current, at most one next,
// and any old ones, in that order (the order of our metadata).
type KeySet struct {
	Keys []SPKey
}

// Current returns the signing key.
func (s KeySet) Current() SPKey {
	for _, k := range s.Keys {
		if k.Role == RoleCurrent {
			return k
		}
	}
	return SPKey{}
}

// Holds reports whether cert is one of the set's certificates.
func (s KeySet) Holds(cert *x509.Certificate) bool {
	for _, k := range s.Keys {
		if k.SigningCert.Equal(cert) || k.EncryptionCert.Equal(cert) {
			return true
		}
	}
	return false
}

func (s KeySet) next() (SPKey, bool) {
	for _, k := range s.Keys {
		if k.Role == RoleNext {
			return k, true
		}
	}
	return SPKey{}, false
}

// sorted returns the keys current first, then next, then old, each group
// in its order.
func sorted(keys []SPKey) []SPKey {
	out := make([]SPKey, 0, len(keys))
	for _, role := range []string{RoleCurrent, RoleNext, RoleOld} {
		for _, k := range keys {
			if k.Role == role {
				out = append(out, k)
			}
		}
	}
	return out
}

// CheckNewKeyPair refuses a pair that cannot become our key: a
// certificate whose key is not RSA (our signatures are RSA-SHA256), a key
// shorter than 2048 bits, a certificate that has expired.
func CheckNewKeyPair(key *rsa.PrivateKey, cert *x509.Certificate, now time.Time) error {
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return fmt.Errorf("eherkenning: the certificate's key is %T, not RSA; our signatures are RSA-SHA256, so use an RSA certificate of at least 2048 bits", cert.PublicKey)
	}
	if !pub.Equal(&key.PublicKey) {
		return errors.New("eherkenning: certificate and key do not match")
	}
	if n := key.N.BitLen(); n < 2048 {
		return fmt.Errorf("eherkenning: the key has %d bits; at least 2048 are required", n)
	}
	if !now.Before(cert.NotAfter) {
		return fmt.Errorf("eherkenning: the certificate expired on %s", cert.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// ParseNewKeyPair reads a PEM certificate and key for AddNext, saying
// what is wrong with them.
func ParseNewKeyPair(certPEM, keyPEM []byte, now time.Time) (*rsa.PrivateKey, *x509.Certificate, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, nil, errors.New("eherkenning: the certificate file holds no PEM CERTIFICATE")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("eherkenning: the certificate does not parse: %w", err)
	}
	if _, ok := cert.PublicKey.(*rsa.PublicKey); !ok {
		return nil, nil, fmt.Errorf("eherkenning: the certificate's key is %T, not RSA; our signatures are RSA-SHA256, so use an RSA certificate of at least 2048 bits", cert.PublicKey)
	}
	key, cert, err := ParseKeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, err
	}
	return key, cert, CheckNewKeyPair(key, cert, now)
}

// AddNext returns the set with key and cert as its next key, published
// from now on, used for signing and encryption both.
func (s KeySet) AddNext(key *rsa.PrivateKey, cert *x509.Certificate, now time.Time) (KeySet, error) {
	if err := CheckNewKeyPair(key, cert, now); err != nil {
		return s, err
	}
	if k, ok := s.next(); ok {
		return s, fmt.Errorf("%w (%s)", ErrNextKeyExists, k.Fingerprint())
	}
	if s.Holds(cert) {
		return s, ErrKeyInSet
	}
	keys := append(append([]SPKey(nil), s.Keys...), SPKey{Role: RoleNext, SigningKey: key, SigningCert: cert,
		EncryptionKey: key, EncryptionCert: cert, Published: now.UTC()})
	return KeySet{Keys: sorted(keys)}, nil
}

// ActivateNext returns the set with the next key signing and the current
// one old. It refuses a next key published for less than minPublished
// unless force is set, and one whose certificate is not valid now.
func (s KeySet) ActivateNext(now time.Time, minPublished time.Duration, force bool) (KeySet, error) {
	next, ok := s.next()
	if !ok {
		return s, ErrNoNextKey
	}
	if age := now.Sub(next.Published); age < minPublished && !force {
		return s, fmt.Errorf("%w: published %s ago (since %s), the minimum is %s; brokers may not have fetched our metadata yet. Wait until %s, or use --force when every broker has the new metadata",
			ErrNextKeyTooNew, age.Truncate(time.Second), next.Published.Format(time.RFC3339), minPublished,
			next.Published.Add(minPublished).Format(time.RFC3339))
	}
	if now.Before(next.SigningCert.NotBefore) {
		return s, fmt.Errorf("eherkenning: the next certificate is valid only from %s", next.SigningCert.NotBefore.UTC().Format(time.RFC3339))
	}
	if !now.Before(next.SigningCert.NotAfter) {
		return s, fmt.Errorf("eherkenning: the next certificate expired on %s", next.SigningCert.NotAfter.UTC().Format(time.RFC3339))
	}
	keys := make([]SPKey, len(s.Keys))
	for i, k := range s.Keys {
		switch k.Role {
		case RoleCurrent:
			k.Role = RoleOld
		case RoleNext:
			k.Role = RoleCurrent
		}
		keys[i] = k
	}
	return KeySet{Keys: sorted(keys)}, nil
}

// Retire returns the set without the key of this fingerprint, or without
// every old key when fingerprint is empty. A next key may be retired (a
// withdrawal); the current one may not.
func (s KeySet) Retire(fingerprint string) (KeySet, []SPKey, error) {
	fingerprint = strings.ToLower(strings.TrimSpace(fingerprint))
	var keep, gone []SPKey
	for _, k := range s.Keys {
		match := k.Role == RoleOld
		if fingerprint != "" {
			match = k.Fingerprint() == fingerprint
			if match && k.Role == RoleCurrent {
				return s, nil, ErrRetireCurrent
			}
		}
		if match {
			gone = append(gone, k)
		} else {
			keep = append(keep, k)
		}
	}
	switch {
	case len(gone) > 0:
		return KeySet{Keys: keep}, gone, nil
	case fingerprint != "":
		return s, nil, fmt.Errorf("%w %s", ErrUnknownKey, fingerprint)
	}
	return s, nil, ErrNoOldKey
}

// storedKey is one key as persisted under KeySetSecret.
type storedKey struct {
	Role      string    `json:"role"`
	Cert      string    `json:"cert"`
	Key       string    `json:"key"`
	EncCert   string    `json:"enc_cert,omitempty"`
	EncKey    string    `json:"enc_key,omitempty"`
	Published time.Time `json:"published"`
}

func pemCert(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

func pemKey(k *rsa.PrivateKey) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
}

// Marshal returns the set as stored under KeySetSecret.
func (s KeySet) Marshal() ([]byte, error) {
	out := make([]storedKey, 0, len(s.Keys))
	for _, k := range s.Keys {
		sk := storedKey{Role: k.Role, Cert: pemCert(k.SigningCert), Key: pemKey(k.SigningKey), Published: k.Published}
		if !k.EncryptionCert.Equal(k.SigningCert) {
			sk.EncCert, sk.EncKey = pemCert(k.EncryptionCert), pemKey(k.EncryptionKey)
		}
		out = append(out, sk)
	}
	return json.Marshal(out)
}

// ParseKeySet reads a set stored under KeySetSecret and checks its shape:
// one current key, at most one next.
func ParseKeySet(raw []byte) (KeySet, error) {
	var stored []storedKey
	if err := json.Unmarshal(raw, &stored); err != nil {
		return KeySet{}, fmt.Errorf("eherkenning: the stored key set is corrupt: %w", err)
	}
	var keys []SPKey
	roles := map[string]int{}
	for i, sk := range stored {
		k := SPKey{Role: sk.Role, Published: sk.Published}
		var err error
		if k.SigningKey, k.SigningCert, err = ParseKeyPair([]byte(sk.Cert), []byte(sk.Key)); err != nil {
			return KeySet{}, fmt.Errorf("eherkenning: stored key %d: %w", i, err)
		}
		k.EncryptionKey, k.EncryptionCert = k.SigningKey, k.SigningCert
		if sk.EncCert != "" {
			if k.EncryptionKey, k.EncryptionCert, err = ParseKeyPair([]byte(sk.EncCert), []byte(sk.EncKey)); err != nil {
				return KeySet{}, fmt.Errorf("eherkenning: stored key %d (encryption): %w", i, err)
			}
		}
		roles[k.Role]++
		keys = append(keys, k)
	}
	if roles[RoleCurrent] != 1 || roles[RoleNext] > 1 || roles[RoleCurrent]+roles[RoleNext]+roles[RoleOld] != len(keys) {
		return KeySet{}, fmt.Errorf("eherkenning: the stored key set is corrupt: roles %v", roles)
	}
	return KeySet{Keys: sorted(keys)}, nil
}

// LoadKeySet reads the key set from ks; ErrNoKeySet when there is none.
func LoadKeySet(ks KeyStore) (KeySet, error) {
	raw, err := ks.Secret(KeySetSecret, func() ([]byte, error) { return nil, ErrNoKeySet })
	if err != nil {
		return KeySet{}, err
	}
	return ParseKeySet(raw)
}

// UpdateKeySet reads the key set from ks, applies change and stores the
// result. Servers on the same store follow within a minute; the one that
// made the change can take it at once with ReloadKeys.
func UpdateKeySet(ks KeyStore, change func(KeySet) (KeySet, error)) (KeySet, error) {
	set, err := LoadKeySet(ks)
	if err != nil {
		return KeySet{}, err
	}
	if set, err = change(set); err != nil {
		return KeySet{}, err
	}
	raw, err := set.Marshal()
	if err != nil {
		return KeySet{}, err
	}
	if err := ks.SetSecret(KeySetSecret, raw); err != nil {
		return KeySet{}, fmt.Errorf("eherkenning: saving the key set: %w", err)
	}
	return set, nil
}
