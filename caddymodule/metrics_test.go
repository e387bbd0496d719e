package caddymodule

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/wijtechniek/wijgate/caddymodule/observe"
)

// TestEveryKindHasAMetric: an event kind without a row would reach the
// audit stream but no metric.
func TestEveryKindHasAMetric(t *testing.T) {
	for _, kind := range observe.Kinds {
		m, ok := eventMetrics[kind]
		if !ok {
			t.Errorf("event kind %s has no metric", kind)
			continue
		}
		if len(m.labels) > 3 {
			t.Errorf("%s has %d labels; eventCounters.count fills at most 3", m.name, len(m.labels))
		}
		for _, label := range m.labels {
			if labelValue(&observe.Event{Outcome: "o", Reason: "r", App: "a"}, label) == "" {
				t.Errorf("%s's label %s takes no field of the event", m.name, label)
			}
		}
	}
	if len(eventMetrics) != len(observe.Kinds) {
		t.Errorf("%d metrics for %d kinds", len(eventMetrics), len(observe.Kinds))
	}
}

// BenchmarkGuardEvent is what the guard adds to each request: counting
// its decision.
func BenchmarkGuardEvent(b *testing.B) {
	counters, err := newEventCounters(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	sink := &eventSink{counters: counters, audit: zap.NewNop()}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			sink.Record(observe.Event{Kind: observe.Guard, App: "declaratie", Outcome: "through"})
		}
	})
}
