package account

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

func TestNewCodeIsSixUniformDigits(t *testing.T) {
	const n = 100_000
	var counts [10]int
	for range n {
		c := NewCode()
		if len(c) != CodeDigits {
			t.Fatalf("code %q is not %d digits", c, CodeDigits)
		}
		for _, d := range []byte(c) {
			if d < '0' || d > '9' {
				t.Fatalf("code %q has a non-digit", c)
			}
			counts[d-'0']++
		}
	}
	// χ² over the 600,000 digits, 9 degrees of freedom: above 21.67 has
	// probability 0.01 for a uniform source.
	expected := float64(n*CodeDigits) / 10
	chi := 0.0
	for _, c := range counts {
		d := float64(c) - expected
		chi += d * d / expected
	}
	if chi > 21.67 {
		t.Fatalf("digits are not uniform: χ² = %.2f, counts %v", chi, counts)
	}
}

func TestCodeIsStoredHashed(t *testing.T) {
	st := newTestStore(t)
	c := &Codes{Store: st, Key: []byte("0123456789abcdef0123456789abcdef")}
	code, err := c.Issue(PurposeRegister, "a@example.nl")
	if err != nil {
		t.Fatal(err)
	}
	err = st.UseCode(string(PurposeRegister), "a@example.nl", CodeGuessWindow, func(vc *storage.VerificationCode, _ *storage.Counter) (bool, error) {
		if bytes.Contains(vc.Hash, []byte(code)) || len(vc.Hash) != 32 {
			t.Fatalf("stored %x for code %s", vc.Hash, code)
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCodeChecks(t *testing.T) {
	now := time.Now()
	c := &Codes{Store: newTestStore(t), Key: []byte("k"), Now: func() time.Time { return now }}
	issue := func(p Purpose, email string) string {
		code, err := c.Issue(p, email)
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	other := func(code string) string {
		if code == "000000" {
			return "000001"
		}
		return "000000"
	}

	t.Run("right code works once", func(t *testing.T) {
		code := issue(PurposeRegister, "a@example.nl")
		if err := c.Check(PurposeRegister, "a@example.nl", code); err != nil {
			t.Fatal(err)
		}
		if err := c.Check(PurposeRegister, "a@example.nl", code); !errors.Is(err, ErrCodeExpired) {
			t.Fatalf("second use: %v", err)
		}
	})
	t.Run("pasted with spaces", func(t *testing.T) {
		code := issue(PurposeRegister, "s@example.nl")
		if err := c.Check(PurposeRegister, "s@example.nl", " "+code[:3]+" "+code[3:]); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("bound to purpose and email", func(t *testing.T) {
		code := issue(PurposeRegister, "b@example.nl")
		if err := c.Check(PurposeReset, "b@example.nl", code); err == nil {
			t.Fatal("a registration code reset a password")
		}
		if err := c.Check(PurposeRegister, "c@example.nl", code); err == nil {
			t.Fatal("a code worked for another address")
		}
	})
	t.Run("dead after five wrong tries", func(t *testing.T) {
		code := issue(PurposeRegister, "d@example.nl")
		for i := range MaxCodeAttempts - 1 {
			if err := c.Check(PurposeRegister, "d@example.nl", other(code)); !errors.Is(err, ErrCodeWrong) {
				t.Fatalf("try %d: %v", i+1, err)
			}
		}
		if err := c.Check(PurposeRegister, "d@example.nl", other(code)); !errors.Is(err, ErrCodeExhausted) {
			t.Fatalf("fifth wrong try: %v", err)
		}
		if err := c.Check(PurposeRegister, "d@example.nl", code); err == nil {
			t.Fatal("the right code worked after five wrong tries")
		}
	})
	t.Run("expires after ten minutes", func(t *testing.T) {
		code := issue(PurposeReset, "e@example.nl")
		now = now.Add(CodeValidity)
		if err := c.Check(PurposeReset, "e@example.nl", code); !errors.Is(err, ErrCodeExpired) {
			t.Fatalf("at 10:00: %v", err)
		}
	})
	t.Run("a new code replaces the old", func(t *testing.T) {
		old := issue(PurposeRegister, "f@example.nl")
		fresh := issue(PurposeRegister, "f@example.nl")
		if old != fresh {
			if err := c.Check(PurposeRegister, "f@example.nl", old); err == nil {
				t.Fatal("the replaced code still works")
			}
		}
		if err := c.Check(PurposeRegister, "f@example.nl", fresh); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("twenty parallel uses, one success", func(t *testing.T) {
		code := issue(PurposeRegister, "g@example.nl")
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for range 20 {
			wg.Go(func() {
				if c.Check(PurposeRegister, "g@example.nl", code) == nil {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if ok != 1 {
			t.Fatalf("%d of 20 parallel uses succeeded", ok)
		}
	})
}

// A resend gives a fresh code but no fresh tries: wrong codes count per
// address across codes and purposes, and the eleventh guess within the
// hour is refused, even with the right code, until the hour is over.
func TestWrongCodesCountPerAddressAcrossResends(t *testing.T) {
	now := time.Now()
	c := &Codes{Store: newTestStore(t), Key: []byte("k"), Now: func() time.Time { return now }}
	const email = "guess@example.nl"
	issue := func(p Purpose) string {
		code, err := c.Issue(p, email)
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	wrong := func(code string) string {
		if code == "000000" {
			return "000001"
		}
		return "000000"
	}
	var limit *GuessLimitError
	guesses := 0
	for guesses < MaxCodeGuesses {
		p := PurposeRegister
		if guesses%2 == 1 {
			p = PurposeReset
		}
		code := issue(p)
		for range 3 {
			guesses++
			err := c.Check(p, email, wrong(code))
			if guesses == MaxCodeGuesses {
				if !errors.As(err, &limit) {
					t.Fatalf("wrong guess %d: %v, want GuessLimitError", guesses, err)
				}
				break
			}
			if !errors.Is(err, ErrCodeWrong) {
				t.Fatalf("wrong guess %d: %v, want ErrCodeWrong", guesses, err)
			}
			now = now.Add(time.Minute)
		}
	}
	// Ten guesses took nine minutes: the address waits the rest of the hour.
	if want := CodeGuessWindow - 9*time.Minute; limit.Wait != want {
		t.Fatalf("wait %v, want %v", limit.Wait, want)
	}
	code := issue(PurposeRegister)
	if err := c.Check(PurposeRegister, email, code); !errors.As(err, &limit) {
		t.Fatalf("the right fresh code during the wait: %v, want GuessLimitError", err)
	}
	if err := c.Check(PurposeRegister, "other@example.nl", "123456"); errors.As(err, &limit) {
		t.Fatal("another address waits too")
	}

	now = now.Add(limit.Wait)
	code = issue(PurposeReset)
	if err := c.Check(PurposeReset, email, code); err != nil {
		t.Fatalf("the right code after the wait: %v", err)
	}
	// A success starts the count afresh.
	code = issue(PurposeReset)
	for i := range MaxCodeAttempts - 1 {
		if err := c.Check(PurposeReset, email, wrong(code)); !errors.Is(err, ErrCodeWrong) {
			t.Fatalf("wrong guess %d after a success: %v", i+1, err)
		}
	}
}
