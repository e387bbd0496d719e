package pgstore

import (
	"context"
	"crypto/rand"
	"errors"
	"hash/maphash"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
)

// channel is the NOTIFY channel on which every write announces the keys
// (account IDs, session keys) whose cached copies it made stale.
const channel = "wijgate_changed"

// maxPayload keeps one notification under PostgreSQL's 8000-byte limit.
const maxPayload = 7000

// announce sends, inside tx, the keys a write touched, after the store's
// origin and the writer's clock; PostgreSQL delivers them to every
// listening store when, and only if, tx commits. The writing store moves
// them itself after the commit and skips its own notification, which
// would move them a second time. The clock is read as each notification
// is sent, the last statement before the commit, so the lag a reader
// measures from it is the commit and the delivery.
func (v *versions) announce(ctx context.Context, tx pgx.Tx, keys []string) error {
	room := maxPayload - len(v.origin) - len(" ") - maxSentLen
	var b strings.Builder
	flush := func() error {
		if b.Len() == 0 {
			return nil
		}
		payload := v.origin + " " + strconv.FormatInt(time.Now().UnixMicro(), 10) + b.String()
		b.Reset()
		_, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", channel, payload)
		return err
	}
	for _, k := range keys {
		if b.Len() > 0 && b.Len()+len(k)+1 > room {
			if err := flush(); err != nil {
				return err
			}
		}
		b.WriteByte('\n')
		b.WriteString(k)
	}
	return flush()
}

// maxSentLen is the longest the writer's clock (Unix microseconds) can be
// in a notification's first line.
const maxSentLen = len("-9223372036854775808")

// parseNotification splits a notification into its sender's origin, the
// sender's clock when it sent it, and its keys. A first line without a
// readable clock (a version before the clock was sent, or a mangled
// payload) still gives its origin and keys, with ok false: the keys are
// moved all the same, only the lag is not measured.
func parseNotification(payload string) (origin string, sent time.Time, keys string, ok bool) {
	first, keys, _ := strings.Cut(payload, "\n")
	origin, clock, found := strings.Cut(first, " ")
	if !found {
		return origin, time.Time{}, keys, false
	}
	micros, err := strconv.ParseInt(clock, 10, 64)
	if err != nil || micros <= 0 {
		return origin, time.Time{}, keys, false
	}
	return origin, time.UnixMicro(micros), keys, true
}

// versionSlots is how many counters the versions are spread over. Keys
// that share a slot only cost each other a needless reload.
const versionSlots = 1 << 12

// untrustedBit marks the numbers Version gives while the change feed is
// down; trusted numbers never reach it.
const untrustedBit = 1 << 63

// versions are per-key change counters, hashed into slots, moved by this
// process's writes and by the notifications of every other process's.
type versions struct {
	// origin starts this store's notifications, so it can skip its own.
	origin string
	seed   maphash.Seed
	all    atomic.Uint64
	slots  [versionSlots]atomic.Uint64
	// trusted is false while the change feed is down: another process's
	// write may then go unseen, so Version gives a new number on every
	// call and no cache trusts what it holds.
	trusted   atomic.Bool
	untrusted atomic.Uint64
	// lag, when set, is given the lag of every other process's
	// notification this process applied (LagObserver).
	lag atomic.Pointer[LagObserver]
}

// LagObserver is told, for each notification of another process's write,
// how long after that process sent it (its clock, just before its commit)
// this process moved the versions (its own clock): the commit, the
// delivery and any difference between the two clocks. A lag below zero,
// this clock behind the writer's, is given as zero.
type LagObserver func(time.Duration)

// SwapLagObserver makes observe the store's LagObserver (nil for none)
// and returns the one it replaces. The store outlives configurations, so
// each new one swaps its own in.
func (s *Store) SwapLagObserver(observe *LagObserver) (previous *LagObserver) {
	return s.versions.lag.Swap(observe)
}

// CompareAndSwapLagObserver makes next the store's LagObserver only if
// old still is: a configuration that ends puts back the one it replaced
// unless a newer configuration has swapped in its own since.
func (s *Store) CompareAndSwapLagObserver(old, next *LagObserver) bool {
	return s.versions.lag.CompareAndSwap(old, next)
}

func newVersions() *versions { return &versions{origin: rand.Text(), seed: maphash.MakeSeed()} }

func (v *versions) of(key string) uint64 {
	if !v.trusted.Load() {
		return untrustedBit | v.untrusted.Add(1)
	}
	return v.all.Load() + v.slot(key).Load()
}

func (v *versions) moved(key string) { v.slot(key).Add(1) }

func (v *versions) slot(key string) *atomic.Uint64 {
	return &v.slots[maphash.String(v.seed, key)%versionSlots]
}

// feedCheck is how long the change feed may be quiet before its
// connection is checked, which bounds how long a silently dead connection
// goes unnoticed.
const feedCheck = time.Second

// follow connects the change feed and follows it in the background until
// bg ends (done is closed then). It returns once the feed listens, so a
// store starts with trusted caches, or with the first connection's error.
// When the feed's connection is lost, caches are not trusted until a new
// one listens; then every version moves once, since writes made in
// between were not announced to this process.
func (v *versions) follow(ctx, bg context.Context, cc *pgx.ConnConfig, logger *zap.Logger) (done <-chan struct{}, err error) {
	conn, err := listen(ctx, cc)
	if err != nil {
		return nil, err
	}
	v.trusted.Store(true)
	d := make(chan struct{})
	go func() {
		defer close(d)
		for {
			err := v.receive(bg, conn)
			conn.Close(context.Background())
			if bg.Err() != nil {
				return
			}
			v.trusted.Store(false)
			logger.Warn("lost the change feed from PostgreSQL: cached sessions and identities are not trusted until it is back", zap.Error(err))
			lost := time.Now()
			for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
				select {
				case <-bg.Done():
					return
				case <-time.After(wait):
				}
				if conn, err = listen(bg, cc); err == nil {
					break
				}
			}
			v.all.Add(1)
			v.trusted.Store(true)
			logger.Info("the change feed from PostgreSQL is back: caches reload what they hold", zap.Duration("lost_for", time.Since(lost)))
		}
	}()
	return d, nil
}

// listen opens the feed's own connection and listens on the channel.
func listen(ctx context.Context, cc *pgx.ConnConfig) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, cc.Copy())
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// receive applies notifications until the connection fails or ctx ends.
func (v *versions) receive(ctx context.Context, conn *pgx.Conn) error {
	for {
		wait, cancel := context.WithTimeout(ctx, feedCheck)
		n, err := conn.WaitForNotification(wait)
		cancel()
		switch {
		case err == nil:
			v.apply(n.Payload)
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			ping, cancel := context.WithTimeout(ctx, feedCheck)
			err = conn.Ping(ping)
			cancel()
			if err != nil {
				return err
			}
		default:
			return err
		}
	}
}

// apply moves the versions of another process's notification's keys and
// tells the lag observer, if any, how long after its sending that was.
func (v *versions) apply(payload string) {
	origin, sent, keys, timed := parseNotification(payload)
	if origin == v.origin {
		return
	}
	for k := range strings.SplitSeq(keys, "\n") {
		v.moved(k)
	}
	if observe := v.lag.Load(); observe != nil && timed {
		(*observe)(max(0, time.Since(sent)))
	}
}
