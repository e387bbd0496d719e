package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// results is everything one run measured; it is written to results.json
// as is. Durations are in nanoseconds (fields ending in _ns).
type results struct {
	Started    time.Time     `json:"started"`
	Elapsed    time.Duration `json:"elapsed_ns"`
	Commit     string        `json:"commit"`
	Dirty      bool          `json:"dirty"`
	DirtyFiles []string      `json:"dirty_files,omitempty"`
	GoVersion  string        `json:"go_version"`
	OS         string        `json:"os"`
	Arch       string        `json:"arch"`
	CPUs       int           `json:"cpus"`
	CPUModel   string        `json:"cpu_model"`
	Kernel     string        `json:"kernel"`
	MemTotal   string        `json:"mem_total"`
	Settings   settings      `json:"settings"`
	// BuildSeconds is how long `go build ./cmd/wijgate` took in this run.
	BuildSeconds float64 `json:"build_seconds"`
	// Phases are where the run's wall-clock time went, in order.
	Phases   []phase         `json:"phases"`
	Overhead overheadResults `json:"overhead"`
	// Peers are the other gateways in the overhead rounds.
	Peers []*peerRun `json:"peers,omitempty"`
	Storm []stormRun `json:"storm"`
	// StormMemory is the overhead/storm server's memory after the storm.
	StormMemory *memory      `json:"storm_server_memory,omitempty"`
	Scale       scaleResults `json:"scale"`
	// Postgres are the same measurements on a PostgreSQL database, and
	// the propagation of changes between two servers on it.
	Postgres postgresResults `json:"postgres"`
	Micro    *microResults   `json:"micro,omitempty"`
	Targets  []target        `json:"targets"`
	// Disturbed lists the measured segments during which other processes
	// used more than disturbedCores of CPU; their figures are suspect.
	Disturbed []string `json:"disturbed_segments,omitempty"`
	Errors    []string `json:"errors,omitempty"`
}

// loadSummary sums up one load's segments over the rounds.
type loadSummary struct {
	Load      string          `json:"load"`
	Rounds    int             `json:"rounds"`
	Requests  int64           `json:"requests"`
	RPS       float64         `json:"rps_median"`
	RPSRounds []float64       `json:"rps_rounds"`
	P50       time.Duration   `json:"p50_ns"` // over all rounds' requests
	P99       time.Duration   `json:"p99_ns"`
	P99Rounds []time.Duration `json:"p99_rounds_ns"`
	// CPU per request in microseconds, and CPU share in cores.
	ServerCPUPerReq  float64 `json:"server_cpu_us_per_request"`
	BackendCPUPerReq float64 `json:"backend_cpu_us_per_request"`
	LoadCPUPerReq    float64 `json:"loadgen_cpu_us_per_request"`
	// DatabaseCPUPerReq is the run's PostgreSQL's, once it has started.
	DatabaseCPUPerReq float64 `json:"database_cpu_us_per_request,omitempty"`
	ServerCores       float64 `json:"server_cpu_cores"`
	LoadCores         float64 `json:"loadgen_cpu_cores"`
	BackendCores      float64 `json:"backend_cpu_cores"`
	// OtherCores is the CPU other processes on the machine used during
	// the measurement, in cores; StealCores what the hypervisor took.
	OtherCores float64        `json:"other_processes_cpu_cores"`
	StealCores float64        `json:"steal_cpu_cores"`
	Statuses   map[string]int `json:"statuses"`
	Unexpected int64          `json:"unexpected"`
	Errors     int64          `json:"errors"`
}

