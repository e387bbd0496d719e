package eherkenning

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/wijtechniek/wijgate/devmodules/ehsim"
)

const billionLaughs = `<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
`

// TestHostileResponses delivers one hostile variant per rule by HTTP-POST
// and checks that each is refused with its own code.
func TestHostileResponses(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	k := keys(t)
	now := time.Now()
	evil := "urn:etoegang:HM:00000009999999999666:entities:9666"
	setResponseIssuer := func(v string) ehsim.Option {
		return ehsim.Tamper(func(resp *etree.Element) { resp.SelectElement("Issuer").SetText(v) })
	}
	dropAttribute := func(name string) ehsim.Option {
		return ehsim.TamperAssertion(func(a *etree.Element) {
			st := a.SelectElement("AttributeStatement")
			for _, at := range st.SelectElements("Attribute") {
				if at.SelectAttrValue("Name", "") == name {
					st.RemoveChild(at)
				}
			}
		})
	}
	cases := []struct {
		name   string
		change func(a *ehsim.Answer)
		opts   []ehsim.Option
		want   Code
		detail string
	}{
		{"unsigned", nil, []ehsim.Option{ehsim.Unsigned()}, CodeSignature, ""},
		{"assertion_signature_stripped", nil, []ehsim.Option{ehsim.StripAssertionSignature()}, CodeSignature, ""},
		{"assertion_unsigned_response_signed", nil, []ehsim.Option{ehsim.WithoutAssertionSignature()}, CodeSignature, ""},
		{"response_unsigned_assertion_signed", nil, []ehsim.Option{ehsim.WithoutResponseSignature()}, CodeSignature, ""},
		{"wrong_key", nil, []ehsim.Option{ehsim.SignWith(k["attacker"].key, k["attacker"].cert)}, CodeSignature, ""},
		{"attacker_certificate_in_keyinfo", nil, []ehsim.Option{ehsim.SignWith(k["attacker"].key, k["attacker"].cert), ehsim.KeyInfoCertificate()}, CodeSignature, ""},
		{"sha1", nil, []ehsim.Option{ehsim.SHA1()}, CodeSignature, ""},
		{"sha1_digest", nil, []ehsim.Option{ehsim.SHA1Digest()}, CodeSignature, "digest method"},
		{"sha1_signature_method", nil, []ehsim.Option{ehsim.SHA1SignatureMethod()}, CodeSignature, "signature method"},
		{"two_assertions", nil, []ehsim.Option{ehsim.TwoAssertions()}, CodeMalformed, ""},
		{"xsw_forged_first", nil, []ehsim.Option{ehsim.Wrap(ehsim.XSWEvilFirst)}, CodeMalformed, ""},
		{"xsw_original_in_extensions", nil, []ehsim.Option{ehsim.Wrap(ehsim.XSWOriginalInExtensions)}, CodeSignature, ""},
		{"xsw_original_in_forged_advice", nil, []ehsim.Option{ehsim.Wrap(ehsim.XSWOriginalInEvilAdvice)}, CodeSignature, ""},
		{"xsw_original_in_signature_object", nil, []ehsim.Option{ehsim.Wrap(ehsim.XSWOriginalInSignatureObject)}, CodeSignature, ""},
		{"xsw_same_id_copied_signature", nil, []ehsim.Option{ehsim.Wrap(ehsim.XSWSameIDCopiedSignature)}, CodeSignature, ""},
		{"wrong_issuer", nil, []ehsim.Option{ehsim.Issuer(evil)}, CodeIssuer, ""},
		{"wrong_response_issuer", nil, []ehsim.Option{setResponseIssuer(evil)}, CodeIssuer, "Response Issuer"},
		{"wrong_assertion_issuer", nil, []ehsim.Option{ehsim.Issuer(evil), setResponseIssuer(h.sim.EntityID())}, CodeIssuer, "Assertion Issuer"},
		{"wrong_destination", nil, []ehsim.Option{ehsim.Destination("https://evil.example/acs")}, CodeDestination, ""},
		{"wrong_recipient", nil, []ehsim.Option{ehsim.Recipient("https://evil.example/acs")}, CodeRecipient, ""},
		{"wrong_audience", nil, []ehsim.Option{ehsim.Audiences("urn:etoegang:DV:00000009999999999666:entities:1")}, CodeAudience, ""},
		{"missing_audience_restriction", nil, []ehsim.Option{ehsim.Audiences()}, CodeAudience, ""},
		{"expired_conditions", nil, []ehsim.Option{ehsim.ConditionsWindow(now.Add(-20*time.Minute), now.Add(-10*time.Minute))}, CodeExpired, ""},
		{"not_yet_valid_conditions", nil, []ehsim.Option{ehsim.ConditionsWindow(now.Add(10*time.Minute), now.Add(20*time.Minute))}, CodeExpired, ""},
		{"expired_subject_confirmation", nil, []ehsim.Option{ehsim.ConfirmationNotOnOrAfter(now.Add(-10 * time.Minute))}, CodeExpired, ""},
		{"response_issued_too_long_ago", nil, []ehsim.Option{ehsim.IssueInstantShift(-5 * time.Minute)}, CodeExpired, ""},
		{"unknown_in_response_to", func(a *ehsim.Answer) { a.InResponseTo = "_unknown" }, nil, CodeUnknownRequest, ""},
		{"missing_in_response_to", func(a *ehsim.Answer) { a.InResponseTo = "" }, nil, CodeUnknownRequest, "unsolicited"},
		{"no_legal_subject", nil, []ehsim.Option{dropAttribute(AttrLegalSubjectID)}, CodeIdentity, "KvK"},
		{"no_acting_subject", nil, []ehsim.Option{dropAttribute(AttrActingSubjectID)}, CodeIdentity, "pseudonym"},
		{"no_service_id", nil, []ehsim.Option{dropAttribute(AttrServiceID)}, CodeServiceMismatch, ""},
		{"loa2plus", func(a *ehsim.Answer) { a.Level = ehsim.LevelLoA2Plus }, nil, CodeLevelTooLow, ""},
		{"unknown_level", func(a *ehsim.Answer) { a.Level = "urn:example:level:top" }, nil, CodeLevelTooLow, ""},
		{"wrong_service_id", func(a *ehsim.Answer) { a.ServiceID = "urn:etoegang:DV:00000001234567890000:services:1" }, nil, CodeServiceMismatch, ""},
		{"wrong_service_uuid", func(a *ehsim.Answer) { a.ServiceUUID = "00000000-0000-4000-8000-000000000000" }, nil, CodeServiceMismatch, ""},
		{"encrypted_id_only_for_someone_else", nil, []ehsim.Option{ehsim.OnlyOtherRecipient()}, CodeIdentity, ""},
		{"comment_in_name_id", nil, []ehsim.Option{ehsim.NameIDComment()}, CodeIdentity, ""},
		{"kvk_not_8_digits", func(a *ehsim.Answer) { a.Company.KvK = "1234" }, nil, CodeIdentity, ""},
		{"doctype_entities", nil, []ehsim.Option{ehsim.Doctype(billionLaughs)}, CodeMalformed, ""},
		{"cancel_status", func(a *ehsim.Answer) {
			a.Status = &ehsim.Status{Top: ehsim.StatusResponder, Second: ehsim.StatusAuthnFailed}
		}, nil, CodeCancelled, ""},
		{"no_machtiging_status", func(a *ehsim.Answer) {
			a.Status = &ehsim.Status{Top: ehsim.StatusResponder, Second: ehsim.StatusAuthnFailed, Message: "Geen machtiging gevonden"}
		}, nil, CodeNoAuthorization, ""},
		{"request_unsupported_status", func(a *ehsim.Answer) {
			a.Status = &ehsim.Status{Top: ehsim.StatusRequester, Second: ehsim.StatusRequestUnsupported}
		}, nil, CodeRequestUnsupported, ""},
		{"other_status", func(a *ehsim.Answer) { a.Status = &ehsim.Status{Top: ehsim.StatusResponder} }, nil, CodeBrokerError, ""},
		{"encrypted_assertion", nil, []ehsim.Option{ehsim.Tamper(func(resp *etree.Element) {
			resp.CreateElement("saml:EncryptedAssertion")
		})}, CodeMalformed, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := h.start(t)
			a := h.answer(start)
			if tc.change != nil {
				tc.change(&a)
			}
			raw, err := h.sim.BuildResponse(a, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			began := time.Now()
			_, err = h.postResponse(raw, start.RelayState)
			wantCode(t, err, tc.want)
			if !strings.Contains(err.Error(), tc.detail) {
				t.Fatalf("error %q lacks %q", err, tc.detail)
			}
			if d := time.Since(began); d > blowUp {
				t.Fatalf("took %s", d)
			}
		})
	}
}

