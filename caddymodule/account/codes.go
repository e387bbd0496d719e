package account

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"math/big"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/store"
)

// Verification code rules (OWASP ASVS 5.0 §6.5, NIST 800-63B §5.1.3).
const (
	// CodeDigits gives 10^6 codes, about 20 bits.
	CodeDigits = 6
	// CodeValidity is how long an emailed code works.
	CodeValidity = 10 * time.Minute
	// MaxCodeAttempts wrong tries kill a code: a guess succeeds with
	// probability at most 5 in 10^6 per code.
	MaxCodeAttempts = 5
)

// Purpose binds a code to what it was sent for.
type Purpose string

// The purposes a code can serve.
const (
	PurposeRegister Purpose = "register"
	PurposeReset    Purpose = "reset"
)

// Code check outcomes, each its own message to the person.
var (
	ErrCodeWrong     = errors.New("the code is not right")
	ErrCodeExpired   = errors.New("the code has expired or was never sent")
	ErrCodeExhausted = errors.New("too many wrong tries; the code no longer works")
)

// Codes issues and checks emailed verification codes.
type Codes struct {
	Store *store.Store
	// Key makes the stored hash useless without the server: 10^6 codes
	// would otherwise be hashed through in a moment.
	Key []byte
	Now func() time.Time
}

func (c *Codes) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// NewCode returns a uniformly random code of CodeDigits digits.
func NewCode() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	s := n.String()
	for len(s) < CodeDigits {
		s = "0" + s
	}
	return s
}

func (c *Codes) hash(p Purpose, email, code string) []byte {
	m := hmac.New(sha256.New, c.Key)
	m.Write([]byte(string(p) + "\x00" + email + "\x00" + code))
	return m.Sum(nil)
}

// Issue makes a fresh code for (purpose, email), replacing any earlier
// one, and returns it for the email.
func (c *Codes) Issue(p Purpose, email string) (string, error) {
	code := NewCode()
	now := c.now()
	err := c.Store.PutCode(store.VerificationCode{
		Purpose: string(p), Email: email, Hash: c.hash(p, email, code),
		CreatedAt: now, ExpiresAt: now.Add(CodeValidity),
	})
	return code, err
}

// Check uses a typed code. The right code is consumed; a wrong one counts
// as an attempt, and the last allowed wrong attempt kills the code.
func (c *Codes) Check(p Purpose, email, code string) error {
	want := c.hash(p, email, normalizeCode(code))
	now := c.now()
	err := c.Store.UseCode(string(p), email, func(vc *store.VerificationCode) (bool, error) {
		if !now.Before(vc.ExpiresAt) {
			return false, ErrCodeExpired
		}
		if vc.Attempts >= MaxCodeAttempts {
			return false, ErrCodeExhausted
		}
		if hmac.Equal(vc.Hash, want) {
			return false, nil
		}
		vc.Attempts++
		if vc.Attempts >= MaxCodeAttempts {
			return false, ErrCodeExhausted
		}
		return true, ErrCodeWrong
	})
	if errors.Is(err, store.ErrNotFound) {
		return ErrCodeExpired
	}
	return err
}

// normalizeCode drops the spaces and dashes people paste along with a code.
func normalizeCode(s string) string {
	out := make([]byte, 0, CodeDigits)
	for i := 0; i < len(s) && len(out) <= CodeDigits; i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			out = append(out, c)
		case c == ' ' || c == '-':
		default:
			return "invalid"
		}
	}
	return string(out)
}
