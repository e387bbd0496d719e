package session

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// TestCachedSessionKeepsWhatLookupHandsOn: a cached session keeps the
// facts the guard acts on, shares its sign-in methods with the other
// sessions that used the same ones, and holds no user agent or address,
// which the session list reads from the store.
func TestCachedSessionKeepsWhatLookupHandsOn(t *testing.T) {
	m, _, clk := newTestManager(t, Settings{})
	start := Start{ActiveOrg: "12345678", AMR: []string{"pwd", "otp", "mfa"}, UserAgent: "Mozilla/5.0 (X11; Linux x86_64)", Address: "192.0.2.10"}
	raw, created, err := m.Create(acct1, start)
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := m.Create(acct2, Start{AMR: []string{"pwd", "otp", "mfa"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, round := range []string{"read from the store", "from the cache"} {
		s, err := m.Lookup(raw)
		if err != nil {
			t.Fatalf("%s: %v", round, err)
		}
		if s.Key != created.Key || s.AccountID != acct1.ID || s.ActiveOrg != start.ActiveOrg ||
			s.CredentialVersion != created.CredentialVersion || !slices.Equal(s.AMR, start.AMR) ||
			!s.ExpiresAt.Equal(created.ExpiresAt) || !s.LastSeen.Equal(clk.Now()) {
			t.Errorf("%s: Lookup = %+v, created %+v", round, s, created)
		}
		if s.UserAgent != "" || s.Address != "" {
			t.Errorf("%s: the cached session holds user agent %q and address %q", round, s.UserAgent, s.Address)
		}
		o, err := m.Lookup(other)
		if err != nil {
			t.Fatal(err)
		}
		if &o.AMR[0] != &s.AMR[0] {
			t.Errorf("%s: two sessions keep their own copies of the same sign-in methods", round)
		}
	}
}

// TestEntryTooLargeIsRefused: a stored session whose strings exceed what
// an entry's offsets reach is not cached as a wrong one.
func TestEntryTooLargeIsRefused(t *testing.T) {
	var amrs amrSets
	s := storage.Session{Key: "k", AccountID: "u-1", ActiveOrg: strings.Repeat("1", math.MaxUint16)}
	if _, err := newEntry(s, 1, &amrs); err == nil {
		t.Error("an entry of more than 64 KiB was made")
	}
	s.ActiveOrg = s.ActiveOrg[len("k")+len("u-1"):]
	e, err := newEntry(s, 1, &amrs)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.session(time.Now(), &amrs); got.Key != "k" || got.AccountID != "u-1" || got.ActiveOrg != s.ActiveOrg {
		t.Errorf("an entry that just fits reads back as %q %q and %d bytes", got.Key, got.AccountID, len(got.ActiveOrg))
	}
}

// TestEntryIsOneAllocation: a cached session is one object for the
// collector, its text inside it, and reads back whole.
func TestEntryIsOneAllocation(t *testing.T) {
	var amrs amrSets
	s := storage.Session{Key: storageKey(NewID()), AccountID: "u-j35px67hkgvtoxupnkeijz3v5y", ActiveOrg: "12345678",
		CredentialVersion: 7, AMR: []string{"pwd", "otp", "mfa"}, ExpiresAt: time.Unix(1_800_000_000, 123)}
	var e *entry
	if allocs := testing.AllocsPerRun(100, func() {
		var err error
		if e, err = newEntry(s, 3, &amrs); err != nil {
			t.Fatal(err)
		}
	}); allocs != 1 {
		t.Errorf("a cached session takes %v allocations, want 1", allocs)
	}
	now := time.Now()
	if got := e.session(now, &amrs); got.Key != s.Key || got.AccountID != s.AccountID || got.ActiveOrg != s.ActiveOrg ||
		got.CredentialVersion != 7 || !slices.Equal(got.AMR, s.AMR) || !got.ExpiresAt.Equal(s.ExpiresAt) || e.version != 3 {
		t.Errorf("an entry reads back as %+v", got)
	}
	s.ActiveOrg = ""
	if e, err := newEntry(s, 3, &amrs); err != nil || e.session(now, &amrs).ActiveOrg != "" || e.key() != s.Key {
		t.Errorf("without an active organisation: %v", err)
	}
}

// TestAMRSetsAreBounded: each distinct set of sign-in methods is kept
// once, and one past what an entry can index is refused, not mixed up
// with another.
func TestAMRSetsAreBounded(t *testing.T) {
	var amrs amrSets
	s := storage.Session{Key: "k", AccountID: "u-1"}
	for i := range math.MaxUint8 + 1 {
		s.AMR = []string{"pwd", fmt.Sprint(i)}
		e, err := newEntry(s, 1, &amrs)
		if err != nil {
			t.Fatalf("set %d: %v", i, err)
		}
		if again, _ := newEntry(s, 1, &amrs); again.amr != e.amr {
			t.Fatalf("set %d is kept twice", i)
		}
		if got := e.session(time.Now(), &amrs).AMR; !slices.Equal(got, s.AMR) {
			t.Fatalf("set %d reads back as %v", i, got)
		}
	}
	s.AMR = []string{"pwd", "one too many"}
	if _, err := newEntry(s, 1, &amrs); !errors.Is(err, errTooManyAMRSets) {
		t.Errorf("the 257th set: %v", err)
	}
}
