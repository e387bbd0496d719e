package portal

import (
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// Refusals reach the operator's log at most once a
// minute per account, with the count of those held back, in bounded
// memory.
func TestRefusalLogHoldsBackRepeats(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	l := newRefusalLog(zap.New(core), func() time.Time { return now })

	for range 1000 {
		l.log("u-mallory", zap.String("kvk", "22222222"))
	}
	l.log("u-piet")
	if n := logs.Len(); n != 2 {
		t.Fatalf("%d lines for 1000 refusals of one account and one of another, want 2", n)
	}
	now = now.Add(refusalLogInterval)
	l.log("u-mallory")
	last := logs.All()[logs.Len()-1].ContextMap()
	if last["account"] != "u-mallory" || last["held_back"] != int64(999) {
		t.Fatalf("the next minute's line: %v", last)
	}

	// Many accounts at once: memory stays bounded, and what was held
	// back is still counted.
	for i := range 3 * refusalLogActors {
		l.log(fmt.Sprintf("u-%d", i))
	}
	if len(l.actors) > refusalLogActors {
		t.Fatalf("%d accounts remembered", len(l.actors))
	}
	now = now.Add(refusalLogInterval)
	l.log("u-someone")
	last = logs.All()[logs.Len()-1].ContextMap()
	if last["held_back_other_accounts"] == nil {
		t.Fatalf("the lines held back for a full table are not reported: %v", last)
	}
}
