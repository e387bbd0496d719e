package store

import (
	"testing"

	"github.com/wijtechniek/wijgate/caddymodule/storage/storagetest"
)

// TestContract runs the storage contract suite on the badger store, on
// disk as the server opens it and in memory as other packages' tests do.
func TestContract(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts func(t *testing.T) Options
	}{
		{"disk", func(t *testing.T) Options { return Options{Dir: t.TempDir()} }},
		{"memory", func(*testing.T) Options { return Options{InMemory: true} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storagetest.Run(t, func(t *testing.T) storagetest.Engine {
				st, err := Open(tc.opts(t))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				return contractEngine{st}
			})
		})
	}
}

// contractEngine tells the suite which keys share a version counter.
type contractEngine struct{ *Store }

func (e contractEngine) SharesVersion(a, b string) bool {
	return e.versions.slot(a) == e.versions.slot(b)
}
