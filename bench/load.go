package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The load generator is a closed loop: a fixed number of connections, each
// sending its next request as soon as the previous answer is read. It
// speaks raw HTTP/1.1 over keep-alive connections with the requests
// serialised in advance, so that it spends as little CPU per request as
// possible on a machine it shares with the server.

// load is one kind of request: a route and the answer it should get.
type load struct {
	name   string
	status int
	// reqs are complete serialised requests; the workers go through them
	// in turn (many entries: many distinct session cookies).
	reqs [][]byte
	// at is the server the load goes to when not the phase's own (a
	// peer's).
	at *server
}

// segment is one timed run of one load at fixed concurrency.
type segment struct {
	Load        string        `json:"load"`
	Round       int           `json:"round"`
	Concurrency int           `json:"concurrency"`
	Duration    time.Duration `json:"duration_ns"`
	Requests    int64         `json:"requests"`
	RPS         float64       `json:"rps"`
	P50         time.Duration `json:"p50_ns"`
	P90         time.Duration `json:"p90_ns"`
	P99         time.Duration `json:"p99_ns"`
	P999        time.Duration `json:"p999_ns"`
	Max         time.Duration `json:"max_ns"`
	// Unexpected counts answers with another status than the load's.
	Unexpected int64          `json:"unexpected"`
	Statuses   map[string]int `json:"statuses"`
	Errors     int64          `json:"errors"`
	FirstError string         `json:"first_error,omitempty"`
	// CPU used during the measured window, by process.
	ServerCPU  time.Duration `json:"server_cpu_ns"`
	BackendCPU time.Duration `json:"backend_cpu_ns"`
	LoadCPU    time.Duration `json:"loadgen_cpu_ns"`
	// DatabaseCPU is the run's PostgreSQL's, once it has started.
	DatabaseCPU time.Duration `json:"database_cpu_ns,omitempty"`
	// OtherCPU is what the rest of the machine used meanwhile: all busy
	// CPU minus the server's, the backend's, the database's and the load
	// generator's.
	// Anything large here means the figures are disturbed.
	OtherCPU time.Duration `json:"other_cpu_ns"`
	StealCPU time.Duration `json:"steal_cpu_ns"`

	latencies []int64
}

// cpuPer is CPU per request in microseconds.
func cpuPer(d time.Duration, n int64) float64 {
	if n == 0 {
		return 0
	}
	return float64(d.Nanoseconds()) / float64(n) / 1e3
}

