package org

import (
	"errors"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// TestLeave: a leaving account's colleagues go to the longest-standing
// eHerkenning-verified admin; an organisation whose other members would
// have no such admin refuses; one left empty is fine.
func TestLeave(t *testing.T) {
	const kvk = "12345678"
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := []storage.Membership{
		{KvK: kvk, AccountID: "jan", Role: RoleAdmin, Anchor: AnchorEH3, Since: t0},
		{KvK: kvk, AccountID: "nieuw", Role: RoleAdmin, Anchor: AnchorEH3, Since: t0.Add(48 * time.Hour)},
		{KvK: kvk, AccountID: "oud", Role: RoleAdmin, Anchor: AnchorEH3, Since: t0.Add(24 * time.Hour)},
		{KvK: kvk, AccountID: "gepromoveerd", Role: RoleAdmin, Anchor: AnchorInvited, InvitedBy: "jan", Since: t0.Add(-time.Hour)},
		{KvK: kvk, AccountID: "piet", Role: RoleMember, Anchor: AnchorInvited, InvitedBy: "jan", Since: t0},
	}
	kept, err := Leave(append([]storage.Membership(nil), ms...), "jan")
	if err != nil {
		t.Fatal(err)
	}
	if len(kept) != 4 {
		t.Fatalf("kept %+v, want everyone but jan", kept)
	}
	for _, m := range kept {
		if m.AccountID == "jan" {
			t.Error("the leaving account is kept")
		}
		if (m.AccountID == "piet" || m.AccountID == "gepromoveerd") && m.InvitedBy != "oud" {
			t.Errorf("%s is now invited by %q, want the longest-standing verified admin", m.AccountID, m.InvitedBy)
		}
	}

	_, err = Leave([]storage.Membership{ms[0], ms[3], ms[4]}, "jan")
	if !errors.Is(err, ErrLastAdmin) {
		t.Errorf("the last verified admin with others left behind: %v, want ErrLastAdmin", err)
	}
	if kept, err := Leave([]storage.Membership{ms[0]}, "jan"); err != nil || len(kept) != 0 {
		t.Errorf("the only member: %+v, %v, want an empty organisation", kept, err)
	}
}
