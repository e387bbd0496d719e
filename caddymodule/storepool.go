package caddymodule

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/wijtechniek/wijgate/caddymodule/engine"
	"github.com/wijtechniek/wijgate/caddymodule/pgstore"
	"github.com/wijtechniek/wijgate/caddymodule/store"
)

// storePool shares one open engine per storage location between
// configurations. On reload Caddy provisions the new config before
// cleaning up the old one, and badger locks its directory, so a second
// Open would fail; a PostgreSQL engine keeps its connections and its
// change feed.
var storePool = caddy.NewUsagePool()

// openPooledEngine opens the engine at a resolved storage location, or
// shares the one already open there.
func openPooledEngine(ctx caddy.Context, location string, reserve uint64, logger *zap.Logger) (engine.Engine, error) {
	if !isPostgres(location) {
		return openPooledStore(location, reserve, logger)
	}
	v, _, err := storePool.LoadOrNew(location, func() (caddy.Destructor, error) {
		// A server starts while its database is down, and serves once it answers.
		st, err := pgstore.OpenWaiting(ctx, pgstore.Options{URL: location,
			Logger: logger.Named("postgres").With(zap.String("storage", RedactStorage(location)))})
		if err != nil {
			return nil, fmt.Errorf("storage %s: %w", RedactStorage(location), err)
		}
		return pooledPostgres{st}, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(pooledPostgres).Store, nil
}

// pooledPostgres closes the engine once the last config using it is gone.
type pooledPostgres struct{ *pgstore.Store }

func (p pooledPostgres) Destruct() error { return p.Close() }

// gcInterval is how often the value log is checked for garbage.
const gcInterval = 10 * time.Minute

// spaceInterval is how often free space is measured when nothing writes,
// so a full disk is in the log before anyone meets it, and a store that
// refuses writes takes them again soon after space returns.
const spaceInterval = 10 * time.Second

// pooledStore is the pooled value: the store and its GC ticker.
type pooledStore struct {
	*store.Store
	stop chan struct{}
	done chan struct{}
}

// Destruct stops the GC loop and closes the store once the last config
// using it is gone.
func (p *pooledStore) Destruct() error {
	close(p.stop)
	<-p.done
	return p.Close()
}

// openPooledStore opens the store in dir, or shares the one already open
// there (whose reserve then stays the one it was opened with).
func openPooledStore(dir string, reserve uint64, logger *zap.Logger) (*store.Store, error) {
	v, _, err := storePool.LoadOrNew(dir, func() (caddy.Destructor, error) {
		st, err := store.Open(store.Options{
			Dir:           dir,
			Logger:        badgerLogger{logger.Named("store").Sugar()},
			Reserve:       reserve,
			OnSpaceChange: func(sp store.Space) { logSpaceChange(logger, sp) },
		})
		if err != nil {
			return nil, err
		}
		p := &pooledStore{Store: st, stop: make(chan struct{}), done: make(chan struct{})}
		go func() {
			defer close(p.done)
			t := time.NewTicker(gcInterval)
			defer t.Stop()
			space := time.NewTicker(spaceInterval)
			defer space.Stop()
			for {
				select {
				case <-t.C:
					p.CollectGarbage()
				case <-space.C:
					p.Space()
				case <-p.stop:
					return
				}
			}
		}()
		return p, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*pooledStore).Store, nil
}

// logSpaceChange tells the operator, once per change, that writes stopped
// or started again; the Dutch words are what the people on call search for.
func logSpaceChange(logger *zap.Logger, sp store.Space) {
	fields := []zap.Field{zap.String("path", sp.Dir), zap.Uint64("free_bytes", sp.Free),
		zap.Uint64("reserve_bytes", sp.Reserve), zap.String("free", store.Bytes(sp.Free))}
	if sp.Full {
		logger.Error("opslag vol: storage full, new writes are refused until space returns", fields...)
		return
	}
	logger.Info("storage writable again", fields...)
}

// badgerLogger adapts zap to badger's logger interface, which calls the
// warning level Warningf where zap says Warnf.
type badgerLogger struct{ *zap.SugaredLogger }

func (l badgerLogger) Warningf(f string, args ...any) { l.Warnf(f, args...) }

// Badger's routine messages (compactions, GC) are debug-level noise to an
// operator.
func (l badgerLogger) Infof(f string, args ...any) { l.Debugf(f, args...) }
