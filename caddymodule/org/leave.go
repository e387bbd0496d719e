package org

import (
	"slices"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// Leave is what an organisation keeps when one of its members' accounts is
// removed: the other memberships, with the colleagues that account invited
// handed to the longest-standing eHerkenning-verified admin, so nobody
// loses access because their inviter left. An organisation whose other
// members would be left without such an admin refuses (ErrLastAdmin): an
// admin must hand over first. An organisation left without members keeps
// its record and audit log; whoever verifies it with eHerkenning next
// becomes its admin.
func Leave(ms []storage.Membership, accountID string) ([]storage.Membership, error) {
	ms = slices.DeleteFunc(ms, func(m storage.Membership) bool { return m.AccountID == accountID })
	if len(ms) == 0 {
		return ms, nil
	}
	if err := keepsVerifiedAdmin(ms); err != nil {
		return nil, err
	}
	heir := storage.Membership{}
	for _, m := range ms {
		if m.Role == RoleAdmin && m.Anchor == AnchorEH3 && (heir.AccountID == "" || m.Since.Before(heir.Since)) {
			heir = m
		}
	}
	reanchor(ms, accountID, heir.AccountID)
	return ms, nil
}

// AccountRemoved records in the organisation's log that a member removed
// their account; the log shows them by account.Pseudonym from then on.
func (s *Service) AccountRemoved(kvk, accountID string) {
	s.audit(kvk, accountID, "account_removed", "", "")
}
