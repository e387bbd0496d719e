package account

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"strings"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// Recovery codes (NIST 800-63B §5.1.2, look-up secrets): RecoveryCodeCount
// codes of 12 base32 characters (60 bits) each, shown once, stored as
// keyed hashes and spent on use. Making new ones voids the old.
const RecoveryCodeCount = 10

// NewRecoveryCodes gives the account a fresh set of recovery codes, which
// the caller shows once; only their hashes are kept.
func (f *Factors) NewRecoveryCodes(accountID string) ([]string, storage.Account, error) {
	codes := make([]string, RecoveryCodeCount)
	hashes := make([][]byte, RecoveryCodeCount)
	for i := range codes {
		raw := strings.ToLower(rand.Text()[:12])
		codes[i] = raw[:4] + "-" + raw[4:8] + "-" + raw[8:]
		hashes[i] = f.recoveryHash(accountID, raw)
	}
	now := f.now()
	a, err := f.Store.UpdateAccount(accountID, func(a *storage.Account) error {
		a.RecoveryCodes, a.RecoveryCodesAt = hashes, now
		return nil
	})
	if err != nil {
		return nil, storage.Account{}, err
	}
	return codes, a, nil
}

// UseRecoveryCode checks a recovery code and spends it, in one
// transaction, so it works once.
func (f *Factors) UseRecoveryCode(accountID, code string) (storage.Account, error) {
	raw := normalizeRecoveryCode(code)
	if len(raw) != 12 {
		return storage.Account{}, ErrFactorWrong
	}
	h := f.recoveryHash(accountID, raw)
	return f.Store.UpdateAccount(accountID, func(a *storage.Account) error {
		for i, stored := range a.RecoveryCodes {
			if hmac.Equal(stored, h) {
				a.RecoveryCodes = append(a.RecoveryCodes[:i:i], a.RecoveryCodes[i+1:]...)
				return nil
			}
		}
		return ErrFactorWrong
	})
}

// normalizeRecoveryCode drops what people type around a code: spaces,
// dashes, capitals.
func normalizeRecoveryCode(code string) string {
	return strings.ToLower(strings.NewReplacer(" ", "", "-", "", "\t", "").Replace(code))
}

func (f *Factors) recoveryHash(accountID, raw string) []byte {
	m := hmac.New(sha256.New, f.subkey("recovery"))
	m.Write([]byte(accountID + "\x00" + raw))
	return m.Sum(nil)
}