// TestAcceptedVariants checks that legitimate variations are accepted.
func TestAcceptedVariants(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	cases := []struct {
		name string
		opts []ehsim.Option
	}{
		{"plain", nil},
		{"second_broker_certificate", []ehsim.Option{h.sim.SecondKey()}},
		{"certificate_in_keyinfo", []ehsim.Option{ehsim.KeyInfoCertificate()}},
		{"encrypted_attribute", []ehsim.Option{ehsim.EncryptedAttribute()}},
		{"aes256_gcm", []ehsim.Option{ehsim.GCM()}},
		{"clock_skew_within_limit", []ehsim.Option{ehsim.TimeShift(150 * time.Second)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := h.start(t)
			raw, err := h.sim.BuildResponse(h.answer(start), tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			res, err := h.postResponse(raw, start.RelayState)
			if err != nil {
				t.Fatal(err)
			}
			if res.KvK != "12345678" || res.RSIN != "123456782" || res.Pseudonym != "S0123456789abcdef" || res.Level != LevelLoA3 {
				t.Fatalf("result %+v", res)
			}
		})
	}
}

// TestReplay posts one valid answer twice, and again to a restarted SP
// sharing the store.
func TestReplay(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	start := h.start(t)
	raw, err := h.sim.BuildResponse(h.answer(start))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.postResponse(raw, start.RelayState); err != nil {
		t.Fatal(err)
	}
	_, err = h.postResponse(raw, start.RelayState)
	wantCode(t, err, CodeReplay)
	restarted, err := New(h.cfg, h.store)
	if err != nil {
		t.Fatal(err)
	}
	h.sp = restarted
	_, err = h.postResponse(raw, start.RelayState)
	wantCode(t, err, CodeReplay)
}

// TestRequestSingleUse answers one request with two different valid
// assertions: the second finds the request already taken.
func TestRequestSingleUse(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	start := h.start(t)
	for i, want := range []Code{"", CodeUnknownRequest} {
		raw, err := h.sim.BuildResponse(h.answer(start))
		if err != nil {
			t.Fatal(err)
		}
		_, err = h.postResponse(raw, start.RelayState)
		if i == 0 && err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			wantCode(t, err, want)
		}
	}
}

