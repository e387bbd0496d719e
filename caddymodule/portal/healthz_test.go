package portal

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// A failing critical check makes /healthz 503 whatever else fails; a
// failing check that is not critical only marks it degraded.
func TestHealthzSeparatesCriticalChecks(t *testing.T) {
	check := func(ok bool, detail string) func() (bool, string) {
		return func() (bool, string) { return ok, detail }
	}
	for _, tc := range []struct {
		name   string
		checks []HealthCheck
		status int
		body   string
	}{
		{"all well", []HealthCheck{{Name: "storage", Check: check(true, "ok"), Critical: true}, {Name: "broker", Check: check(true, "ok")}},
			http.StatusOK, "ok\nstorage: ok\nbroker: ok\n"},
		{"broker down", []HealthCheck{{Name: "storage", Check: check(true, "ok"), Critical: true}, {Name: "broker", Check: check(false, "unavailable")}},
			http.StatusOK, "degraded\nstorage: ok\nbroker: unavailable\n"},
		{"storage full", []HealthCheck{{Name: "storage", Check: check(false, "full"), Critical: true}, {Name: "broker", Check: check(true, "ok")}},
			http.StatusServiceUnavailable, "unhealthy\nstorage: full\nbroker: ok\n"},
		{"both", []HealthCheck{{Name: "broker", Check: check(false, "unavailable")}, {Name: "storage", Check: check(false, "full"), Critical: true}},
			http.StatusServiceUnavailable, "unhealthy\nbroker: unavailable\nstorage: full\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(Config{Health: tc.checks})
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			p.healthz(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
			if rec.Code != tc.status || rec.Body.String() != tc.body {
				t.Errorf("got %d %q, want %d %q", rec.Code, rec.Body.String(), tc.status, tc.body)
			}
		})
	}
}
