// Package session issues session cookies and keeps the server-side session
// records behind them. A cookie carries only a random ID, authenticated and
// encrypted with securecookie; everything else lives in the store.
package session

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/gorilla/securecookie"
)

// maxCookieLength caps what Decode will look at; our cookies are ~180 bytes.
const maxCookieLength = 1024

// KeyPair is one generation of cookie keys: a 32- or 64-byte HMAC key and a
// 32-byte AES key.
type KeyPair struct {
	Hash  []byte
	Block []byte
}

// NewKeyPair makes a fresh random key pair.
func NewKeyPair() KeyPair {
	return KeyPair{Hash: securecookie.GenerateRandomKey(64), Block: securecookie.GenerateRandomKey(32)}
}

// ParseKeyPair reads "hash:block" with both halves in standard or URL-safe
// base64, the form operators put in config.
func ParseKeyPair(s string) (KeyPair, error) {
	var kp KeyPair
	for i, c := range s {
		if c == ':' {
			h, err1 := decodeKey(s[:i])
			b, err2 := decodeKey(s[i+1:])
			if err := errors.Join(err1, err2); err != nil {
				return kp, fmt.Errorf("cookie key: %w", err)
			}
			kp = KeyPair{Hash: h, Block: b}
			return kp, kp.validate()
		}
	}
	return kp, errors.New(`cookie key: want "<hash key base64>:<block key base64>"`)
}

// String encodes the pair in the form ParseKeyPair reads.
func (kp KeyPair) String() string {
	return base64.StdEncoding.EncodeToString(kp.Hash) + ":" + base64.StdEncoding.EncodeToString(kp.Block)
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

func (kp KeyPair) validate() error {
	if len(kp.Hash) != 32 && len(kp.Hash) != 64 {
		return fmt.Errorf("cookie key: hash key must be 32 or 64 bytes, got %d", len(kp.Hash))
	}
	if len(kp.Block) != 32 {
		return fmt.Errorf("cookie key: block key must be 32 bytes, got %d", len(kp.Block))
	}
	return nil
}

// Codec turns session IDs into cookie values and back. The first key pair
// encodes; every pair decodes, so cookies survive a key rotation.
type Codec struct {
	name   string
	codecs []securecookie.Codec
}

// NewCodec builds a codec for the named cookie. The name is covered by the
// MAC, so a value cannot be replayed under another cookie name.
func NewCodec(cookieName string, keys ...KeyPair) (*Codec, error) {
	if len(keys) == 0 {
		return nil, errors.New("session: no cookie keys")
	}
	c := &Codec{name: cookieName}
	for _, kp := range keys {
		if err := kp.validate(); err != nil {
			return nil, err
		}
		sc := securecookie.New(kp.Hash, kp.Block).
			// Lifetime is enforced by the server-side record, which can
			// also be revoked; the cookie itself never expires on its own.
			MaxAge(0).
			MaxLength(maxCookieLength).
			SetSerializer(securecookie.JSONEncoder{})
		c.codecs = append(c.codecs, sc)
	}
	return c, nil
}

// Name is the cookie name the codec is bound to.
func (c *Codec) Name() string { return c.name }

// Encode wraps a session ID for the cookie.
func (c *Codec) Encode(id string) (string, error) {
	return securecookie.EncodeMulti(c.name, id, c.codecs...)
}

// Decode unwraps a cookie value; any malformed, oversized, tampered or
// foreign value is an error.
func (c *Codec) Decode(value string) (string, error) {
	if len(value) > maxCookieLength {
		return "", errors.New("session: cookie too long")
	}
	var id string
	if err := securecookie.DecodeMulti(c.name, value, &id, c.codecs...); err != nil {
		return "", err
	}
	if len(id) != idLength {
		return "", errors.New("session: malformed ID")
	}
	return id, nil
}

// idLength is the length of a rand.Text ID (26 base32 characters, 130 bits).
const idLength = 26

// NewID returns a fresh random session ID of at least 128 bits.
func NewID() string { return rand.Text() }
