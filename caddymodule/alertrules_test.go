package caddymodule

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// TestAlertRulesNameRegisteredMetrics: every metric the shipped alert
// rules (deploy/prometheus) query is registered by a running server, so a
// renamed metric cannot leave an alert that never fires. make
// alerts-check tests the rules' logic with promtool; this ties their
// names to the code. A registry refuses a second collector with a name it
// already has, which is how the test asks it.
func TestAlertRulesNameRegisteredMetrics(t *testing.T) {
	rules, err := os.ReadFile("../deploy/prometheus/wijgate-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, n := range regexp.MustCompile(`\bwijgate_[a-z_]+`).FindAllString(string(rules), -1) {
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			n = strings.TrimSuffix(n, suffix)
		}
		names[n] = true
	}
	if len(names) < 5 {
		t.Fatalf("found only %d metric names in the rules: %v", len(names), names)
	}
	startGateway(t, "observe.caddyfile", gatewayParams{Extra: filepath.Join(t.TempDir(), "audit.log")})
	ctx := caddy.ActiveContext()
	reg := ctx.GetMetricsRegistry()
	for name := range names {
		probe := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "probe"})
		if err := reg.Register(probe); err == nil {
			reg.Unregister(probe)
			t.Errorf("the alert rules query %s, which the server does not register", name)
		}
	}
}
