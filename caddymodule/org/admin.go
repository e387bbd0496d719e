package org

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// InvitationValidity is how long an invitation link works.
const InvitationValidity = 7 * 24 * time.Hour

// DefaultAuditRetention is how long an organisation's audit entries are
// kept: two years.
const DefaultAuditRetention = 2 * 365 * 24 * time.Hour

// RefusalWindow is the clock period over which one member's refused
// attempts are counted in a single audit entry.
const RefusalWindow = time.Hour

// Errors of admin actions, each a message to the person.
var (
	// ErrForbidden means the actor is not an anchored admin of the
	// organisation, or the object is not the organisation's.
	ErrForbidden = errors.New("org: not allowed")
	// ErrLastAdmin means the change would leave the organisation without
	// an admin who verified it with eHerkenning.
	ErrLastAdmin = errors.New("org: the last eHerkenning-verified admin cannot be removed or demoted")
	// ErrNotMember means the account is not a member of the organisation.
	ErrNotMember = errors.New("org: not a member")
	// ErrInvitationInvalid means the invitation link is unknown, used,
	// withdrawn or expired.
	ErrInvitationInvalid = errors.New("org: invitation not valid")
	// ErrInvitationOtherEmail means the invitation is for another address.
	ErrInvitationOtherEmail = errors.New("org: invitation is for another email address")
	// ErrUnknownApp means an app outside the configured ones was named.
	ErrUnknownApp = errors.New("org: unknown app")
	// ErrUnknownRole means a role other than admin or member was named.
	ErrUnknownRole = errors.New("org: unknown role")
)

// RequireAdmin returns the actor's membership when it is an anchored admin
// of the organisation, and ErrForbidden otherwise. A member's refused
// attempt is recorded in the organisation's audit log; an outsider's is
// not, so nobody outside an organisation can write into its log (the
// caller tells the operator).
func (s *Service) RequireAdmin(actorID, kvk, action string) (storage.Membership, error) {
	m, err := s.Store.Membership(kvk, actorID)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Membership{}, ErrForbidden
	}
	if err != nil {
		return m, err
	}
	if m.Role == RoleAdmin {
		ok, err := s.Anchored(m)
		if err != nil {
			return m, err
		}
		if ok {
			return m, nil
		}
	}
	s.refused(kvk, actorID, action)
	return storage.Membership{}, ErrForbidden
}

func (s *Service) audit(kvk, actor, action, target, detail string) {
	now := s.now()
	_ = s.Store.AppendAudit(storage.AuditEntry{At: now, KvK: kvk, Actor: actor, Action: action, Target: target, Detail: detail},
		now.Add(s.auditRetention()))
}

func (s *Service) auditRetention() time.Duration {
	if s.AuditRetention > 0 {
		return s.AuditRetention
	}
	return DefaultAuditRetention
}

// refused records a member's refused attempt. One account's refusals in
// one clock hour are one entry in the log, counted, so repeated attempts
// cannot push the organisation's real events off its page. Detail lists
// the actions tried.
func (s *Service) refused(kvk, actor, action string) {
	now := s.now()
	window := now.Truncate(RefusalWindow)
	group := actor + "/" + strconv.FormatInt(window.Unix(), 10)
	e := storage.AuditEntry{At: now, Until: now, KvK: kvk, Actor: actor, Action: "denied", Detail: action, Count: 1}
	merge := func(into *storage.AuditEntry) {
		into.Count++
		into.Until = now
		if !slices.Contains(strings.Split(into.Detail, ","), action) {
			into.Detail += "," + action
		}
	}
	_ = s.Store.GroupAudit(group, e, merge, now.Add(s.auditRetention()))
}

