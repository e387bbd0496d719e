package ehsim_test

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzSSO feeds arbitrary AuthnRequests to the simulator's SSO endpoint:
// it must never panic and only accept what the SP signed.
func FuzzSSO(f *testing.F) {
	e := newEnv(f, "")
	valid := mustDecode(field(e.start(f), "SAMLRequest"))
	f.Add(valid)
	f.Add([]byte(`<!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		form := url.Values{"SAMLRequest": {base64.StdEncoding.EncodeToString(b)}}
		req := httptest.NewRequest(http.MethodPost, e.sim.URL("sso"), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		e.sim.ServeHTTP(w, req)
		if w.Code == http.StatusSeeOther && string(b) != string(valid) {
			t.Fatalf("accepted a mutated AuthnRequest")
		}
	})
}
