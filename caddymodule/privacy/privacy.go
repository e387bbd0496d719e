// Package privacy gives a person what the AVG (GDPR) promises them: a copy
// of everything held about their account (Export) and its removal
// (Delete). The portal's pages and the operator's commands share it. It
// stores through the account and organisation services and knows nothing
// of HTTP or Caddy.
package privacy

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/org"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// Store is what an export reads beyond the account and organisation
// services.
type Store interface {
	// AccountSessions lists an account's live sessions.
	AccountSessions(accountID string) ([]storage.Session, error)
	// InvitationsFor lists the pending invitations to an address, in
	// every organisation.
	InvitationsFor(email string) ([]storage.Invitation, error)
}

// Service gathers and removes what is held about an account.
type Service struct {
	Accounts *account.Service
	Orgs     *org.Service
	Store    Store
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// BlockedError refuses a deletion while the account is the last
// eHerkenning-verified admin of organisations that have other members;
// it names them, so the person knows where to hand over first.
type BlockedError struct {
	Organisations []storage.Organisation
}

func (e *BlockedError) Error() string {
	var names []string
	for _, o := range e.Organisations {
		names = append(names, fmt.Sprintf("%s (KvK %s)", o.Name, o.KvK))
	}
	return "the account is the last eHerkenning-verified admin of " + strings.Join(names, ", ") +
		": make another member admin (who verifies with eHerkenning) or remove the other members first"
}

// Blockers lists the organisations that refuse the account's removal by
// org.Leave: those it is the last eHerkenning-verified admin of while
// others are members.
func (s *Service) Blockers(accountID string) ([]storage.Organisation, error) {
	ms, err := s.Orgs.Memberships(accountID)
	if err != nil {
		return nil, err
	}
	var out []storage.Organisation
	for _, m := range ms {
		members, err := s.Orgs.Members(m.KvK)
		if err != nil {
			return nil, err
		}
		if _, err := org.Leave(members, accountID); errors.Is(err, org.ErrLastAdmin) {
			out = append(out, m.Organisation)
		} else if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Delete removes the account and everything kept for it in one
// transaction (account.Store's DeleteAccount), unless Blockers names an
// organisation: then nothing changes and the error is a *BlockedError.
// Each organisation it left records that in its log.
func (s *Service) Delete(accountID string) (storage.Account, error) {
	blockers, err := s.Blockers(accountID)
	if err != nil {
		return storage.Account{}, err
	}
	if len(blockers) > 0 {
		return storage.Account{}, &BlockedError{Organisations: blockers}
	}
	ms, err := s.Orgs.Memberships(accountID)
	if err != nil {
		return storage.Account{}, err
	}
	a, err := s.Accounts.Delete(accountID, storage.AccountDeletion{
		Leave: func(_ string, members []storage.Membership) ([]storage.Membership, error) {
			return org.Leave(members, accountID)
		},
		Pseudonym: account.Pseudonym(accountID),
	})
	if errors.Is(err, org.ErrLastAdmin) {
		// Another admin left between the check and the deletion.
		if blockers, berr := s.Blockers(accountID); berr == nil && len(blockers) > 0 {
			return storage.Account{}, &BlockedError{Organisations: blockers}
		}
	}
	if err != nil {
		return storage.Account{}, err
	}
	for _, m := range ms {
		s.Orgs.AccountRemoved(m.KvK, accountID)
	}
	return a, nil
}
