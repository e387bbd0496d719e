package account

import (
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
	for i := range CodeSendLimit {
		if ok, _, _ := l.AllowCodeSend("a@example.nl", "10.0.0.1"); !ok {
			t.Fatalf("send %d refused", i+1)
		}
	}
	ok, retry, _ := l.AllowCodeSend("a@example.nl", "10.0.0.2")
	if ok || retry <= 0 || retry > CodeSendWindow {
		t.Fatalf("sixth send to one address: ok=%v retry=%v", ok, retry)
	}
	now = now.Add(CodeSendWindow)
	if ok, _, _ := l.AllowCodeSend("a@example.nl", "10.0.0.3"); !ok {
		t.Fatal("refused after the window")
	}
}
