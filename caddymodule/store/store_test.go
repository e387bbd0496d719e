package store

import (
	"errors"
	"sync"
	"testing"
	"time"
)

func openTest(t *testing.T, dir string) *Store {
	t.Helper()
	st, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestEmailIsUnique(t *testing.T) {
	st := openTest(t, t.TempDir())
	defer st.Close()
	if err := st.CreateAccount(Account{ID: "a", Email: "x@example.nl"}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateAccount(Account{ID: "b", Email: "x@example.nl"}); !errors.Is(err, ErrExists) {
		t.Fatalf("second account with the same email: %v", err)
	}
	if _, err := st.Account("b"); !errors.Is(err, ErrNotFound) {
		t.Fatal("a refused account was half written")
	}
}

func TestConcurrentRegistrationsOfOneEmail(t *testing.T) {
	st := openTest(t, t.TempDir())
	defer st.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	for i := range 10 {
		wg.Go(func() {
			if st.CreateAccount(Account{ID: string(rune('a' + i)), Email: "race@example.nl"}) == nil {
				mu.Lock()
				created++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if created != 1 {
		t.Fatalf("%d accounts for one email", created)
	}
}

func TestGenerationMovesOnIdentityWrites(t *testing.T) {
	st := openTest(t, t.TempDir())
	defer st.Close()
	g0 := st.Generation()
	st.PutSession(Session{Key: "k", AccountID: "a", ExpiresAt: time.Now().Add(time.Hour)})
	st.TouchSession("k", time.Now())
	if st.Generation() != g0 {
		t.Fatal("a new session or a touch moved the generation")
	}
	st.CreateAccount(Account{ID: "a", Email: "a@example.nl"})
	g1 := st.Generation()
	if g1 == g0 {
		t.Fatal("creating an account did not move the generation")
	}
	st.DeleteSession("k")
	if st.Generation() == g1 {
		t.Fatal("ending a session did not move the generation")
	}
}

func TestSAMLStateIsSingleUseAndSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	st := openTest(t, dir)
	until := time.Now().Add(time.Hour)
	if err := st.PutSAMLRequest("req1", map[string]string{"account": "a"}, until); err != nil {
		t.Fatal(err)
	}
	first, err := st.MarkAssertionSeen("assertion1", until)
	if err != nil || !first {
		t.Fatalf("first mark: %v %v", first, err)
	}
	st.Close()

	st = openTest(t, dir)
	defer st.Close()
	if first, _ := st.MarkAssertionSeen("assertion1", until); first {
		t.Fatal("a replayed assertion looked new after a restart")
	}
	var got map[string]string
	if err := st.TakeSAMLRequest("req1", &got); err != nil || got["account"] != "a" {
		t.Fatalf("take after restart: %v %v", got, err)
	}
	if err := st.TakeSAMLRequest("req1", &got); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second take: %v", err)
	}
}

func TestConcurrentAssertionMarks(t *testing.T) {
	st := openTest(t, t.TempDir())
	defer st.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	firsts := 0
	for range 20 {
		wg.Go(func() {
			if first, err := st.MarkAssertionSeen("same", time.Now().Add(time.Hour)); err == nil && first {
				mu.Lock()
				firsts++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firsts != 1 {
		t.Fatalf("%d of 20 concurrent marks saw the assertion as new", firsts)
	}
}

func TestUpdateMembersRemovesLeftOut(t *testing.T) {
	st := openTest(t, t.TempDir())
	defer st.Close()
	st.LinkOrganisation(Organisation{KvK: "12345678"}, Membership{KvK: "12345678", AccountID: "a", Role: "admin", Anchor: "eh3"})
	st.PutMembership(Membership{KvK: "12345678", AccountID: "b", Role: "member", Anchor: "invited", InvitedBy: "a"})
	err := st.UpdateMembers("12345678", func(ms []Membership) ([]Membership, error) {
		var keep []Membership
		for _, m := range ms {
			if m.AccountID != "b" {
				keep = append(keep, m)
			}
		}
		return keep, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Membership("12345678", "b"); !errors.Is(err, ErrNotFound) {
		t.Fatal("left-out member kept")
	}
	if ms, _ := st.AccountMemberships("b"); len(ms) != 0 {
		t.Fatal("the account's index still lists the organisation")
	}
}
