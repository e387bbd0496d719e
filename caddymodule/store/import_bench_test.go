package store

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// BenchmarkImport loads b.N accounts, each with a membership and a
// session, into an on-disk store with four writers, as the benchmark's
// seeding does.
func BenchmarkImport(b *testing.B) {
	st, err := Open(Options{Dir: b.TempDir(), BulkLoad: true})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	im := st.NewImporter()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range 4 {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < b.N; i = int(next.Add(1) - 1) {
				id := fmt.Sprintf("u-%026d", i)
				kvk := fmt.Sprintf("%08d", i)
				if err := im.Account(storage.Account{ID: id, Email: fmt.Sprintf("p%d@example.nl", i), Name: "Piet Jansen",
					PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA", CreatedAt: now}); err != nil {
					b.Error(err)
					return
				}
				if err := im.Membership(storage.Organisation{KvK: kvk, Name: "Bedrijf B.V.", CreatedAt: now},
					storage.Membership{KvK: kvk, AccountID: id, Role: "admin", Anchor: "eh3", Level: "loa3", Since: now}); err != nil {
					b.Error(err)
					return
				}
				if err := im.Session(storage.Session{Key: fmt.Sprintf("%043d", i), AccountID: id, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := im.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "accounts/s")
}
