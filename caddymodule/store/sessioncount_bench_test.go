package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// BenchmarkLiveSessions counts 100,000 live sessions in an on-disk store,
// reopened so that they are read from its tables, as wijgate_sessions_active
// does at most every 30 s.
func BenchmarkLiveSessions(b *testing.B) {
	const sessions = 100_000
	dir := b.TempDir()
	st, err := Open(Options{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	im := st.NewImporter()
	for i := range sessions {
		if err := im.Session(storage.Session{Key: fmt.Sprintf("%043d", i), AccountID: fmt.Sprintf("u-%026d", i%20_000),
			CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(time.Hour), UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"}); err != nil {
			b.Fatal(err)
		}
	}
	if err := im.Close(); err != nil {
		b.Fatal(err)
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	if st, err = Open(Options{Dir: dir}); err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	for b.Loop() {
		n, err := st.LiveSessions()
		if err != nil || n != sessions {
			b.Fatalf("LiveSessions = %d, %v; want %d", n, err, sessions)
		}
	}
}
