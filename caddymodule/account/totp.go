package account

import (
	"bytes"
	"crypto/subtle"
	"encoding/base32"
	"image/png"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// Authenticator-app rules (RFC 6238 as every app implements it; NIST
// 800-63B §5.1.4.1): six digits, 30-second steps, one step of clock drift
// either way, each code accepted once.
const (
	TOTPPeriod = 30
	TOTPDrift  = 1
	// TOTPSetupValidity is how long a setup form (QR code shown, first
	// code not yet typed) stays good.
	TOTPSetupValidity = 15 * time.Minute
)

// TOTPSetup is an authenticator app being set up: shown to the person, and
// carried by the setup form until they confirm a first code.
type TOTPSetup struct {
	// Secret is the base32 secret for typing into an app.
	Secret string
	// Sealed is the secret sealed for this account and Expires, for the
	// form's hidden field; only this server can open it.
	Sealed  []byte
	Expires time.Time
	key     *otp.Key
}

// URL is the otpauth:// URL the QR code holds.
func (s *TOTPSetup) URL() string { return s.key.URL() }

// QRCode returns the setup's QR code as a PNG.
func (s *TOTPSetup) QRCode() ([]byte, error) {
	img, err := s.key.Image(240, 240)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// NewTOTP makes a fresh secret for the account; nothing is stored until
// ConfirmTOTP.
func (f *Factors) NewTOTP(a storage.Account) (*TOTPSetup, error) {
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer: f.Issuer, AccountName: a.Email, Period: TOTPPeriod,
		SecretSize: 20, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
	})
	if err != nil {
		return nil, err
	}
	expires := f.now().Add(TOTPSetupValidity).Truncate(time.Second)
	return &TOTPSetup{
		Secret: key.Secret(), Expires: expires, key: key,
		Sealed: f.seal([]byte(key.Secret()), setupContext(a.ID, expires)),
	}, nil
}

// OpenTOTPSetup reads back a setup form's sealed secret, to show the same
// QR code again after a wrong first code.
func (f *Factors) OpenTOTPSetup(a storage.Account, sealed []byte, expires time.Time) (*TOTPSetup, error) {
	if !f.now().Before(expires) {
		return nil, ErrSetupExpired
	}
	secret, err := f.open(sealed, setupContext(a.ID, expires))
	if err != nil {
		return nil, ErrSetupExpired
	}
	q := url.Values{}
	q.Set("secret", string(secret))
	q.Set("issuer", f.Issuer)
	q.Set("period", strconv.Itoa(TOTPPeriod))
	q.Set("digits", "6")
	q.Set("algorithm", "SHA1")
	u := url.URL{Scheme: "otpauth", Host: "totp", Path: "/" + f.Issuer + ":" + a.Email, RawQuery: q.Encode()}
	key, err := otp.NewKeyFromURL(u.String())
	if err != nil {
		return nil, err
	}
	return &TOTPSetup{Secret: string(secret), Sealed: sealed, Expires: expires, key: key}, nil
}

func setupContext(accountID string, expires time.Time) string {
	return "totp-setup\x00" + accountID + "\x00" + expires.UTC().Format(time.RFC3339)
}

func totpContext(accountID string) string { return "totp\x00" + accountID }

// ConfirmTOTP sets up the authenticator app of a setup form once the
// person typed a right code from it; the code's step counts as used.
func (f *Factors) ConfirmTOTP(accountID string, sealed []byte, expires time.Time, code string) (storage.Account, error) {
	now := f.now()
	if !now.Before(expires) {
		return storage.Account{}, ErrSetupExpired
	}
	secret, err := f.open(sealed, setupContext(accountID, expires))
	if err != nil {
		return storage.Account{}, ErrSetupExpired
	}
	step, ok := matchTOTP(string(secret), code, now, 0)
	if !ok {
		return storage.Account{}, ErrFactorWrong
	}
	return f.Store.UpdateAccount(accountID, func(a *storage.Account) error {
		if a.TOTP != nil {
			return ErrTOTPExists
		}
		a.TOTP = &storage.TOTPFactor{SealedSecret: f.seal(secret, totpContext(a.ID)), LastStep: step, CreatedAt: now}
		return nil
	})
}

// CheckTOTP checks an authenticator code for the account and spends its
// step, in one transaction: the same code, or an older one, is refused
// afterwards.
func (f *Factors) CheckTOTP(accountID, code string) (storage.Account, error) {
	now := f.now()
	return f.Store.UpdateAccount(accountID, func(a *storage.Account) error {
		if a.TOTP == nil {
			return ErrNoTOTP
		}
		secret, err := f.open(a.TOTP.SealedSecret, totpContext(a.ID))
		if err != nil {
			return err
		}
		step, ok := matchTOTP(string(secret), code, now, a.TOTP.LastStep)
		if !ok {
			return ErrFactorWrong
		}
		t := *a.TOTP
		t.LastStep = step
		a.TOTP = &t
		return nil
	})
}

// matchTOTP finds the step within the drift whose code is code, later
// than after.
func matchTOTP(secret, code string, now time.Time, after int64) (int64, bool) {
	code = strings.Join(strings.Fields(code), "")
	if len(code) != 6 {
		return 0, false
	}
	if _, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(secret)); err != nil {
		return 0, false
	}
	current := now.Unix() / TOTPPeriod
	for step := current - TOTPDrift; step <= current+TOTPDrift; step++ {
		if step <= after {
			continue
		}
		want, err := hotp.GenerateCodeCustom(secret, uint64(step), hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return step, true
		}
	}
	return 0, false
}
