package portal

import (
	"encoding/json"
	"net/http"
)

// ReadyCheck is one part of /readyz. Unlike a HealthCheck it may look a
// little further (certificates, the broker's metadata, the mail relay's
// last answer), but still only at state kept in memory.
type ReadyCheck struct {
	// Name names the check in the answer, e.g. "storage".
	Name string
	// Critical marks a check whose failure takes the server out of a load
	// balancer's rotation (503): only what stops the guarded apps.
	Critical bool
	Check    func() Readiness
}

// Readiness is what a ReadyCheck saw.
type Readiness struct {
	OK bool `json:"ok"`
	// Detail says in a few words what is wrong or what was seen.
	Detail string `json:"detail,omitempty"`
	// Facts are figures for operators: ages, expiry times.
	Facts map[string]any `json:"facts,omitempty"`
}

// readyAnswer is /readyz's JSON.
type readyAnswer struct {
	// Status is ready, degraded (a check that does not stop the guarded
	// apps failed) or not_ready.
	Status string       `json:"status"`
	Checks []readyCheck `json:"checks"`
}

type readyCheck struct {
	Name     string `json:"name"`
	Critical bool   `json:"critical"`
	Readiness
}

// readyz answers JSON for operators and the status for load balancers:
// 503 when a critical check fails, else 200 (also when degraded).
func (p *Portal) readyz(w http.ResponseWriter, r *http.Request) {
	answer := readyAnswer{Status: "ready", Checks: []readyCheck{}}
	status := http.StatusOK
	for _, c := range p.cfg.Ready {
		res := c.Check()
		answer.Checks = append(answer.Checks, readyCheck{Name: c.Name, Critical: c.Critical, Readiness: res})
		switch {
		case res.OK:
		case c.Critical:
			answer.Status, status = "not_ready", http.StatusServiceUnavailable
		case status == http.StatusOK:
			answer.Status = "degraded"
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(answer)
}
