package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// The collector's share of the server's CPU is read from GODEBUG=gctrace=1
// rather than from runtime/metrics: the trace needs no endpoint in the
// product, and its "ms cpu" figures include the idle-time marking that
// /proc also charges to the process, so the share is of the same CPU the
// server µs/request figures count.

// gcWindow is the collector's work between two moments of a server's life.
type gcWindow struct {
	Cycles int           `json:"cycles"`
	GCCPU  time.Duration `json:"gc_cpu_ns"`
	// ServerCPU is the process's CPU over the same window, from /proc.
	ServerCPU time.Duration `json:"server_cpu_ns"`
	Share     float64       `json:"gc_share_of_server_cpu"`
}

// gcMark is where a window starts: the log's length and the CPU used.
type gcMark struct {
	offset int64
	cpu    time.Duration
}

func markGC(s *server) (gcMark, error) {
	fi, err := os.Stat(s.logPath)
	if err != nil {
		return gcMark{}, err
	}
	cpu, err := procCPU(s.pid())
	return gcMark{offset: fi.Size(), cpu: cpu}, err
}

// gcSince sums the collections the server logged since m.
func gcSince(s *server, m gcMark) (gcWindow, error) {
	var w gcWindow
	cpu, err := procCPU(s.pid())
	if err != nil {
		return w, err
	}
	w.ServerCPU = cpu - m.cpu
	f, err := os.Open(s.logPath)
	if err != nil {
		return w, err
	}
	defer f.Close()
	if _, err := f.Seek(m.offset, io.SeekStart); err != nil {
		return w, err
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if d, ok := gctraceCPU(sc.Text()); ok {
			w.Cycles++
			w.GCCPU += d
		}
	}
	if w.ServerCPU > 0 {
		w.Share = w.GCCPU.Seconds() / w.ServerCPU.Seconds()
	}
	return w, sc.Err()
}

// gctraceCPU reads the CPU of one gctrace line,
//
//	gc 7 @1.2s 3%: 0.01+1.1+0.02 ms clock, 0.03+0.2/0.8/0.3+0.04 ms cpu, 4->4->2 MB, …
//
// summing its "ms cpu" terms: sweep termination, assist, background and
// idle marking, mark termination.
func gctraceCPU(line string) (time.Duration, bool) {
	if !strings.HasPrefix(line, "gc ") {
		return 0, false
	}
	_, rest, ok := strings.Cut(line, " ms clock, ")
	if !ok {
		return 0, false
	}
	terms, _, ok := strings.Cut(rest, " ms cpu")
	if !ok {
		return 0, false
	}
	var ms float64
	for t := range strings.FieldsFuncSeq(terms, func(r rune) bool { return r == '+' || r == '/' }) {
		v, err := strconv.ParseFloat(t, 64)
		if err != nil {
			return 0, false
		}
		ms += v
	}
	return time.Duration(ms * float64(time.Millisecond)), true
}

// liveHeap collects garbage in the server (the heap profile endpoint's
// gc=1) and then reads the heap in use from its expvar memstats: the
// bytes live objects hold, without what the collector lets pile up.
func liveHeap(s *server) (uint64, error) {
	client := &http.Client{Timeout: time.Minute}
	resp, err := client.Get("http://" + s.adminAddr + "/debug/pprof/heap?gc=1")
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	resp, err = client.Get("http://" + s.adminAddr + "/debug/vars")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var vars struct {
		Memstats struct {
			HeapAlloc uint64
		} `json:"memstats"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&vars); err != nil {
		return 0, fmt.Errorf("/debug/vars: %w", err)
	}
	return vars.Memstats.HeapAlloc, nil
}

// touchWrites is how many idle-tracking writes the server has made: the
// count of its store-latency histogram for them, from /metrics.
func touchWrites(s *server) (int, error) {
	resp, err := (&http.Client{Timeout: time.Minute}).Get("http://" + s.adminAddr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	const series = `wijgate_store_operation_seconds_count{operation="touch_sessions"} `
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series); ok {
			n, err := strconv.ParseFloat(v, 64)
			return int(n), err
		}
	}
	// No write yet: the series appears with the first.
	return 0, sc.Err()
}
