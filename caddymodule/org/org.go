// Package org holds the rules for organisations: who acts for which
// company, in which role, with which apps, and how that membership is
// anchored in eHerkenning. It stores through package store and knows
// nothing of HTTP or Caddy.
package org

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// Roles and anchors of a membership.
const (
	RoleAdmin  = "admin"
	RoleMember = "member"

	// AnchorEH3 means the person proved with eHerkenning (level EH3 or
	// higher) that they act for the company.
	AnchorEH3 = "eh3"
	// AnchorInvited means an admin of the company invited them.
	AnchorInvited = "invited"
)

// maxChain bounds how far an invitation chain is followed; a longer (or
// circular) chain is not anchored.
const maxChain = 16

var kvkPattern = regexp.MustCompile(`^[0-9]{8}$`)

// ValidKvK reports whether s has the form of a KvK number: 8 digits.
func ValidKvK(s string) bool { return kvkPattern.MatchString(s) }

// ErrInvalidKvK means a KvK number is not 8 digits.
var ErrInvalidKvK = errors.New("org: a KvK number has 8 digits")

// Store is what the organisation rules need from storage. Every method
// that takes a change function runs it in one transaction: UpdateMembers
// serialises the admin actions on one organisation, so rules over several
// members (keep one verified admin) hold under concurrency, and
// TakeInvitation gives an invitation out once. Writes to memberships and
// organisations move the storage.Versions of the accounts concerned.
type Store interface {
	// LinkOrganisation creates or updates the organisation and makes the
	// account an eh3-anchored admin of it, in one transaction, returning
	// the accounts that arrived earlier with the same pseudonym. An
	// organisation already there keeps its CreatedAt, and its Name and
	// RSIN where o has none; a membership already there keeps its Since
	// and Apps.
	LinkOrganisation(o storage.Organisation, m storage.Membership) (samePseudonym []string, err error)
	Organisation(kvk string) (storage.Organisation, error)
	Organisations() ([]storage.Organisation, error)
	Membership(kvk, accountID string) (storage.Membership, error)
	Members(kvk string) ([]storage.Membership, error)
	AccountMemberships(accountID string) ([]storage.Membership, error)
	// UpdateMembers writes back what change returns; a membership left
	// out is removed.
	UpdateMembers(kvk string, change func([]storage.Membership) ([]storage.Membership, error)) error
	PutInvitation(storage.Invitation) error
	Invitation(id string) (storage.Invitation, error)
	Invitations(kvk string) ([]storage.Invitation, error)
	// TakeInvitation removes and returns the invitation unless check
	// refuses it; a second take gets storage.ErrNotFound.
	TakeInvitation(id string, check func(storage.Invitation) error) (storage.Invitation, error)
	AppendAudit(e storage.AuditEntry, expires time.Time) error
	// GroupAudit records e, or lets merge fold it into the entry of the
	// same group (in e's organisation) already in the log, which keeps
	// its place and then lasts until expires.
	GroupAudit(group string, e storage.AuditEntry, merge func(into *storage.AuditEntry), expires time.Time) error
	// Audit lists limit entries, newest (by At) first, after skipping
	// skip; more tells whether older ones follow.
	Audit(kvk string, skip, limit int) (entries []storage.AuditEntry, more bool, err error)
}

