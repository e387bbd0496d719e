// Package storagetest is the storage contract suite: every behaviour the
// services' storage interfaces document, checked against one engine.
// Each engine's tests call Run; only tests import this package.
package storagetest

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/engine"
)

// Engine is what the suite runs on: every engine implements it.
type Engine = engine.Engine

// SharedVersions is implemented by an engine whose version counters are
// shared by several keys (the badger store hashes keys into slots). The
// contract allows a needless move, which costs a reload; the suite then
// forgives a key that moved because it shares a counter with a key that
// had to move, and still fails a key that had to move and did not.
type SharedVersions interface {
	SharesVersion(a, b string) bool
}

// racers is how many goroutines race for one record in the concurrency
// tests: enough to collide on two cores, few enough that an engine
// retrying lost transactions (badger, 16 times) never runs out of tries,
// as each retry follows a commit of another racer.
const racers = 12

// records is how many records a race is run for: the racers take them
// in the same order, so they arrive at each together, over and over.
const records = 100

// Run runs the contract suite, its subtests in parallel; open returns a
// fresh, empty engine for each subtest and closes it when the test ends.
func Run(t *testing.T, open func(t *testing.T) Engine) {
	for _, tc := range []struct {
		name string
		test func(t *testing.T, e Engine)
	}{
		{"AccountEmailIsUnique", testAccountEmailIsUnique},
		{"ConcurrentRegistrationsOfOneEmail", testConcurrentRegistrationsOfOneEmail},
		{"AccountsAreFoundByIDAndEmail", testAccountsAreFoundByIDAndEmail},
		{"UpdateAccountRunsTheChangeInOneTransaction", testUpdateAccountRunsTheChangeInOneTransaction},
		{"ConcurrentAccountUpdatesAreAllKept", testConcurrentAccountUpdatesAreAllKept},
		{"ChangeEmailMovesTheAddressAndEndsSessions", testChangeEmailMovesTheAddressAndEndsSessions},
		{"ChangeEmailToATakenAddressChangesNothing", testChangeEmailToATakenAddressChangesNothing},
		{"ConcurrentClaimsOfOneAddress", testConcurrentClaimsOfOneAddress},
		{"SessionNeedsTheCurrentCredentials", testSessionNeedsTheCurrentCredentials},
		{"LoginsRacingAPasswordChangeLeaveNoOldSession", testLoginsRacingAPasswordChangeLeaveNoOldSession},
		{"SecondFactorsAreKeptAndRemovingOneEndsSessions", testSecondFactorsAreKeptAndRemovingOneEndsSessions},
		{"PasskeyCeremonyIsKeptInItsFlow", testPasskeyCeremonyIsKeptInItsFlow},
		{"Flows", testFlows},
		{"Sessions", testSessions},
		{"AccountSessionsListsTheLiveOnes", testAccountSessionsListsTheLiveOnes},
		{"LiveSessionsCountsTheUnexpired", testLiveSessionsCountsTheUnexpired},
		{"VersionsMoveForWhatAWriteTouched", testVersionsMoveForWhatAWriteTouched},
		{"VersionMovesAfterTheCommit", testVersionMovesAfterTheCommit},
		{"UseCodeSeesTheCodeAndTheGuesses", testUseCodeSeesTheCodeAndTheGuesses},
		{"GuessCountLastsItsWindow", testGuessCountLastsItsWindow},
		{"ConcurrentUsesConsumeACodeOnce", testConcurrentUsesConsumeACodeOnce},
		{"ConcurrentWrongGuessesAreAllCounted", testConcurrentWrongGuessesAreAllCounted},
		{"Counters", testCounters},
		{"ConcurrentCounterUpdatesAreAllKept", testConcurrentCounterUpdatesAreAllKept},
		{"LinkOrganisation", testLinkOrganisation},
		{"LinkOrganisationNamesTheSamePseudonym", testLinkOrganisationNamesTheSamePseudonym},
		{"UpdateMembers", testUpdateMembers},
		{"ConcurrentMemberChangesAreSerialised", testConcurrentMemberChangesAreSerialised},
		{"Invitations", testInvitations},
		{"ConcurrentTakesGiveAnInvitationOnce", testConcurrentTakesGiveAnInvitationOnce},
		{"DeleteAccountLeavesNothingOfIt", testDeleteAccountLeavesNothingOfIt},
		{"AuditIsNewestFirstInPages", testAuditIsNewestFirstInPages},
		{"GroupAuditFoldsAGroupIntoOneEntry", testGroupAuditFoldsAGroupIntoOneEntry},
		{"ConcurrentGroupedAttemptsAreCountedExactly", testConcurrentGroupedAttemptsAreCountedExactly},
		{"TrackedRequestsAreTakenOnce", testTrackedRequestsAreTakenOnce},
		{"AssertionsAreSeenFirstOnce", testAssertionsAreSeenFirstOnce},
		{"ParkedResultsAreTakenOnce", testParkedResultsAreTakenOnce},
		{"Secrets", testSecrets},
		{"ConcurrentFirstSecretsAgree", testConcurrentFirstSecretsAgree},
		{"Health", testHealth},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t, open(t))
		})
	}
}

