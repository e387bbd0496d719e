package account

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestHasherReportsQueueWait: a free slot is a wait of zero; a call that
// gives up after the queue timeout reports how long it waited.
func TestHasherReportsQueueWait(t *testing.T) {
	var waits []time.Duration
	h, err := newHasher(HasherOptions{MemoryKiB: 64, Time: 1, Concurrency: 1, QueueTimeout: 30 * time.Millisecond,
		OnWait: func(d time.Duration) { waits = append(waits, d) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := h.acquire(context.Background()); !errors.Is(err, ErrBusy) {
		t.Fatalf("second acquire with the only slot taken: %v", err)
	}
	if len(waits) != 2 || waits[0] != 0 || waits[1] < 30*time.Millisecond {
		t.Fatalf("waits %v, want [0 ≥30ms]", waits)
	}
}