// checkApps keeps apps to the configured ones, sorted and without repeats.
func checkApps(apps, configured []string) ([]string, error) {
	var out []string
	for _, a := range apps {
		if !slices.Contains(configured, a) {
			return nil, fmt.Errorf("%w: %q", ErrUnknownApp, a)
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Invite makes an invitation for email to join the organisation with the
// given apps, and returns the secret token for the link. Only its hash is
// stored.
func (s *Service) Invite(actorID, kvk, email string, apps, configured []string) (string, storage.Invitation, error) {
	if _, err := s.RequireAdmin(actorID, kvk, "invite"); err != nil {
		return "", storage.Invitation{}, err
	}
	apps, err := checkApps(apps, configured)
	if err != nil {
		return "", storage.Invitation{}, err
	}
	token := rand.Text() + rand.Text()
	now := s.now()
	inv := storage.Invitation{
		ID: InvitationID(token), KvK: kvk, Email: email, Apps: apps, InvitedBy: actorID,
		CreatedAt: now, ExpiresAt: now.Add(InvitationValidity),
	}
	if err := s.Store.PutInvitation(inv); err != nil {
		return "", storage.Invitation{}, err
	}
	s.audit(kvk, actorID, "invite", email, "apps: "+strings.Join(apps, ","))
	return token, inv, nil
}

// InvitationID derives the stored ID from the token in the link.
func InvitationID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// PendingInvitation returns the invitation behind a link token, if valid.
func (s *Service) PendingInvitation(token string) (storage.Invitation, error) {
	inv, err := s.Store.Invitation(InvitationID(token))
	if errors.Is(err, storage.ErrNotFound) || (err == nil && !s.now().Before(inv.ExpiresAt)) {
		return storage.Invitation{}, ErrInvitationInvalid
	}
	return inv, err
}

// Accept uses an invitation for the logged-in account: only the invited
// address may, and only once. The account becomes a member anchored by
// the inviting admin; an existing membership keeps its role and gains the
// invited apps.
func (s *Service) Accept(token string, account storage.Account) (storage.Invitation, error) {
	now := s.now()
	inv, err := s.Store.TakeInvitation(InvitationID(token), func(inv storage.Invitation) error {
		if !now.Before(inv.ExpiresAt) {
			return ErrInvitationInvalid
		}
		if !strings.EqualFold(inv.Email, account.Email) {
			return ErrInvitationOtherEmail
		}
		return nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return inv, ErrInvitationInvalid
	}
	if err != nil {
		return inv, err
	}
	err = s.Store.UpdateMembers(inv.KvK, func(ms []storage.Membership) ([]storage.Membership, error) {
		for i := range ms {
			if ms[i].AccountID == account.ID {
				ms[i].Apps = mergeApps(ms[i].Apps, inv.Apps)
				return ms, nil
			}
		}
		return append(ms, storage.Membership{
			KvK: inv.KvK, AccountID: account.ID, Role: RoleMember, Anchor: AnchorInvited,
			InvitedBy: inv.InvitedBy, Apps: inv.Apps, Since: now,
		}), nil
	})
	if err != nil {
		return inv, err
	}
	s.audit(inv.KvK, account.ID, "accept_invitation", account.ID, "invited by "+inv.InvitedBy)
	return inv, nil
}

func mergeApps(a, b []string) []string {
	out := append([]string(nil), a...)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	slices.Sort(out)
	return out
}

// Withdraw removes a pending invitation of the organisation.
func (s *Service) Withdraw(actorID, kvk, invitationID string) error {
	if _, err := s.RequireAdmin(actorID, kvk, "withdraw"); err != nil {
		return err
	}
	inv, err := s.Store.TakeInvitation(invitationID, func(inv storage.Invitation) error {
		if inv.KvK != kvk {
			return ErrForbidden
		}
		return nil
	})
	if errors.Is(err, ErrForbidden) || errors.Is(err, storage.ErrNotFound) {
		// An invitation of another organisation, or none.
		s.refused(kvk, actorID, "withdraw")
		return ErrForbidden
	}
	if err != nil {
		return err
	}
	s.audit(kvk, actorID, "withdraw_invitation", inv.Email, "")
	return nil
}

// SetApps gives a member exactly these apps.
func (s *Service) SetApps(actorID, kvk, memberID string, apps, configured []string) error {
	if _, err := s.RequireAdmin(actorID, kvk, "set_apps"); err != nil {
		return err
	}
	apps, err := checkApps(apps, configured)
	if err != nil {
		return err
	}
	err = s.changeMember(actorID, kvk, "set_apps", memberID, func(ms []storage.Membership, i int) ([]storage.Membership, error) {
		ms[i].Apps = apps
		return ms, nil
	})
	if err == nil {
		s.audit(kvk, actorID, "set_apps", memberID, strings.Join(apps, ","))
	}
	return err
}

// SetRole makes a member admin or member. Demoting the last
// eHerkenning-verified admin is refused.
func (s *Service) SetRole(actorID, kvk, memberID, role string) error {
	// Whether the actor may act comes first, so a member's attempt is
	// recorded whatever role it names.
	if _, err := s.RequireAdmin(actorID, kvk, "set_role"); err != nil {
		return err
	}
	if role != RoleAdmin && role != RoleMember {
		return ErrUnknownRole
	}
	err := s.changeMember(actorID, kvk, "set_role", memberID, func(ms []storage.Membership, i int) ([]storage.Membership, error) {
		ms[i].Role = role
		if role == RoleMember {
			reanchor(ms, memberID, actorID)
		}
		return ms, keepsVerifiedAdmin(ms)
	})
	if err == nil {
		s.audit(kvk, actorID, "set_role", memberID, role)
	}
	return err
}

// Remove ends a membership. Removing the last eHerkenning-verified admin
// is refused.
func (s *Service) Remove(actorID, kvk, memberID string) error {
	if _, err := s.RequireAdmin(actorID, kvk, "remove"); err != nil {
		return err
	}
	err := s.changeMember(actorID, kvk, "remove", memberID, func(ms []storage.Membership, i int) ([]storage.Membership, error) {
		ms = slices.Delete(ms, i, i+1)
		reanchor(ms, memberID, actorID)
		return ms, keepsVerifiedAdmin(ms)
	})
	if err == nil {
		s.audit(kvk, actorID, "remove", memberID, "")
	}
	return err
}

// changeMember applies change to the organisation's memberships with the
// member's index, in one transaction. Naming someone who is not a member
// (say, another organisation's) is refused and recorded as an attempt at
// action.
func (s *Service) changeMember(actorID, kvk, action, memberID string, change func([]storage.Membership, int) ([]storage.Membership, error)) error {
	err := s.Store.UpdateMembers(kvk, func(ms []storage.Membership) ([]storage.Membership, error) {
		i := slices.IndexFunc(ms, func(m storage.Membership) bool { return m.AccountID == memberID })
		if i < 0 {
			return nil, ErrNotMember
		}
		return change(ms, i)
	})
	if errors.Is(err, ErrNotMember) {
		s.refused(kvk, actorID, action)
		return ErrForbidden
	}
	return err
}

// reanchor hands the colleagues that a leaving (or demoted) admin invited
// to the admin making the change, so they keep their anchored access.
func reanchor(ms []storage.Membership, from, to string) {
	for i := range ms {
		if ms[i].InvitedBy == from && ms[i].AccountID != to {
			ms[i].InvitedBy = to
		}
	}
}

// keepsVerifiedAdmin insists on at least one admin who verified the
// organisation with eHerkenning, so the organisation's chain of trust
// never loses its anchor.
func keepsVerifiedAdmin(ms []storage.Membership) error {
	for _, m := range ms {
		if m.Role == RoleAdmin && m.Anchor == AnchorEH3 {
			return nil
		}
	}
	return ErrLastAdmin
}
