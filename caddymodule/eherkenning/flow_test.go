package eherkenning

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestSimulatorFlow runs the whole login through the simulator's pages for
// each scenario, over the Artifact and the POST response bindings and with
// the request sent by POST or Redirect.
func TestSimulatorFlow(t *testing.T) {
	type want struct {
		code   Code
		level  string
		branch string
	}
	cases := []struct {
		name     string
		opts     harnessOpts
		company  string
		scenario string
		want     want
	}{
		{"artifact_eh3", harnessOpts{}, "12345678", "eh3", want{level: LevelLoA3}},
		{"artifact_eh4", harnessOpts{}, "12345678", "eh4", want{level: LevelLoA4}},
		{"artifact_level_too_low", harnessOpts{}, "12345678", "eh2plus", want{code: CodeLevelTooLow}},
		{"artifact_cancel", harnessOpts{}, "12345678", "cancel", want{code: CodeCancelled}},
		{"artifact_no_machtiging", harnessOpts{}, "12345678", "nomandate", want{code: CodeNoAuthorization}},
		{"artifact_branch", harnessOpts{}, "12345678", "branch", want{level: LevelLoA3, branch: "000012345678"}},
		{"artifact_rollover_second_cert", harnessOpts{}, "12345678", "rollover", want{level: LevelLoA3}},
		{"post_binding_eh3", harnessOpts{responseBinding: BindingHTTPPost}, "87654321", "eh3", want{level: LevelLoA3}},
		{"redirect_request_eh3", harnessOpts{requestBinding: BindingHTTPRedirect}, "11223344", "eh3", want{level: LevelLoA3}},
		{"same_key_pair_eh3", harnessOpts{sameKeyPair: true}, "12345678", "eh3", want{level: LevelLoA3}},
		{"typed_company_eh3", harnessOpts{}, "other:99887766:Eigen Test B.V.", "eh3", want{level: LevelLoA3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.opts)
			start := h.start(t)
			req := h.browse(t, start, tc.company, tc.scenario)
			if tc.opts.responseBinding == BindingHTTPPost && req.Method != http.MethodPost {
				t.Fatalf("POST binding answered by %s", req.Method)
			}
			res, err := h.sp.HandleResponse(req)
			if tc.want.code != "" {
				wantCode(t, err, tc.want.code)
				if e := err.(*Error); e.Request == nil || e.Request.AccountID != "account-1" {
					t.Fatalf("error does not carry the tracked request: %+v", e)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			kvk := tc.company
			if parts := strings.Split(tc.company, ":"); len(parts) == 3 {
				kvk = parts[1]
			}
			if res.KvK != kvk || res.Level != tc.want.level || res.Branch != tc.want.branch {
				t.Fatalf("result %+v", res)
			}
			if res.Pseudonym == "" || res.CompanyName == "" || res.Request.AccountID != "account-1" || res.Request.BrowserBinding != "binding-1" || res.Request.ReturnTo != "/dashboard" {
				t.Fatalf("result %+v", res)
			}
			if tc.company == "12345678" && res.RSIN != "123456782" {
				t.Fatalf("RSIN %q", res.RSIN)
			}
		})
	}
}

// TestPseudonymStable checks that the same person and company get the same
// pseudonym twice, and a second company on the same account works.
func TestPseudonymStable(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	var got []*Result
	for _, company := range []string{"12345678", "12345678", "87654321"} {
		res, err := h.sp.HandleResponse(h.browse(t, h.start(t), company, "eh3"))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, res)
	}
	if got[0].Pseudonym != got[1].Pseudonym || got[0].Pseudonym == got[2].Pseudonym || got[2].KvK != "87654321" {
		t.Fatalf("pseudonyms %q %q %q", got[0].Pseudonym, got[1].Pseudonym, got[2].Pseudonym)
	}
}

// TestStartLogin checks the AuthnRequest and the tracking.
func TestStartLogin(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	start := h.start(t)
	if start.Binding != BindingHTTPPost || len(start.RelayState) > 80 || start.RelayState == "" {
		t.Fatalf("start %+v", start)
	}
	tr, ok := h.store.requests[start.RequestID]
	if !ok || tr.RelayState != start.RelayState || !tr.ExpiresAt.After(tr.CreatedAt) {
		t.Fatalf("not tracked: %+v", tr)
	}
	raw := decodeField(t, start, "SAMLRequest")
	for _, want := range []string{`ForceAuthn="true"`, `AttributeConsumingServiceIndex="9052"`, `ProtocolBinding="` + BindingHTTPArtifact + `"`, `AssertionConsumerServiceURL="` + h.acs + `"`, "rsa-sha256", "<ds:KeyName>"} {
		if !strings.Contains(raw, want) {
			t.Errorf("AuthnRequest lacks %s:\n%s", want, raw)
		}
	}
	for _, bad := range []string{"NameIDPolicy", "rsa-sha1", "xmldsig#sha1", "X509Certificate", "RequestedAuthnContext", "Format="} {
		if strings.Contains(raw, bad) {
			t.Errorf("AuthnRequest has %s:\n%s", bad, raw)
		}
	}
	w := httptest.NewRecorder()
	start.Write(w, httptest.NewRequest(http.MethodGet, "/", nil), "/static/autosubmit.js")
	if b := w.Body.String(); !strings.Contains(b, `<button type="submit">`) || strings.Contains(b, "<script>") || w.Header().Get("Cache-Control") != "no-cache, no-store" {
		t.Fatalf("form page:\n%s", b)
	}

	h.cfg.RequestedAuthnContext = true
	sp, err := New(h.cfg, h.store)
	if err != nil {
		t.Fatal(err)
	}
	start, err = sp.StartLogin(context.Background(), "a", "b", "/")
	if err != nil {
		t.Fatal(err)
	}
	if raw := decodeField(t, start, "SAMLRequest"); !strings.Contains(raw, `Comparison="minimum"`) || !strings.Contains(raw, LevelLoA3) {
		t.Fatalf("RequestedAuthnContext missing:\n%s", raw)
	}
}
