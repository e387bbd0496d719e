package org

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
	"github.com/wijtechniek/wijgate/caddymodule/store"
)

// clockedService is a service on a real badger store whose clock the
// test moves.
func clockedService(t *testing.T) (*Service, *time.Time) {
	t.Helper()
	s := newService(t)
	now := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { return now }
	return s, &now
}

func auditActions(t *testing.T, s *Service, kvk string) map[string]int {
	t.Helper()
	entries, _, err := s.Store.Audit(kvk, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, e := range entries {
		out[e.Action]++
	}
	return out
}

func TestVerificationLapsesAfterTheGraceAndANewOneRestoresIt(t *testing.T) {
	s, now := clockedService(t)
	const kvk = "12345678"
	if _, err := s.Link("admin", Verified{KvK: kvk, Level: "loa3", Pseudonym: "S-admin"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Store.(*store.Store).PutMembership(storage.Membership{KvK: kvk, AccountID: "piet", Role: RoleMember, Anchor: AnchorInvited, InvitedBy: "admin"}); err != nil {
		t.Fatal(err)
	}
	verified := *now
	status := func() AnchorStatus {
		_, st, err := s.Verification(kvk, "admin")
		if err != nil {
			t.Fatal(err)
		}
		return st
	}

	*now = verified.Add(DefaultReverifyAfter - time.Second)
	if status() != AnchorHolds || !member(t, s, kvk, "piet").Anchored {
		t.Fatalf("just before reverify_after: %v", status())
	}
	*now = verified.Add(DefaultReverifyAfter)
	if status() != AnchorDue || !member(t, s, kvk, "admin").Anchored || !member(t, s, kvk, "piet").Anchored {
		t.Fatalf("at reverify_after the verification is due and still holds: %v", status())
	}
	if until := member(t, s, kvk, "piet").AnchoredUntil; !until.Equal(verified.Add(DefaultReverifyAfter + DefaultReverifyGrace)) {
		t.Fatalf("the colleague's access is anchored until %v", until)
	}
	*now = verified.Add(DefaultReverifyAfter + DefaultReverifyGrace)
	if status() != AnchorLapsed || member(t, s, kvk, "admin").Anchored || member(t, s, kvk, "piet").Anchored {
		t.Fatalf("after the grace the verification lapsed, and the colleague's access with it: %v", status())
	}
	if _, err := s.RequireAdmin("admin", kvk, "view"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("an admin whose verification lapsed may still act: %v", err)
	}

	if _, err := s.Link("admin", Verified{KvK: kvk, Level: "loa3", Pseudonym: "S-admin"}); err != nil {
		t.Fatal(err)
	}
	if status() != AnchorHolds || !member(t, s, kvk, "piet").Anchored {
		t.Fatalf("a new verification does not restore the anchor: %v", status())
	}
	entries, _, _ := s.Store.Audit(kvk, 0, 1000)
	var renewed []storage.AuditEntry
	for _, e := range entries {
		if e.Action == "eh_renewed" {
			renewed = append(renewed, e)
		}
	}
	if len(renewed) != 1 || renewed[0].Actor != "admin" || renewed[0].Detail != "pseudonym S-admin, level loa3" {
		t.Fatalf("the renewal's audit entries: %+v", renewed)
	}
}

func TestColleaguesKeepAccessWhileAnotherAdminsVerificationHolds(t *testing.T) {
	s, now := clockedService(t)
	const kvk = "12345678"
	s.Link("a", Verified{KvK: kvk, Level: "loa3"})
	if err := s.Store.(*store.Store).PutMembership(storage.Membership{KvK: kvk, AccountID: "piet", Role: RoleMember, Anchor: AnchorInvited, InvitedBy: "a"}); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(DefaultReverifyGrace)
	s.Link("b", Verified{KvK: kvk, Level: "loa3"})
	*now = now.Add(DefaultReverifyAfter)
	if member(t, s, kvk, "a").Anchored {
		t.Fatal("a's lapsed verification still anchors a")
	}
	piet := member(t, s, kvk, "piet")
	if !piet.Anchored || !piet.AnchoredUntil.Equal(s.LapsesAt(member(t, s, kvk, "b").Membership)) {
		t.Fatalf("the colleague a invited lost access while b's verification holds: %+v", piet)
	}
	*now = now.Add(DefaultReverifyGrace)
	if member(t, s, kvk, "piet").Anchored {
		t.Fatal("the colleague keeps access when no verification holds")
	}
}

func TestNoMachtigingEndsTheAnchorAtOnce(t *testing.T) {
	s, _ := clockedService(t)
	const kvk = "12345678"
	s.Link("admin", Verified{KvK: kvk, Level: "loa3"})
	if err := s.Store.(*store.Store).PutMembership(storage.Membership{KvK: kvk, AccountID: "piet", Role: RoleMember, Anchor: AnchorInvited, InvitedBy: "admin"}); err != nil {
		t.Fatal(err)
	}
	if ended, err := s.EndAnchor("piet", kvk); err != nil || ended {
		t.Fatalf("an invited membership has no anchor to end: %v %v", ended, err)
	}
	if ended, err := s.EndAnchor("admin", kvk); err != nil || !ended {
		t.Fatalf("ending: %v %v", ended, err)
	}
	if _, st, _ := s.Verification(kvk, "admin"); st != AnchorEnded || member(t, s, kvk, "piet").Anchored {
		t.Fatalf("after the end: %v", st)
	}
	if ended, _ := s.EndAnchor("admin", kvk); ended {
		t.Fatal("an anchor ended twice")
	}
	if n := auditActions(t, s, kvk)["eh_ended"]; n != 1 {
		t.Fatalf("%d audit entries of the end", n)
	}
	s.Link("admin", Verified{KvK: kvk, Level: "loa3"})
	if _, st, _ := s.Verification(kvk, "admin"); st != AnchorHolds || !member(t, s, kvk, "piet").Anchored {
		t.Fatalf("a new verification does not restore an ended anchor: %v", st)
	}
}

// Two services on one store stand for two replicas checking at once.
func TestEachReverifyStepIsTakenOnceAcrossReplicas(t *testing.T) {
	s, now := clockedService(t)
	other := &Service{Store: s.Store, Now: s.Now}
	const kvk = "12345678"
	s.Link("admin", Verified{KvK: kvk, Level: "loa3"})
	lapses := now.Add(DefaultReverifyAfter + DefaultReverifyGrace)

	var sent atomic.Int32
	remind := func(n ReverifyNotice) error { sent.Add(1); return nil }
	check := func(step time.Time) {
		t.Helper()
		*now = step
		var wg sync.WaitGroup
		for _, svc := range []*Service{s, other, s, other} {
			wg.Go(func() {
				if _, err := svc.CheckReverify(remind); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}

	check(lapses.Add(-FirstReminderBefore - time.Second))
	if sent.Load() != 0 {
		t.Fatalf("%d reminders before the month", sent.Load())
	}
	check(lapses.Add(-FirstReminderBefore))
	check(lapses.Add(-FirstReminderBefore + time.Hour))
	if sent.Load() != 1 {
		t.Fatalf("%d reminders a month before, want 1", sent.Load())
	}

	// The mail server is down at the week's reminder: the step is given
	// back and taken at the next check, once.
	failing := errors.New("mail server down")
	*now = lapses.Add(-SecondReminderBefore)
	steps, err := s.CheckReverify(func(ReverifyNotice) error { return failing })
	if err != nil || len(steps) != 1 || !errors.Is(steps[0].Err, failing) {
		t.Fatalf("a failed reminder: %+v %v", steps, err)
	}
	check(lapses.Add(-SecondReminderBefore + time.Hour))
	check(lapses.Add(-SecondReminderBefore + 2*time.Hour))
	if sent.Load() != 2 {
		t.Fatalf("%d reminders after the week's, want 2", sent.Load())
	}

	check(lapses)
	check(lapses.Add(time.Hour))
	if sent.Load() != 2 {
		t.Fatalf("the lapse sent a reminder: %d", sent.Load())
	}
	got := auditActions(t, s, kvk)
	if got["eh_reminder"] != 2 || got["eh_lapsed"] != 1 {
		t.Fatalf("audit entries: %v", got)
	}

	// A new verification starts again: no reminder until its own month.
	s.Link("admin", Verified{KvK: kvk, Level: "loa3"})
	check(now.Add(time.Hour))
	if sent.Load() != 2 {
		t.Fatalf("a reminder after the new verification: %d", sent.Load())
	}
}

func TestAServerDownForWeeksTakesOnlyTheLastStep(t *testing.T) {
	s, now := clockedService(t)
	const kvk = "12345678"
	s.Link("admin", Verified{KvK: kvk, Level: "loa3"})
	*now = now.Add(DefaultReverifyAfter + DefaultReverifyGrace - 3*24*time.Hour)
	var steps []int
	if _, err := s.CheckReverify(func(n ReverifyNotice) error { steps = append(steps, n.Step); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(steps) != 1 || steps[0] != StepSecondReminder {
		t.Fatalf("steps taken: %v", steps)
	}
}

func TestNoReminderBeforeTheVerificationIsDue(t *testing.T) {
	s, now := clockedService(t)
	s.ReverifyAfter, s.ReverifyGrace = 20*24*time.Hour, 3*24*time.Hour
	s.Link("admin", Verified{KvK: "12345678", Level: "loa3"})
	verified := *now
	var steps []int
	remind := func(n ReverifyNotice) error { steps = append(steps, n.Step); return nil }
	*now = verified.Add(s.ReverifyAfter - time.Second)
	s.CheckReverify(remind)
	if len(steps) != 0 {
		t.Fatalf("reminders before the verification is due: %v", steps)
	}
	*now = verified.Add(s.ReverifyAfter)
	s.CheckReverify(remind)
	if len(steps) != 1 || steps[0] != StepSecondReminder {
		t.Fatalf("with a grace shorter than a week, one reminder when due: %v", steps)
	}
}

// Two replicas that read the anchor before either claimed its step: the
// claim in the store lets one of them take it.
func TestAStepReadByTwoReplicasIsClaimedOnce(t *testing.T) {
	s, now := clockedService(t)
	other := &Service{Store: s.Store, Now: s.Now}
	const kvk = "12345678"
	s.Link("admin", Verified{KvK: kvk, Level: "loa3"})
	*now = now.Add(DefaultReverifyAfter)
	read := func(svc *Service) storage.Membership {
		m, _, err := svc.Verification(kvk, "admin")
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	seenByS, seenByOther := read(s), read(other)
	first, err := s.claimStep(seenByS, StepFirstReminder)
	if err != nil {
		t.Fatal(err)
	}
	second, err := other.claimStep(seenByOther, StepFirstReminder)
	if err != nil {
		t.Fatal(err)
	}
	if !first || second {
		t.Fatalf("claims: %v and %v, want exactly the first", first, second)
	}
	// A verification renewed meanwhile is not the one read: its step is
	// not claimed for the old one.
	s.Link("admin", Verified{KvK: kvk, Level: "loa3"})
	if again, _ := s.claimStep(seenByS, StepSecondReminder); again {
		t.Fatal("a step claimed for a verification that was renewed meanwhile")
	}
}
