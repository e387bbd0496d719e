package account

import (
	"errors"
	"fmt"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// Login regulation (OWASP ASVS 4.0 §2.2.1, NIST 800-63B §5.2.2): after
// LoginFailureLimit failures within LoginFailureWindow, for an account or
// from a client address, further attempts are refused for a wait that
// starts at LoginFirstWait and doubles with each lockout up to
// LoginMaxWait. A success clears the account's count.
const (
	LoginFailureLimit  = 5
	LoginFailureWindow = 10 * time.Minute
	LoginFirstWait     = time.Minute
	LoginMaxWait       = time.Hour
	// lockoutMemory is how long a lockout is remembered for the doubling.
	lockoutMemory = 24 * time.Hour
)

// Code sending limits: at most CodeSendLimit codes per CodeSendWindow per
// email address and per client address. Only a message the mail server
// took counts: a send that failed takes from a budget of its own,
// CodeSendFailureLimit per window per address and per client, so a mail
// server that is down (or refuses an address) costs nobody their codes
// and still cannot be hammered through us.
const (
	CodeSendLimit        = 5
	CodeSendFailureLimit = 10
	CodeSendWindow       = 10 * time.Minute
)

// SendLimitError refuses a code send until Wait has passed. FailedSends
// says the budget of failed sends ran out, not that of codes sent.
type SendLimitError struct {
	Wait        time.Duration
	FailedSends bool
}

func (e *SendLimitError) Error() string {
	if e.FailedSends {
		return fmt.Sprintf("too many failed code sends; wait %v", e.Wait)
	}
	return fmt.Sprintf("code send limit reached; wait %v", e.Wait)
}

// CounterStore keeps the counters of login regulation and send limits;
// UpdateCounter changes one in a transaction and keeps it until expires,
// a missing counter reads as zero.
type CounterStore interface {
	UpdateCounter(key string, expires time.Time, change func(*storage.Counter)) (storage.Counter, error)
	Counter(key string) (storage.Counter, error)
	DeleteCounter(key string) error
}

// Limits applies login regulation and send limits over store counters.
type Limits struct {
	Store CounterStore
	Now   func() time.Time
}

func (l *Limits) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// LoginWait reports how long logins for this email from this client must
// wait; zero means go ahead. Unknown emails are regulated the same way as
// known ones, so the answer tells nothing about who has an account.
func (l *Limits) LoginWait(email, clientIP string) (time.Duration, error) {
	now := l.now()
	var wait time.Duration
	for _, key := range loginKeys(email, clientIP) {
		c, err := l.Store.Counter(key)
		if err != nil {
			return 0, err
		}
		if d := c.LockedUntil.Sub(now); d > wait {
			wait = d
		}
	}
	return wait, nil
}

// LoginFailed counts a failure and returns the wait it may have started.
func (l *Limits) LoginFailed(email, clientIP string) (time.Duration, error) {
	now := l.now()
	var wait time.Duration
	for _, key := range loginKeys(email, clientIP) {
		c, err := l.Store.UpdateCounter(key, now.Add(lockoutMemory), func(c *storage.Counter) {
			if now.Sub(c.WindowStart) >= LoginFailureWindow {
				c.Count, c.WindowStart = 0, now
			}
			c.Count++
			if c.Count >= LoginFailureLimit {
				c.LockedUntil = now.Add(lockoutWait(c.Lockouts))
				c.Lockouts++
				c.Count, c.WindowStart = 0, now
			}
		})
		if err != nil {
			return 0, err
		}
		if d := c.LockedUntil.Sub(now); d > wait {
			wait = d
		}
	}
	return wait, nil
}

// LoginSucceeded clears the account's failures. The client address keeps
// its count: one good password must not reset guessing at other accounts.
func (l *Limits) LoginSucceeded(email string) error {
	return l.Store.DeleteCounter("login/email/" + email)
}

func loginKeys(email, clientIP string) []string {
	return []string{"login/email/" + email, "login/ip/" + clientIP}
}

func lockoutWait(lockouts int) time.Duration {
	d := LoginFirstWait
	for range lockouts {
		d *= 2
		if d >= LoginMaxWait {
			return LoginMaxWait
		}
	}
	return d
}

// ReserveCodeSend takes a code send from the budgets of this address and
// client before the mail goes out: one sent code and one failed send, so
// parallel sends cannot overrun either budget. Report the outcome with
// CodeSendDone, which gives back the one that did not happen. A refusal
// is a *SendLimitError and takes nothing.
func (l *Limits) ReserveCodeSend(email, clientIP string) error {
	now := l.now()
	var taken []string
	for _, b := range []struct {
		key    string
		limit  int
		failed bool
	}{
		{"send/email/" + email, CodeSendLimit, false},
		{"send/ip/" + clientIP, CodeSendLimit, false},
		{"sendfail/email/" + email, CodeSendFailureLimit, true},
		{"sendfail/ip/" + clientIP, CodeSendFailureLimit, true},
	} {
		wait, err := l.take(b.key, b.limit, now)
		if err == nil && wait == 0 {
			taken = append(taken, b.key)
			continue
		}
		for _, key := range taken {
			if gerr := l.giveBack(key, now); gerr != nil && err == nil {
				err = gerr
			}
		}
		if err != nil {
			return err
		}
		return &SendLimitError{Wait: wait, FailedSends: b.failed}
	}
	return nil
}

// CodeSendDone settles a reservation: a sent code keeps its place in the
// send budget, a failed send in the budget of failed sends.
func (l *Limits) CodeSendDone(email, clientIP string, sent bool) error {
	prefix := "sendfail/"
	if !sent {
		prefix = "send/"
	}
	now := l.now()
	return errors.Join(l.giveBack(prefix+"email/"+email, now), l.giveBack(prefix+"ip/"+clientIP, now))
}

// take counts one event under key if fewer than limit happened in the
// current window; otherwise it returns how long until the window ends.
func (l *Limits) take(key string, limit int, now time.Time) (time.Duration, error) {
	var wait time.Duration
	_, err := l.Store.UpdateCounter(key, now.Add(CodeSendWindow), func(c *storage.Counter) {
		wait = 0
		if now.Sub(c.WindowStart) >= CodeSendWindow {
			c.Count, c.WindowStart = 0, now
		}
		if c.Count >= limit {
			wait = max(c.WindowStart.Add(CodeSendWindow).Sub(now), time.Second)
			return
		}
		c.Count++
	})
	return wait, err
}

// giveBack uncounts an event that take counted.
func (l *Limits) giveBack(key string, now time.Time) error {
	_, err := l.Store.UpdateCounter(key, now.Add(CodeSendWindow), func(c *storage.Counter) {
		if c.Count > 0 {
			c.Count--
		}
	})
	return err
}
