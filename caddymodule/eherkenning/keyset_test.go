package eherkenning

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"
)

// memKeyStore is an in-memory KeyStore for tests, as memStore is the
// StateStore; the engines pass token's KeyStore contract.
type memKeyStore struct {
	mu      sync.Mutex
	secrets map[string][]byte
}

func (m *memKeyStore) Secret(name string, generate func() ([]byte, error)) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.secrets[name]; ok {
		return v, nil
	}
	v, err := generate()
	if err != nil {
		return nil, err
	}
	m.secrets[name] = v
	return v, nil
}

func (m *memKeyStore) SetSecret(name string, value []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.secrets[name] = value
	return nil
}

// certFor makes a self-signed certificate for key, valid in [from, until).
func certFor(t *testing.T, key crypto.Signer, from, until time.Time) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "test"},
		NotBefore: from, NotAfter: until}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func pemOf(t *testing.T, cert *x509.Certificate, key crypto.Signer) (certPEM, keyPEM []byte) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func oneKeySet(t *testing.T, now time.Time) KeySet {
	t.Helper()
	k := keys(t)["sp-sign"]
	return KeySet{Keys: []SPKey{{Role: RoleCurrent, SigningKey: k.key, SigningCert: k.cert, EncryptionKey: k.key, EncryptionCert: k.cert, Published: now}}}
}

