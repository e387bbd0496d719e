package account

import (
	"errors"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/store"
)

func newTestStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestLockoutWaitGrowsToAnHour(t *testing.T) {
	for _, tc := range []struct {
		lockouts int
		want     time.Duration
	}{
		{0, time.Minute}, {1, 2 * time.Minute}, {2, 4 * time.Minute}, {5, 32 * time.Minute}, {6, time.Hour}, {40, time.Hour},
	} {
		if got := lockoutWait(tc.lockouts); got != tc.want {
			t.Errorf("lockoutWait(%d) = %v, want %v", tc.lockouts, got, tc.want)
		}
	}
}

func TestLoginRegulation(t *testing.T) {
	now := time.Now()
	l := &Limits{Store: newTestStore(t), Now: func() time.Time { return now }}
	fail := func(email, ip string) time.Duration {
		w, err := l.LoginFailed(email, ip)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	wait := func(email, ip string) time.Duration {
		w, err := l.LoginWait(email, ip)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}

	t.Run("five failures lock the account for a minute", func(t *testing.T) {
		for i := range 4 {
			if w := fail("a@example.nl", "10.0.0.1"); w != 0 {
				t.Fatalf("locked after %d failures", i+1)
			}
		}
		if w := fail("a@example.nl", "10.0.0.1"); w != time.Minute {
			t.Fatalf("wait after 5 failures = %v", w)
		}
		if w := wait("a@example.nl", "10.9.9.9"); w != time.Minute {
			t.Fatalf("a new client address is not locked out: %v", w)
		}
	})
	t.Run("the next lockout is longer", func(t *testing.T) {
		now = now.Add(61 * time.Second)
		for range 4 {
			fail("a@example.nl", "10.0.0.2")
		}
		if w := fail("a@example.nl", "10.0.0.2"); w != 2*time.Minute {
			t.Fatalf("second lockout = %v, want 2m", w)
		}
	})
	t.Run("failures outside the window do not add up", func(t *testing.T) {
		for range 4 {
			fail("b@example.nl", "10.0.1.1")
			now = now.Add(3 * time.Minute)
		}
		if w := fail("b@example.nl", "10.0.1.2"); w != 0 {
			t.Fatalf("locked by failures spread over 12 minutes: %v", w)
		}
	})
	t.Run("a success clears the account's count", func(t *testing.T) {
		for range 4 {
			fail("c@example.nl", "10.0.2.1")
		}
		if err := l.LoginSucceeded("c@example.nl"); err != nil {
			t.Fatal(err)
		}
		if w := fail("c@example.nl", "10.0.2.2"); w != 0 {
			t.Fatalf("count survived a success: %v", w)
		}
	})
	t.Run("one client address guessing at many accounts is locked", func(t *testing.T) {
		for i := range 4 {
			fail(string(rune('m'+i))+"@example.nl", "10.0.3.1")
		}
		if w := fail("q@example.nl", "10.0.3.1"); w == 0 {
			t.Fatal("a client address guessing five accounts is not locked")
		}
	})
}

func TestCodeSendLimit(t *testing.T) {
	now := time.Now()
	l := &Limits{Store: newTestStore(t), Now: func() time.Time { return now }}
	send := func(email, ip string) error {
		t.Helper()
		if err := l.ReserveCodeSend(email, ip); err != nil {
			return err
		}
		if err := l.CodeSendDone(email, ip, true); err != nil {
			t.Fatal(err)
		}
		return nil
	}
	for i := range CodeSendLimit {
		if err := send("a@example.nl", "10.0.0.1"); err != nil {
			t.Fatalf("send %d refused: %v", i+1, err)
		}
	}
	var limited *SendLimitError
	err := send("a@example.nl", "10.0.0.2")
	if !errors.As(err, &limited) || limited.FailedSends || limited.Wait <= 0 || limited.Wait > CodeSendWindow {
		t.Fatalf("sixth send to one address: %v", err)
	}
	// The refusal took nothing from the second client's budget.
	for i := range CodeSendLimit {
		if err := send(string(rune('b'+i))+"@example.nl", "10.0.0.2"); err != nil {
			t.Fatalf("send %d from the second client refused: %v", i+1, err)
		}
	}
	now = now.Add(CodeSendWindow)
	if err := send("a@example.nl", "10.0.0.3"); err != nil {
		t.Fatalf("refused after the window: %v", err)
	}
}

// A send the mail server did not take does not count toward the send
// limits; failed sends have a budget of their own, per address and per
// client.
func TestFailedCodeSendsHaveTheirOwnBudget(t *testing.T) {
	now := time.Now()
	l := &Limits{Store: newTestStore(t), Now: func() time.Time { return now }}
	attempt := func(email, ip string, sent bool) error {
		t.Helper()
		if err := l.ReserveCodeSend(email, ip); err != nil {
			return err
		}
		if err := l.CodeSendDone(email, ip, sent); err != nil {
			t.Fatal(err)
		}
		return nil
	}
	for i := range CodeSendFailureLimit {
		if err := attempt("down@example.nl", "10.0.1.1", false); err != nil {
			t.Fatalf("failed send %d refused: %v", i+1, err)
		}
	}
	var limited *SendLimitError
	if err := attempt("down@example.nl", "10.0.1.2", false); !errors.As(err, &limited) || !limited.FailedSends {
		t.Fatalf("a send after %d failures for the address: %v", CodeSendFailureLimit, err)
	}
	if err := attempt("other@example.nl", "10.0.1.1", true); !errors.As(err, &limited) || !limited.FailedSends {
		t.Fatalf("a send after %d failures from the client: %v", CodeSendFailureLimit, err)
	}
	// Every code sent still counts, whatever failed before.
	for i := range CodeSendLimit {
		if err := attempt("fine@example.nl", "10.0.1.3", true); err != nil {
			t.Fatalf("send %d after failures elsewhere refused: %v", i+1, err)
		}
	}
	now = now.Add(CodeSendWindow)
	for i := range CodeSendLimit {
		if err := attempt("down@example.nl", "10.0.1.1", true); err != nil {
			t.Fatalf("send %d after the window refused: %v", i+1, err)
		}
	}
}
