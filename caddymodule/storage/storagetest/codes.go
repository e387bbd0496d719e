package storagetest

import (
	"errors"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

const codeEmail = "jan@example.nl"

func putCode(t *testing.T, e Engine, purpose string, hash string) storage.VerificationCode {
	t.Helper()
	c := storage.VerificationCode{Purpose: purpose, Email: codeEmail, Hash: []byte(hash), CreatedAt: now(), ExpiresAt: now().Add(10 * time.Minute)}
	if err := e.PutCode(c); err != nil {
		t.Fatal(err)
	}
	return c
}

// peek runs a check that changes nothing and returns what it was given.
func peek(t *testing.T, e Engine, purpose string) (code *storage.VerificationCode, guesses storage.Counter) {
	t.Helper()
	err := e.UseCode(purpose, codeEmail, time.Hour, func(c *storage.VerificationCode, g *storage.Counter) (bool, error) {
		if c != nil {
			copied := *c
			code = &copied
		}
		guesses = *g
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return code, guesses
}

func testUseCodeSeesTheCodeAndTheGuesses(t *testing.T, e Engine) {
	if code, guesses := peek(t, e, "register"); code != nil || !same(guesses, storage.Counter{}) {
		t.Fatalf("before any code: %+v and %+v, want none and a zero count", code, guesses)
	}
	putCode(t, e, "register", "first")
	want := putCode(t, e, "register", "second")
	if code, _ := peek(t, e, "register"); code == nil || !same(*code, want) {
		t.Fatalf("check got %+v, want the code that replaced the first, %+v", code, want)
	}
	if code, _ := peek(t, e, "reset"); code != nil {
		t.Fatalf("the code for another purpose reached check: %+v", code)
	}

	// A wrong guess: check changes both records and fails; both changes
	// stay and its error is UseCode's.
	wrong := errors.New("wrong code")
	start := now()
	err := e.UseCode("register", codeEmail, time.Hour, func(c *storage.VerificationCode, g *storage.Counter) (bool, error) {
		c.Attempts++
		g.Count, g.WindowStart = 1, start
		return true, wrong
	})
	if !errors.Is(err, wrong) {
		t.Fatalf("UseCode returned %v, want check's error", err)
	}
	code, guesses := peek(t, e, "register")
	if code == nil || code.Attempts != 1 || guesses.Count != 1 || !guesses.WindowStart.Equal(start) {
		t.Fatalf("after a wrong guess: code %+v, guesses %+v; want one attempt and one guess since %v", code, guesses, start)
	}
	// The guesses are the address's, whatever the purpose.
	if _, guesses := peek(t, e, "reset"); guesses.Count != 1 {
		t.Fatalf("a code for another purpose sees %d guesses, want 1", guesses.Count)
	}

	// keep=false consumes the code, also when check fails (an expired
	// code is dropped as it is refused).
	putCode(t, e, "reset", "reset")
	if err := e.UseCode("reset", codeEmail, time.Hour, func(*storage.VerificationCode, *storage.Counter) (bool, error) {
		return false, wrong
	}); !errors.Is(err, wrong) {
		t.Fatalf("UseCode returned %v, want check's error", err)
	}
	if code, _ := peek(t, e, "reset"); code != nil {
		t.Fatalf("a code check let go survived: %+v", code)
	}
	if err := e.UseCode("register", codeEmail, time.Hour, func(c *storage.VerificationCode, g *storage.Counter) (bool, error) {
		g.Count = 0
		return false, nil
	}); err != nil {
		t.Fatal(err)
	}
	code, guesses = peek(t, e, "register")
	if code != nil {
		t.Fatalf("a consumed code is still there: %+v", code)
	}
	// A zero count is removed, its window with it.
	if !same(guesses, storage.Counter{}) {
		t.Fatalf("after the count went to zero check got %+v, want a zero count", guesses)
	}
}

// The count of wrong guesses lasts guessWindow from its WindowStart.
func testGuessCountLastsItsWindow(t *testing.T, e Engine) {
	count := func(start time.Time) error {
		return e.UseCode("register", codeEmail, time.Hour, func(_ *storage.VerificationCode, g *storage.Counter) (bool, error) {
			g.Count, g.WindowStart = 3, start
			return true, nil
		})
	}
	start := now().Add(-59 * time.Minute)
	if err := count(start); err != nil {
		t.Fatal(err)
	}
	if _, guesses := peek(t, e, "register"); guesses.Count != 3 || !guesses.WindowStart.Equal(start) {
		t.Fatalf("a count with a minute of its window left: %+v", guesses)
	}
	// Two windows back, far from any rounding of an expiry time.
	if err := count(now().Add(-2 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, guesses := peek(t, e, "register"); !same(guesses, storage.Counter{}) {
		t.Fatalf("a count whose window ended an hour ago is still there: %+v", guesses)
	}
}

func testConcurrentUsesConsumeACodeOnce(t *testing.T, e Engine) {
	gone := errors.New("no code")
	exactlyOnce(t, gone, func(email string) error {
		return e.PutCode(storage.VerificationCode{Purpose: "register", Email: email, Hash: []byte("right"), ExpiresAt: now().Add(time.Hour)})
	}, func(email string, _ int) error {
		return e.UseCode("register", email, time.Hour, func(c *storage.VerificationCode, _ *storage.Counter) (bool, error) {
			yield()
			if c == nil {
				return false, gone
			}
			return false, nil
		})
	})
}

func testConcurrentWrongGuessesAreAllCounted(t *testing.T, e Engine) {
	putCode(t, e, "register", "right")
	wrong := errors.New("wrong code")
	errs := race(racers, func(int) error {
		return e.UseCode("register", codeEmail, time.Hour, func(c *storage.VerificationCode, g *storage.Counter) (bool, error) {
			yield()
			c.Attempts++
			if g.Count == 0 {
				g.WindowStart = now()
			}
			g.Count++
			return true, wrong
		})
	})
	for _, err := range errs {
		if !errors.Is(err, wrong) {
			t.Fatalf("a wrong guess: %v, want check's error", err)
		}
	}
	code, guesses := peek(t, e, "register")
	if code == nil || code.Attempts != racers || guesses.Count != racers {
		t.Fatalf("after %d concurrent wrong guesses: code %+v, guesses %+v", racers, code, guesses)
	}
}

func testCounters(t *testing.T, e Engine) {
	hour := now().Add(time.Hour)
	if c, err := e.Counter("login/email/jan"); err != nil || !same(c, storage.Counter{}) {
		t.Fatalf("a missing counter: %+v, %v, want a zero one", c, err)
	}
	start := now()
	c, err := e.UpdateCounter("login/email/jan", hour, func(c *storage.Counter) {
		c.Count++
		c.WindowStart = start
	})
	if err != nil || c.Count != 1 || !c.WindowStart.Equal(start) {
		t.Fatalf("UpdateCounter returned %+v, %v", c, err)
	}
	if c, _ = e.UpdateCounter("login/email/jan", hour, func(c *storage.Counter) { c.Count++ }); c.Count != 2 {
		t.Fatalf("a second update returned count %d, want 2", c.Count)
	}
	if got, err := e.Counter("login/email/jan"); err != nil || !same(got, c) {
		t.Fatalf("Counter = %+v, %v, want %+v", got, err, c)
	}
	if got, _ := e.Counter("login/ip/192.0.2.1"); !same(got, storage.Counter{}) {
		t.Fatalf("another key's counter: %+v", got)
	}
	if err := e.DeleteCounter("login/email/jan"); err != nil {
		t.Fatal(err)
	}
	if got, err := e.Counter("login/email/jan"); err != nil || !same(got, storage.Counter{}) {
		t.Fatalf("a deleted counter: %+v, %v, want a zero one", got, err)
	}

	// Each update keeps the counter until the expiry it gives.
	if _, err := e.UpdateCounter("send/email/jan", hour, func(c *storage.Counter) { c.Count++ }); err != nil {
		t.Fatal(err)
	}
	if _, err := e.UpdateCounter("send/email/jan", now().Add(-time.Hour), func(c *storage.Counter) { c.Count++ }); err != nil {
		t.Fatal(err)
	}
	if got, err := e.Counter("send/email/jan"); err != nil || !same(got, storage.Counter{}) {
		t.Fatalf("a counter an hour past its expiry: %+v, %v, want a zero one", got, err)
	}
}

func testConcurrentCounterUpdatesAreAllKept(t *testing.T, e Engine) {
	errs := race(racers, func(int) error {
		_, err := e.UpdateCounter("login/ip/192.0.2.1", now().Add(time.Hour), func(c *storage.Counter) { yield(); c.Count++ })
		return err
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if c, _ := e.Counter("login/ip/192.0.2.1"); c.Count != racers {
		t.Fatalf("count after %d concurrent updates: %d", racers, c.Count)
	}
}
