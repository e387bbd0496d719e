package main

import (
	"testing"
	"time"
)

func findTarget(t *testing.T, r *results, name string) target {
	t.Helper()
	for _, x := range r.Targets {
		if x.Name == name {
			return x
		}
	}
	t.Fatalf("no target %q in %+v", name, r.Targets)
	return target{}
}

func verdict(met *bool) string {
	if met == nil {
		return "not measured"
	}
	return map[bool]string{true: "met", false: "missed"}[*met]
}

// TestPostgresRatioTargetIsADifferenceBothWays: PostgreSQL's guarded/plain
// may be at most 0.02 from badger's, above as well as below.
func TestPostgresRatioTargetIsADifferenceBothWays(t *testing.T) {
	for _, c := range []struct {
		pg   float64
		want bool
	}{{0.885, true}, {0.865, true}, {0.850, false}, {0.910, false}} {
		r := &results{}
		r.Overhead.GuardedPlainRatio = 0.875
		r.Postgres.Overhead.GuardedPlainRatio = c.pg
		r.finish()
		got := findTarget(t, r, "guarded/plain on PostgreSQL vs badger")
		if got.Met == nil || *got.Met != c.want {
			t.Errorf("PostgreSQL %.3f vs badger 0.875: %s, want met %v (%s)", c.pg, verdict(got.Met), c.want, got.Value)
		}
	}
}

// TestPropagationTargetCountsChangesNeverRefused: a change the other
// server still accepted when polling gave up misses the target, even when
// every refusal that came was fast, and even when none came.
func TestPropagationTargetCountsChangesNeverRefused(t *testing.T) {
	const name = "propagation to another server, p99 (session ended)"
	for _, c := range []struct {
		samples  []time.Duration
		timedOut int
		want     bool
	}{
		{[]time.Duration{time.Millisecond, 2 * time.Millisecond}, 0, true},
		{[]time.Duration{time.Millisecond, 1200 * time.Millisecond}, 0, false},
		{[]time.Duration{time.Millisecond}, 1, false},
		{nil, 3, false},
	} {
		p := propagationRun{Change: "session ended", Samples: c.samples, TimedOut: c.timedOut}
		p.summarize()
		r := &results{}
		r.Postgres.Propagation = []propagationRun{p}
		r.finish()
		got := findTarget(t, r, name)
		if got.Met == nil || *got.Met != c.want {
			t.Errorf("samples %v, %d never refused: %s, want met %v (%s; %s)", c.samples, c.timedOut, verdict(got.Met), c.want, got.Value, got.Note)
		}
	}
}

// TestRunTimeTargetLeavesOutThePeersFirstBuild: make bench is judged
// with the peers built before; their first build is told beside it.
func TestRunTimeTargetLeavesOutThePeersFirstBuild(t *testing.T) {
	for _, c := range []struct {
		elapsed, peers time.Duration
		want           bool
	}{{14 * time.Minute, 0, true}, {16 * time.Minute, 0, false}, {20 * time.Minute, 6 * time.Minute, true}} {
		r := &results{Elapsed: c.elapsed, Settings: settings{Mode: "full"}, Phases: []phase{
			{Name: "build wijgate", Duration: time.Minute},
			{Name: "build the peers (nothing when built before)", Duration: c.peers},
		}}
		r.finish()
		got := findTarget(t, r, "make bench run time, the peers built before")
		if got.Met == nil || *got.Met != c.want {
			t.Errorf("%v with %v of peer build: %s, want met %v (%s)", c.elapsed, c.peers, verdict(got.Met), c.want, got.Value)
		}
	}
}
