package pgstore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
	"github.com/wijtechniek/wijgate/internal/pgtest"
)

// lags records what a store's LagObserver is told.
type lags struct {
	mu   sync.Mutex
	seen []time.Duration
}

func observeLags(s *Store) *lags {
	l := &lags{}
	observe := LagObserver(func(d time.Duration) { l.mu.Lock(); l.seen = append(l.seen, d); l.mu.Unlock() })
	s.SwapLagObserver(&observe)
	return l
}

func (l *lags) all() []time.Duration { l.mu.Lock(); defer l.mu.Unlock(); return slices.Clone(l.seen) }

// waitFor waits until there are at least n lags, failing after ten
// seconds.
func (l *lags) waitFor(t testing.TB, n int) []time.Duration {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if got := l.all(); len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d lags observed within 10s, want %d", len(l.all()), n)
		}
	}
}

// TestAnotherProcessesWriteIsTimed: a write through one store is timed by
// the other store that applies it, and not by the writer, which skips its
// own notification. A notification reaches a store after every one
// committed before it, so once the writer has timed a later write of the
// other store, it has passed over its own.
func TestAnotherProcessesWriteIsTimed(t *testing.T) {
	url := pgtest.Database(t)
	a, b := open(t, url), open(t, url)
	onA, onB := observeLags(a), observeLags(b)
	start := time.Now()
	if err := a.CreateAccount(storage.Account{ID: "u-1", Email: "jan@example.nl"}); err != nil {
		t.Fatal(err)
	}
	got := onB.waitFor(t, 1)
	if len(got) != 1 || got[0] < 0 || got[0] > time.Since(start) {
		t.Fatalf("lags of a's write on b: %v, want one between 0 and %v", got, time.Since(start))
	}
	if err := b.CreateAccount(storage.Account{ID: "u-2", Email: "piet@example.nl"}); err != nil {
		t.Fatal(err)
	}
	onA.waitFor(t, 1)
	if got := onA.all(); len(got) != 1 {
		t.Fatalf("a timed %d notifications, want only b's write: its own is not another's", len(got))
	}
	if got := onB.all(); len(got) != 1 {
		t.Fatalf("b timed %d notifications, want only a's write", len(got))
	}
}

// TestAPayloadWithoutAReadableClockIsAppliedNotTimed: notifications of an
// older version (no clock) or with a mangled clock still move their keys'
// versions; only the lag is not observed, and nothing panics. A clock
// ahead of this one counts as no lag.
func TestAPayloadWithoutAReadableClockIsAppliedNotTimed(t *testing.T) {
	url := pgtest.Database(t)
	s := open(t, url)
	onS := observeLags(s)
	notify := func(payload string) {
		t.Helper()
		if _, err := s.pool.Exec(context.Background(), "SELECT pg_notify($1, $2)", channel, payload); err != nil {
			t.Fatal(err)
		}
	}
	for i, clock := range malformedClocks {
		key := fmt.Sprintf("u-%d", i)
		waitMoved(t, s, key, s.Version(key), func() { notify("other" + clock + "\n" + key) })
	}
	// Notifications are applied in order: once the one with a clock is
	// timed, the ones before it have passed without.
	ahead := time.Now().Add(time.Hour).UnixMicro()
	notify("other " + strconv.FormatInt(ahead, 10) + "\nu-timed")
	if got := onS.waitFor(t, 1); len(got) != 1 || got[0] != 0 {
		t.Fatalf("lags after %d notifications without a readable clock and one from an hour ahead: %v, want [0]", len(malformedClocks), got)
	}
}

// malformedClocks follow the origin on a notification's first line.
var malformedClocks = []string{
	"",                            // a version before the clock was sent
	" ",                           // empty
	" abc",                        // no number
	" 12a",                        // trailing junk
	" 1.5",                        // not whole microseconds
	" 99999999999999999999999",    // beyond int64
	" -5",                         // before 1970
	" 0",                          // the zero time
	"  123",                       // two spaces
	" 123 456",                    // two numbers
	" １２３",                        // digits that are not ASCII
	" 1700000000000000\r",         // a carriage return
	" 0x1A2B",                     // hexadecimal
	" " + strings.Repeat("9", 40), // far too long
}

