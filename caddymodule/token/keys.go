package token

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// SecretName is the KeyStore secret that holds the key set.
const SecretName = "jwt-keys"

// alg is the JWS algorithm: ECDSA on P-256, which every JWT library
// verifies (EdDSA support is still patchy).
const alg = "ES256"

// storedSet is the key set as persisted under SecretName. Next is
// published but does not sign yet, so applications that cache the JWKS
// already hold it when it takes over; Previous stopped signing at the last
// rotation and stays published until the next.
type storedSet struct {
	Current storedKey `json:"current"`
	// Since is when Current began signing.
	Since    time.Time  `json:"since"`
	Next     storedKey  `json:"next"`
	Previous *storedKey `json:"previous,omitempty"`
}

// storedKey is one signing key.
type storedKey struct {
	ID      string    `json:"kid"`
	Alg     string    `json:"alg"`
	Created time.Time `json:"created"`
	// D is the raw private scalar.
	D []byte `json:"d"`
}

func newStoredKey(now time.Time) (storedKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return storedKey{}, err
	}
	d, err := priv.Bytes()
	if err != nil {
		return storedKey{}, err
	}
	return storedKey{ID: thumbprint(&priv.PublicKey), Alg: alg, Created: now.UTC(), D: d}, nil
}

func newStoredSet(now time.Time) (storedSet, error) {
	cur, err := newStoredKey(now)
	if err != nil {
		return storedSet{}, err
	}
	next, err := newStoredKey(now)
	return storedSet{Current: cur, Since: now.UTC(), Next: next}, err
}

// rotated returns the set after one rotation at now: Next signs, Current
// is kept as Previous, and a fresh key is published as Next.
func (st storedSet) rotated(now time.Time) (storedSet, error) {
	next, err := newStoredKey(now)
	if err != nil {
		return storedSet{}, err
	}
	prev := st.Current
	return storedSet{Current: st.Next, Since: now.UTC(), Next: next, Previous: &prev}, nil
}

// jwk is a public key as published in the JWKS.
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// signingKey is the key that signs, with its JOSE header encoded once.
type signingKey struct {
	priv *ecdsa.PrivateKey
	// header is the base64url-encoded JOSE header.
	header string
}

// keySet is the in-memory form of a storedSet.
type keySet struct {
	raw     []byte
	stored  storedSet
	current signingKey
	public  map[string]*ecdsa.PublicKey
	jwks    []byte
}

func parseKeySet(raw []byte) (*keySet, error) {
	var st storedSet
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("token: decoding the stored key set: %w", err)
	}
	ks := &keySet{raw: raw, stored: st, public: make(map[string]*ecdsa.PublicKey)}
	published := []storedKey{st.Current, st.Next}
	if st.Previous != nil {
		published = append(published, *st.Previous)
	}
	var set struct {
		Keys []jwk `json:"keys"`
	}
	for i, k := range published {
		if k.Alg != alg {
			return nil, fmt.Errorf("token: stored key %q has algorithm %q, want %s", k.ID, k.Alg, alg)
		}
		priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), k.D)
		if err != nil {
			return nil, fmt.Errorf("token: stored key %q: %w", k.ID, err)
		}
		pub := &priv.PublicKey
		if thumbprint(pub) != k.ID {
			return nil, fmt.Errorf("token: stored key %q does not match its kid", k.ID)
		}
		if i == 0 {
			header, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT", "kid": k.ID})
			ks.current = signingKey{priv: priv, header: b64.EncodeToString(header)}
		}
		ks.public[k.ID] = pub
		x, y := coordinates(pub)
		set.Keys = append(set.Keys, jwk{Kty: "EC", Crv: "P-256", X: x, Y: y, Kid: k.ID, Alg: alg, Use: "sig"})
	}
	jwks, err := json.Marshal(set)
	ks.jwks = jwks
	return ks, err
}

// coordinates returns a P-256 public key's x and y, base64url-encoded.
func coordinates(pub *ecdsa.PublicKey) (x, y string) {
	b, err := pub.Bytes() // 0x04 || X || Y
	if err != nil || len(b) != 65 {
		panic("token: a P-256 key without its uncompressed form")
	}
	return b64.EncodeToString(b[1:33]), b64.EncodeToString(b[33:])
}

// thumbprint is the RFC 7638 JWK thumbprint of pub: SHA-256 over the
// required members in lexical order, without white space.
func thumbprint(pub *ecdsa.PublicKey) string {
	x, y := coordinates(pub)
	sum := sha256.Sum256([]byte(`{"crv":"P-256","kty":"EC","x":"` + x + `","y":"` + y + `"}`))
	return b64.EncodeToString(sum[:])
}

// readEvery bounds the age of the key set a Signer works from: another
// Signer on the same store (another replica) may have rotated, publishing
// a new next key. A busy Signer reads the set again in the background
// after half of it; one that has been idle longer reads it before it signs
// or serves the JWKS.
const readEvery = time.Minute

// publishLead is how long a next key must have been stored before a
// rotation may make it sign. Every Signer on the store has read it by
// then (readEvery), with room for a read in progress and clocks that
// differ by seconds, so no replica signs with a key another one does not
// publish.
const publishLead = 2 * readEvery