func summarize(name string, segs []*segment) *loadSummary {
	s := &loadSummary{Load: name, Rounds: len(segs), Statuses: map[string]int{}}
	var wall, srv, be, lg, db, other, steal time.Duration
	for _, g := range segs {
		db += g.DatabaseCPU
		s.Requests += g.Requests
		s.RPSRounds = append(s.RPSRounds, g.RPS)
		s.P99Rounds = append(s.P99Rounds, g.P99)
		wall += g.Duration
		srv += g.ServerCPU
		be += g.BackendCPU
		lg += g.LoadCPU
		other += g.OtherCPU
		steal += g.StealCPU
		s.Unexpected += g.Unexpected
		s.Errors += g.Errors
		for k, v := range g.Statuses {
			s.Statuses[k] += v
		}
	}
	s.RPS = median(s.RPSRounds)
	all := pooled(segs)
	s.P50, s.P99 = pct(all, 0.5), pct(all, 0.99)
	s.ServerCPUPerReq, s.BackendCPUPerReq, s.LoadCPUPerReq = cpuPer(srv, s.Requests), cpuPer(be, s.Requests), cpuPer(lg, s.Requests)
	s.DatabaseCPUPerReq = cpuPer(db, s.Requests)
	if wall > 0 {
		s.ServerCores, s.BackendCores, s.LoadCores = srv.Seconds()/wall.Seconds(), be.Seconds()/wall.Seconds(), lg.Seconds()/wall.Seconds()
		s.OtherCores, s.StealCores = other.Seconds()/wall.Seconds(), steal.Seconds()/wall.Seconds()
	}
	return s
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func byLoad(segs []*segment, name string) []*segment {
	var out []*segment
	for _, s := range segs {
		if s.Load == name {
			out = append(out, s)
		}
	}
	return out
}

// roundRatios pairs a's and b's segments by round: b.RPS/a.RPS and
// b.P99-a.P99 per round.
func roundRatios(a, b []*segment) (ratios []float64, p99Added []float64) {
	for i := range min(len(a), len(b)) {
		ratios = append(ratios, b[i].RPS/a[i].RPS)
		p99Added = append(p99Added, float64(b[i].P99-a[i].P99))
	}
	return ratios, p99Added
}

type overheadResults struct {
	Segments  []*segment     `json:"segments"`
	Summaries []*loadSummary `json:"summaries"`
	// GuardedPlainRatio is the median over rounds of guarded req/s divided
	// by plain req/s in the same round.
	GuardedPlainRatio float64   `json:"guarded_plain_ratio"`
	RatioRounds       []float64 `json:"guarded_plain_ratio_rounds"`
	// P99Added is guarded p99 minus plain p99, each over all rounds'
	// requests; P99AddedMedian is the median of the per-round differences.
	P99Added       time.Duration   `json:"p99_added_ns"`
	P99AddedMedian time.Duration   `json:"p99_added_median_of_rounds_ns"`
	P99AddedRounds []time.Duration `json:"p99_added_rounds_ns"`
	// ServerCPUAdded is the guard's server CPU per request, guarded minus
	// plain, in microseconds.
	ServerCPUAdded float64 `json:"server_cpu_added_us_per_request"`
	// SameHeaders is the guarded route's median over rounds of its req/s
	// over the same-header-bytes route's (plain reverse_proxy setting the
	// guard's headers statically), and that route's own over plain.
	SameHeaders         []headerField `json:"same_headers,omitempty"`
	GuardedSameRatio    float64       `json:"guarded_same_headers_ratio,omitempty"`
	GuardedSameRounds   []float64     `json:"guarded_same_headers_ratio_rounds,omitempty"`
	SameHeadersPlain    float64       `json:"same_headers_plain_ratio,omitempty"`
	SameHeadersPlainRds []float64     `json:"same_headers_plain_ratio_rounds,omitempty"`
	Backend             backendStats  `json:"backend"`
	Memory              memory        `json:"server_memory"`
}

type stormRun struct {
	Variant           string        `json:"variant"`
	DistinctAddresses bool          `json:"distinct_client_addresses"`
	Rate              int           `json:"logins_per_second"`
	Quiet             []*segment    `json:"quiet_segments"`
	Storm             []*segment    `json:"storm_segments"`
	QuietSummary      *loadSummary  `json:"quiet"`
	StormSummary      *loadSummary  `json:"during_storm"`
	P99Ratio          float64       `json:"p99_storm_over_quiet"`
	P99RatioRounds    []float64     `json:"p99_storm_over_quiet_rounds"`
	RPSRatio          float64       `json:"rps_storm_over_quiet"`
	Logins            stormStats    `json:"logins"`
	StormP99          time.Duration `json:"storm_p99_ns"`
	QuietP99          time.Duration `json:"quiet_p99_ns"`
}

type seedResult struct {
	From              int           `json:"from"`
	To                int           `json:"to"`
	Duration          time.Duration `json:"duration_ns"`
	AccountsPerSecond float64       `json:"accounts_per_second"`
}

type scaleSize struct {
	Sessions int `json:"sessions"`
	// Hot is how many distinct seeded sessions the guarded load cycles.
	Hot                 int   `json:"hot_sessions"`
	StoreAllocated      int64 `json:"store_bytes_on_disk"`
	StoreApparent       int64 `json:"store_bytes_apparent"`
	StoreAllocatedAfter int64 `json:"store_bytes_on_disk_after_run"`
	// MemoryStart is the server's memory once it answers, store open,
	// before any request.
	MemoryStart memory `json:"server_memory_at_start"`
	// Warm is one guarded segment over the hot sessions on the fresh
	// server, before any other session was used; MemoryHot is the
	// server's memory right after it.
	Warm      *segment `json:"warm"`
	MemoryHot memory   `json:"server_memory_hot_only"`
	// Fill is one pass over the sessions from hot to min(sessions, fill),
	// each new to the server (absent when there are none); Memory is read
	// after it and the rounds.
	Fill              *pass        `json:"fill"`
	Segments          []*segment   `json:"segments"`
	Plain             *loadSummary `json:"plain"`
	Guarded           *loadSummary `json:"guarded"`
	GuardedPlainRatio float64      `json:"guarded_plain_ratio"`
	RatioRounds       []float64    `json:"guarded_plain_ratio_rounds"`
	Memory            memory       `json:"server_memory"`
	// HeapStart and HeapActive are the server's live heap (after a
	// collection) at start and once Active sessions have passed the
	// guard; GC is the collector's share of the server's CPU during the
	// rounds.
	HeapStart  uint64    `json:"live_heap_at_start_bytes,omitempty"`
	HeapActive uint64    `json:"live_heap_active_bytes,omitempty"`
	Active     int       `json:"active_sessions,omitempty"`
	GC         *gcWindow `json:"gc,omitempty"`
	// TouchWrites is how many idle-tracking writes (batches of touches)
	// the server made during the rounds: the hot sessions' touches fall
	// due a minute after their first use, so a size whose fill takes
	// long measures them in its rounds and the others do not.
	TouchWrites int            `json:"touch_writes_in_rounds"`
	Extra       map[string]any `json:"extra,omitempty"`
}

// heapPerSession is the live heap each active session added.
func (z *scaleSize) heapPerSession() float64 {
	if z.Active == 0 || z.HeapActive < z.HeapStart {
		return 0
	}
	return float64(z.HeapActive-z.HeapStart) / float64(z.Active)
}

type plainOnlyRun struct {
	Segments []*segment   `json:"segments"`
	Summary  *loadSummary `json:"summary"`
	Memory   memory       `json:"server_memory"`
}

type scaleResults struct {
	Seeding   []seedResult `json:"seeding"`
	Sizes     []*scaleSize `json:"sizes"`
	PlainOnly plainOnlyRun `json:"plain_only"`
	// LargestOverSmallest compares the largest size with the smallest:
	// guarded req/s (median of rounds), and the same normalised by each
	// size's plain req/s.
	From                  int     `json:"from"`
	To                    int     `json:"to"`
	GuardedRPSRatio       float64 `json:"guarded_rps_ratio"`
	NormalisedRatio       float64 `json:"guarded_plain_ratio_ratio"`
	MemoryRatioSize       int     `json:"memory_ratio_size,omitempty"`
	MemoryHWMOverPlain    float64 `json:"vm_hwm_over_plain,omitempty"`
	MemoryRSSOverPlain    float64 `json:"vm_rss_over_plain,omitempty"`
	MemoryHWMAddedMiBSize float64 `json:"vm_hwm_added_mib,omitempty"`
	// The same with only the hot sessions in use.
	MemoryHotHWMOverPlain float64 `json:"hot_only_vm_hwm_over_plain,omitempty"`
	MemoryHotRSSOverPlain float64 `json:"hot_only_vm_rss_over_plain,omitempty"`
}

// target is one of the benchmark issues' targets (6: the guard, 13:
// PostgreSQL), reported, never asserted.
type target struct {
	Name  string `json:"name"`
	Want  string `json:"want"`
	Value string `json:"value"`
	// Met is absent when the run did not measure it.
	Met  *bool  `json:"met,omitempty"`
	Note string `json:"note,omitempty"`
}

func newResults(s settings) results {
	r := results{Started: time.Now(), Settings: s, GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				r.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		r.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		r.MemTotal = strings.Join(strings.Fields(strings.TrimPrefix(line, "MemTotal:")), " ")
	}
	return r
}

// describe records the source the binary was built from.
func (r *results) describe(root string) {
	if out, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output(); err == nil {
		r.Commit = strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=all").Output(); err == nil {
		for line := range strings.SplitSeq(strings.TrimRight(string(out), "\n"), "\n") {
			if line != "" && !strings.Contains(line, "bench/") {
				r.DirtyFiles = append(r.DirtyFiles, strings.TrimSpace(line))
			}
		}
		r.Dirty = len(r.DirtyFiles) > 0
	}
}

// headerField is one header the guard sent, as the same-header-bytes
// route sets it.
type headerField struct {
	Name  string `json:"name"`
	Bytes int    `json:"value_bytes"`
}

// finish computes the summaries and ratios of the overhead rounds, and
// the peers' next to plain.
func (o *overheadResults) finish(peers []*peerRun) {
	var names []string
	for _, s := range o.Segments {
		if !slices.Contains(names, s.Load) {
			names = append(names, s.Load)
		}
	}
	for _, name := range names {
		o.Summaries = append(o.Summaries, summarize(name, byLoad(o.Segments, name)))
	}
	plain, guarded := byLoad(o.Segments, "plain"), byLoad(o.Segments, "guarded")
	if same := byLoad(o.Segments, "same headers"); len(same) > 0 && len(guarded) > 0 {
		o.GuardedSameRounds, _ = roundRatios(same, guarded)
		o.GuardedSameRatio = median(o.GuardedSameRounds)
		o.SameHeadersPlainRds, _ = roundRatios(plain, same)
		o.SameHeadersPlain = median(o.SameHeadersPlainRds)
	}
	for _, p := range peers {
		segs := byLoad(o.Segments, p.Name)
		if len(segs) == 0 || len(plain) == 0 {
			continue
		}
		p.Summary = summarize(p.Name, segs)
		p.RatioRounds, _ = roundRatios(plain, segs)
		p.PlainRatio = median(p.RatioRounds)
		p.P99Added = p.Summary.P99 - summarize("", plain).P99
	}
	if len(plain) > 0 && len(guarded) > 0 {
		ratios, added := roundRatios(plain, guarded)
		o.RatioRounds = ratios
		o.GuardedPlainRatio = median(ratios)
		for _, a := range added {
			o.P99AddedRounds = append(o.P99AddedRounds, time.Duration(a))
		}
		sp, sg := summarize("", plain), summarize("", guarded)
		o.P99Added = sg.P99 - sp.P99
		o.P99AddedMedian = time.Duration(median(added))
		o.ServerCPUAdded = sg.ServerCPUPerReq - sp.ServerCPUPerReq
	}
}

// finish computes a scale size's summaries and ratio.
func (z *scaleSize) finish() {
	p := byLoad(z.Segments, "plain")
	var g []*segment
	for _, s := range z.Segments {
		if s.Load != "plain" {
			g = append(g, s)
		}
	}
	if len(p) > 0 && len(g) > 0 {
		z.Plain, z.Guarded = summarize("plain", p), summarize(g[0].Load, g)
		z.RatioRounds, _ = roundRatios(p, g)
		z.GuardedPlainRatio = median(z.RatioRounds)
	}
}

// finish computes the summaries, ratios and targets from the segments.
func (r *results) finish() {
	r.Overhead.finish(r.Peers)
	pg := &r.Postgres
	pg.Overhead.finish(nil)
	if pg.Overhead.GuardedPlainRatio > 0 && r.Overhead.GuardedPlainRatio > 0 {
		pg.BadgerRatio = r.Overhead.GuardedPlainRatio
		pg.RatioDifference = pg.Overhead.GuardedPlainRatio - pg.BadgerRatio
	}
	for _, z := range pg.Sizes {
		z.finish()
	}
	for i := range r.Storm {
		s := &r.Storm[i]
		s.QuietSummary = summarize("guarded, no storm", s.Quiet)
		s.StormSummary = summarize("guarded, storm", s.Storm)
		for j := range min(len(s.Quiet), len(s.Storm)) {
			s.P99RatioRounds = append(s.P99RatioRounds, float64(s.Storm[j].P99)/float64(s.Quiet[j].P99))
		}
		s.P99Ratio = median(s.P99RatioRounds)
		s.QuietP99, s.StormP99 = s.QuietSummary.P99, s.StormSummary.P99
		if s.QuietSummary.RPS > 0 {
			s.RPSRatio = s.StormSummary.RPS / s.QuietSummary.RPS
		}
	}
	sc := &r.Scale
	for _, z := range sc.Sizes {
		z.finish()
	}
	if len(sc.PlainOnly.Segments) > 0 {
		sc.PlainOnly.Summary = summarize("plain (plain-only server)", sc.PlainOnly.Segments)
	}
	if n := len(sc.Sizes); n >= 2 && sc.Sizes[0].Guarded != nil && sc.Sizes[n-1].Guarded != nil {
		a, b := sc.Sizes[0], sc.Sizes[n-1]
		sc.From, sc.To = a.Sessions, b.Sessions
		sc.GuardedRPSRatio = b.Guarded.RPS / a.Guarded.RPS
		sc.NormalisedRatio = b.GuardedPlainRatio / a.GuardedPlainRatio
	}
	if mz := r.memorySize(); mz != nil && sc.PlainOnly.Memory.HWMKiB > 0 {
		sc.MemoryRatioSize = mz.Sessions
		sc.MemoryHWMOverPlain = float64(mz.Memory.HWMKiB) / float64(sc.PlainOnly.Memory.HWMKiB)
		sc.MemoryRSSOverPlain = float64(mz.Memory.RSSKiB) / float64(sc.PlainOnly.Memory.RSSKiB)
		sc.MemoryHWMAddedMiBSize = float64(mz.Memory.HWMKiB-sc.PlainOnly.Memory.HWMKiB) / 1024
		sc.MemoryHotHWMOverPlain = float64(mz.MemoryHot.HWMKiB) / float64(sc.PlainOnly.Memory.HWMKiB)
		sc.MemoryHotRSSOverPlain = float64(mz.MemoryHot.RSSKiB) / float64(sc.PlainOnly.Memory.RSSKiB)
	}
	r.targets()
	r.disturbed()
}

// disturbedCores is how much CPU other processes may use during a
// segment before its figures are flagged.
const disturbedCores = 0.25

func (r *results) disturbed() {
	var all []*segment
	all = append(all, r.Overhead.Segments...)
	for _, s := range r.Storm {
		all = append(all, s.Quiet...)
		all = append(all, s.Storm...)
	}
	for _, z := range r.Scale.Sizes {
		all = append(all, z.Segments...)
	}
	all = append(all, r.Scale.PlainOnly.Segments...)
	var pg []*segment
	pg = append(pg, r.Postgres.Overhead.Segments...)
	for _, z := range r.Postgres.Sizes {
		pg = append(pg, z.Segments...)
	}
	for i, s := range append(all, pg...) {
		where := ""
		if i >= len(all) {
			where = "PostgreSQL: "
		}
		if c := s.OtherCPU.Seconds() / s.Duration.Seconds(); c > disturbedCores {
			r.Disturbed = append(r.Disturbed, fmt.Sprintf("%s%s round %d: other processes used %.2f cores", where, s.Load, s.Round, c))
		}
	}
}

// memorySize is the scale size the memory target is read at: 100k
// sessions, or failing that the largest size measured.
func (r *results) memorySize() *scaleSize {
	var best *scaleSize
	for _, z := range r.Scale.Sizes {
		if z.Sessions == 100_000 {
			return z
		}
		best = z
	}
	return best
}

func met(ok bool) *bool { return &ok }

func (r *results) targets() {
	o := r.Overhead
	var ts []target
	if o.GuardedSameRatio > 0 {
		ts = append(ts, target{Name: "guarded / same header bytes throughput", Want: "≥ 0.97",
			Value: fmt.Sprintf("%.3f (rounds %s)", o.GuardedSameRatio, floats(o.GuardedSameRounds, "%.3f")), Met: met(o.GuardedSameRatio >= 0.97)})
	}
	if o.GuardedPlainRatio > 0 {
		ts = append(ts, target{Name: "guarded/plain throughput", Want: "≥ 0.93",
			Value: fmt.Sprintf("%.3f (rounds %s)", o.GuardedPlainRatio, floats(o.RatioRounds, "%.3f")), Met: met(o.GuardedPlainRatio >= 0.93)})
		for _, p := range r.Peers {
			t := target{Name: "guarded/plain above " + p.Name + "/plain", Want: "higher"}
			if p.PlainRatio > 0 {
				t.Value = fmt.Sprintf("%.3f vs %.3f", o.GuardedPlainRatio, p.PlainRatio)
				t.Met = met(o.GuardedPlainRatio > p.PlainRatio)
			} else {
				t.Value, t.Note = "-", "not measured: "+p.Error
			}
			ts = append(ts, t)
		}
		ts = append(ts, target{Name: "p99 added by the guard", Want: "≤ 0.200 ms",
			Value: fmt.Sprintf("%.3f ms", ms(o.P99Added)), Met: met(o.P99Added <= 200*time.Microsecond)})
	}
	sc := r.Scale
	if sc.To > 0 {
		t := target{Name: "guarded throughput 1M vs 1k, normalised by plain", Want: "≥ 0.95",
			Value: fmt.Sprintf("%.3f (%s vs %s; %.3f not normalised)", sc.NormalisedRatio, count(sc.To), count(sc.From), sc.GuardedRPSRatio)}
		if sc.To >= 1_000_000 && sc.From <= 1_000 {
			t.Met = met(sc.NormalisedRatio >= 0.95)
			if from, to := sc.Sizes[0].TouchWrites, sc.Sizes[len(sc.Sizes)-1].TouchWrites; from != to {
				t.Note = fmt.Sprintf("idle-tracking writes in the rounds: %d at %s, %d at %s (touches fall due a minute after the hot sessions' first use)",
					from, count(sc.From), to, count(sc.To))
			}
		} else {
			t.Note = fmt.Sprintf("not measured at 1M: this run's sizes were %s to %s (make bench seeds 1M)", count(sc.From), count(sc.To))
		}
		ts = append(ts, t)
	}
	if mz := r.memorySize(); mz != nil && sc.MemoryHWMOverPlain > 0 {
		plain := sc.PlainOnly.Memory.HWMKiB >> 10
		for _, m := range []struct {
			what     string
			hwm, rss float64
			mem      memory
		}{
			{fmt.Sprintf("%s in use", count(mz.Hot)), sc.MemoryHotHWMOverPlain, sc.MemoryHotRSSOverPlain, mz.MemoryHot},
			{fmt.Sprintf("%s in use", count(min(mz.Sessions, r.Settings.Fill))), sc.MemoryHWMOverPlain, sc.MemoryRSSOverPlain, mz.Memory},
		} {
			added := float64(m.mem.HWMKiB-sc.PlainOnly.Memory.HWMKiB) / 1024
			t := target{Name: fmt.Sprintf("VmHWM at %s sessions (%s) vs plain Caddy", count(mz.Sessions), m.what), Want: "≤ +60 MiB",
				Value: fmt.Sprintf("%+.1f MiB (%d vs %d MiB; %.2f× VmHWM, %.2f× VmRSS)", added, m.mem.HWMKiB>>10, plain, m.hwm, m.rss)}
			if mz.Sessions == 100_000 {
				t.Met = met(added <= 60)
			} else {
				t.Note = fmt.Sprintf("measured at %s sessions, not 100k", count(mz.Sessions))
			}
			ts = append(ts, t)
		}
	}
	if mz := r.memorySize(); mz != nil && mz.Active > 0 {
		t := target{Name: fmt.Sprintf("live heap per active session (%s active)", count(mz.Active)), Want: "≤ 400 B",
			Value: fmt.Sprintf("%.0f B (%d → %d MiB)", mz.heapPerSession(), mz.HeapStart>>20, mz.HeapActive>>20)}
		if mz.Active == 100_000 {
			t.Met = met(mz.heapPerSession() <= 400)
		} else {
			t.Note = fmt.Sprintf("measured with %s active sessions, not 100k", count(mz.Active))
		}
		ts = append(ts, t)
		if g := mz.GC; g != nil {
			t := target{Name: fmt.Sprintf("GC share of server CPU (%s active)", count(mz.Active)), Want: "< 10 %",
				Value: fmt.Sprintf("%.1f %% (%d cycles, gctrace)", 100*g.Share, g.Cycles)}
			if mz.Active == 100_000 {
				t.Met = met(g.Share < 0.10)
			} else {
				t.Note = fmt.Sprintf("measured with %s active sessions, not 100k", count(mz.Active))
			}
			ts = append(ts, t)
		}
	}
	for _, s := range r.Storm {
		if s.P99Ratio == 0 {
			continue
		}
		t := target{Name: "guarded p99 during the login storm (" + s.Variant + ")", Want: "≤ 2× no storm",
			Value: fmt.Sprintf("%.2f× (%.3f vs %.3f ms)", s.P99Ratio, ms(s.StormP99), ms(s.QuietP99)), Met: met(s.P99Ratio <= 2)}
		if s.Logins.Refused > s.Logins.Attempts/2 {
			t.Note = fmt.Sprintf("%d of %d logins were refused by login regulation (429) without hashing, so this storm mostly did not happen", s.Logins.Refused, s.Logins.Attempts)
		}
		ts = append(ts, t)
	}
	pg := r.Postgres
	if pg.BadgerRatio > 0 {
		d := pg.RatioDifference
		ts = append(ts, target{Name: "guarded/plain on PostgreSQL vs badger", Want: "within 0.02",
			Value: fmt.Sprintf("%.3f vs %.3f (%+.3f)", pg.Overhead.GuardedPlainRatio, pg.BadgerRatio, d), Met: met(d >= -0.02 && d <= 0.02)})
	}
	for _, p := range pg.Propagation {
		t := target{Name: "propagation to another server, p99 (" + p.Change + ")", Want: "< 1 s",
			Value: fmt.Sprintf("%.3f ms (n %d)", ms(p.P99), p.N)}
		if p.N+p.TimedOut > 0 {
			t.Met = met(p.P99 < time.Second && p.TimedOut == 0)
		}
		if p.TimedOut > 0 {
			t.Note = fmt.Sprintf("%d changes not refused by the other server within %v", p.TimedOut, propagationTimeout)
		}
		ts = append(ts, t)
	}
	if r.Settings.Mode == "full" && r.Elapsed > 0 {
		ts = append(ts, r.runTimeTarget())
	}
	r.Targets = ts
}

// runTimeTarget: make bench under 15 minutes with the peers built before
// (their first build is reported beside it, not counted).
func (r *results) runTimeTarget() target {
	var peerBuild time.Duration
	for _, p := range r.Phases {
		if strings.HasPrefix(p.Name, "build the peers") {
			peerBuild += p.Duration
		}
	}
	run := r.Elapsed - peerBuild
	t := target{Name: "make bench run time, the peers built before", Want: "< 15 min",
		Value: fmt.Sprintf("%s (wijgate's build %.0f s included)", minSec(run), r.BuildSeconds), Met: met(run < 15*time.Minute)}
	if peerBuild > 10*time.Second {
		t.Note = fmt.Sprintf("the peers' first build added %s", minSec(peerBuild))
	}
	return t
}

func minSec(d time.Duration) string {
	d = d.Round(time.Second)
	return fmt.Sprintf("%d min %02d s", int(d.Minutes()), int(d.Seconds())%60)
}

func count(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1_000 && n%1_000 == 0:
		return fmt.Sprintf("%dk", n/1_000)
	}
	return fmt.Sprint(n)
}

