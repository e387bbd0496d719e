package org

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
	"github.com/wijtechniek/wijgate/caddymodule/store"
)

func newService(t *testing.T) *Service {
	t.Helper()
	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &Service{Store: st, Now: time.Now}
}

// withoutVerifications leaves out the audit entries of the eHerkenning
// verifications a test starts with.
func withoutVerifications(entries []storage.AuditEntry) []storage.AuditEntry {
	var out []storage.AuditEntry
	for _, e := range entries {
		if e.Action != "eh_verified" {
			out = append(out, e)
		}
	}
	return out
}

func member(t *testing.T, s *Service, kvk, id string) Membership {
	t.Helper()
	ms, err := s.Memberships(id)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.KvK == kvk {
			return m
		}
	}
	return Membership{}
}

func TestAnchoringFollowsTheChain(t *testing.T) {
	s := newService(t)
	const kvk = "12345678"
	if _, err := s.Link("admin", Verified{KvK: kvk, Level: "loa3"}); err != nil {
		t.Fatal(err)
	}
	put := func(m storage.Membership) {
		if err := s.Store.(*store.Store).PutMembership(m); err != nil {
			t.Fatal(err)
		}
	}
	put(storage.Membership{KvK: kvk, AccountID: "promoted", Role: RoleAdmin, Anchor: AnchorInvited, InvitedBy: "admin"})
	put(storage.Membership{KvK: kvk, AccountID: "second", Role: RoleMember, Anchor: AnchorInvited, InvitedBy: "promoted"})
	put(storage.Membership{KvK: kvk, AccountID: "loop-a", Role: RoleAdmin, Anchor: AnchorInvited, InvitedBy: "loop-b"})
	put(storage.Membership{KvK: kvk, AccountID: "loop-b", Role: RoleAdmin, Anchor: AnchorInvited, InvitedBy: "loop-a"})
	put(storage.Membership{KvK: kvk, AccountID: "by-member", Role: RoleMember, Anchor: AnchorInvited, InvitedBy: "second"})
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{"admin", true}, {"promoted", true}, {"second", true},
		{"loop-a", false}, {"by-member", false},
	} {
		if got := member(t, s, kvk, tc.id).Anchored; got != tc.want {
			t.Errorf("%s anchored = %v, want %v", tc.id, got, tc.want)
		}
	}

	t.Run("removing an inviter hands the invitees to the acting admin", func(t *testing.T) {
		if err := s.Remove("admin", kvk, "promoted"); err != nil {
			t.Fatal(err)
		}
		m := member(t, s, kvk, "second")
		if !m.Anchored || m.InvitedBy != "admin" {
			t.Fatalf("second after its inviter left: %+v", m)
		}
	})
}