// FuzzParseNotification: no payload panics, the origin is the first
// line's start, and a clock is given only when it was a positive number.
func FuzzParseNotification(f *testing.F) {
	for _, clock := range malformedClocks {
		f.Add("origin" + clock + "\nu-1\nu-2")
	}
	f.Add("origin 1700000000000000\nu-1")
	f.Add("")
	f.Add("\n\n")
	f.Fuzz(func(t *testing.T, payload string) {
		origin, sent, keys, ok := parseNotification(payload)
		if !strings.HasPrefix(payload, origin) || strings.ContainsAny(origin, " \n") {
			t.Fatalf("origin %q of %q", origin, payload)
		}
		if !strings.HasSuffix(payload, keys) {
			t.Fatalf("keys %q of %q", keys, payload)
		}
		if ok != (sent.UnixMicro() > 0) {
			t.Fatalf("clock %v, ok %v of %q", sent, ok, payload)
		}
	})
}

// TestAWriteOfManyKeysStaysUnderTheLimit: a write announcing more keys
// than one notification holds is split, every part within maxPayload with
// its clock, and every key is in one of them.
func TestAWriteOfManyKeysStaysUnderTheLimit(t *testing.T) {
	url := pgtest.Database(t)
	s := open(t, url)
	cc, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	feed, err := listen(ctx, cc)
	if err != nil {
		t.Fatal(err)
	}
	defer feed.Close(context.Background())
	// Keys of many lengths, so that some part ends close to the limit.
	keys := make([]string, 3000)
	for i := range keys {
		keys[i] = fmt.Sprintf("s-%d-%s", i, strings.Repeat("x", i%97))
	}
	if err := s.write(func(ctx context.Context, tx pgx.Tx, ch *changed) error { ch.add(keys...); return nil }); err != nil {
		t.Fatal(err)
	}
	var got []string
	for parts := 0; len(got) < len(keys); parts++ {
		n, err := feed.WaitForNotification(ctx)
		if err != nil {
			t.Fatalf("after %d parts with %d keys: %v", parts, len(got), err)
		}
		origin, _, part, ok := parseNotification(n.Payload)
		if len(n.Payload) > maxPayload || origin != s.versions.origin || !ok {
			t.Fatalf("part %d: %d bytes (at most %d), origin %q, clock readable %v", parts, len(n.Payload), maxPayload, origin, ok)
		}
		got = append(got, strings.Split(part, "\n")...)
	}
	if !slices.Equal(got, keys) {
		t.Fatalf("the parts carried %d keys, want the %d written in order", len(got), len(keys))
	}
}

// BenchmarkInvalidationLag changes one account b.N times through one
// store, one write after another, and reports the lag at which another
// store on the database applied each: go test -run '^$' -bench
// InvalidationLag -benchtime 1000x ./caddymodule/pgstore/
func BenchmarkInvalidationLag(b *testing.B) {
	url := pgtest.Database(b)
	writer, reader := open(b, url), open(b, url)
	onReader := observeLags(reader)
	if err := writer.CreateAccount(storage.Account{ID: "u-1", Email: "jan@example.nl"}); err != nil {
		b.Fatal(err)
	}
	onReader.waitFor(b, 1)
	n := 0
	for b.Loop() {
		n++
		if _, err := writer.UpdateAccount("u-1", func(a *storage.Account) error { a.Name = strconv.Itoa(n); return nil }); err != nil {
			b.Fatal(err)
		}
	}
	got := onReader.waitFor(b, 1+n)[1:]
	slices.Sort(got)
	at := func(q float64) float64 { return float64(got[int(q*float64(n-1))]) / float64(time.Millisecond) }
	b.ReportMetric(at(.5), "p50-ms")
	b.ReportMetric(at(.99), "p99-ms")
	b.ReportMetric(at(1), "max-ms")
}
