package caddymodule

import (
	"testing"

	"github.com/wijtechniek/wijgate/caddymodule/contract"
)

// TestHeaderValuesFollowTheContract checks the guard's header value of
// every fact against its placeholder value, encoded as the contract says,
// and that organisation facts are absent without an organisation.
func TestHeaderValuesFollowTheContract(t *testing.T) {
	id, err := new(termsTable).pack(identityFacts{id: "u-1", email: "jan@example.nl", name: "Jan Jänssen 100%",
		orgs: []orgFacts{{kvk: "12345678", name: "Bouw & Zoon Müller", role: "admin", assurance: "eh3",
			apps: []string{"declaratie", "rie"}}}})
	if err != nil {
		t.Fatal(err)
	}
	o := id.org(0)
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