// TestNewKeyPairRefusals: add takes only a pair that can sign and
// decrypt for us, and says what is wrong with any other.
func TestNewKeyPairRefusals(t *testing.T) {
	now := time.Now()
	good := keys(t)["sp-enc"]
	short, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	expired := certFor(t, good.key, now.Add(-48*time.Hour), now.Add(-time.Hour))
	for _, tc := range []struct {
		name      string
		cert, key []byte
		want      string
	}{
		{"not PEM", []byte("garbage"), []byte("garbage"), "holds no PEM CERTIFICATE"},
		{"key of another certificate", pemCertOnly(good.cert), pemKeyOnly(t, keys(t)["other"].key), "do not match"},
		{"short RSA key", pemCertOnly(certFor(t, short, now.Add(-time.Hour), now.AddDate(1, 0, 0))), pemKeyOnly(t, short), "1024 bits; at least 2048"},
		{"ECDSA certificate", pemCertOnly(certFor(t, ec, now.Add(-time.Hour), now.AddDate(1, 0, 0))), pemKeyOnly(t, ec), "not RSA"},
		{"expired certificate", pemCertOnly(expired), pemKeyOnly(t, good.key), "expired on"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ParseNewKeyPair(tc.cert, tc.key, now)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
	certPEM, keyPEM := pemOf(t, good.cert, good.key)
	if _, _, err := ParseNewKeyPair(certPEM, keyPEM, now); err != nil {
		t.Fatalf("a good pair: %v", err)
	}
}

func pemCertOnly(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func pemKeyOnly(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// TestKeySetLifecycle walks add, activate and retire with their
// refusals: one next at a time, no certificate twice, activation only
// after MinPublished (or forced) and within the certificate's validity,
// the current key never retired.
func TestKeySetLifecycle(t *testing.T) {
	now := time.Now()
	k := keys(t)
	set := oneKeySet(t, now.Add(-30*24*time.Hour))
	if _, err := set.ActivateNext(now, MinPublished, true); !errors.Is(err, ErrNoNextKey) {
		t.Errorf("activate without a next key: %v", err)
	}
	if _, _, err := set.Retire(""); !errors.Is(err, ErrNoOldKey) {
		t.Errorf("retire without an old key: %v", err)
	}
	if _, _, err := set.Retire(set.Current().Fingerprint()); !errors.Is(err, ErrRetireCurrent) {
		t.Errorf("retire the current key: %v", err)
	}
	if _, err := set.AddNext(k["sp-sign"].key, k["sp-sign"].cert, now); !errors.Is(err, ErrKeyInSet) {
		t.Errorf("add the current key again: %v", err)
	}
	set, err := set.AddNext(k["sp-enc"].key, k["sp-enc"].cert, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := set.AddNext(k["other"].key, k["other"].cert, now); !errors.Is(err, ErrNextKeyExists) {
		t.Errorf("a second next key: %v", err)
	}
	if got := roles(set); got != "current next" {
		t.Fatalf("after add: %s", got)
	}

	_, err = set.ActivateNext(now.Add(MinPublished-time.Minute), MinPublished, false)
	if !errors.Is(err, ErrNextKeyTooNew) || !strings.Contains(err.Error(), "--force") {
		t.Errorf("activate a key published for less than the minimum: %v", err)
	}
	if _, err := set.ActivateNext(now.Add(MinPublished), MinPublished, false); err != nil {
		t.Errorf("activate after the minimum: %v", err)
	}
	activated, err := set.ActivateNext(now.Add(time.Minute), MinPublished, true)
	if err != nil {
		t.Fatalf("forced activation: %v", err)
	}
	if got := roles(activated); got != "current old" || !activated.Current().SigningCert.Equal(k["sp-enc"].cert) {
		t.Fatalf("after activate: %s, current %s", got, activated.Current().SigningCert.Subject)
	}

	retired, gone, err := activated.Retire("")
	if err != nil || len(gone) != 1 || !gone[0].SigningCert.Equal(k["sp-sign"].cert) || roles(retired) != "current" {
		t.Fatalf("retire: %v, gone %d, left %s", err, len(gone), roles(retired))
	}
	if _, _, err := activated.Retire("00" + activated.Current().Fingerprint()[2:]); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("retire an unknown fingerprint: %v", err)
	}
	withdrawn, _, err := set.Retire(strings.ToUpper(KeyName(k["sp-enc"].cert)))
	if err != nil || roles(withdrawn) != "current" {
		t.Errorf("withdrawing the next key: %v, left %s", err, roles(withdrawn))
	}
}

// TestActivateRefusesACertificateNotValidYet: a PKIoverheid certificate
// may be published before its validity starts, but signs only after.
func TestActivateRefusesACertificateNotValidYet(t *testing.T) {
	now := time.Now()
	k := keys(t)["sp-enc"]
	later := certFor(t, k.key, now.Add(time.Hour), now.AddDate(1, 0, 0))
	set, err := oneKeySet(t, now).AddNext(k.key, later, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := set.ActivateNext(now, MinPublished, true); err == nil || !strings.Contains(err.Error(), "valid only from") {
		t.Fatalf("activated a certificate that is not valid yet: %v", err)
	}
}

// TestStoredKeySet: the set survives the store, and a stored set of the
// wrong shape is refused rather than used.
func TestStoredKeySet(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	k := keys(t)
	set, err := oneKeySet(t, now).AddNext(k["sp-enc"].key, k["sp-enc"].cert, now)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := set.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseKeySet(raw)
	if err != nil || roles(back) != "current next" || !back.Keys[1].Published.Equal(now) || !back.Keys[1].SigningKey.Equal(k["sp-enc"].key) {
		t.Fatalf("round trip: %v, %s", err, roles(back))
	}
	twoCurrent := strings.Replace(string(raw), `"role":"next"`, `"role":"current"`, 1)
	if _, err := ParseKeySet([]byte(twoCurrent)); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("two current keys: %v", err)
	}
	if _, err := LoadKeySet(&memKeyStore{secrets: map[string][]byte{}}); !errors.Is(err, ErrNoKeySet) {
		t.Errorf("an empty store: %v", err)
	}
}

func roles(s KeySet) string {
	var out []string
	for _, k := range s.Keys {
		out = append(out, k.Role)
	}
	return strings.Join(out, " ")
}

// TestReplicasFollowTheStoredSet: two service providers on one store (two
// replicas) agree on the key set. The one that changes it takes the
// change at once; the other within a minute, and not before.
func TestReplicasFollowTheStoredSet(t *testing.T) {
	k := keys(t)
	ks := &memKeyStore{secrets: map[string][]byte{}}
	var clockMu sync.Mutex
	clock := time.Now()
	now := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return clock }
	newSP := func(own pair) *ServiceProvider {
		cfg := Config{EntityID: testEntityID, ACSURL: "https://sp.example/acs", SigningKey: own.key, SigningCert: own.cert,
			EncryptionKey: own.key, EncryptionCert: own.cert, BrokerMetadata: MetadataSource{URL: "https://broker.example/md"},
			ServiceID: testServiceID, ServiceUUID: testServiceUUID, Keys: ks, Now: now}
		sp, err := NewWithoutBrokerMetadata(cfg, newMemStore())
		if err != nil {
			t.Fatal(err)
		}
		return sp
	}
	first := newSP(k["sp-sign"])
	// The second replica's own pair only seeds an empty store: it adopts
	// the stored set.
	second := newSP(k["other"])
	if fp := second.KeySet().Current().Fingerprint(); fp != KeyName(k["sp-sign"].cert) {
		t.Fatalf("the second replica signs with %s, not the stored current key", fp)
	}

	if _, err := UpdateKeySet(ks, func(s KeySet) (KeySet, error) { return s.AddNext(k["sp-enc"].key, k["sp-enc"].cert, now()) }); err != nil {
		t.Fatal(err)
	}
	if err := first.ReloadKeys(); err != nil {
		t.Fatal(err)
	}
	if _, err := UpdateKeySet(ks, func(s KeySet) (KeySet, error) { return s.ActivateNext(now(), MinPublished, true) }); err != nil {
		t.Fatal(err)
	}
	if err := first.ReloadKeys(); err != nil {
		t.Fatal(err)
	}
	md, err := first.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(md), "<md:KeyDescriptor"); n != 2 || first.KeySet().Current().Fingerprint() != KeyName(k["sp-enc"].cert) {
		t.Fatalf("the replica that activated: %d keys published, current %s", n, first.KeySet().Current().Fingerprint())
	}

	clockMu.Lock()
	clock = clock.Add(keySetReadEvery - time.Second)
	clockMu.Unlock()
	if got := roles(second.KeySet()); got != "current" {
		t.Fatalf("the other replica read the set again before a minute passed: %s", got)
	}
	clockMu.Lock()
	clock = clock.Add(time.Second)
	clockMu.Unlock()
	if got, fp := roles(second.KeySet()), second.KeySet().Current().Fingerprint(); got != "current old" || fp != KeyName(k["sp-enc"].cert) {
		t.Fatalf("a minute later the other replica has %s, current %s", got, fp)
	}
	if got := second.signing().cert; !got.Equal(k["sp-enc"].cert) {
		t.Fatalf("the other replica signs with %s", got.Subject)
	}
}

// TestAnswersDecryptWithEveryPublishedKey: a broker may encrypt to any
// key in our metadata. An answer encrypted to the next key decrypts
// before it signs, one encrypted to the old key after activation, and
// after retirement such an answer is refused saying why.
func TestAnswersDecryptWithEveryPublishedKey(t *testing.T) {
	h := newHarness(t, harnessOpts{responseBinding: BindingHTTPPost})
	ks := &memKeyStore{secrets: map[string][]byte{}}
	cfg := h.cfg
	cfg.Keys = ks
	sp, err := New(cfg, h.store)
	if err != nil {
		t.Fatal(err)
	}
	h.sp = sp
	nextKey, nextCert, err := GenerateKeyPair("next")
	if err != nil {
		t.Fatal(err)
	}
	answerTo := func(cert *x509.Certificate) error {
		t.Helper()
		start := h.start(t)
		a := h.answer(start)
		a.SPEncryptionCert = cert
		raw, err := h.sim.BuildResponse(a)
		if err != nil {
			t.Fatal(err)
		}
		_, err = h.postResponse(raw, start.RelayState)
		return err
	}
	change := func(f func(KeySet) (KeySet, error)) {
		t.Helper()
		if _, err := UpdateKeySet(ks, f); err != nil {
			t.Fatal(err)
		}
		if err := sp.ReloadKeys(); err != nil {
			t.Fatal(err)
		}
	}

	change(func(s KeySet) (KeySet, error) { return s.AddNext(nextKey, nextCert, time.Now()) })
	if err := answerTo(nextCert); err != nil {
		t.Fatalf("an answer encrypted to the next key: %v", err)
	}
	change(func(s KeySet) (KeySet, error) { return s.ActivateNext(time.Now(), MinPublished, true) })
	if err := answerTo(h.cfg.EncryptionCert); err != nil {
		t.Fatalf("an answer encrypted to the old key: %v", err)
	}
	change(func(s KeySet) (KeySet, error) { s, _, err := s.Retire(""); return s, err })
	err = answerTo(h.cfg.EncryptionCert)
	wantCode(t, err, CodeIdentity)
	if !strings.Contains(err.Error(), "encrypted to none of our keys") || !strings.Contains(err.Error(), "retired") {
		t.Fatalf("the refusal does not say why: %v", err)
	}
	if err := answerTo(nextCert); err != nil {
		t.Fatalf("an answer encrypted to the current key after retirement: %v", err)
	}
}