// ErrNextKeyTooNew is Rotate's refusal while the next key has been stored
// for less than publishLead: a replica that has not read it yet would not
// publish the key that starts signing.
var ErrNextKeyTooNew = errors.New("token: the next key was published too recently to sign; rotate again in a few minutes")

// nextMaySignAt is when the next key has been stored long enough to sign.
// The first set's next key may sign at once: every Signer read that set
// (or a later one) when it started.
func (st storedSet) nextMaySignAt() time.Time {
	if st.Previous == nil {
		return time.Time{}
	}
	return st.Next.Created.Add(publishLead)
}

// rotationDue is when the set rotates on schedule.
func (st storedSet) rotationDue(every time.Duration) time.Time {
	due := st.Since.Add(every)
	if may := st.nextMaySignAt(); may.After(due) {
		return may
	}
	return due
}

// refresh reads the stored key set, rotates it when that is due (or when
// force is set), and makes it the one in use. When another Signer on the
// same store rotated first, its set is adopted. Two Signers rotating at the
// same moment both promote the same next key, so each signs with a key the
// other publishes; the fresh next key of one of them is lost, and the
// other's replaces it in memory at its next read, long before it signs.
func (s *Signer) refresh(now time.Time, force bool) error {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	raw, err := s.ks.Secret(SecretName, func() ([]byte, error) {
		st, err := newStoredSet(now)
		if err != nil {
			return nil, err
		}
		return json.Marshal(st)
	})
	if err != nil {
		s.readFailed.Store(true)
		return fmt.Errorf("token: reading the key set: %w", err)
	}
	s.readFailed.Store(false)
	ks := s.keys.Load()
	if ks == nil || !bytes.Equal(ks.raw, raw) {
		if ks, err = parseKeySet(raw); err != nil {
			return err
		}
	}
	var tooNew error
	if force && now.Before(ks.stored.nextMaySignAt()) {
		tooNew = ErrNextKeyTooNew
	} else if force || !now.Before(ks.stored.rotationDue(s.rotateEvery)) {
		st, err := ks.stored.rotated(now)
		if err != nil {
			return err
		}
		if raw, err = json.Marshal(st); err != nil {
			return err
		}
		if ks, err = parseKeySet(raw); err != nil {
			return err
		}
		if err := s.ks.SetSecret(SecretName, raw); err != nil {
			return fmt.Errorf("token: saving the rotated key set: %w", err)
		}
	}
	s.keys.Store(ks)
	s.readAt.Store(now.UnixNano())
	s.nextCheck.Store(min(ks.stored.rotationDue(s.rotateEvery).UnixNano(), now.Add(readEvery/2).UnixNano()))
	return tooNew
}

// maybeRefresh reads the key set again once it is due, in the one
// goroutine that claims it; the others carry on with the key set in
// memory. Until then it costs an atomic load. The claiming request waits
// for the read only when a rotation is due or the set in memory is older
// than readEvery (and the store answered last time); otherwise the read
// runs in the background. A failed attempt is retried a minute later.
func (s *Signer) maybeRefresh(now time.Time) {
	check := s.nextCheck.Load()
	if now.UnixNano() < check || !s.nextCheck.CompareAndSwap(check, now.Add(retryEvery).UnixNano()) {
		return
	}
	rotationDue := !now.Before(s.keys.Load().stored.rotationDue(s.rotateEvery))
	stale := now.Sub(time.Unix(0, s.readAt.Load())) >= readEvery && !s.readFailed.Load()
	if rotationDue || stale {
		s.refreshReporting(now)
		return
	}
	go s.refreshReporting(now)
}

// refreshReporting is refresh on schedule, telling OnError what failed.
func (s *Signer) refreshReporting(now time.Time) {
	if err := s.refresh(now, false); err != nil && s.onError != nil {
		s.onError(err)
	}
}

// Rotate rotates the key set now rather than when it is due: the
// published next key starts signing, the current one stays published until
// the following rotation, and a new next key is published. Other Signers
// on the same store follow within a minute. Until the new next key has
// been published for two minutes, a further Rotate fails with
// ErrNextKeyTooNew.
func (s *Signer) Rotate() error {
	return s.refresh(s.now(), true)
}

// PublicKeys returns the published public keys (*ecdsa.PublicKey) by kid:
// the signing key, the next one and the previous one.
func (s *Signer) PublicKeys() map[string]crypto.PublicKey {
	public := s.keys.Load().public
	out := make(map[string]crypto.PublicKey, len(public))
	for kid, pub := range public {
		out[kid] = pub
	}
	return out
}

// JWKS returns a handler that serves the published public keys as a JSON
// Web Key Set, for /.well-known/jwks.json. Applications may cache it for
// five minutes: a key is published a full rotation period before it signs.
func (s *Signer) JWKS() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		s.maybeRefresh(s.now())
		body := s.keys.Load().jwks
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "public, max-age=300")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		if r.Method == http.MethodGet {
			_, _ = w.Write(body)
		}
	})
}