// TestRelayStateMismatch refuses an answer arriving with another
// RelayState than its request's.
func TestRelayStateMismatch(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	start := h.start(t)
	other := h.start(t)
	raw, err := h.sim.BuildResponse(h.answer(start))
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.postResponse(raw, other.RelayState)
	wantCode(t, err, CodeUnknownRequest)
}

// TestHostileArtifacts covers the Artifact binding: the ArtifactResponse
// must be signed (without SHA-1), well-formed, the artifact ours and used
// once.
func TestHostileArtifacts(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	k := keys(t)
	issue := func(t *testing.T, start *LoginStart, opts ...ehsim.Option) string {
		raw, err := h.sim.BuildResponse(h.answer(start))
		if err != nil {
			t.Fatal(err)
		}
		art, err := h.sim.IssueArtifact(raw, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return art
	}
	cases := []struct {
		name string
		art  func(t *testing.T, start *LoginStart) string
		want Code
	}{
		{"artifact_response_unsigned", func(t *testing.T, s *LoginStart) string {
			return issue(t, s, ehsim.WithoutArtifactResponseSignature())
		}, CodeSignature},
		{"artifact_response_sha1", func(t *testing.T, s *LoginStart) string { return issue(t, s, ehsim.SHA1()) }, CodeSignature},
		{"artifact_response_wrong_key", func(t *testing.T, s *LoginStart) string {
			return issue(t, s, ehsim.SignWith(k["attacker"].key, k["attacker"].cert))
		}, CodeSignature},
		{"artifact_response_wrong_issuer", func(t *testing.T, s *LoginStart) string {
			return issue(t, s, ehsim.Issuer("urn:etoegang:HM:00000009999999999666:entities:9666"))
		}, CodeIssuer},
		{"artifact_response_doctype", func(t *testing.T, s *LoginStart) string {
			return issue(t, s, ehsim.Doctype(billionLaughs))
		}, CodeMalformed},
		{"artifact_unknown_to_broker", func(t *testing.T, s *LoginStart) string {
			art := issue(t, s)
			b, _ := base64.StdEncoding.DecodeString(art)
			b[43] ^= 0xff
			return base64.StdEncoding.EncodeToString(b)
		}, CodeUnknownRequest},
		{"artifact_other_source", func(t *testing.T, s *LoginStart) string {
			art := issue(t, s)
			b, _ := base64.StdEncoding.DecodeString(art)
			b[5] ^= 0xff
			return base64.StdEncoding.EncodeToString(b)
		}, CodeIssuer},
		{"artifact_wrong_type", func(t *testing.T, s *LoginStart) string {
			art := issue(t, s)
			b, _ := base64.StdEncoding.DecodeString(art)
			b[1] = 0x05
			return base64.StdEncoding.EncodeToString(b)
		}, CodeMalformed},
		{"artifact_not_base64", func(t *testing.T, s *LoginStart) string { return "%%%" }, CodeMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := h.start(t)
			_, err := h.artifact(tc.art(t, start), start.RelayState)
			wantCode(t, err, tc.want)
		})
	}
	t.Run("artifact_used_twice", func(t *testing.T) {
		start := h.start(t)
		art := issue(t, start)
		if _, err := h.artifact(art, start.RelayState); err != nil {
			t.Fatal(err)
		}
		_, err := h.artifact(art, start.RelayState)
		wantCode(t, err, CodeUnknownRequest)
	})
	t.Run("artifact_by_post", func(t *testing.T) {
		start := h.start(t)
		form := url.Values{"SAMLart": {issue(t, start)}, "RelayState": {start.RelayState}}
		req := httptest.NewRequest(http.MethodPost, h.acs, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if _, err := h.sp.HandleResponse(req); err != nil {
			t.Fatal(err)
		}
	})
}

// TestBrokerUnavailable refuses quickly when the artifact resolution
// service is down or too slow.
func TestBrokerUnavailable(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	start := h.start(t)
	raw, err := h.sim.BuildResponse(h.answer(start))
	if err != nil {
		t.Fatal(err)
	}
	art, err := h.sim.IssueArtifact(raw)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	h.simSrv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusBadGateway)
	})
	_, err = h.artifact(art, start.RelayState)
	wantCode(t, err, CodeBrokerUnavailable)

	h.sp.cfg.ArtifactClient = &http.Client{Timeout: 200 * time.Millisecond, Transport: redirectTo(slow.URL)}
	began := time.Now()
	_, err = h.artifact(art, start.RelayState)
	wantCode(t, err, CodeBrokerUnavailable)
	if d := time.Since(began); d > blowUp {
		t.Fatalf("took %s", d)
	}
}

