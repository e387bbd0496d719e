package storagetest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// recordVisitor is how the suite reads every record an engine holds, to
// see that nothing of a deleted account is left anywhere.
type recordVisitor interface {
	VisitRecords(ctx context.Context, fn func(storage.Record) error) error
}

func testDeleteAccountLeavesNothingOfIt(t *testing.T, e Engine) {
	const (
		orgA, orgB, orgC = "11111111", "22222222", "33333333"
		goneID           = "u-gone7q"
	)
	gone := createAccount(t, e, goneID)
	other := createAccount(t, e, "u-other")
	createAccount(t, e, "u-stays")
	link(t, e, orgA, goneID, "ps-gone")
	link(t, e, orgA, "u-other", "ps-other")
	link(t, e, orgC, "u-other", "ps-other")
	addMember := func(kvk, id, inviter string) {
		t.Helper()
		if err := e.UpdateMembers(kvk, func(ms []storage.Membership) ([]storage.Membership, error) {
			return append(ms, storage.Membership{KvK: kvk, AccountID: id, Role: "member", Anchor: "invited", InvitedBy: inviter, Since: now()}), nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	addMember(orgA, "u-stays", goneID)
	link(t, e, orgB, "u-other", "")
	addMember(orgB, goneID, "u-other")

	start := now()
	session := func(key, account string) {
		t.Helper()
		if err := e.CreateSession(storage.Session{Key: key, AccountID: account, CreatedAt: start, LastSeen: start, ExpiresAt: start.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	session("s-gone-1", goneID)
	session("s-gone-2", goneID)
	session("s-other", "u-other")
	for _, c := range []storage.VerificationCode{
		{Purpose: "reset", Email: gone.Email, Hash: []byte("h1"), CreatedAt: start, ExpiresAt: start.Add(time.Hour)},
		{Purpose: "reset", Email: other.Email, Hash: []byte("h2"), CreatedAt: start, ExpiresAt: start.Add(time.Hour)},
	} {
		if err := e.PutCode(c); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []storage.Flow{
		{ID: "f-by-id", Purpose: "second-factor", AccountID: goneID, Stage: "code", CreatedAt: start, ExpiresAt: start.Add(time.Hour)},
		{ID: "f-by-email", Purpose: "reset", Email: gone.Email, Stage: "code", CreatedAt: start, ExpiresAt: start.Add(time.Hour)},
		{ID: "f-other", Purpose: "reset", Email: other.Email, Stage: "code", CreatedAt: start, ExpiresAt: start.Add(time.Hour)},
	} {
		if err := e.PutFlow(f); err != nil {
			t.Fatal(err)
		}
	}
	invites := []storage.Invitation{
		{ID: "i-to-gone", KvK: orgC, Email: gone.Email, InvitedBy: "u-other", CreatedAt: start, ExpiresAt: start.Add(time.Hour)},
		{ID: "i-by-gone", KvK: orgA, Email: "new@example.nl", InvitedBy: goneID, CreatedAt: start, ExpiresAt: start.Add(time.Hour)},
		{ID: "i-other", KvK: orgC, Email: "colleague@example.nl", InvitedBy: "u-other", CreatedAt: start, ExpiresAt: start.Add(time.Hour)},
	}
	for _, inv := range invites {
		if err := e.PutInvitation(inv); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := e.InvitationsFor(gone.Email); err != nil || len(got) != 1 || got[0].ID != "i-to-gone" {
		t.Fatalf("InvitationsFor = %+v, %v, want the one invitation to the address", got, err)
	}
	if got, err := e.AccountSessions(goneID); err != nil || len(got) != 2 {
		t.Fatalf("AccountSessions = %+v, %v, want its two sessions", got, err)
	}
	expires := start.Add(48 * time.Hour).Truncate(time.Second)
	for _, a := range []storage.AuditEntry{
		{At: start, KvK: orgC, Actor: "u-other", Action: "invite", Target: gone.Email},
		{At: start, KvK: orgC, Actor: "u-other", Action: "invite", Target: "colleague@example.nl"},
		{At: start, KvK: orgA, Actor: goneID, Action: "set_apps", Target: "u-stays"},
	} {
		if err := e.AppendAudit(a, expires); err != nil {
			t.Fatal(err)
		}
	}

	// A refusal of one organisation changes nothing at all.
	refused := errors.New("keep one verified admin")
	_, err := e.DeleteAccount(goneID, storage.AccountDeletion{Pseudonym: "removed-x",
		Leave: func(kvk string, ms []storage.Membership) ([]storage.Membership, error) {
			if kvk == orgB {
				return nil, refused
			}
			return slices.DeleteFunc(ms, func(m storage.Membership) bool { return m.AccountID == goneID }), nil
		}})
	if !errors.Is(err, refused) {
		t.Fatalf("a refused deletion: %v, want the refusal unchanged", err)
	}
	if _, err := e.Account(goneID); err != nil {
		t.Fatalf("a refused deletion removed the account: %v", err)
	}
	if _, err := e.Membership(orgA, goneID); err != nil {
		t.Fatalf("a refused deletion removed a membership of another organisation: %v", err)
	}
	if _, err := e.Session("s-gone-1"); err != nil {
		t.Fatalf("a refused deletion ended a session: %v", err)
	}

	before := map[string]uint64{}
	for _, k := range []string{goneID, "s-gone-1", "s-gone-2", "u-stays"} {
		before[k] = e.Version(k)
	}
	var left []string
	deleted, err := e.DeleteAccount(goneID, storage.AccountDeletion{Pseudonym: "removed-x",
		Leave: func(kvk string, ms []storage.Membership) ([]storage.Membership, error) {
			left = append(left, kvk)
			if kvk == orgB {
				// Whatever Leave returns, the account's own membership goes.
				return ms, nil
			}
			ms = slices.DeleteFunc(ms, func(m storage.Membership) bool { return m.AccountID == goneID })
			for i := range ms {
				if ms[i].InvitedBy == goneID {
					ms[i].InvitedBy = "u-other"
				}
			}
			return ms, nil
		}})
	if err != nil || deleted.ID != goneID || deleted.Email != gone.Email {
		t.Fatalf("DeleteAccount = %+v, %v", deleted, err)
	}
	slices.Sort(left)
	if !slices.Equal(left, []string{orgA, orgB}) {
		t.Errorf("Leave was asked about %v, want the account's organisations %v", left, []string{orgA, orgB})
	}
	for k, v := range before {
		if e.Version(k) == v {
			t.Errorf("the version of %s did not move", k)
		}
	}

	if _, err := e.Account(goneID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the account: %v, want ErrNotFound", err)
	}
	if _, err := e.AccountByEmail(gone.Email); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("its email: %v, want ErrNotFound", err)
	}
	for _, k := range []string{"s-gone-1", "s-gone-2"} {
		if _, err := e.Session(k); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("session %s: %v, want ErrNotFound", k, err)
		}
	}
	if ms, err := e.AccountMemberships(goneID); err != nil || len(ms) != 0 {
		t.Errorf("its memberships: %+v, %v, want none", ms, err)
	}
	if ms, err := e.Members(orgA); err != nil || len(ms) != 2 {
		t.Errorf("organisation A keeps %+v, %v, want the other two members", ms, err)
	}
	if m, err := e.Membership(orgA, "u-stays"); err != nil || m.InvitedBy != "u-other" {
		t.Errorf("the colleague it invited: %+v, %v, want what Leave returned (invited by u-other)", m, err)
	}
	for _, id := range []string{"i-to-gone", "i-by-gone"} {
		if _, err := e.Invitation(id); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("invitation %s: %v, want ErrNotFound", id, err)
		}
	}
	if invs, err := e.Invitations(orgA); err != nil || len(invs) != 0 {
		t.Errorf("organisation A's pending invitations: %+v, %v, want none", invs, err)
	}
	for _, id := range []string{"f-by-id", "f-by-email"} {
		if _, err := e.Flow(id); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("flow %s: %v, want ErrNotFound", id, err)
		}
	}
	if err := e.UseCode("reset", gone.Email, time.Hour, func(c *storage.VerificationCode, _ *storage.Counter) (bool, error) {
		if c != nil {
			t.Errorf("its code is still there: %+v", c)
		}
		return false, nil
	}); err != nil {
		t.Fatal(err)
	}
	entries, _, err := e.Audit(orgC, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, a := range entries {
		targets = append(targets, a.Target)
		if !a.ExpiresAt.Equal(expires) {
			t.Errorf("audit entry %+v expires at %v, want %v as before", a, a.ExpiresAt, expires)
		}
	}
	slices.Sort(targets)
	if !slices.Equal(targets, []string{"colleague@example.nl", "removed-x"}) {
		t.Errorf("organisation C's log names %v, want the pseudonym instead of the address", targets)
	}

	// Nothing anywhere holds the address; only audit entries hold the ID.
	v, ok := e.(recordVisitor)
	if !ok {
		t.Fatal("the engine cannot list its records")
	}
	if err := v.VisitRecords(context.Background(), func(r storage.Record) error {
		all := r.Key + " " + string(r.Value)
		if strings.Contains(all, gone.Email) || r.Kind != storage.KindAudit && strings.Contains(all, goneID) {
			t.Errorf("left behind: %s %s %s", r.Kind, r.Key, r.Value)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// The other account keeps everything.
	if a, err := e.AccountByEmail(other.Email); err != nil || !same(a, other) {
		t.Errorf("the other account: %+v, %v", a, err)
	}
	if _, err := e.Session("s-other"); err != nil {
		t.Errorf("the other account's session: %v", err)
	}
	if ms, err := e.AccountMemberships("u-other"); err != nil || len(ms) != 3 {
		t.Errorf("the other account's memberships: %+v, %v, want 3", ms, err)
	}
	if _, err := e.Invitation("i-other"); err != nil {
		t.Errorf("another invitation: %v", err)
	}
	if _, err := e.Flow("f-other"); err != nil {
		t.Errorf("the other account's flow: %v", err)
	}

	if _, err := e.DeleteAccount(goneID, storage.AccountDeletion{Leave: func(string, []storage.Membership) ([]storage.Membership, error) {
		t.Error("Leave called for a missing account")
		return nil, nil
	}}); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("deleting it again: %v, want ErrNotFound", err)
	}
}
