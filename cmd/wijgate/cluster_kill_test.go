package main

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule"
)

// TestClusterKillReplicaLosesNothing runs writers through the balancer
// (accounts through either replica's admin API, logins, companies linked
// with the simulator) and kills replica b with SIGKILL in the middle of
// their flows. A step that fails after the kill is tried again, as a
// person presses the button again, and the balancer sends it to a: every
// flow that was under way finishes there, and every account, session and
// link acknowledged before or after the kill is there, through a, and
// through b once it has started again.
func TestClusterKillReplicaLosesNothing(t *testing.T) {
	const writers = 4
	seed := *killSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("kill point from seed %d (-kill-seed repeats it)", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	c := startCluster(t)
	acked := &acknowledged{accounts: map[string]string{}, sessions: map[string]string{}, links: map[string]string{}, notify: make(chan struct{}, 1)}
	var kvkSeq atomic.Int64
	var killed atomic.Bool
	var finishedAfterKill [writers]atomic.Int32
	var retried atomic.Int32
	var unexpectedMu sync.Mutex
	var unexpected []error
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			// step runs one step of a flow. Before the kill every step
			// must succeed; after it a failed step is tried again, on a
			// new address or company where the failed attempt may have
			// left one.
			step := func(what string, do func(attempt int) error) bool {
				for attempt := 0; ; attempt++ {
					err := do(attempt)
					if err == nil {
						return true
					}
					if !killed.Load() || attempt == 10 {
						unexpectedMu.Lock()
						unexpected = append(unexpected, fmt.Errorf("writer %d, %s (attempt %d, killed %v): %w", w, what, attempt, killed.Load(), err))
						unexpectedMu.Unlock()
						return false
					}
					retried.Add(1)
				}
			}
			lb := c.balancer
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				var email string
				var acct caddymodule.AccountSummary
				if !step("adding an account", func(attempt int) (err error) {
					email = fmt.Sprintf("w%d-%d-%d@example.nl", w, n, attempt)
					admin := []*faultServer{c.a, c.b}[(n+attempt)%2].admin
					acct, err = addAccountByAPI(c.admin, admin, email)
					return err
				}) {
					return
				}
				acked.record(func() { acked.accounts[email] = acct.ID })
				p := c.newPerson()
				if !step("logging in", func(int) error { return p.login(lb, email) }) {
					return
				}
				acked.record(func() { acked.sessions[p.session()] = email })
				var kvk string
				if !step("linking a company", func(int) error {
					kvk = fmt.Sprintf("%08d", 50000000+kvkSeq.Add(1))
					return p.link(lb, lb, lb, kvk)
				}) {
					return
				}
				acked.record(func() { acked.links[kvk] = acct.ID })
				if killed.Load() {
					finishedAfterKill[w].Add(1)
				}
			}
		})
	}
	halt := func() {
		close(stop)
		wg.Wait()
	}

	killAt := int64(25 + rng.IntN(50))
	deadline := time.After(2 * time.Minute)
	for acked.count.Load() < killAt {
		select {
		case <-acked.notify:
		case <-deadline:
			halt()
			t.Fatalf("only %d writes acknowledged in two minutes: %v", acked.count.Load(), unexpected)
		}
	}
	killed.Store(true)
	c.b.kill()
	killedAt := time.Now()
	acked.mu.Lock()
	t.Logf("b killed after %d acknowledged writes: %d accounts, %d sessions, %d links", acked.count.Load(), len(acked.accounts), len(acked.sessions), len(acked.links))
	acked.mu.Unlock()
	// Each writer finishes the flow it was in and one more, on a.
	deadline = time.After(2 * time.Minute)
	for w := range writers {
		for finishedAfterKill[w].Load() < 2 {
			select {
			case <-acked.notify:
			case <-time.After(time.Second):
				unexpectedMu.Lock()
				failed := len(unexpected) > 0
				unexpectedMu.Unlock()
				if failed {
					halt()
					t.Fatalf("writes failed: %v", unexpected)
				}
			case <-deadline:
				halt()
				t.Fatalf("writer %d finished %d flows in two minutes after the kill", w, finishedAfterKill[w].Load())
			}
		}
	}
	finished := time.Since(killedAt)
	halt()
	if len(unexpected) > 0 {
		t.Fatalf("writes failed: %v", unexpected)
	}
	acked.mu.Lock()
	t.Logf("after the kill: every writer finished the flow it was in and one more within %v; %d steps tried again; %d accounts, %d sessions, %d links acknowledged in all",
		finished.Round(time.Millisecond), retried.Load(), len(acked.accounts), len(acked.sessions), len(acked.links))
	acked.mu.Unlock()

	verifyAcknowledged(t, c.a, acked)
	c.b.start()
	c.waitHealthy(c.b)
	verifyAcknowledged(t, c.b, acked)
}