// redirectTo sends every request to base instead.
type redirectTo string

func (r redirectTo) RoundTrip(req *http.Request) (*http.Response, error) {
	u, _ := url.Parse(string(r))
	req = req.Clone(req.Context())
	req.URL.Scheme, req.URL.Host = u.Scheme, u.Host
	return http.DefaultTransport.RoundTrip(req)
}

// TestMalformedRequests covers the ACS input itself.
func TestMalformedRequests(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	var bomb bytes.Buffer
	fw, _ := flate.NewWriter(&bomb, flate.BestCompression)
	_, _ = fw.Write(make([]byte, 10<<20))
	_ = fw.Close()
	cases := []struct {
		name string
		req  func() *http.Request
	}{
		{"deflate_bomb_by_redirect", func() *http.Request {
			v := url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(bomb.Bytes())}}
			return httptest.NewRequest(http.MethodGet, h.acs+"?"+v.Encode(), nil)
		}},
		{"deflate_bomb_by_post", func() *http.Request {
			form := url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(bomb.Bytes())}}
			req := httptest.NewRequest(http.MethodPost, h.acs, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return req
		}},
		{"huge_body", func() *http.Request {
			form := url.Values{"SAMLResponse": {strings.Repeat("A", 2<<20)}}
			req := httptest.NewRequest(http.MethodPost, h.acs, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return req
		}},
		{"nothing", func() *http.Request { return httptest.NewRequest(http.MethodGet, h.acs, nil) }},
		{"both_parameters", func() *http.Request {
			form := url.Values{"SAMLResponse": {"PHg+"}, "SAMLart": {"AAQ="}}
			req := httptest.NewRequest(http.MethodPost, h.acs, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return req
		}},
		{"not_xml", func() *http.Request {
			form := url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString([]byte("hello"))}}
			req := httptest.NewRequest(http.MethodPost, h.acs, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return req
		}},
		{"wrong_method", func() *http.Request { return httptest.NewRequest(http.MethodPut, h.acs, nil) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			began := time.Now()
			_, err := h.sp.HandleResponse(tc.req())
			wantCode(t, err, CodeMalformed)
			if d := time.Since(began); d > blowUp {
				t.Fatalf("took %s", d)
			}
		})
	}
}

