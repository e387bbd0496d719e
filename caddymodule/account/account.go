// Package account holds the rules for Wij Techniek accounts: who may have
// one, how a password is checked and stored, how a person proves who they
// are. It stores through package store and knows nothing of HTTP or Caddy.
package account

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// Field limits; every field a person types is capped.
const (
	MaxEmailLength = 254
	MaxNameLength  = 100
)

// Problems with input, each tied to the form field it concerns.
var (
	ErrEmailInvalid  = errors.New("email address is not valid")
	ErrNameInvalid   = errors.New("name is empty, too long or has control characters")
	ErrEmailTaken    = errors.New("email address already has an account")
	ErrAccountLocked = errors.New("account is disabled")
)

// ErrInvalidCredentials is the one answer to a failed login, whatever
// failed: unknown email, wrong password or disabled account.
var ErrInvalidCredentials = errors.New("invalid email or password")

// Store is what the account rules need from storage. UpdateAccount runs
// change on the current record in one transaction; when the change moves
// the credentials (storage.CredentialsDiffer), it moves CredentialVersion
// and ends every session of the account in that transaction too. The
// change cannot move the email or CredentialVersion. Accounts lists them
// by ID. ChangeEmail moves the account to a new normalised address and
// its unique index with it, and, the address being what the person logs
// in with and where reset codes go, moves CredentialVersion and ends
// every session of the account, all in one transaction; ErrExists if
// another account has the address. DeleteAccount removes the account and everything kept for it
// in one transaction (see DeleteAccount in delete.go); storage.ErrNotFound
// when there is none.
type Store interface {
	CreateAccount(storage.Account) error
	Account(id string) (storage.Account, error)
	AccountByEmail(email string) (storage.Account, error)
	UpdateAccount(id string, change func(*storage.Account) error) (storage.Account, error)
	Accounts() ([]storage.Account, error)
	ChangeEmail(id, email string) (storage.Account, error)
	DeleteAccount(id string, d storage.AccountDeletion) (storage.Account, error)
	FlowStore
}

// FlowStore keeps the state of multi-step forms; a flow expires on its own.
type FlowStore interface {
	PutFlow(storage.Flow) error
	Flow(id string) (storage.Flow, error)
	DeleteFlow(id string) error
}

// Service applies the account rules over a store.
type Service struct {
	Store  Store
	Hasher *Hasher
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// NormalizeEmail checks an address typed by a person and returns its
// canonical form: trimmed and lower-cased, a bare addr-spec with a dot in
// the domain.
func NormalizeEmail(raw string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(raw))
	if e == "" || len(e) > MaxEmailLength || !utf8.ValidString(e) {
		return "", ErrEmailInvalid
	}
	addr, err := mail.ParseAddress(e)
	if err != nil || addr.Address != e || addr.Name != "" {
		return "", ErrEmailInvalid
	}
	at := strings.LastIndexByte(e, '@')
	if at < 1 || !strings.Contains(e[at+1:], ".") || strings.ContainsAny(e, " \t\r\n") {
		return "", ErrEmailInvalid
	}
	return e, nil
}

// NormalizeName checks a full name and returns it with surrounding and
// repeated spaces removed.
func NormalizeName(raw string) (string, error) {
	if !utf8.ValidString(raw) {
		return "", ErrNameInvalid
	}
	n := strings.Join(strings.Fields(raw), " ")
	if n == "" || utf8.RuneCountInString(n) > MaxNameLength {
		return "", ErrNameInvalid
	}
	for _, r := range n {
		if unicode.IsControl(r) {
			return "", ErrNameInvalid
		}
	}
	return n, nil
}

// NewAccountID returns a fresh, stable account identifier.
func NewAccountID() string { return "u-" + strings.ToLower(rand.Text()) }

// Create makes an account after checking every field and the password
// rules; nothing is written unless all of them pass.
func (s *Service) Create(ctx context.Context, email, name, password, lang string) (storage.Account, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return storage.Account{}, err
	}
	if name, err = NormalizeName(name); err != nil {
		return storage.Account{}, err
	}
	password = NormalizePassword(password)
	if err := CheckPassword(password, email); err != nil {
		return storage.Account{}, err
	}
	hash, err := s.Hasher.Hash(ctx, password)
	if err != nil {
		return storage.Account{}, err
	}
	now := s.now()
	a := storage.Account{
		ID:                NewAccountID(),
		Email:             email,
		Name:              name,
		PasswordHash:      hash,
		Lang:              lang,
		CreatedAt:         now,
		PasswordChangedAt: now,
	}
	if err := s.Store.CreateAccount(a); err != nil {
		if errors.Is(err, storage.ErrExists) {
			return storage.Account{}, ErrEmailTaken
		}
		return storage.Account{}, fmt.Errorf("account: creating %s: %w", email, err)
	}
	return a, nil
}

