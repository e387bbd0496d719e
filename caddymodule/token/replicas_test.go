package token

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/pgstore"
	"github.com/wijtechniek/wijgate/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// openReplicaStore opens the database at url the way one replica does:
// its own connection pool and change feed.
func openReplicaStore(t *testing.T, url string) *pgstore.Store {
	t.Helper()
	st, err := pgstore.Open(context.Background(), pgstore.Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// publishedEverywhere fails the test unless tok verifies against the JWKS
// that each of the signers serves.
func publishedEverywhere(t *testing.T, tok string, signers []*Signer, now time.Time) {
	t.Helper()
	for i, s := range signers {
		if _, kid, err := verify(tok, fetchJWKS(t, s), now); err != nil {
			t.Fatalf("replica %d does not publish key %s, which signs: %v", i, kid, err)
		}
	}
}

// TestIdleReplicaPublishesAnotherReplicasRotation: one replica rotates by
// hand twice while another does nothing at all; the second rotation
// promotes a key the first rotation made, and the idle replica's JWKS
// publishes it. A rotation is refused until the next key it would promote
// has been published long enough for every replica to read it.
func TestIdleReplicaPublishesAnotherReplicasRotation(t *testing.T) {
	db := pgtest.Database(t)
	c := newClock()
	a := newSigner(t, openReplicaStore(t, db), c, Options{})
	idle := newSigner(t, openReplicaStore(t, db), c, Options{})
	if err := a.Rotate(); err != nil {
		t.Fatal(err)
	}
	c.Advance(publishLead)
	if err := a.Rotate(); err != nil {
		t.Fatalf("a rotation %v after the last: %v", publishLead, err)
	}
	tok, err := a.Token(CacheKey{"s", "app"}, claims())
	if err != nil {
		t.Fatal(err)
	}
	publishedEverywhere(t, tok, []*Signer{a, idle}, c.Now())
	tok, err = idle.Token(CacheKey{"s", "app"}, claims())
	if err != nil {
		t.Fatal(err)
	}
	publishedEverywhere(t, tok, []*Signer{a, idle}, c.Now())
	if kidOf(t, tok) != a.keys.Load().stored.Current.ID {
		t.Error("the idle replica signs with another key than the one that rotated")
	}
	c.Advance(publishLead - time.Second)
	if err := a.Rotate(); !errors.Is(err, ErrNextKeyTooNew) {
		t.Fatalf("a rotation %v after the last: %v, want ErrNextKeyTooNew", publishLead-time.Second, err)
	}
	c.Advance(time.Second)
	if err := idle.Rotate(); err != nil {
		t.Fatalf("a rotation on the other replica %v after the last: %v", publishLead, err)
	}
}

// TestReplicasOnPostgresAgreeOnKeys runs three Signers on one PostgreSQL
// database, each with its own connection pool and a clock up to 20 s off
// the others', as replicas on three machines. Time moves on in random
// steps; in each step every replica signs at the same moment (so rotations
// that fall due run concurrently), and sometimes one replica rotates by
// hand. Every token must verify against the JWKS of every replica.
func TestReplicasOnPostgresAgreeOnKeys(t *testing.T) {
	const steps = 300
	db := pgtest.Database(t)
	base := newClock()
	offsets := []time.Duration{0, 20 * time.Second, -20 * time.Second}
	signers := make([]*Signer, len(offsets))
	for i, off := range offsets {
		now := func() time.Time { return base.Now().Add(off) }
		signers[i] = newSigner(t, openReplicaStore(t, db), nil, Options{RotateEvery: time.Hour, Now: now})
	}
	seed := rand.Uint64()
	t.Logf("steps from seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	signing := map[string]bool{}
	byHand := 0
	for step := range steps {
		base.Advance(time.Duration(rng.Int64N(int64(3 * time.Minute))))
		if rng.IntN(8) == 0 {
			switch err := signers[rng.IntN(len(signers))].Rotate(); {
			case err == nil:
				byHand++
			case !errors.Is(err, ErrNextKeyTooNew):
				t.Fatal(err)
			}
		}
		tokens := make([]string, len(signers))
		errs := make([]error, len(signers))
		var wg sync.WaitGroup
		for i, s := range signers {
			wg.Go(func() { tokens[i], errs[i] = s.Token(CacheKey{fmt.Sprint(step), "app"}, claims()) })
		}
		wg.Wait()
		for i, tok := range tokens {
			if errs[i] != nil {
				t.Fatalf("step %d, replica %d: %v", step, i, errs[i])
			}
			signing[kidOf(t, tok)] = true
			publishedEverywhere(t, tok, signers, base.Now().Add(time.Minute))
		}
	}
	t.Logf("%d steps: %d keys signed, %d rotations by hand", steps, len(signing), byHand)
	if len(signing) < 5 {
		t.Fatalf("only %d keys signed in %d steps: the keys hardly rotated", len(signing), steps)
	}
}