func TestAdminRules(t *testing.T) {
	s := newService(t)
	const a, b = "11111111", "22222222"
	s.Link("admin-a", Verified{KvK: a, Level: "loa3"})
	s.Link("admin-b", Verified{KvK: b, Level: "loa3"})
	apps := []string{"declaratie", "rie", "website"}
	token, _, err := s.Invite("admin-a", a, "piet@a.nl", []string{"website", "website", "rie"}, apps)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Accept(token, storage.Account{ID: "piet", Email: "PIET@a.nl"}); err != nil {
		t.Fatal(err)
	}
	if m := member(t, s, a, "piet"); !m.MayUse("rie") || m.MayUse("declaratie") || len(m.Apps) != 2 {
		t.Fatalf("piet's apps: %v", m.Apps)
	}
	for _, tc := range []struct {
		name string
		do   func() error
		want error
	}{
		{"another organisation's admin", func() error { return s.SetApps("admin-b", a, "piet", nil, apps) }, ErrForbidden},
		{"a member", func() error { return s.SetApps("piet", a, "piet", apps, apps) }, ErrForbidden},
		{"a member of another organisation", func() error { return s.Remove("admin-b", b, "piet") }, ErrForbidden},
		{"an unknown app", func() error { return s.SetApps("admin-a", a, "piet", []string{"payroll"}, apps) }, ErrUnknownApp},
		{"the last verified admin", func() error { return s.SetRole("admin-a", a, "admin-a", RoleMember) }, ErrLastAdmin},
		{"removing the last verified admin", func() error { return s.Remove("admin-a", a, "admin-a") }, ErrLastAdmin},
		{"an invitation used twice", func() error {
			_, err := s.Accept(token, storage.Account{ID: "piet", Email: "piet@a.nl"})
			return err
		}, ErrInvitationInvalid},
		{"withdrawing another organisation's invitation", func() error {
			_, inv, err := s.Invite("admin-a", a, "kees@a.nl", nil, apps)
			if err != nil {
				return err
			}
			return s.Withdraw("admin-b", b, inv.ID)
		}, ErrForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.do(); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("another address cannot accept", func(t *testing.T) {
		token, _, _ := s.Invite("admin-a", a, "jan@a.nl", nil, apps)
		if _, err := s.Accept(token, storage.Account{ID: "mallory", Email: "mallory@a.nl"}); !errors.Is(err, ErrInvitationOtherEmail) {
			t.Fatalf("err = %v", err)
		}
		if _, err := s.Accept(token, storage.Account{ID: "jan", Email: "jan@a.nl"}); err != nil {
			t.Fatalf("the invited address could no longer accept: %v", err)
		}
	})
	t.Run("invitations expire after 7 days", func(t *testing.T) {
		token, _, _ := s.Invite("admin-a", a, "late@a.nl", nil, apps)
		s.Now = func() time.Time { return time.Now().Add(InvitationValidity + time.Second) }
		defer func() { s.Now = time.Now }()
		if _, err := s.Accept(token, storage.Account{ID: "late", Email: "late@a.nl"}); !errors.Is(err, ErrInvitationInvalid) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("refusals of members are audited, an outsider's are not", func(t *testing.T) {
		entries, _, _ := s.Store.Audit(a, 0, 100)
		var denied []storage.AuditEntry
		for _, e := range entries {
			if e.Action == "denied" {
				denied = append(denied, e)
			}
		}
		// Piet's refused attempt is there; admin-b, no member of a, left no trace.
		if len(denied) != 1 || denied[0].Actor != "piet" {
			t.Fatalf("refusals in the audit log: %+v", denied)
		}
	})
}

func TestRefusalsOfAMemberAreOneEntryPerHour(t *testing.T) {
	s := newService(t)
	const kvk = "11111111"
	start := time.Date(2026, 3, 2, 10, 5, 0, 0, time.UTC)
	now := start
	s.Now = func() time.Time { return now }
	s.Link("admin", Verified{KvK: kvk, Level: "loa3"})
	if err := s.Store.(*store.Store).PutMembership(storage.Membership{KvK: kvk, AccountID: "piet", Role: RoleMember, Anchor: AnchorInvited, InvitedBy: "admin"}); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		now = start.Add(time.Duration(i) * 30 * time.Second)
		var err error
		if i%2 == 0 {
			err = s.SetRole("piet", kvk, "piet", "owner")
		} else {
			err = s.Remove("piet", kvk, "admin")
		}
		if !errors.Is(err, ErrForbidden) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	entries, _, err := s.Store.Audit(kvk, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if entries = withoutVerifications(entries); len(entries) != 1 {
		t.Fatalf("%d entries for 100 refusals in one hour", len(entries))
	}
	e := entries[0]
	if e.Count != 100 || !e.At.Equal(start) || !e.Until.Equal(now) || e.Detail != "set_role,remove" {
		t.Fatalf("aggregated entry: %+v", e)
	}
	// The next hour starts a new entry.
	now = start.Add(time.Hour)
	s.SetApps("piet", kvk, "piet", nil, nil)
	if entries, _, _ := s.Store.Audit(kvk, 0, 1000); len(withoutVerifications(entries)) != 2 || entries[0].Count != 1 {
		t.Fatalf("the next hour: %+v", entries)
	}
}

func TestAuditEntriesExpireAfterTheRetention(t *testing.T) {
	s := newService(t)
	const kvk = "11111111"
	s.Link("admin", Verified{KvK: kvk, Level: "loa3"})
	if _, _, err := s.Invite("admin", kvk, "piet@a.nl", nil, nil); err != nil {
		t.Fatal(err)
	}
	entries, _, err := s.Store.Audit(kvk, 0, 10)
	if entries = withoutVerifications(entries); err != nil || len(entries) != 1 {
		t.Fatalf("%v %+v", err, entries)
	}
	if want := entries[0].At.Add(DefaultAuditRetention).Truncate(time.Second); !entries[0].ExpiresAt.Equal(want) {
		t.Fatalf("expires at %v, want %v", entries[0].ExpiresAt, want)
	}
	// An entry written as long ago as the retention is gone.
	s.Now = func() time.Time { return time.Now().Add(-DefaultAuditRetention - time.Minute) }
	if _, _, err := s.Invite("admin", kvk, "kees@a.nl", nil, nil); err != nil {
		t.Fatal(err)
	}
	if entries, _, _ := s.Store.Audit(kvk, 0, 10); len(withoutVerifications(entries)) != 1 {
		t.Fatalf("an entry older than the retention is kept: %+v", entries)
	}
}

func TestConcurrentRefusalsAreCountedOnce(t *testing.T) {
	s := newService(t)
	const kvk = "11111111"
	at := time.Date(2026, 3, 2, 10, 5, 0, 0, time.UTC)
	s.Now = func() time.Time { return at }
	s.Link("admin", Verified{KvK: kvk, Level: "loa3"})
	if err := s.Store.(*store.Store).PutMembership(storage.Membership{KvK: kvk, AccountID: "piet", Role: RoleMember, Anchor: AnchorInvited, InvitedBy: "admin"}); err != nil {
		t.Fatal(err)
	}
	const attempts = 50
	var wg sync.WaitGroup
	for range attempts {
		wg.Go(func() { s.Remove("piet", kvk, "admin") })
	}
	wg.Wait()
	entries, _, err := s.Store.Audit(kvk, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if entries = withoutVerifications(entries); len(entries) != 1 || entries[0].Count != attempts {
		t.Fatalf("%d concurrent refusals: %+v", attempts, entries)
	}
}