// Authenticate checks an email and password. Unknown emails cost the same
// hashing work as known ones, so timing does not tell them apart. The
// account is returned as it was read before the check: a session made for
// it holds its credential version, so the store refuses that session when
// the password changed while it was being checked.
func (s *Service) Authenticate(ctx context.Context, email, password string) (storage.Account, error) {
	password = NormalizePassword(password)
	norm, err := NormalizeEmail(email)
	if err != nil || len(password) > 4*MaxPasswordLength {
		s.Hasher.VerifyDummy(ctx, password)
		return storage.Account{}, ErrInvalidCredentials
	}
	a, err := s.Store.AccountByEmail(norm)
	if errors.Is(err, storage.ErrNotFound) {
		s.Hasher.VerifyDummy(ctx, password)
		return storage.Account{}, ErrInvalidCredentials
	}
	if err != nil {
		return storage.Account{}, err
	}
	ok, err := s.Hasher.Verify(ctx, a.PasswordHash, password)
	if err != nil {
		return storage.Account{}, err
	}
	if !ok || a.Disabled {
		return storage.Account{}, ErrInvalidCredentials
	}
	return a, nil
}

// Disable stops an account from logging in and ends its sessions, in one
// transaction.
func (s *Service) Disable(email string) (storage.Account, error) {
	return s.updateByEmail(email, func(a *storage.Account) { a.Disabled = true })
}

// updateByEmail is an operator's change to the account with this email, in
// one transaction.
func (s *Service) updateByEmail(email string, change func(*storage.Account)) (storage.Account, error) {
	norm, err := NormalizeEmail(email)
	if err != nil {
		return storage.Account{}, err
	}
	a, err := s.Store.AccountByEmail(norm)
	if err != nil {
		return storage.Account{}, err
	}
	return s.Store.UpdateAccount(a.ID, func(a *storage.Account) error {
		change(a)
		return nil
	})
}

// RemoveSecondFactors takes every second factor off the account with this
// email (authenticator app, recovery codes, passkeys): the operator's way
// back in for a person who lost them all. Removing factors moves the
// credential version, so every session of the account ends in the same
// transaction; the next login asks the password alone, and a policy that
// requires a factor sends the person to set one up again.
func (s *Service) RemoveSecondFactors(email string) (storage.Account, error) {
	return s.updateByEmail(email, func(a *storage.Account) {
		a.TOTP, a.RecoveryCodes, a.RecoveryCodesAt, a.Passkeys = nil, nil, time.Time{}, nil
	})
}

// SetPassword gives the account with this email a new password, after
// checking the password rules, and ends every session of the account in
// the same transaction.
func (s *Service) SetPassword(ctx context.Context, email, password string) (storage.Account, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return storage.Account{}, err
	}
	a, err := s.Store.AccountByEmail(email)
	if err != nil {
		return storage.Account{}, err
	}
	password = NormalizePassword(password)
	if err := CheckPassword(password, email); err != nil {
		return storage.Account{}, err
	}
	hash, err := s.Hasher.Hash(ctx, password)
	if err != nil {
		return storage.Account{}, err
	}
	now := s.now()
	return s.Store.UpdateAccount(a.ID, func(a *storage.Account) error {
		a.PasswordHash = hash
		a.PasswordChangedAt = now
		return nil
	})
}

// Account reads the account with this ID; storage.ErrNotFound if none.
func (s *Service) Account(id string) (storage.Account, error) { return s.Store.Account(id) }

// AccountByEmail reads the account with this normalised address;
// storage.ErrNotFound if none.
func (s *Service) AccountByEmail(email string) (storage.Account, error) {
	return s.Store.AccountByEmail(email)
}

// Accounts lists every account.
func (s *Service) Accounts() ([]storage.Account, error) { return s.Store.Accounts() }

// Flow reads the multi-step form state with this ID; storage.ErrNotFound
// once it is gone or expired.
func (s *Service) Flow(id string) (storage.Flow, error) { return s.Store.Flow(id) }

// SaveFlow writes a flow, kept until its ExpiresAt.
func (s *Service) SaveFlow(f storage.Flow) error { return s.Store.PutFlow(f) }

// EndFlow removes a flow.
func (s *Service) EndFlow(id string) error { return s.Store.DeleteFlow(id) }
