package session

import (
	"errors"
	"testing"
	"time"
)

// A cached session ended from the account's list is refused on its very
// next lookup, on a manager that served it a moment before.
func TestEndedSessionIsRefusedAtOnce(t *testing.T) {
	m, _, _ := newTestManager(t, Settings{})
	here, current, err := m.Create(acct1, Start{UserAgent: "here"})
	if err != nil {
		t.Fatal(err)
	}
	there, _, err := m.Create(acct1, Start{UserAgent: "there"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Lookup(there); err != nil {
		t.Fatal(err)
	}
	var target string
	list, err := m.AccountSessions(acct1.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		if s.UserAgent == "there" {
			target = Handle(s)
		}
	}
	if _, err := m.End(acct1.ID, target); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Lookup(there); !errors.Is(err, ErrNoSession) {
		t.Fatalf("an ended session's next lookup: %v, want ErrNoSession", err)
	}
	if s, err := m.Lookup(here); err != nil || s.Key != current.Key {
		t.Fatalf("ending another session ended this one: %v", err)
	}
}

// A handle names a session only for its own account.
func TestEndOnlyOwnSessions(t *testing.T) {
	m, _, _ := newTestManager(t, Settings{})
	theirs, s, err := m.Create(acct2, Start{})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{Handle(s), s.Key, theirs, ""} {
		if _, err := m.End(acct1.ID, h); !errors.Is(err, ErrUnknownHandle) {
			t.Fatalf("acct1 ending %q: %v, want ErrUnknownHandle", h, err)
		}
	}
	if _, err := m.Lookup(theirs); err != nil {
		t.Fatalf("another account's session ended: %v", err)
	}
	if Handle(s) == s.Key || Handle(s) == theirs {
		t.Fatal("the handle is the storage key or the cookie")
	}
}

func TestEndOthersKeepsThisOne(t *testing.T) {
	m, _, _ := newTestManager(t, Settings{})
	here, current, _ := m.Create(acct1, Start{})
	var others []string
	for range 3 {
		raw, _, err := m.Create(acct1, Start{})
		if err != nil {
			t.Fatal(err)
		}
		others = append(others, raw)
	}
	theirs, _, _ := m.Create(acct2, Start{})
	n, err := m.EndOthers(acct1.ID, current.Key)
	if err != nil || n != 3 {
		t.Fatalf("EndOthers = %d, %v; want 3", n, err)
	}
	for _, raw := range others {
		if _, err := m.Lookup(raw); !errors.Is(err, ErrNoSession) {
			t.Fatalf("another session survived: %v", err)
		}
	}
	for _, raw := range []string{here, theirs} {
		if _, err := m.Lookup(raw); err != nil {
			t.Fatalf("this session or another account's ended: %v", err)
		}
	}
}

// The list leaves out sessions Lookup would refuse and puts the most
// recently used first.
func TestAccountSessionsAreTheUsableOnes(t *testing.T) {
	m, _, clk := newTestManager(t, Settings{IdleTimeout: 30 * time.Minute, TouchInterval: time.Minute})
	_, old, _ := m.Create(acct1, Start{UserAgent: "old"})
	clk.Add(10 * time.Minute)
	_, recent, _ := m.Create(acct1, Start{UserAgent: "recent"})
	list, err := m.AccountSessions(acct1.ID)
	if err != nil || len(list) != 2 || list[0].Key != recent.Key || list[1].Key != old.Key {
		t.Fatalf("list = %+v, %v; want the recent one first, then the old", list, err)
	}
	clk.Add(21*time.Minute + time.Second) // old: 31 min + 1 s idle
	if list, _ := m.AccountSessions(acct1.ID); len(list) != 1 || list[0].Key != recent.Key {
		t.Fatalf("list after the old one went idle = %+v, want only the recent one", list)
	}
}
