package storagetest

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/eherkenning"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

func testVersionsMoveForWhatAWriteTouched(t *testing.T, e Engine) {
	ctx := context.Background()
	hour := now().Add(time.Hour)
	// Two people of one organisation and a bystander, each with a session.
	for _, id := range []string{"piet", "anna", "kees"} {
		createAccount(t, e, id)
		if err := e.CreateSession(storage.Session{Key: "s-" + id, AccountID: id, ExpiresAt: hour}); err != nil {
			t.Fatal(err)
		}
	}
	o := storage.Organisation{KvK: "12345678", Name: "Bedrijf"}
	for _, id := range []string{"piet", "anna"} {
		if _, err := e.LinkOrganisation(o, storage.Membership{KvK: o.KvK, AccountID: id, Role: "admin", Anchor: "eh3"}); err != nil {
			t.Fatal(err)
		}
	}
	keys := []string{"piet", "anna", "kees", "s-piet", "s-anna", "s-kees"}
	tests := []struct {
		name  string
		write func() error
		moves []string
	}{
		{"a new session", func() error {
			return e.CreateSession(storage.Session{Key: "s-piet-2", AccountID: "piet", ExpiresAt: hour})
		}, nil},
		{"a touch", func() error { return e.TouchSessions([]storage.Touch{{Key: "s-piet", At: now()}}) }, nil},
		{"an org switch", func() error {
			return e.UpdateSession("s-piet", func(s *storage.Session) { s.ActiveOrg = o.KvK })
		}, []string{"s-piet"}},
		{"a logout", func() error { return e.DeleteSession("s-anna") }, []string{"s-anna"}},
		{"an account change", func() error {
			_, err := e.UpdateAccount("kees", func(a *storage.Account) error { a.Name = "Kees"; return nil })
			return err
		}, []string{"kees"}},
		{"a credential change, which ends the account's sessions", func() error {
			_, err := e.UpdateAccount("kees", func(a *storage.Account) error { a.Disabled = true; return nil })
			return err
		}, []string{"kees", "s-kees"}},
		{"a first eHerkenning login for another organisation", func() error {
			_, err := e.LinkOrganisation(storage.Organisation{KvK: "87654321"},
				storage.Membership{KvK: "87654321", AccountID: "kees", Role: "admin", Anchor: "eh3"})
			return err
		}, []string{"kees"}},
		{"an admin adding a member", func() error {
			return e.UpdateMembers(o.KvK, func(ms []storage.Membership) ([]storage.Membership, error) {
				return append(ms, storage.Membership{KvK: o.KvK, AccountID: "kees", Role: "member", Anchor: "invited", InvitedBy: "anna"}), nil
			})
		}, []string{"piet", "anna", "kees"}},
		{"an organisation renamed by a new eHerkenning login", func() error {
			_, err := e.LinkOrganisation(storage.Organisation{KvK: o.KvK, Name: "Bedrijf B.V."},
				storage.Membership{KvK: o.KvK, AccountID: "piet", Role: "admin", Anchor: "eh3"})
			return err
		}, []string{"piet", "anna", "kees"}},
		{"an admin removing members", func() error {
			return e.UpdateMembers(o.KvK, func(ms []storage.Membership) ([]storage.Membership, error) {
				return slices.DeleteFunc(ms, func(m storage.Membership) bool { return m.AccountID != "piet" }), nil
			})
		}, []string{"piet", "anna", "kees"}},
		{"records no cache holds", func() error {
			return errorsOf(
				e.PutCode(storage.VerificationCode{Purpose: "reset", Email: "kees@example.nl", ExpiresAt: hour}),
				e.UseCode("reset", "kees@example.nl", time.Hour, func(*storage.VerificationCode, *storage.Counter) (bool, error) { return false, nil }),
				e.PutFlow(storage.Flow{ID: "f", ExpiresAt: hour}),
				e.DeleteFlow("f"),
				ignore(e.UpdateCounter("login/email/kees@example.nl", hour, func(c *storage.Counter) { c.Count++ })),
				e.DeleteCounter("login/email/kees@example.nl"),
				e.PutInvitation(storage.Invitation{ID: "i", KvK: o.KvK, Email: "kees@example.nl", InvitedBy: "piet", ExpiresAt: hour}),
				ignore(e.TakeInvitation("i", func(storage.Invitation) error { return nil })),
				e.AppendAudit(storage.AuditEntry{At: now(), KvK: o.KvK, Actor: "piet", Action: "invite", Target: "kees"}, hour),
				e.GroupAudit("kees", storage.AuditEntry{At: now(), KvK: o.KvK, Actor: "kees", Action: "refused"}, func(*storage.AuditEntry) {}, hour),
				e.TrackRequest(ctx, eherkenning.TrackedRequest{ID: "r", AccountID: "kees", ExpiresAt: hour}),
				ignore(e.TakeRequest(ctx, "r")),
				ignore(e.MarkAssertionSeen(ctx, "a", hour)),
				e.ParkResult(ctx, "p", eherkenning.ParkedResult{ExpiresAt: hour}),
				ignore(e.TakeParkedResult(ctx, "p")),
				e.SetSecret("cookie", []byte("key")),
			)
		}, nil},
	}
	shares, _ := e.(SharedVersions)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := map[string]uint64{}
			for _, k := range keys {
				before[k] = e.Version(k)
			}
			if err := tt.write(); err != nil {
				t.Fatal(err)
			}
			for _, k := range keys {
				moved := e.Version(k) != before[k]
				want := slices.Contains(tt.moves, k)
				if moved && !want && shares != nil && slices.ContainsFunc(tt.moves, func(m string) bool { return shares.SharesVersion(m, k) }) {
					continue // shares a counter with a key that had to move
				}
				if moved != want {
					t.Errorf("version of %q moved = %v, want %v", k, moved, want)
				}
			}
		})
	}
}

func ignore[T any](_ T, err error) error { return err }

// errorsOf is the first error of a sequence of writes.
func errorsOf(errs ...error) error {
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("write %d: %w", i+1, err)
		}
	}
	return nil
}

// A cache reads the version, then the record, and trusts the record while
// the version stays: so a version must move only once the write is
// visible, or a reader in between caches the old record under the new
// version for good. Whoever read the version a write left must read that
// write's record, or a later one.
func testVersionMovesAfterTheCommit(t *testing.T, e Engine) {
	createAccount(t, e, "jan")
	const writes = 100
	// versionAfter[i] is the version once write i returned; the name
	// it wrote is i.
	var versionAfter [writes]uint64
	// oldestUnder maps a version to the oldest name a reader read with
	// it; the name before the first write is -1.
	oldestUnder := map[uint64]int{}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			v := e.Version("jan")
			a, err := e.Account("jan")
			if err != nil {
				t.Error(err)
				return
			}
			name, err := strconv.Atoi(a.Name)
			if err != nil {
				name = -1
			}
			if oldest, ok := oldestUnder[v]; !ok || name < oldest {
				oldestUnder[v] = name
			}
		}
	})
	for i := range writes {
		if _, err := e.UpdateAccount("jan", func(a *storage.Account) error { a.Name = strconv.Itoa(i); return nil }); err != nil {
			t.Error(err)
			break
		}
		versionAfter[i] = e.Version("jan")
	}
	close(done)
	wg.Wait()
	for i, v := range versionAfter {
		if oldest, ok := oldestUnder[v]; ok && oldest < i {
			t.Fatalf("a reader saw version %d, which write %d left, with the name of write %d: the version moved before the write was visible", v, i, oldest)
		}
	}
}
