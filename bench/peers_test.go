package main

import (
	"strings"
	"testing"
	"time"
)

// TestGctraceCPU reads a collection's CPU from the "ms cpu" terms of a
// gctrace line, and nothing from other lines.
func TestGctraceCPU(t *testing.T) {
	line := "gc 12 @3.456s 2%: 0.020+1.2+0.015 ms clock, 0.040+0.30/1.1/2.0+0.030 ms cpu, 4->4->2 MB, 5 MB goal, 0 MB stacks, 0 MB globals, 2 P"
	got, ok := gctraceCPU(line)
	want := time.Duration((0.040 + 0.30 + 1.1 + 2.0 + 0.030) * float64(time.Millisecond))
	if !ok || (got-want).Abs() > time.Microsecond {
		t.Errorf("gctraceCPU = %v, %v; want %v", got, ok, want)
	}
	for _, l := range []string{"", "{\"level\":\"info\",\"msg\":\"serving\"}", "gc 1 @0.1s 1%: forced", "scvg: 1 MB released"} {
		if d, ok := gctraceCPU(l); ok {
			t.Errorf("gctraceCPU(%q) = %v, want no figure", l, d)
		}
	}
}

// TestSameHeadersRoute: the same-header-bytes route sets each header the
// guard sent, statically, in front of the same upstream.
func TestSameHeadersRoute(t *testing.T) {
	c := serverConfig{name: "t", dir: t.TempDir(), backend: "127.0.0.1:9", guarded: true, store: "/s",
		sameHeaders: [][2]string{{"X-Wij-User-Id", "0123"}, {"X-Wij-User-Name", "Bench Beheerder"}}}
	cfg := c.caddyfile(8000, 8001)
	for _, want := range []string{"handle /same-headers/* {\n\t\treverse_proxy 127.0.0.1:9 {\n",
		"\t\t\theader_up X-Wij-User-Id `0123`\n", "\t\t\theader_up X-Wij-User-Name `Bench Beheerder`\n"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("Caddyfile lacks %q:\n%s", want, cfg)
		}
	}
	c.sameHeaders = nil
	if cfg := c.caddyfile(8000, 8001); strings.Contains(cfg, "same-headers") {
		t.Errorf("Caddyfile without headers has the route:\n%s", cfg)
	}
}

// TestPeerAndSameHeadersTargets: guarded is compared with the
// same-header-bytes route and with each peer round by round, and a peer
// that was not measured says why instead of a verdict.
func TestPeerAndSameHeadersTargets(t *testing.T) {
	seg := func(load string, round int, rps float64) *segment {
		return &segment{Load: load, Round: round, RPS: rps, Requests: 1000, Duration: time.Second}
	}
	r := &results{Peers: []*peerRun{{Name: "oauth2-proxy"}, {Name: "caddy-security", Error: "build failed: boom"}}}
	for round := 1; round <= 3; round++ {
		r.Overhead.Segments = append(r.Overhead.Segments,
			seg("plain", round, 1000), seg("guarded", round, 940), seg("same headers", round, 960), seg("oauth2-proxy", round, 500))
	}
	r.finish()
	same := findTarget(t, r, "guarded / same header bytes throughput")
	if same.Met == nil || !*same.Met || !strings.HasPrefix(same.Value, "0.979") {
		t.Errorf("guarded/same headers 940/960: %s %s, want met 0.979", verdict(same.Met), same.Value)
	}
	plain := findTarget(t, r, "guarded/plain throughput")
	if plain.Met == nil || !*plain.Met {
		t.Errorf("guarded/plain 0.94 against ≥ 0.93: %s %s", verdict(plain.Met), plain.Value)
	}
	op := findTarget(t, r, "guarded/plain above oauth2-proxy/plain")
	if op.Met == nil || !*op.Met || op.Value != "0.940 vs 0.500" {
		t.Errorf("oauth2-proxy at 0.5: %s %s", verdict(op.Met), op.Value)
	}
	cs := findTarget(t, r, "guarded/plain above caddy-security/plain")
	if cs.Met != nil || !strings.Contains(cs.Note, "boom") {
		t.Errorf("unbuilt caddy-security: %s %q, want not measured with the build's error", verdict(cs.Met), cs.Note)
	}
}