func mib(kib int64) string { return fmt.Sprintf("%.1f", float64(kib)/1024) }

// printTable writes the human summary.
func (r *results) printTable(w io.Writer) {
	commit := r.Commit
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if r.Dirty {
		commit += fmt.Sprintf(" + %d uncommitted files", len(r.DirtyFiles))
	}
	s := r.Settings
	fmt.Fprintf(w, "\nwijgate bench (%s) — %s, %s, %d CPUs (%s), %s\n", s.Mode, commit, r.GoVersion, r.CPUs, r.CPUModel, r.Started.Format(time.RFC3339))
	fmt.Fprintf(w, "loopback, %d connections, closed loop, %d interleaved rounds of %v after %v warm-up; ran %.0f s\n",
		s.Concurrency, s.Rounds, s.Round, s.Warm, r.Elapsed.Seconds())
	fmt.Fprintln(w, "Absolute figures are this machine's; compare ratios across machines.")

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	o := r.Overhead
	if len(o.Summaries) > 0 {
		fmt.Fprintf(w, "\n1. Guard overhead — one server, session from the real login (account via `wijgate accounts add`)\n")
		fmt.Fprint(tw, loadHeader)
		for _, x := range o.Summaries {
			label := loadLabels[x.Load]
			if label == "" {
				label = x.Load + " + reverse_proxy"
			}
			loadRow(tw, label, x)
		}
		tw.Flush()
		fmt.Fprintf(w, "guarded/plain req/s: %.3f (median; rounds %s)\n", o.GuardedPlainRatio, floats(o.RatioRounds, "%.3f"))
		if o.GuardedSameRatio > 0 {
			n, names := 0, []string{}
			for _, h := range o.SameHeaders {
				n += len(h.Name) + h.Bytes + 4
				names = append(names, fmt.Sprintf("%s (%d)", h.Name, h.Bytes))
			}
			fmt.Fprintf(w, "guarded / same header bytes req/s: %.3f (rounds %s); same header bytes / plain: %.3f (rounds %s)\n",
				o.GuardedSameRatio, floats(o.GuardedSameRounds, "%.3f"), o.SameHeadersPlain, floats(o.SameHeadersPlainRds, "%.3f"))
			fmt.Fprintf(w, "same header bytes: %d headers, %d bytes, read from what the upstream got from the guard in this run: %s\n", len(o.SameHeaders), n, strings.Join(names, ", "))
		}
		for _, p := range r.Peers {
			build := "cached build"
			if !p.Build.Cached {
				build = fmt.Sprintf("built in %.0f s", p.Build.Seconds)
			}
			if p.Summary == nil {
				fmt.Fprintf(w, "%s %s: NOT MEASURED — %s\n", p.Name, p.Version, p.Error)
				continue
			}
			fmt.Fprintf(w, "%s %s (%s): %s/plain req/s %.3f (rounds %s), p99 added %.3f ms, server %.1f µs/req, VmHWM %s MiB, VmRSS %s MiB\n",
				p.Name, p.Version, build, p.Name, p.PlainRatio, floats(p.RatioRounds, "%.3f"), ms(p.P99Added), p.Summary.ServerCPUPerReq,
				mib(p.Memory.HWMKiB), mib(p.Memory.RSSKiB))
		}
		fmt.Fprintf(w, "p99 added by the guard: %.3f ms (all rounds' requests; per round %s, median %.3f)\n", ms(o.P99Added), durs(o.P99AddedRounds), ms(o.P99AddedMedian))
		fmt.Fprintf(w, "server CPU added by the guard: %.1f µs/request\n", o.ServerCPUAdded)
		be := o.Backend
		fmt.Fprintf(w, "upstream saw %d guarded requests: %d with the guard's identity, %d with X-Wij-Org-Kvk, %d with X-Wij-Assertion; %d forged headers and %d session cookies leaked\n",
			be.Guarded, be.GuardedIdentified, be.GuardedOrg, be.GuardedAssertion, be.ForgedLeaks, be.CookieLeaks)
		fmt.Fprintf(w, "server memory after these rounds: VmHWM %s MiB, VmRSS %s MiB (includes one login's argon2id)\n", mib(o.Memory.HWMKiB), mib(o.Memory.RSSKiB))
	}

	if len(r.Storm) > 0 {
		fmt.Fprintf(w, "\n2. Login storm — %d logins/s through POST /login (half wrong password), %d rounds of %v quiet / %v storm\n",
			r.Storm[0].Rate, s.StormRounds, s.StormRound, s.StormRound)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprint(tw, "client addresses\tguarded p99 quiet\tduring storm\tratio\treq/s ratio\tlogins\tlogged in\twrong→401\trefused 429\tbusy 503\tlogin p50 ms\tlogin p99 ms\thashed p50\thashed p99\tqueued?\t\n")
		for _, x := range r.Storm {
			l := x.Logins
			fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.2f×\t%.3f\t%d\t%d\t%d\t%d\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t\n", x.Variant,
				ms(x.QuietP99), ms(x.StormP99), x.P99Ratio, x.RPSRatio, l.Attempts, l.RightOK, l.WrongRejected, l.Refused, l.Busy,
				ms(l.P50), ms(l.P99), ms(l.P50Hashed), ms(l.P99Hashed), l.StartedBehind)
		}
		tw.Flush()
		fmt.Fprintln(w, "queued? = logins started while as many others were in flight as the server has hashing slots (one per CPU): they probably waited for a slot; the server does not report its queue.")
		fmt.Fprintln(w, "\"many client addresses\" sends each attempt with its own X-Forwarded-For (loopback is a trusted proxy); \"one client address\" is everyone behind 127.0.0.1, which login regulation locks after 5 failures in 10 minutes.")
	}

	sc := r.Scale
	if len(sc.Sizes) > 0 {
		fmt.Fprintf(w, "\n3. Scale — accounts with an eHerkenning-anchored organisation and a session each, seeded through the store; a fresh server per size\n")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprint(tw, "sessions\tstore MiB\tVmRSS at start\thot sessions\tVmHWM hot only\tnew-session req/s\tnew-session p99 ms\tplain req/s\tguarded req/s\tguarded p50 ms\tguarded p99 ms\tguarded/plain\tserver µs/req\tVmHWM MiB\tVmRSS MiB\tRssAnon\tRssFile\t\n")
		for _, z := range sc.Sizes {
			if z.Guarded == nil {
				continue
			}
			fillRPS, fillP99 := "-", "-"
			if z.Fill != nil {
				fillRPS, fillP99 = fmt.Sprintf("%.0f", z.Fill.RPS), fmt.Sprintf("%.3f", ms(z.Fill.P99))
			}
			fmt.Fprintf(tw, "%s\t%.1f\t%s\t%s\t%s\t%s\t%s\t%.0f\t%.0f\t%.3f\t%.3f\t%.3f\t%.1f\t%s\t%s\t%s\t%s\t\n", count(z.Sessions),
				float64(z.StoreAllocated)/(1<<20), mib(z.MemoryStart.RSSKiB), count(z.Hot), mib(z.MemoryHot.HWMKiB), fillRPS, fillP99, z.Plain.RPS, z.Guarded.RPS,
				ms(z.Guarded.P50), ms(z.Guarded.P99), z.GuardedPlainRatio, z.Guarded.ServerCPUPerReq,
				mib(z.Memory.HWMKiB), mib(z.Memory.RSSKiB), mib(z.Memory.AnonKiB), mib(z.Memory.FileKiB))
		}
		if p := sc.PlainOnly.Summary; p != nil {
			fmt.Fprintf(tw, "plain-only Caddy\t\t\t\t\t\t\t%.0f\t\t\t\t\t%.1f\t%s\t%s\t%s\t%s\t\n", p.RPS, p.ServerCPUPerReq,
				mib(sc.PlainOnly.Memory.HWMKiB), mib(sc.PlainOnly.Memory.RSSKiB), mib(sc.PlainOnly.Memory.AnonKiB), mib(sc.PlainOnly.Memory.FileKiB))
		}
		tw.Flush()
		for _, sd := range sc.Seeding {
			fmt.Fprintf(w, "seeded %d..%d in %.1f s (%.0f accounts/s, store.Importer in write batches)\n", sd.From, sd.To-1, sd.Duration.Seconds(), sd.AccountsPerSecond)
		}
		if sc.To > 0 {
			fmt.Fprintf(w, "guarded req/s %s vs %s: %.3f (normalised by plain in the same run: %.3f)\n", count(sc.To), count(sc.From), sc.GuardedRPSRatio, sc.NormalisedRatio)
		}
		if sc.MemoryHWMOverPlain > 0 {
			fmt.Fprintf(w, "memory at %s sessions vs plain-only Caddy: VmHWM %.2f×, VmRSS %.2f× (+%.1f MiB peak) with %s in use; VmHWM %.2f× with the hot ones only\n",
				count(sc.MemoryRatioSize), sc.MemoryHWMOverPlain, sc.MemoryRSSOverPlain, sc.MemoryHWMAddedMiBSize,
				count(min(sc.MemoryRatioSize, r.Settings.Fill)), sc.MemoryHotHWMOverPlain)
		}
	}

	if m := r.Micro; m != nil {
		fmt.Fprintf(w, "\n4. Hot-path micro-benchmarks — %s\n", m.Command)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprint(tw, "package\tbenchmark\tns/op\tB/op\tallocs/op\t\n")
		for _, x := range m.Benchmarks {
			name := strings.TrimPrefix(strings.TrimPrefix(x.Name, "Benchmark"), "HotPath")
			pkg := strings.TrimPrefix(x.Package, "github.com/wijtechniek/wijgate/")
			fmt.Fprintf(tw, "%s\t%s\t%.0f\t%d\t%d\t\n", pkg, name, x.NsPerOp, x.BytesPerOp, x.AllocsPerOp)
		}
		tw.Flush()
	}

	r.printPostgres(w)
	printPhases(w, r.Phases, r.Elapsed)

	if len(r.Targets) > 0 {
		fmt.Fprintf(w, "\nTargets (reported, never asserted)\n")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, t := range r.Targets {
			verdict := "not measured"
			if t.Met != nil {
				verdict = map[bool]string{true: "met", false: "MISSED"}[*t.Met]
			}
			fmt.Fprintf(tw, "%s\t%s\twant %s\t%s\t%s\n", t.Name, t.Value, t.Want, verdict, t.Note)
		}
		tw.Flush()
	}
	if len(r.Disturbed) > 0 {
		fmt.Fprintf(w, "\nDisturbed: in %d segments other processes on this machine used more than %.2f cores; rerun on a quiet machine before trusting these:\n", len(r.Disturbed), disturbedCores)
		for _, d := range r.Disturbed {
			fmt.Fprintf(w, "  %s\n", d)
		}
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "ERROR: %s\n", e)
	}
}

