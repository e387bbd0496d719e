package caddymodule

import (
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/wijtechniek/wijgate/caddymodule/store"
)

// storePool shares one open store per directory between configurations.
// On reload Caddy provisions the new config before cleaning up the old
// one, and badger locks its directory, so a second Open would fail.
var storePool = caddy.NewUsagePool()

// gcInterval is how often the value log is checked for garbage.
const gcInterval = 10 * time.Minute

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

func openPooledStore(dir string, logger *zap.Logger) (*store.Store, error) {
	v, _, err := storePool.LoadOrNew(dir, func() (caddy.Destructor, error) {
		st, err := store.Open(store.Options{Dir: dir, Logger: badgerLogger{logger.Named("store").Sugar()}})
		if err != nil {
			return nil, err
		}
		p := &pooledStore{Store: st, stop: make(chan struct{}), done: make(chan struct{})}
		go func() {
			defer close(p.done)
			t := time.NewTicker(gcInterval)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					p.CollectGarbage()
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

// badgerLogger adapts zap to badger's logger interface, which calls the
// warning level Warningf where zap says Warnf.
type badgerLogger struct{ *zap.SugaredLogger }

func (l badgerLogger) Warningf(f string, args ...any) { l.Warnf(f, args...) }

// Badger's routine messages (compactions, GC) are debug-level noise to an
// operator.
func (l badgerLogger) Infof(f string, args ...any) { l.Debugf(f, args...) }
