package caddymodule

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wijtechniek/wijgate/caddymodule/pgstore"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
	"github.com/wijtechniek/wijgate/internal/pgtest"
)

const lagCount = "wijgate_cache_invalidation_lag_seconds_count"

// waitLagCount scrapes /metrics until the lag histogram has counted n
// notifications, failing after ten seconds or when it counts more.
func (g *gateway) waitLagCount(n float64) {
	g.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		got, ok := g.scrape()[lagCount]
		if !ok {
			g.t.Fatalf("%s is not on /metrics", lagCount)
		}
		if got > n {
			g.t.Fatalf("%s is %v, want %v", lagCount, got, n)
		}
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("%s stayed %v within 10s, want %v", lagCount, got, n)
		}
	}
}

// TestInvalidationLagOfAnotherReplicasWrites: a server on PostgreSQL
// counts, on its /metrics, each write another replica (a second store on
// the same database) announces, and not its own. A reload moves the
// counting to the new configuration's registry.
func TestInvalidationLagOfAnotherReplicasWrites(t *testing.T) {
	db := pgtest.Database(t)
	g := startGateway(t, "gateway.caddyfile", gatewayParams{Storage: db})
	replica, err := pgstore.Open(context.Background(), pgstore.Options{URL: db})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { replica.Close() })
	acct := g.addAccount(testEmail, testName, testPassword)
	rename := func(name string) {
		t.Helper()
		if _, err := replica.UpdateAccount(acct.ID, func(a *storage.Account) error { a.Name = name; return nil }); err != nil {
			t.Fatal(err)
		}
	}

	// The server's own write (the account) came first: had it been
	// counted, the count would pass 1.
	rename("Jan één")
	g.waitLagCount(1)
	if sum := g.scrape()["wijgate_cache_invalidation_lag_seconds_sum"]; sum < 0 || sum > 5 {
		t.Fatalf("lag of one write: %v s", sum)
	}

	g.reload()
	g.waitLagCount(0)
	rename("Jan twee")
	g.waitLagCount(1)
}

// countingHistogram counts what is observed.
type countingHistogram struct {
	prometheus.Histogram
	n atomic.Int64
}

func (h *countingHistogram) Observe(float64) { h.n.Add(1) }

// waitCount waits until h has counted n, failing after ten seconds.
func (h *countingHistogram) waitCount(t *testing.T, what string, n int64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); h.n.Load() != n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: counted %d within 10s, want %d", what, h.n.Load(), n)
		}
	}
}

// TestTheLagStaysWithTheConfigurationThatServes follows Caddy's order: a
// new configuration takes the pooled engine's lag over in Provision. When
// it fails, its Cleanup gives the lag back to the running one; when it
// succeeds, the old one's Cleanup leaves it with the new one.
func TestTheLagStaysWithTheConfigurationThatServes(t *testing.T) {
	db := pgtest.Database(t)
	open := func() *pgstore.Store {
		st, err := pgstore.Open(context.Background(), pgstore.Options{URL: db})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	pooled, replica := open(), open()
	n := 0
	write := func() {
		t.Helper()
		n++
		if err := replica.CreateAccount(storage.Account{ID: fmt.Sprintf("u-%d", n), Email: fmt.Sprintf("%d@example.nl", n)}); err != nil {
			t.Fatal(err)
		}
	}
	running, failed, next := &countingHistogram{}, &countingHistogram{}, &countingHistogram{}
	runningLag := followInvalidationLag(pooled, running)
	write()
	running.waitCount(t, "the running configuration", 1)

	followInvalidationLag(pooled, failed).release()
	write()
	running.waitCount(t, "the running configuration after a reload failed", 2)

	followInvalidationLag(pooled, next)
	runningLag.release()
	write()
	next.waitCount(t, "the new configuration after the old one's cleanup", 1)
	if running.n.Load() != 2 || failed.n.Load() != 0 {
		t.Fatalf("counted by the old configuration %d, by the failed one %d, want 2 and 0", running.n.Load(), failed.n.Load())
	}
}

// TestNoInvalidationLagOnBadger: badger has no other replicas, so the
// metric is not registered at all.
func TestNoInvalidationLagOnBadger(t *testing.T) {
	reg := prometheus.NewRegistry()
	h, err := newInvalidationLag(reg, t.TempDir())
	if err != nil || h != nil {
		t.Fatalf("on badger: %v, %v", h, err)
	}
	if families, err := reg.Gather(); err != nil || len(families) != 0 {
		t.Fatalf("registered on badger: %v, %v", families, err)
	}
}