// runLoad drives l against addr with conc connections: a warm-up that is
// not measured, then dur measured. serverPID and backendPID are sampled
// for CPU at the window's edges.
func runLoad(addr string, l *load, conc int, warm, dur time.Duration, serverPID, backendPID int) (*segment, error) {
	if len(l.reqs) == 0 {
		return nil, errors.New("load without requests")
	}
	var (
		next       atomic.Uint64
		measuring  atomic.Bool
		stop       atomic.Bool
		wg         sync.WaitGroup
		mu         sync.Mutex
		errs       int64
		firstErr   string
		unexpected int64
		statuses   = map[int]int{}
		lats       = make([][]int64, conc)
	)
	record := func(err error) {
		mu.Lock()
		errs++
		if firstErr == "" {
			firstErr = err.Error()
		}
		mu.Unlock()
	}
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]int64, 0, 1<<15)
			localStatus := map[int]int{}
			var localUnexpected int64
			var conn net.Conn
			var br *bufio.Reader
			for !stop.Load() {
				if conn == nil {
					c, err := net.DialTimeout("tcp", addr, 5*time.Second)
					if err != nil {
						record(err)
						time.Sleep(10 * time.Millisecond)
						continue
					}
					conn, br = c, bufio.NewReaderSize(c, 16<<10)
				}
				req := l.reqs[0]
				if len(l.reqs) > 1 {
					req = l.reqs[(next.Add(1)-1)%uint64(len(l.reqs))]
				}
				on := measuring.Load()
				t0 := time.Now()
				_, err := conn.Write(req)
				var status int
				var keep bool
				if err == nil {
					status, keep, err = readResponse(br)
				}
				lat := time.Since(t0)
				if err != nil {
					if on && !stop.Load() {
						record(err)
					}
					conn.Close()
					conn = nil
					continue
				}
				if !keep {
					conn.Close()
					conn = nil
				}
				if on && measuring.Load() {
					local = append(local, int64(lat))
					localStatus[status]++
					if status != l.status {
						localUnexpected++
					}
				}
			}
			if conn != nil {
				conn.Close()
			}
			mu.Lock()
			lats[w] = local
			for s, n := range localStatus {
				statuses[s] += n
			}
			unexpected += localUnexpected
			mu.Unlock()
		}()
	}
	time.Sleep(warm)
	srv0, _ := procCPU(serverPID)
	be0, _ := procCPU(backendPID)
	db0 := databaseCPU()
	self0 := selfCPU()
	busy0, steal0 := machineCPU()
	start := time.Now()
	measuring.Store(true)
	time.Sleep(dur)
	measuring.Store(false)
	elapsed := time.Since(start)
	srv1, _ := procCPU(serverPID)
	be1, _ := procCPU(backendPID)
	db1 := databaseCPU()
	self1 := selfCPU()
	busy1, steal1 := machineCPU()
	stop.Store(true)
	wg.Wait()

	s := &segment{
		Load: l.name, Concurrency: conc, Duration: elapsed,
		Unexpected: unexpected, Errors: errs, FirstError: firstErr,
		ServerCPU: srv1 - srv0, BackendCPU: be1 - be0, LoadCPU: self1 - self0, DatabaseCPU: db1 - db0,
		StealCPU: steal1 - steal0, Statuses: map[string]int{},
	}
	s.OtherCPU = max(0, (busy1-busy0)-s.ServerCPU-s.BackendCPU-s.DatabaseCPU-s.LoadCPU)
	for st, n := range statuses {
		s.Statuses[strconv.Itoa(st)] = n
	}
	all := slices.Concat(lats...)
	s.Requests = int64(len(all))
	s.RPS = float64(len(all)) / elapsed.Seconds()
	s.latencies = all
	slices.Sort(all)
	s.P50, s.P90, s.P99, s.P999 = pct(all, 0.50), pct(all, 0.90), pct(all, 0.99), pct(all, 0.999)
	if len(all) > 0 {
		s.Max = time.Duration(all[len(all)-1])
	}
	if s.Requests == 0 {
		return s, fmt.Errorf("%s: no request completed (%d errors, first: %s)", l.name, errs, firstErr)
	}
	return s, nil
}

// pct is the q-quantile of sorted latencies (nearest rank).
func pct(sorted []int64, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return time.Duration(sorted[i])
}

// pooled merges segments' latencies into one sorted slice.
func pooled(segs []*segment) []int64 {
	var all []int64
	for _, s := range segs {
		all = append(all, s.latencies...)
	}
	slices.Sort(all)
	return all
}

var (
	respContentLength    = []byte("content-length:")
	respTransferEncoding = []byte("transfer-encoding:")
	respConnection       = []byte("connection:")
)

// readResponse reads one HTTP/1.1 response and discards its body. keep is
// false when the server will close the connection.
func readResponse(br *bufio.Reader) (status int, keep bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, fmt.Errorf("malformed status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, fmt.Errorf("malformed status line %q", line)
	}
	keep = true
	length, chunked := -1, false
	for {
		h, err := br.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		if len(h) <= 2 {
			break
		}
		switch {
		case hasPrefixFold(h, respContentLength):
			length, err = strconv.Atoi(string(bytes.TrimSpace(h[len(respContentLength):])))
			if err != nil {
				return 0, false, fmt.Errorf("bad Content-Length %q", h)
			}
		case hasPrefixFold(h, respTransferEncoding):
			chunked = bytes.Contains(bytes.ToLower(h), []byte("chunked"))
		case hasPrefixFold(h, respConnection):
			if bytes.Contains(bytes.ToLower(h), []byte("close")) {
				keep = false
			}
		}
	}
	switch {
	case chunked:
		for {
			sz, err := br.ReadSlice('\n')
			if err != nil {
				return 0, false, err
			}
			hex, _, _ := bytes.Cut(bytes.TrimSpace(sz), []byte(";"))
			n, err := strconv.ParseInt(string(hex), 16, 64)
			if err != nil {
				return 0, false, fmt.Errorf("bad chunk size %q", sz)
			}
			if n == 0 {
				// Trailers, then the empty line.
				for {
					t, err := br.ReadSlice('\n')
					if err != nil {
						return 0, false, err
					}
					if len(t) <= 2 {
						return status, keep, nil
					}
				}
			}
			if _, err := br.Discard(int(n) + 2); err != nil {
				return 0, false, err
			}
		}
	case length > 0:
		_, err = br.Discard(length)
	case length < 0 && status != 204 && status != 304 && status >= 200:
		// No length and not chunked: the body runs to the close.
		_, err = io.Copy(io.Discard, br)
		keep = false
	}
	return status, keep, err
}