const loadHeader = "route\treq/s\tp50 ms\tp99 ms\tserver µs/req\tloadgen µs/req\tbackend µs/req\tloadgen cores\tother procs cores\tstatus\t\n"

var loadLabels = map[string]string{
	"plain": "plain reverse_proxy", "guarded": "wijgate + reverse_proxy", "same headers": "reverse_proxy + the guard's headers (header_up)",
	"redirect": "no session, browser → 302", "401": "no session, API → 401", "401-forged": "forged cookie → 401",
}

// loadRow is a load's line under loadHeader.
func loadRow(tw io.Writer, label string, x *loadSummary) {
	st := statusString(x.Statuses)
	if x.Errors > 0 {
		st += fmt.Sprintf(" err×%d", x.Errors)
	}
	fmt.Fprintf(tw, "%s\t%.0f\t%.3f\t%.3f\t%.1f\t%.1f\t%.1f\t%.2f\t%.2f\t%s\t\n", label, x.RPS, ms(x.P50), ms(x.P99),
		x.ServerCPUPerReq, x.LoadCPUPerReq, x.BackendCPUPerReq, x.LoadCores, x.OtherCores, st)
}

func statusString(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) == 1 {
		return keys[0]
	}
	var out []string
	for _, k := range keys {
		out = append(out, fmt.Sprintf("%s×%d", k, m[k]))
	}
	return strings.Join(out, " ")
}

