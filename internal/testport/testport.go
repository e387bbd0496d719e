// Package testport hands tests loopback ports for servers they start
// themselves (Caddy, nginx, a wijgate process) and must name in a config
// before the server binds.
//
// Asking the kernel for port 0 and closing the listener is racy: the port
// comes from the ephemeral range, where every outgoing connection of every
// test binary running in parallel takes its source port, and one of them
// can take it before the server binds. Ports here come from below the
// ephemeral range (Linux's default starts at 32768), which no outgoing
// connection uses, from a random start so parallel test binaries rarely
// meet, and not twice in one process until the range is used up.
package testport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
)

const (
	low  = 20000
	high = 32000
)

var (
	mu   sync.Mutex
	next = low + rand.IntN(high-low)
)

// Pick returns a loopback port that was free a moment ago and that this
// process has not handed out before.
func Pick(t testing.TB) int {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	for range high - low {
		port := next
		next++
		if next >= high {
			next = low
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		l.Close()
		return port
	}
	t.Fatal("testport: no free loopback port below the ephemeral range")
	return 0
}

// Addr returns "127.0.0.1:port" for a port from Pick.
func Addr(t testing.TB) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", Pick(t))
}
