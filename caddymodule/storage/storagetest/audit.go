package storagetest

import (
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// expiresNear reports whether an entry's ExpiresAt is the expiry it was
// written with, give or take the second an engine may round it to.
func expiresNear(e storage.AuditEntry, expires time.Time) bool {
	d := e.ExpiresAt.Sub(expires)
	return d > -time.Second && d < time.Second
}

// actions lists the actions of entries, and checks each one's expiry.
func actions(t *testing.T, entries []storage.AuditEntry, expires time.Time) []string {
	t.Helper()
	var out []string
	for _, e := range entries {
		if !expiresNear(e, expires) {
			t.Errorf("entry %q expires at %v, want %v", e.Action, e.ExpiresAt, expires)
		}
		out = append(out, e.Action)
	}
	return out
}

func testAuditIsNewestFirstInPages(t *testing.T, e Engine) {
	start := now().Add(-time.Hour)
	expires := now().Add(24 * time.Hour)
	// Written out of order: the log is ordered by when things happened.
	for _, minute := range []int{1, 4, 2, 5, 3} {
		entry := storage.AuditEntry{At: start.Add(time.Duration(minute) * time.Minute), KvK: kvk, Actor: "piet", Action: string(rune('0' + minute)), Target: "anna", Detail: "rie"}
		if err := e.AppendAudit(entry, expires); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.AppendAudit(storage.AuditEntry{At: start, KvK: "87654321", Actor: "kees", Action: "other"}, expires); err != nil {
		t.Fatal(err)
	}
	entries, _, err := e.Audit(kvk, 0, 1)
	if err != nil || len(entries) != 1 {
		t.Fatalf("Audit = %+v, %v", entries, err)
	}
	want := storage.AuditEntry{At: start.Add(5 * time.Minute), KvK: kvk, Actor: "piet", Action: "5", Target: "anna", Detail: "rie"}
	got := entries[0]
	got.ExpiresAt = time.Time{}
	if !same(got, want) {
		t.Fatalf("newest entry %+v, want %+v", got, want)
	}
	for _, tc := range []struct {
		skip, limit int
		want        string
		more        bool
	}{
		{0, 2, "54", true},
		{2, 2, "32", true},
		{4, 2, "1", false},
		{0, 5, "54321", false},
		{5, 2, "", false},
	} {
		entries, more, err := e.Audit(kvk, tc.skip, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		for _, a := range actions(t, entries, expires) {
			got += a
		}
		if got != tc.want || more != tc.more {
			t.Errorf("Audit(skip %d, limit %d) = %q, more %v; want %q, more %v", tc.skip, tc.limit, got, more, tc.want, tc.more)
		}
	}
}

func refusal(at time.Time, kvk, actor string) storage.AuditEntry {
	return storage.AuditEntry{At: at, KvK: kvk, Actor: actor, Action: "refused " + actor, Count: 1, Until: at}
}

func countInto(e storage.AuditEntry) func(*storage.AuditEntry) {
	return func(into *storage.AuditEntry) {
		into.Count++
		into.Until = e.At
	}
}

func testGroupAuditFoldsAGroupIntoOneEntry(t *testing.T, e Engine) {
	start := now().Add(-time.Hour)
	hour, day := now().Add(time.Hour), now().Add(24*time.Hour)
	group := func(at time.Time, kvk, actor string, expires time.Time) {
		t.Helper()
		r := refusal(at, kvk, actor)
		if err := e.GroupAudit(actor, r, countInto(r), expires); err != nil {
			t.Fatal(err)
		}
	}
	group(start, kvk, "piet", hour)
	if err := e.AppendAudit(storage.AuditEntry{At: start.Add(time.Minute), KvK: kvk, Actor: "anna", Action: "invite"}, day); err != nil {
		t.Fatal(err)
	}
	group(start.Add(2*time.Minute), kvk, "piet", day)
	group(start.Add(3*time.Minute), kvk, "anna", day)
	group(start.Add(4*time.Minute), "87654321", "piet", day)

	entries, _, err := e.Audit(kvk, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	// The grouped entry keeps its place; a group is per organisation.
	got := actions(t, entries, day)
	if want := []string{"refused anna", "invite", "refused piet"}; len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("log %q, want %q", got, want)
	}
	piet := entries[2]
	if piet.Count != 2 || !piet.At.Equal(start) || !piet.Until.Equal(start.Add(2*time.Minute)) {
		t.Fatalf("grouped entry %+v, want count 2 from %v until %v", piet, start, start.Add(2*time.Minute))
	}
	if other, _, _ := e.Audit("87654321", 0, 10); len(other) != 1 || other[0].Count != 1 {
		t.Fatalf("the other organisation's log: %+v, want one entry of its own", other)
	}
}

func testConcurrentGroupedAttemptsAreCountedExactly(t *testing.T, e Engine) {
	day := now().Add(24 * time.Hour)
	errs := race(racers, func(int) error {
		r := refusal(now(), kvk, "piet")
		return e.GroupAudit("piet", r, func(into *storage.AuditEntry) { yield(); countInto(r)(into) }, day)
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	entries, _, err := e.Audit(kvk, 0, racers)
	if err != nil || len(entries) != 1 || entries[0].Count != racers {
		t.Fatalf("after %d concurrent attempts of one group: %+v, %v; want one entry counting all", racers, entries, err)
	}
}
