package account

import (
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/store"
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
// email address and per client address.
const (
	CodeSendLimit  = 5
	CodeSendWindow = 10 * time.Minute
)

// Limits applies login regulation and send limits over store counters.
type Limits struct {
	Store *store.Store
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
		c, err := l.Store.UpdateCounter(key, now.Add(lockoutMemory), func(c *store.Counter) {
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

// AllowCodeSend counts a code email to this address from this client and
// reports whether it is within the limits, and if not, when to retry.
func (l *Limits) AllowCodeSend(email, clientIP string) (bool, time.Duration, error) {
	now := l.now()
	allowed, retry := true, time.Duration(0)
	for _, key := range []string{"send/email/" + email, "send/ip/" + clientIP} {
		c, err := l.Store.UpdateCounter(key, now.Add(CodeSendWindow), func(c *store.Counter) {
			if now.Sub(c.WindowStart) >= CodeSendWindow {
				c.Count, c.WindowStart = 0, now
			}
			c.Count++
		})
		if err != nil {
			return false, 0, err
		}
		if c.Count > CodeSendLimit {
			allowed = false
			if d := c.WindowStart.Add(CodeSendWindow).Sub(now); d > retry {
				retry = d
			}
		}
	}
	return allowed, retry, nil
}
