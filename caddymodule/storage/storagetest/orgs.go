package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

const kvk = "12345678"

func link(t *testing.T, e Engine, kvk, accountID, pseudonym string) []string {
	t.Helper()
	same, err := e.LinkOrganisation(storage.Organisation{KvK: kvk, CreatedAt: now(), UpdatedAt: now()},
		storage.Membership{KvK: kvk, AccountID: accountID, Role: "admin", Anchor: "eh3", Pseudonym: pseudonym, Since: now(), VerifiedAt: now()})
	if err != nil {
		t.Fatal(err)
	}
	return same
}

func byAccount(a, b storage.Membership) int { return strings.Compare(a.AccountID, b.AccountID) }

func testLinkOrganisation(t *testing.T, e Engine) {
	first := now().Add(-time.Hour)
	o := storage.Organisation{KvK: kvk, Name: "Bouw B.V.", RSIN: "123456789", Branch: "000012345678", CreatedAt: first, UpdatedAt: first}
	piet := storage.Membership{KvK: kvk, AccountID: "piet", Role: "admin", Anchor: "eh3", Level: "loa3", Pseudonym: "ps-piet", Since: first, VerifiedAt: first}
	if same, err := e.LinkOrganisation(o, piet); err != nil || len(same) != 0 {
		t.Fatalf("first link: %v, %v", same, err)
	}
	if got, err := e.Organisation(kvk); err != nil || !same(got, o) {
		t.Fatalf("Organisation = %+v, %v, want %+v", got, err, o)
	}
	if got, err := e.Membership(kvk, "piet"); err != nil || !same(got, piet) {
		t.Fatalf("Membership = %+v, %v, want %+v", got, err, piet)
	}

	// An invited member with apps proves with eHerkenning that they act
	// for the company, under a broker that sends no name.
	anna := storage.Membership{KvK: kvk, AccountID: "anna", Role: "member", Anchor: "invited", InvitedBy: "piet", Apps: []string{"rie"}, Since: first}
	if err := e.UpdateMembers(kvk, func(ms []storage.Membership) ([]storage.Membership, error) { return append(ms, anna), nil }); err != nil {
		t.Fatal(err)
	}
	later := now()
	if _, err := e.LinkOrganisation(storage.Organisation{KvK: kvk, CreatedAt: later, UpdatedAt: later},
		storage.Membership{KvK: kvk, AccountID: "anna", Role: "admin", Anchor: "eh3", Level: "loa4", Pseudonym: "ps-anna", Since: later, VerifiedAt: later}); err != nil {
		t.Fatal(err)
	}
	wantOrg := o
	wantOrg.UpdatedAt, wantOrg.Branch = later, ""
	if got, _ := e.Organisation(kvk); !same(got, wantOrg) {
		t.Errorf("after a second link: %+v, want %+v (name, RSIN and creation kept)", got, wantOrg)
	}
	wantAnna := storage.Membership{KvK: kvk, AccountID: "anna", Role: "admin", Anchor: "eh3", Level: "loa4", Pseudonym: "ps-anna", Apps: []string{"rie"}, Since: first, VerifiedAt: later}
	if got, _ := e.Membership(kvk, "anna"); !same(got, wantAnna) {
		t.Errorf("a linked member: %+v, want %+v (apps and since kept)", got, wantAnna)
	}

	other := storage.Organisation{KvK: "87654321", Name: "Ander", CreatedAt: later, UpdatedAt: later}
	pietOther := storage.Membership{KvK: other.KvK, AccountID: "piet", Role: "admin", Anchor: "eh3", Since: later, VerifiedAt: later}
	if _, err := e.LinkOrganisation(other, pietOther); err != nil {
		t.Fatal(err)
	}
	all, err := e.Organisations()
	slices.SortFunc(all, func(a, b storage.Organisation) int { return strings.Compare(a.KvK, b.KvK) })
	if err != nil || !same(all, []storage.Organisation{wantOrg, other}) {
		t.Errorf("Organisations = %+v, %v", all, err)
	}
	members, err := e.Members(kvk)
	slices.SortFunc(members, byAccount)
	if err != nil || !same(members, []storage.Membership{wantAnna, piet}) {
		t.Errorf("Members = %+v, %v", members, err)
	}
	ms, err := e.AccountMemberships("piet")
	slices.SortFunc(ms, func(a, b storage.Membership) int { return strings.Compare(a.KvK, b.KvK) })
	if err != nil || !same(ms, []storage.Membership{piet, pietOther}) {
		t.Errorf("AccountMemberships = %+v, %v", ms, err)
	}

	if _, err := e.Organisation("11111111"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("an unknown organisation: %v, want ErrNotFound", err)
	}
	if _, err := e.Membership(other.KvK, "anna"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a missing membership: %v, want ErrNotFound", err)
	}
	if ms, err := e.Members("11111111"); err != nil || len(ms) != 0 {
		t.Errorf("members of an unknown organisation: %+v, %v", ms, err)
	}
	if ms, err := e.AccountMemberships("kees"); err != nil || len(ms) != 0 {
		t.Errorf("memberships of an account without any: %+v, %v", ms, err)
	}
}

