package account

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// PurposeEmailChange binds a code to moving an account to the address it
// was sent to.
const PurposeEmailChange Purpose = "email-change"

// EmailUndoValidity is how long the notice to the old address can move
// the account back. It outlasts a holiday without mail, and is short
// enough that a mailbox the person gave up (an old employer's) cannot
// take the account for long.
const EmailUndoValidity = 7 * 24 * time.Hour

// ErrEmailUnchanged means the new address is the account's own.
var ErrEmailUnchanged = errors.New("the new email address is the current one")

// CheckNewEmail normalises an address an account is to move to, and
// refuses the account's current one.
func CheckNewEmail(a storage.Account, raw string) (string, error) {
	email, err := NormalizeEmail(raw)
	if err != nil {
		return "", err
	}
	if email == a.Email {
		return "", ErrEmailUnchanged
	}
	return email, nil
}

// VerifyPassword checks the account's own password, as a step up before a
// change to what lets the account log in.
func (s *Service) VerifyPassword(ctx context.Context, a storage.Account, password string) (bool, error) {
	password = NormalizePassword(password)
	if len(password) > 4*MaxPasswordLength {
		return false, nil
	}
	return s.Hasher.Verify(ctx, a.PasswordHash, password)
}

// ChangeEmail moves the account to a new address whose code was right.
// Every session of the account ends in the same transaction, as for a
// new password: the address is what the person logs in with and where a
// reset code goes. ErrEmailTaken if another account has it by now.
func (s *Service) ChangeEmail(id, email string) (storage.Account, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return storage.Account{}, err
	}
	a, err := s.Store.ChangeEmail(id, email)
	if errors.Is(err, storage.ErrExists) {
		return storage.Account{}, ErrEmailTaken
	}
	return a, err
}

// UndoEmailChange moves the account back to the address it had, when its
// holder says the change was not theirs: first the password is replaced
// by one nobody knows, ending every session, so whoever changed the
// address is out and cannot log in again; then the address moves back.
// The holder sets a new password with a reset code to that address.
func (s *Service) UndoEmailChange(ctx context.Context, id, oldEmail string) (storage.Account, error) {
	hash, err := s.Hasher.Hash(ctx, rand.Text()+rand.Text())
	if err != nil {
		return storage.Account{}, err
	}
	now := s.now()
	if _, err := s.Store.UpdateAccount(id, func(a *storage.Account) error {
		a.PasswordHash = hash
		a.PasswordChangedAt = now
		return nil
	}); err != nil {
		return storage.Account{}, fmt.Errorf("account: locking %s before moving it back: %w", id, err)
	}
	return s.ChangeEmail(id, oldEmail)
}