// now is a time as an engine can store it: PostgreSQL keeps microseconds.
func now() time.Time { return time.Now().Truncate(time.Microsecond) }

// race runs f in n goroutines and returns what each returned. The
// goroutines wait for each other at the start, so that as many as there
// are processors set off at the same instant.
func race(n int, f func(i int) error) []error {
	var arrived atomic.Int32
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			arrived.Add(1)
			for arrived.Load() < int32(n) {
				runtime.Gosched()
			}
			errs[i] = f(i)
		})
	}
	wg.Wait()
	return errs
}

// exactlyOnce makes records records with prepare, then races racers
// goroutines that each take them all with take, and fails unless each
// record was taken by one racer while the others failed with lost.
func exactlyOnce(t *testing.T, lost error, prepare func(key string) error, take func(key string, racer int) error) {
	t.Helper()
	keys := make([]string, records)
	for k := range keys {
		keys[k] = fmt.Sprint("race", k)
		if err := prepare(keys[k]); err != nil {
			t.Fatal(err)
		}
	}
	wins := make([]atomic.Int32, records)
	errs := race(racers, func(i int) error {
		for k, key := range keys {
			switch err := take(key, i); {
			case err == nil:
				wins[k].Add(1)
			case !errors.Is(err, lost):
				return fmt.Errorf("a racer that lost %s: %w, want %w", key, err, lost)
			}
		}
		return nil
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for k, key := range keys {
		if n := wins[k].Load(); n != 1 {
			t.Fatalf("%d of %d racers took %s, want one", n, racers, key)
		}
	}
}

// yield lets the other racers run while a change function holds what it
// was given, so that an engine reading outside the transaction that
// writes is caught by the suite, not by luck of the scheduler.
func yield() { runtime.Gosched() }

// succeeded counts the nil errors.
func succeeded(errs []error) int {
	n := 0
	for _, err := range errs {
		if err == nil {
			n++
		}
	}
	return n
}

// same reports whether two records are equal, times compared as instants
// (an engine may hand them back in another location) and an empty slice
// as equal to a nil one (an engine may not tell them apart).
func same(a, b any) bool { return sameValue(reflect.ValueOf(a), reflect.ValueOf(b)) }

var timeType = reflect.TypeFor[time.Time]()

func sameValue(a, b reflect.Value) bool {
	if a.Type() != b.Type() {
		return false
	}
	if a.Type() == timeType {
		return a.Interface().(time.Time).Equal(b.Interface().(time.Time))
	}
	switch a.Kind() {
	case reflect.Struct:
		for i := range a.NumField() {
			if !sameValue(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Slice:
		if a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !sameValue(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return sameValue(a.Elem(), b.Elem())
	default:
		return reflect.DeepEqual(a.Interface(), b.Interface())
	}
}
