package caddymodule

import (
	"testing"

	"github.com/wijtechniek/wijgate/caddymodule/contract"
)

// TestHeaderValuesFollowTheContract checks the guard's header value of
// every fact against its placeholder value, encoded as the contract says,
// and that organisation facts are absent without an organisation.
func TestHeaderValuesFollowTheContract(t *testing.T) {
	id := &identity{id: "u-1", email: "jan@example.nl", name: "Jan Jänssen 100%"}
	id.nameHeader = contract.UserName.Encoding().Encode(id.name)
	apps := []string{"declaratie", "rie"}
	o := &orgIdentity{kvk: "12345678", name: "Bouw & Zoon Müller", role: "admin", assurance: "eh3",
		apps: apps, appsHeader: contract.JoinList(apps)}
	o.nameHeader = contract.OrgName.Encoding().Encode(o.name)
	for _, f := range contract.All() {
		if f == contract.Assertion {
			continue
		}
		want := f.Encoding().Encode(factValue(id, o, f))
		if got := headerValue(id, o, f); got != want || got == "" {
			t.Errorf("%s = %q, want %q", f.Header(), got, want)
		}
		for _, p := range f.Placeholders() {
			if got, ok := (&placeholders{id: id, active: o}).replace(p); !ok || got != factValue(id, o, f) {
				t.Errorf("{%s} = %v, want %q", p, got, factValue(id, o, f))
			}
		}
		if got := headerValue(id, nil, f); f.NeedsOrg() != (got == "") {
			t.Errorf("without an organisation %s = %q", f.Header(), got)
		}
	}
	if got := headerValue(id, o, contract.UserName); got != "Jan J%C3%A4nssen 100%25" {
		t.Errorf("the user name is sent as %q", got)
	}
}
