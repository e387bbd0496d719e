package pgstore

import (
	"context"
	"crypto/rand"
	"errors"
	"hash/maphash"
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
// origin; PostgreSQL delivers them to every listening store when, and only
// if, tx commits. The writing store moves them itself after the commit
// and skips its own notification, which would move them a second time.
func (v *versions) announce(ctx context.Context, tx pgx.Tx, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString(v.origin)
	flush := func() error {
		if b.Len() == 0 {
			return nil
		}
		_, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", channel, b.String())
		b.Reset()
		b.WriteString(v.origin)
		return err
	}
	for _, k := range keys {
		if b.Len()+len(k)+1 > maxPayload {
			if err := flush(); err != nil {
				return err
			}
		}
		b.WriteByte('\n')
		b.WriteString(k)
	}
	return flush()
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
			origin, keys, _ := strings.Cut(n.Payload, "\n")
			if origin == v.origin {
				continue
			}
			for k := range strings.SplitSeq(keys, "\n") {
				v.moved(k)
			}
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