func floats(v []float64, f string) string {
	var out []string
	for _, x := range v {
		out = append(out, fmt.Sprintf(f, x))
	}
	return strings.Join(out, " ")
}

func durs(v []time.Duration) string {
	var out []string
	for _, x := range v {
		out = append(out, fmt.Sprintf("%.3f", ms(x)))
	}
	return strings.Join(out, " ")
}

// printPostgres writes the PostgreSQL rows: the copies, the overhead next
// to badger's, the scale sizes next to badger's and the propagation.
func (r *results) printPostgres(w io.Writer) {
	pg := r.Postgres
	if len(pg.Copies) == 0 {
		return
	}
	fmt.Fprintf(w, "\n5. PostgreSQL — the badger store copied into a local PostgreSQL database (caddymodule.CopyStore), servers with `storage postgres://…`\n")
	for _, c := range pg.Copies {
		fmt.Fprintf(w, "copied %s accounts' store: %d records in %.1f s (%.0f records/s); database %.1f MiB\n",
			count(c.Sessions), c.Records, c.Duration.Seconds(), c.RecordsPerSecond, float64(c.DatabaseBytes)/(1<<20))
	}
	if o := pg.Overhead; len(o.Summaries) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprint(tw, loadHeader)
		dbCPU := []string{}
		for _, x := range o.Summaries {
			loadRow(tw, loadLabels[x.Load], x)
			dbCPU = append(dbCPU, fmt.Sprintf("%s %.1f", x.Load, x.DatabaseCPUPerReq))
		}
		tw.Flush()
		fmt.Fprintf(w, "PostgreSQL's CPU, µs/request: %s (the guard's hot path reads nothing from the database)\n", strings.Join(dbCPU, ", "))
		fmt.Fprintf(w, "guarded/plain req/s on PostgreSQL: %.3f (median; rounds %s); badger %.3f; difference %+.3f\n",
			o.GuardedPlainRatio, floats(o.RatioRounds, "%.3f"), pg.BadgerRatio, pg.RatioDifference)
		fmt.Fprintf(w, "p99 added by the guard: %.3f ms; server CPU added: %.1f µs/request; memory after: VmHWM %s MiB, VmRSS %s MiB\n",
			ms(o.P99Added), o.ServerCPUAdded, mib(o.Memory.HWMKiB), mib(o.Memory.RSSKiB))
	}
	if len(pg.Sizes) > 0 {
		badger := map[int]*scaleSize{}
		for _, z := range r.Scale.Sizes {
			badger[z.Sessions] = z
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprint(tw, "sessions\tdatabase MiB\tVmRSS at start\tVmHWM hot only\tnew-session req/s\tbadger\tPostgreSQL/badger\tnew-session p99 ms\tbadger\tnew-session server µs\tdatabase µs\tplain req/s\tguarded req/s\tguarded p99 ms\tguarded/plain\tbadger\tserver µs/req\tVmHWM MiB\tVmRSS MiB\tRssAnon\tRssFile\t\n")
		for _, z := range pg.Sizes {
			if z.Guarded == nil {
				continue
			}
			fillRPS, fillP99, fillCPU, fillDB, bRPS, bP99, vs, bRatio := "-", "-", "-", "-", "-", "-", "-", "-"
			if f := z.Fill; f != nil {
				fillRPS, fillP99 = fmt.Sprintf("%.0f", f.RPS), fmt.Sprintf("%.3f", ms(f.P99))
				fillCPU, fillDB = fmt.Sprintf("%.1f", cpuPer(f.ServerCPU, f.Requests)), fmt.Sprintf("%.1f", cpuPer(f.DatabaseCPU, f.Requests))
			}
			if bz := badger[z.Sessions]; bz != nil {
				bRatio = fmt.Sprintf("%.3f", bz.GuardedPlainRatio)
				if bz.Fill != nil {
					bRPS, bP99 = fmt.Sprintf("%.0f", bz.Fill.RPS), fmt.Sprintf("%.3f", ms(bz.Fill.P99))
					if z.Fill != nil {
						vs = fmt.Sprintf("%.3f", z.Fill.RPS/bz.Fill.RPS)
					}
				}
			}
			fmt.Fprintf(tw, "%s\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.0f\t%.0f\t%.3f\t%.3f\t%s\t%.1f\t%s\t%s\t%s\t%s\t\n", count(z.Sessions),
				float64(z.StoreAllocated)/(1<<20), mib(z.MemoryStart.RSSKiB), mib(z.MemoryHot.HWMKiB), fillRPS, bRPS, vs, fillP99, bP99, fillCPU, fillDB,
				z.Plain.RPS, z.Guarded.RPS, ms(z.Guarded.P99), z.GuardedPlainRatio, bRatio, z.Guarded.ServerCPUPerReq,
				mib(z.Memory.HWMKiB), mib(z.Memory.RSSKiB), mib(z.Memory.AnonKiB), mib(z.Memory.FileKiB))
		}
		tw.Flush()
		fmt.Fprintln(w, "new-session = each request a session new to the server (a cache miss: session, account and memberships read from the store); memory is the wijgate process's, not PostgreSQL's.")
	}
	if len(pg.Propagation) > 0 {
		fmt.Fprintf(w, "propagation between two servers on the database: the change on A, then B asked with the same cookie until it refuses (time from A's answer to B's refusing answer)\n")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "change\tn\tp50 ms\tp99 ms\tmax ms\tB's requests\tnot refused in %v\tB refused with\t\n", propagationTimeout)
		for _, p := range pg.Propagation {
			fmt.Fprintf(tw, "%s\t%d\t%.3f\t%.3f\t%.3f\t%d\t%d\t%s\t\n", p.Change, p.N, ms(p.P50), ms(p.P99), ms(p.Max), p.Polls, p.TimedOut, statusString(p.Statuses))
		}
		tw.Flush()
	}
}