func testLinkOrganisationNamesTheSamePseudonym(t *testing.T, e Engine) {
	for _, tc := range []struct {
		account, pseudonym string
		want               []string
	}{
		{"a1", "ps", nil},
		{"a2", "ps", []string{"a1"}},
		{"a3", "ps", []string{"a1", "a2"}},
		{"a1", "ps", []string{"a2", "a3"}},
		{"a4", "other", nil},
		{"a5", "", nil},
		{"a6", "", nil},
	} {
		got := link(t, e, kvk, tc.account, tc.pseudonym)
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s linking with pseudonym %q: same pseudonym as %v, want %v", tc.account, tc.pseudonym, got, tc.want)
		}
	}
}

func testUpdateMembers(t *testing.T, e Engine) {
	link(t, e, kvk, "piet", "")
	link(t, e, "87654321", "kees", "")
	anna := storage.Membership{KvK: kvk, AccountID: "anna", Role: "member", Anchor: "invited", InvitedBy: "piet", Apps: []string{"rie"}, Since: now()}
	kees := storage.Membership{KvK: kvk, AccountID: "kees", Role: "member", Anchor: "invited", InvitedBy: "piet", Since: now()}
	var given []storage.Membership
	if err := e.UpdateMembers(kvk, func(ms []storage.Membership) ([]storage.Membership, error) {
		given = ms
		return append(ms, anna, kees), nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(given) != 1 || given[0].AccountID != "piet" {
		t.Fatalf("change was given %+v, want the one member", given)
	}
	members, _ := e.Members(kvk)
	if len(members) != 3 {
		t.Fatalf("after adding two: %+v", members)
	}
	if got, err := e.AccountMemberships("anna"); err != nil || !same(got, []storage.Membership{anna}) {
		t.Fatalf("an added member's memberships: %+v, %v", got, err)
	}

	refused := errors.New("refused")
	if err := e.UpdateMembers(kvk, func(ms []storage.Membership) ([]storage.Membership, error) {
		return ms[:1], refused
	}); !errors.Is(err, refused) {
		t.Fatalf("a change that failed: %v, want its error", err)
	}
	if members, _ := e.Members(kvk); len(members) != 3 {
		t.Fatalf("a change that failed was written: %+v", members)
	}

	if err := e.UpdateMembers(kvk, func(ms []storage.Membership) ([]storage.Membership, error) {
		return slices.DeleteFunc(ms, func(m storage.Membership) bool { return m.AccountID == "kees" }), nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Membership(kvk, "kees"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a left-out member: %v, want ErrNotFound", err)
	}
	if ms, err := e.AccountMemberships("kees"); err != nil || len(ms) != 1 || ms[0].KvK != "87654321" {
		t.Fatalf("the left-out member's memberships: %+v, %v; want only the other organisation's", ms, err)
	}
	if members, _ := e.Members(kvk); len(members) != 2 {
		t.Fatalf("members after removing one of three: %+v", members)
	}
}

// A rule over several members (here: at most four) holds when admins act
// at once.
func testConcurrentMemberChangesAreSerialised(t *testing.T, e Engine) {
	link(t, e, kvk, "admin", "")
	const limit = 4
	full := errors.New("full")
	errs := race(racers, func(i int) error {
		return e.UpdateMembers(kvk, func(ms []storage.Membership) ([]storage.Membership, error) {
			yield()
			if len(ms) >= limit {
				return nil, full
			}
			return append(ms, storage.Membership{KvK: kvk, AccountID: fmt.Sprint("m", i), Role: "member", Anchor: "invited", InvitedBy: "admin"}), nil
		})
	})
	for _, err := range errs {
		if err != nil && !errors.Is(err, full) {
			t.Fatal(err)
		}
	}
	members, _ := e.Members(kvk)
	if n := succeeded(errs); n != limit-1 || len(members) != limit {
		t.Fatalf("%d of %d concurrent additions succeeded, leaving %d members; want %d and %d", n, racers, len(members), limit-1, limit)
	}
}

func invitation(id, kvk string) storage.Invitation {
	return storage.Invitation{ID: id, KvK: kvk, Email: id + "@example.nl", Apps: []string{"rie"}, InvitedBy: "piet", CreatedAt: now(), ExpiresAt: now().Add(time.Hour)}
}

func testInvitations(t *testing.T, e Engine) {
	inv := invitation("i1", kvk)
	for _, i := range []storage.Invitation{inv, invitation("i2", kvk), invitation("i3", "87654321")} {
		if err := e.PutInvitation(i); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := e.Invitation("i1"); err != nil || !same(got, inv) {
		t.Fatalf("Invitation = %+v, %v, want %+v", got, err, inv)
	}
	ids := func() []string {
		t.Helper()
		list, err := e.Invitations(kvk)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, i := range list {
			ids = append(ids, i.ID)
		}
		slices.Sort(ids)
		return ids
	}
	if got := ids(); !slices.Equal(got, []string{"i1", "i2"}) {
		t.Fatalf("pending invitations: %v, want i1 and i2", got)
	}

	refused := errors.New("for another account")
	if _, err := e.TakeInvitation("i1", func(i storage.Invitation) error {
		if !same(i, inv) {
			t.Errorf("check was given %+v, want %+v", i, inv)
		}
		return refused
	}); !errors.Is(err, refused) {
		t.Fatalf("a take that check refused: %v, want its error", err)
	}
	if _, err := e.Invitation("i1"); err != nil {
		t.Fatalf("a refused take removed the invitation: %v", err)
	}
	if got := ids(); !slices.Equal(got, []string{"i1", "i2"}) {
		t.Fatalf("pending invitations after a refused take: %v", got)
	}

	if got, err := e.TakeInvitation("i1", func(storage.Invitation) error { return nil }); err != nil || !same(got, inv) {
		t.Fatalf("TakeInvitation = %+v, %v, want %+v", got, err, inv)
	}
	if _, err := e.Invitation("i1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a taken invitation: %v, want ErrNotFound", err)
	}
	if got := ids(); !slices.Equal(got, []string{"i2"}) {
		t.Fatalf("pending invitations after a take: %v, want i2", got)
	}
	if _, err := e.TakeInvitation("i1", func(storage.Invitation) error { return nil }); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a second take: %v, want ErrNotFound", err)
	}
	if _, err := e.TakeInvitation("unknown", func(storage.Invitation) error { return nil }); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("taking an unknown invitation: %v, want ErrNotFound", err)
	}
}

func testConcurrentTakesGiveAnInvitationOnce(t *testing.T, e Engine) {
	exactlyOnce(t, storage.ErrNotFound, func(id string) error {
		return e.PutInvitation(invitation(id, kvk))
	}, func(id string, _ int) error {
		_, err := e.TakeInvitation(id, func(storage.Invitation) error { yield(); return nil })
		return err
	})
}
