package pgstore

import (
	"context"
	"testing"

	"github.com/wijtechniek/wijgate/caddymodule/storage/storagetest"
	"github.com/wijtechniek/wijgate/internal/pgtest"
)

// TestContract runs the storage contract suite on a real PostgreSQL
// database per subtest.
func TestContract(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storagetest.Engine {
		s, err := Open(context.Background(), Options{URL: pgtest.Database(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return contractEngine{s}
	})
}

// contractEngine tells the suite which keys share a version counter.
type contractEngine struct{ *Store }

func (e contractEngine) SharesVersion(a, b string) bool { return sharesSlot(e.Store, a, b) }
