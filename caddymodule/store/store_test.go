package store

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/eherkenning"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

func openTest(t *testing.T, dir string) *Store {
	t.Helper()
	st, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// PutMembership is not part of the contract (tests write memberships
// with it), so the suite does not see it.
func TestPutMembershipMovesTheVersionsItTouches(t *testing.T) {
	st := openTest(t, t.TempDir())
	defer st.Close()
	org := storage.Organisation{KvK: "12345678", Name: "Bedrijf"}
	for _, a := range []string{"piet", "anna", "kees"} {
		if err := st.CreateAccount(storage.Account{ID: a, Email: a + "@example.nl"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range []string{"piet", "anna"} {
		if _, err := st.LinkOrganisation(org, storage.Membership{KvK: org.KvK, AccountID: a, Role: "admin", Anchor: "eh3"}); err != nil {
			t.Fatal(err)
		}
	}
	keys := []string{"piet", "anna", "kees"}
	for _, tt := range []struct {
		name  string
		m     storage.Membership
		moves []string
	}{
		{"a new membership", storage.Membership{KvK: "87654321", AccountID: "kees", Role: "member", Anchor: "invited"}, []string{"kees"}},
		{"a changed membership of an inviter", storage.Membership{KvK: org.KvK, AccountID: "piet", Role: "member", Anchor: "eh3"}, []string{"piet", "anna"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := map[string]uint64{}
			for _, k := range keys {
				before[k] = st.Version(k)
			}
			if err := st.PutMembership(tt.m); err != nil {
				t.Fatal(err)
			}
			for _, k := range keys {
				moved := st.Version(k) != before[k]
				want := slices.Contains(tt.moves, k)
				if moved && !want && slices.ContainsFunc(tt.moves, func(m string) bool { return st.versions.slot(m) == st.versions.slot(k) }) {
					continue // shares a counter with a key that had to move
				}
				if moved != want {
					t.Errorf("version of %q moved = %v, want %v", k, moved, want)
				}
			}
		})
	}
	if ms, err := st.AccountMemberships("kees"); err != nil || len(ms) != 1 || ms[0].KvK != "87654321" {
		t.Fatalf("the new membership is not in the account's index: %+v, %v", ms, err)
	}
}

func TestSAMLStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	st := openTest(t, dir)
	ctx := context.Background()
	until := time.Now().Add(time.Hour)
	if err := st.TrackRequest(ctx, eherkenning.TrackedRequest{ID: "req1", AccountID: "a", ExpiresAt: until}); err != nil {
		t.Fatal(err)
	}
	first, err := st.MarkAssertionSeen(ctx, "assertion1", until)
	if err != nil || !first {
		t.Fatalf("first mark: %v %v", first, err)
	}
	parked := eherkenning.ParkedResult{Result: eherkenning.Result{KvK: "12345678"}, ExpiresAt: until}
	if err := st.ParkResult(ctx, "hash1", parked); err != nil {
		t.Fatal(err)
	}
	st.Close()

	st = openTest(t, dir)
	defer st.Close()
	if first, _ := st.MarkAssertionSeen(ctx, "assertion1", until); first {
		t.Fatal("a replayed assertion looked new after a restart")
	}
	if got, err := st.TakeRequest(ctx, "req1"); err != nil || got.AccountID != "a" {
		t.Fatalf("take after restart: %v %v", got, err)
	}
	if got, err := st.TakeParkedResult(ctx, "hash1"); err != nil || got.Result.KvK != "12345678" || !got.ExpiresAt.Equal(until) {
		t.Fatalf("parked result after restart: %+v %v", got, err)
	}
}
