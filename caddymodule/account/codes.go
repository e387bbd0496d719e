package account

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
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
	// MaxCodeGuesses wrong codes for one address within CodeGuessWindow,
	// whatever the purpose and however many codes were sent, and the
	// address waits for the rest of the window: a resend gives a fresh
	// code, not fresh tries, so at most 240 guesses a day reach an
	// address (a success after 10^6 / 240 days, about eleven years, on
	// average).
	MaxCodeGuesses  = 10
	CodeGuessWindow = time.Hour
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

// GuessLimitError means the address had MaxCodeGuesses wrong codes in the
// current window; no code is checked for it until Wait has passed.
type GuessLimitError struct{ Wait time.Duration }

func (e *GuessLimitError) Error() string {
	return fmt.Sprintf("too many wrong codes for this address; wait %v", e.Wait)
}

// CodeStore keeps verification codes and counts wrong guesses. UseCode
// runs check on the code for (purpose, email), nil when there is none, and
// on the address's count of wrong guesses, in one transaction serialised
// against every other use: check counts a wrong attempt (keep=true) or
// consumes the code (keep=false), so a code is consumed once and no wrong
// guess goes uncounted. The count lasts guessWindow from its WindowStart;
// a zero count is removed.
type CodeStore interface {
	PutCode(storage.VerificationCode) error
	UseCode(purpose, email string, guessWindow time.Duration, check func(code *storage.VerificationCode, guesses *storage.Counter) (keep bool, err error)) error
}

// Codes issues and checks emailed verification codes.
type Codes struct {
	Store CodeStore
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
	err := c.Store.PutCode(storage.VerificationCode{
		Purpose: string(p), Email: email, Hash: c.hash(p, email, code),
		CreatedAt: now, ExpiresAt: now.Add(CodeValidity),
	})
	return code, err
}

// Check uses a typed code. The right code is consumed; a wrong one counts
// as an attempt on the code and as a guess at the address, in the same
// transaction. The last allowed wrong attempt kills the code; the last
// allowed guess makes the address wait (GuessLimitError), during which no
// code, not even the right one, is accepted.
func (c *Codes) Check(p Purpose, email, code string) error {
	want := c.hash(p, email, normalizeCode(code))
	now := c.now()
	return c.Store.UseCode(string(p), email, CodeGuessWindow, func(vc *storage.VerificationCode, guesses *storage.Counter) (bool, error) {
		if now.Sub(guesses.WindowStart) >= CodeGuessWindow {
			*guesses = storage.Counter{}
		}
		limited := func() error {
			return &GuessLimitError{Wait: guesses.WindowStart.Add(CodeGuessWindow).Sub(now)}
		}
		if guesses.Count >= MaxCodeGuesses {
			return true, limited()
		}
		if vc == nil || !now.Before(vc.ExpiresAt) {
			return false, ErrCodeExpired
		}
		if vc.Attempts >= MaxCodeAttempts {
			return false, ErrCodeExhausted
		}
		if hmac.Equal(vc.Hash, want) {
			*guesses = storage.Counter{}
			return false, nil
		}
		vc.Attempts++
		if guesses.Count == 0 {
			guesses.WindowStart = now
		}
		guesses.Count++
		keep := vc.Attempts < MaxCodeAttempts
		switch {
		case guesses.Count >= MaxCodeGuesses:
			return keep, limited()
		case !keep:
			return false, ErrCodeExhausted
		}
		return true, ErrCodeWrong
	})
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