// requestOpts describe one serialised request.
type requestOpts struct {
	host, path, accept string
	navigate           bool
	cookie             string // session cookie value, or ""
	// peerCookie is another gateway's session cookie, name=value.
	peerCookie string
}

// forgedIdentity is the X-Wij-User-Id every benchmark request carries, as
// a client trying to pass itself off as someone; the guard must drop it.
const forgedIdentity = "forged-by-client"

// buildRequest serialises a GET the way a browser or API client sends it:
// a handful of ordinary headers, other cookies next to the session cookie,
// and a forged identity header.
func buildRequest(o requestOpts) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: wijgate-bench/1\r\n", o.path, o.host)
	fmt.Fprintf(&b, "Accept: %s\r\nAccept-Language: nl-NL,nl;q=0.9,en;q=0.8\r\n", o.accept)
	if o.navigate {
		b.WriteString("Sec-Fetch-Mode: navigate\r\nSec-Fetch-Site: none\r\n")
	}
	b.WriteString("X-Wij-User-Id: " + forgedIdentity + "\r\n")
	b.WriteString("Cookie: _pk_id.1.1fff=5c8e4b2a1d3f6e7a.1700000000.; lang=nl")
	if o.cookie != "" {
		b.WriteString("; " + cookieName + "=" + o.cookie)
	}
	if o.peerCookie != "" {
		b.WriteString("; " + o.peerCookie)
	}
	b.WriteString("\r\n\r\n")
	return b.Bytes()
}

// pass is one trip through a list of requests, each sent once.
type pass struct {
	Requests  int64          `json:"requests"`
	Duration  time.Duration  `json:"duration_ns"`
	RPS       float64        `json:"rps"`
	P50       time.Duration  `json:"p50_ns"`
	P99       time.Duration  `json:"p99_ns"`
	Statuses  map[string]int `json:"statuses"`
	Errors    int64          `json:"errors"`
	ServerCPU time.Duration  `json:"server_cpu_ns"`
	// DatabaseCPU is the run's PostgreSQL's, once it has started.
	DatabaseCPU time.Duration `json:"database_cpu_ns,omitempty"`
	FirstError  string        `json:"first_error,omitempty"`
}

// runPass sends every request in reqs once, over conc connections.
func runPass(addr string, reqs [][]byte, conc int, serverPID int) (*pass, error) {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		mu   sync.Mutex
		lats []int64
		p    = &pass{Statuses: map[string]int{}}
	)
	cpu0, _ := procCPU(serverPID)
	db0 := databaseCPU()
	t0 := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []int64
			status := map[int]int{}
			var errs int64
			var first string
			var conn net.Conn
			var br *bufio.Reader
			for {
				i := next.Add(1) - 1
				if i >= int64(len(reqs)) {
					break
				}
				if conn == nil {
					c, err := net.DialTimeout("tcp", addr, 5*time.Second)
					if err != nil {
						errs++
						first = err.Error()
						continue
					}
					conn, br = c, bufio.NewReaderSize(c, 16<<10)
				}
				t := time.Now()
				_, err := conn.Write(reqs[i])
				var st int
				keep := false
				if err == nil {
					st, keep, err = readResponse(br)
				}
				if err != nil {
					errs++
					first = err.Error()
					conn.Close()
					conn = nil
					continue
				}
				local = append(local, int64(time.Since(t)))
				status[st]++
				if !keep {
					conn.Close()
					conn = nil
				}
			}
			if conn != nil {
				conn.Close()
			}
			mu.Lock()
			lats = append(lats, local...)
			for s, n := range status {
				p.Statuses[strconv.Itoa(s)] += n
			}
			p.Errors += errs
			if first != "" && p.FirstError == "" {
				p.FirstError = first
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	p.Duration = time.Since(t0)
	cpu1, _ := procCPU(serverPID)
	p.ServerCPU, p.DatabaseCPU = cpu1-cpu0, databaseCPU()-db0
	slices.Sort(lats)
	p.Requests = int64(len(lats))
	p.RPS = float64(len(lats)) / p.Duration.Seconds()
	p.P50, p.P99 = pct(lats, 0.5), pct(lats, 0.99)
	if p.Errors > 0 && p.Requests == 0 {
		return p, fmt.Errorf("no request answered: %s", p.FirstError)
	}
	return p, nil
}
