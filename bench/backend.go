package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The upstream behind both routes is as cheap as an HTTP server can be: a
// raw HTTP/1.1 keep-alive loop that answers every request with the same
// two bytes. It runs as its own process (this program with -mode
// backend), so its CPU use is counted apart from the load generator's.
//
// It also checks what the guard promised: on guarded paths the client's
// forged X-Wij-User-Id must be gone, a real one and the organisation
// present, and wijgate's session cookie removed.

// backendStats are the backend's counters, served as JSON at /__stats.
type backendStats struct {
	Requests int64 `json:"requests"`
	Plain    int64 `json:"plain"`
	Guarded  int64 `json:"guarded"`
	// GuardedIdentified carries an X-Wij-User-Id that the guard set.
	GuardedIdentified int64 `json:"guarded_identified"`
	// GuardedOrg carries X-Wij-Org-Kvk.
	GuardedOrg int64 `json:"guarded_org"`
	// GuardedAssertion carries X-Wij-Assertion.
	GuardedAssertion int64 `json:"guarded_assertion"`
	// ForgedLeaks reached a guarded path with the client's forged header.
	ForgedLeaks int64 `json:"forged_leaks"`
	// CookieLeaks reached a guarded path with wijgate's session cookie.
	CookieLeaks int64 `json:"cookie_leaks"`
}

type backendCounters struct {
	requests, plain, guarded, identified, org, assertion, forged, cookie atomic.Int64

	// captured holds the header lines of the last request to each path
	// ending in /__capture, served at /__captured: what a route sent.
	mu       sync.Mutex
	captured map[string][]string
}

func (c *backendCounters) snapshot() backendStats {
	return backendStats{
		Requests: c.requests.Load(), Plain: c.plain.Load(), Guarded: c.guarded.Load(),
		GuardedIdentified: c.identified.Load(), GuardedOrg: c.org.Load(), GuardedAssertion: c.assertion.Load(),
		ForgedLeaks: c.forged.Load(), CookieLeaks: c.cookie.Load(),
	}
}

var backendResponse = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")

// runBackend serves until the process is stopped.
func runBackend(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	var c backendCounters
	for {
		conn, err := l.Accept()
		if err != nil {
			return err
		}
		go serveBackendConn(conn, &c)
	}
}

var (
	hdrUserID     = []byte("x-wij-user-id:")
	hdrOrgKvK     = []byte("x-wij-org-kvk:")
	hdrAssertion  = []byte("x-wij-assertion:")
	hdrCookie     = []byte("cookie:")
	hdrLength     = []byte("content-length:")
	forgedValue   = []byte(forgedIdentity)
	sessionCookie = []byte(cookieName + "=")
	captureSuffix = []byte("/__capture")
)

func serveBackendConn(conn net.Conn, c *backendCounters) {
	defer conn.Close()
	br := bufio.NewReaderSize(conn, 16<<10)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		var path []byte
		if f := bytes.Fields(line); len(f) >= 2 {
			path = f[1]
		}
		guarded := bytes.HasPrefix(path, []byte("/g/"))
		capture := bytes.HasSuffix(path, captureSuffix)
		var identified, org, assertion, forged, cookie bool
		var lines []string
		bodyLen := 0
		for {
			h, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(h) <= 2 {
				break
			}
			if capture {
				lines = append(lines, string(bytes.TrimRight(h, "\r\n")))
			}
			switch {
			case hasPrefixFold(h, hdrLength):
				bodyLen, _ = strconv.Atoi(string(bytes.TrimSpace(h[len(hdrLength):])))
			case !guarded:
			case hasPrefixFold(h, hdrUserID):
				identified = true
				forged = forged || bytes.Contains(h, forgedValue)
			case hasPrefixFold(h, hdrOrgKvK):
				org = true
			case hasPrefixFold(h, hdrAssertion):
				assertion = true
			case hasPrefixFold(h, hdrCookie):
				cookie = cookie || bytes.Contains(h, sessionCookie)
			}
		}
		if bodyLen > 0 {
			if _, err := br.Discard(bodyLen); err != nil {
				return
			}
		}
		c.requests.Add(1)
		if capture {
			c.mu.Lock()
			if c.captured == nil {
				c.captured = map[string][]string{}
			}
			c.captured[string(path)] = lines
			c.mu.Unlock()
		}
		switch {
		case bytes.Equal(path, []byte("/__stats")):
			b, _ := json.Marshal(c.snapshot())
			fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(b), b)
			continue
		case bytes.Equal(path, []byte("/__captured")):
			c.mu.Lock()
			b, _ := json.Marshal(c.captured)
			c.mu.Unlock()
			fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(b), b)
			continue
		case guarded:
			c.guarded.Add(1)
			countIf(&c.identified, identified && !forged)
			countIf(&c.org, org)
			countIf(&c.assertion, assertion)
			countIf(&c.forged, forged)
			countIf(&c.cookie, cookie)
		default:
			c.plain.Add(1)
		}
		if _, err := conn.Write(backendResponse); err != nil {
			return
		}
	}
}

func countIf(n *atomic.Int64, ok bool) {
	if ok {
		n.Add(1)
	}
}

func hasPrefixFold(b, lowerPrefix []byte) bool {
	if len(b) < len(lowerPrefix) {
		return false
	}
	for i, c := range lowerPrefix {
		x := b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if x != c {
			return false
		}
	}
	return true
}

// fetchBackendStats reads the backend's counters.
func fetchBackendStats(addr string) (backendStats, error) {
	var s backendStats
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + addr + "/__stats")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(b, &s)
}

func (s backendStats) minus(o backendStats) backendStats {
	return backendStats{
		Requests: s.Requests - o.Requests, Plain: s.Plain - o.Plain, Guarded: s.Guarded - o.Guarded,
		GuardedIdentified: s.GuardedIdentified - o.GuardedIdentified, GuardedOrg: s.GuardedOrg - o.GuardedOrg,
		GuardedAssertion: s.GuardedAssertion - o.GuardedAssertion,
		ForgedLeaks:      s.ForgedLeaks - o.ForgedLeaks, CookieLeaks: s.CookieLeaks - o.CookieLeaks,
	}
}