// Service applies the organisation rules over a store.
type Service struct {
	Store Store
	Now   func() time.Time
	// AuditRetention is how long audit entries are kept; zero means
	// DefaultAuditRetention.
	AuditRetention time.Duration
	// ReverifyAfter is how long an eHerkenning verification holds before
	// it must be renewed, and ReverifyGrace how much longer it holds
	// after that; zero means DefaultReverifyAfter and DefaultReverifyGrace.
	ReverifyAfter, ReverifyGrace time.Duration
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Verified is what an eHerkenning login proved.
type Verified struct {
	KvK, Name, RSIN, Branch string
	Pseudonym               string
	// Level is the assurance level achieved, e.g. "loa3".
	Level string
}

// Link makes the account an eh3-anchored admin of the verified company,
// creating the company on first sight. It returns other accounts that
// earlier arrived with the same eHerkenning pseudonym (allowed; the
// caller logs it).
// A verification of a company the account already holds an eh3 anchor
// for renews that anchor: it holds for ReverifyAfter from now again.
func (s *Service) Link(accountID string, v Verified) (samePseudonym []string, err error) {
	if !kvkPattern.MatchString(v.KvK) {
		return nil, ErrInvalidKvK
	}
	action := "eh_verified"
	if before, err := s.Store.Membership(v.KvK, accountID); err == nil && before.Anchor == AnchorEH3 {
		action = "eh_renewed"
	}
	now := s.now()
	samePseudonym, err = s.Store.LinkOrganisation(
		storage.Organisation{KvK: v.KvK, Name: v.Name, RSIN: v.RSIN, Branch: v.Branch, CreatedAt: now, UpdatedAt: now},
		storage.Membership{KvK: v.KvK, AccountID: accountID, Role: RoleAdmin, Anchor: AnchorEH3,
			Level: v.Level, Pseudonym: v.Pseudonym, Since: now, VerifiedAt: now},
	)
	if err == nil {
		s.audit(v.KvK, accountID, action, accountID, "pseudonym "+v.Pseudonym+", level "+v.Level)
	}
	return samePseudonym, err
}

// Anchored reports whether a membership rests on eHerkenning: it was
// verified with eHerkenning itself, and that verification holds (see
// AnchorStatus), or granted by an admin whose own membership is anchored,
// and so on up the chain.
func (s *Service) Anchored(m storage.Membership) (bool, error) {
	a, err := s.anchoring(m, s.now())
	return a.ok, err
}

// anchoring is what Anchored finds at now.
type anchoring struct {
	ok bool
	// until is when ok may turn false by time alone (an eHerkenning
	// verification lapsing); zero when it cannot.
	until time.Time
	// lapsed is set when the chain reaches an eHerkenning verification
	// that no longer holds (lapsed or ended), and no other admin's does.
	lapsed bool
}

func (s *Service) anchoring(m storage.Membership, now time.Time) (anchoring, error) {
	own := m.AccountID
	seen := map[string]bool{}
	for range maxChain {
		if seen[m.AccountID] {
			return anchoring{}, nil
		}
		seen[m.AccountID] = true
		switch m.Anchor {
		case AnchorEH3:
			if s.AnchorStatus(m, now).Holds() {
				return anchoring{ok: true, until: s.LapsesAt(m)}, nil
			}
			if m.AccountID == own {
				return anchoring{lapsed: true}, nil
			}
			ok, until, err := s.heldByAnotherAdmin(m.KvK, m.AccountID, now)
			return anchoring{ok: ok, until: until, lapsed: !ok}, err
		case AnchorInvited:
			inviter, err := s.Store.Membership(m.KvK, m.InvitedBy)
			if errors.Is(err, storage.ErrNotFound) {
				return anchoring{}, nil
			}
			if err != nil {
				return anchoring{}, err
			}
			if inviter.Role != RoleAdmin {
				return anchoring{}, nil
			}
			m = inviter
		default:
			return anchoring{}, nil
		}
	}
	return anchoring{}, nil
}

// Membership is an account's membership with its organisation and what
// the membership amounts to.
type Membership struct {
	storage.Membership
	Organisation storage.Organisation
	// Anchored is whether the membership rests on eHerkenning.
	Anchored bool
	// AnchoredUntil is when Anchored turns false unless someone verifies
	// the company again; zero when it is not anchored.
	AnchoredUntil time.Time
	// Lapsed is set when the membership is not anchored because the
	// eHerkenning verification it rests on lapsed or ended: an admin
	// verifying the company again restores it.
	Lapsed bool
}

// Assurance names how the membership is anchored for the X-Wij-Assurance
// header: "eh3" or "eh4" for a person verified at that level, or
// "invited" for a person granted access by an anchored admin.
func (m Membership) Assurance() string {
	if m.Anchor == AnchorEH3 {
		if m.Level == "loa4" {
			return "eh4"
		}
		return "eh3"
	}
	return AnchorInvited
}

// AppsFor are the apps this membership may open, out of all configured:
// an admin every app, a member the ones granted.
func (m Membership) AppsFor(all []string) []string {
	if m.Role == RoleAdmin {
		return all
	}
	var out []string
	for _, a := range all {
		if slices.Contains(m.Apps, a) {
			out = append(out, a)
		}
	}
	return out
}

// MayUse reports whether the membership grants the app.
func (m Membership) MayUse(app string) bool {
	return m.Anchored && (m.Role == RoleAdmin || slices.Contains(m.Apps, app))
}

// Memberships lists the account's memberships with their organisations,
// oldest first.
func (s *Service) Memberships(accountID string) ([]Membership, error) {
	ms, err := s.Store.AccountMemberships(accountID)
	if err != nil {
		return nil, err
	}
	out := make([]Membership, 0, len(ms))
	now := s.now()
	for _, m := range ms {
		o, err := s.Store.Organisation(m.KvK)
		if err != nil {
			return nil, fmt.Errorf("org: membership of %s without organisation: %w", m.KvK, err)
		}
		a, err := s.anchoring(m, now)
		if err != nil {
			return nil, err
		}
		out = append(out, Membership{Membership: m, Organisation: o, Anchored: a.ok, AnchoredUntil: a.until, Lapsed: a.lapsed})
	}
	slices.SortFunc(out, func(a, b Membership) int { return a.Since.Compare(b.Since) })
	return out, nil
}

// Active picks the organisation a session acts for: the one it chose, if
// the account is still an anchored member of it, else the first anchored
// membership. ok is false when there is none.
func Active(ms []Membership, chosen string) (Membership, bool) {
	var first *Membership
	for i := range ms {
		if !ms[i].Anchored {
			continue
		}
		if ms[i].KvK == chosen {
			return ms[i], true
		}
		if first == nil {
			first = &ms[i]
		}
	}
	if first == nil {
		return Membership{}, false
	}
	return *first, true
}

// Organisation reads an organisation; storage.ErrNotFound if none.
func (s *Service) Organisation(kvk string) (storage.Organisation, error) {
	return s.Store.Organisation(kvk)
}

// Organisations lists every organisation.
func (s *Service) Organisations() ([]storage.Organisation, error) { return s.Store.Organisations() }

// Members lists an organisation's memberships.
func (s *Service) Members(kvk string) ([]storage.Membership, error) { return s.Store.Members(kvk) }

// Invitations lists an organisation's pending invitations.
func (s *Service) Invitations(kvk string) ([]storage.Invitation, error) {
	return s.Store.Invitations(kvk)
}

// Audit lists a page of an organisation's audit log, newest first; more
// tells whether older entries follow.
func (s *Service) Audit(kvk string, skip, limit int) (entries []storage.AuditEntry, more bool, err error) {
	return s.Store.Audit(kvk, skip, limit)
}