// TestStateStoreFailure turns a failing store into CodeInternal.
func TestStateStoreFailure(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	start := h.start(t)
	raw, err := h.sim.BuildResponse(h.answer(start))
	if err != nil {
		t.Fatal(err)
	}
	sp, err := New(h.cfg, failingStore{})
	if err != nil {
		t.Fatal(err)
	}
	h.sp = sp
	_, err = h.postResponse(raw, start.RelayState)
	wantCode(t, err, CodeInternal)
	if _, err := sp.StartLogin(context.Background(), "a", "b", "/"); ErrorCode(err) != CodeInternal {
		t.Fatalf("StartLogin with a failing store: %v", err)
	}
}

// blowUp bounds how long one hostile message may take: a parser or a
// client that blows up takes minutes, while a loaded CI machine under
// -race takes a second or two for a normal refusal. It is no speed target.
const blowUp = 15 * time.Second

type failingStore struct{}

func (failingStore) TrackRequest(context.Context, TrackedRequest) error { return errStore }
func (failingStore) TakeRequest(context.Context, string) (TrackedRequest, error) {
	return TrackedRequest{}, errStore
}
func (failingStore) MarkAssertionSeen(context.Context, string, time.Time) (bool, error) {
	return false, errStore
}
func (failingStore) ParkResult(context.Context, string, ParkedResult) error { return errStore }
func (failingStore) TakeParkedResult(context.Context, string) (ParkedResult, error) {
	return ParkedResult{}, errStore
}

var errStore = &Error{Code: CodeInternal, Detail: "store down"}
