package devmodules

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"
)

func TestSimulatorCaddyfile(t *testing.T) {
	var s Simulator
	err := s.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`eherkenning_simulator {
		base_url     http://localhost:8080/ehsim/
		sp_metadata  http://localhost:8080/eherkenning/metadata
		service_uuid 5a1b3c4d-0000-4000-8000-00000000a001
		allow_remote
	}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Simulator{BaseURL: "http://localhost:8080/ehsim/", SPMetadata: "http://localhost:8080/eherkenning/metadata",
		ServiceUUID: "5a1b3c4d-0000-4000-8000-00000000a001", AllowRemote: true}
	if s != want {
		t.Fatalf("parsed %+v, want %+v", s, want)
	}
	for _, bad := range []string{
		`eherkenning_simulator extra`,
		`eherkenning_simulator {
			allow_remote yes
		}`,
		`eherkenning_simulator {
			base_url
		}`,
		`eherkenning_simulator {
			base_url a b
		}`,
		`eherkenning_simulator {
			broker http://x
		}`,
	} {
		if err := new(Simulator).UnmarshalCaddyfile(caddyfile.NewTestDispenser(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	if err := (&Simulator{BaseURL: "http://localhost:8080/ehsim/"}).Provision(caddy.Context{}); err == nil {
		t.Error("accepted a simulator without sp_metadata")
	}
	if err := (&Simulator{SPMetadata: "http://localhost:8080/eherkenning/metadata"}).Provision(caddy.Context{}); err == nil {
		t.Error("accepted a simulator without base_url")
	}
}

// TestSimulatorRefusesOtherMachines: without allow_remote the simulator
// answers a client elsewhere with a refusal and never reaches the engine
// (nil here, so reaching it would panic).
func TestSimulatorRefusesOtherMachines(t *testing.T) {
	s := &Simulator{logger: zap.NewNop()}
	req := httptest.NewRequest(http.MethodGet, "/ehsim/metadata", nil)
	req.RemoteAddr = "192.0.2.7:50000"
	rec := httptest.NewRecorder()
	if err := s.ServeHTTP(rec, req, nil); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "can only be used on the computer wijgate runs on") {
		t.Fatalf("got %d %q", rec.Code, rec.Body.String())
	}
	for _, ip := range []string{"127.0.0.1", "::1", "::ffff:127.0.0.1"} {
		if !isLoopback(ip) {
			t.Errorf("%s is not loopback", ip)
		}
	}
	for _, ip := range []string{"192.0.2.7", "", "localhost"} {
		if isLoopback(ip) {
			t.Errorf("%q counted as loopback", ip)
		}
	}
}

func TestDemoAppCaddyfile(t *testing.T) {
	var d DemoApp
	err := d.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`wijgate_demo_app Declaratie Systeem {
		jwks     http://localhost:8080/.well-known/jwks.json
		issuer   http://localhost:8080
		audience declaratie
	}`))
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "Declaratie Systeem" || d.JWKS != "http://localhost:8080/.well-known/jwks.json" || d.Issuer != "http://localhost:8080" || d.Audience != "declaratie" {
		t.Fatalf("parsed %+v", d)
	}
	if err := new(DemoApp).UnmarshalCaddyfile(caddyfile.NewTestDispenser(`wijgate_demo_app x {
		colour blue
	}`)); err == nil {
		t.Error("accepted an unknown option")
	}
}
