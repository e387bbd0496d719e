package eherkenning

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

// LoginStart is how to send the browser to the broker: a redirect
// (Binding == BindingHTTPRedirect, to URL) or an auto-submitted form
// (Binding == BindingHTTPPost, posting Fields to URL).
type LoginStart struct {
	Binding string
	URL     string
	// Fields are the form fields for the POST binding, in order.
	Fields []FormField
	// RequestID and RelayState identify the tracked request.
	RequestID  string
	RelayState string
}

// FormField is one hidden field of an auto-submitted form.
type FormField struct{ Name, Value string }

var postFormTemplate = template.Must(template.New("post").Parse(`<!DOCTYPE html>
<html lang="nl"><head><meta charset="utf-8"><title>eHerkenning</title></head>
<body><form method="post" action="{{.URL}}" id="saml-post">
{{range .Fields}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}<noscript><p>U wordt doorgestuurd naar eHerkenning. / You are being sent to eHerkenning.</p></noscript>
<button type="submit">Verder / Continue</button>
</form>{{if .ScriptSrc}}<script src="{{.ScriptSrc}}"></script>{{end}}</body></html>
`))

// Write sends the browser on: a 303 redirect, or an HTML page with the form
// and a submit button. scriptSrc, when not empty, is the URL of a same-origin
// script that submits the form (the page has no inline script, so it fits a
// strict Content-Security-Policy). The page is marked not cacheable.
func (l *LoginStart) Write(w http.ResponseWriter, r *http.Request, scriptSrc string) {
	h := w.Header()
	h.Set("Cache-Control", "no-cache, no-store")
	h.Set("Pragma", "no-cache")
	if l.Binding == BindingHTTPRedirect {
		http.Redirect(w, r, l.URL, http.StatusSeeOther)
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	_ = postFormTemplate.Execute(w, struct {
		URL       string
		Fields    []FormField
		ScriptSrc string
	}{l.URL, l.Fields, scriptSrc})
}

func randomID() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	return "_" + hex.EncodeToString(b)
}

// StartLogin builds a signed AuthnRequest for accountID, tracks it in the
// state store with RequestTTL, and says how to send the browser to the
// broker. browserBinding is stored as given (a hash of a browser-held
// secret); returnTo is stored for the caller's use after the answer.
func (sp *ServiceProvider) StartLogin(ctx context.Context, accountID, browserBinding, returnTo string) (*LoginStart, error) {
	m, err := sp.metadata(ctx)
	if err != nil {
		return nil, err
	}
	binding := sp.cfg.RequestBinding
	if binding == "" {
		binding = BindingHTTPPost
		if m.sso[BindingHTTPPost] == "" {
			binding = BindingHTTPRedirect
		}
	}
	dest := m.sso[binding]
	if dest == "" {
		return nil, newErr(CodeBrokerUnavailable, "the broker metadata offers no SingleSignOnService for %s", binding)
	}
	now := sp.cfg.Now()
	tr := TrackedRequest{
		ID:             randomID(),
		RelayState:     relayState(),
		AccountID:      accountID,
		BrowserBinding: browserBinding,
		ReturnTo:       returnTo,
		CreatedAt:      now,
		ExpiresAt:      now.Add(sp.cfg.RequestTTL),
	}
	req := sp.authnRequest(tr.ID, dest, now)
	start := &LoginStart{Binding: binding, URL: dest, RequestID: tr.ID, RelayState: tr.RelayState}
	if binding == BindingHTTPPost {
		if err := sp.signing().sign(req, true); err != nil {
			return nil, wrapErr(CodeInternal, err, "signing the AuthnRequest")
		}
		raw, err := serialize(req)
		if err != nil {
			return nil, wrapErr(CodeInternal, err, "serializing the AuthnRequest")
		}
		start.Fields = []FormField{
			{"SAMLRequest", base64.StdEncoding.EncodeToString(raw)},
			{"RelayState", tr.RelayState},
		}
	} else {
		u, err := sp.redirectURL(req, dest, tr.RelayState)
		if err != nil {
			return nil, wrapErr(CodeInternal, err, "building the redirect")
		}
		start.URL = u
	}
	if err := sp.state.TrackRequest(ctx, tr); err != nil {
		return nil, wrapErr(CodeInternal, err, "tracking the request")
	}
	return start, nil
}

// relayState is an opaque, unguessable token of 43 bytes (≤ 80 as the
// profile requires). It is tamper-evident because only tracked values are
// accepted.
func relayState() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// authnRequest builds the AuthnRequest per the profile: ForceAuthn,
// AttributeConsumingServiceIndex, no NameIDPolicy, ProtocolBinding
// HTTP-Artifact (or POST), the exact ACS URL, an Issuer without Format.
func (sp *ServiceProvider) authnRequest(id, dest string, now time.Time) *etree.Element {
	req := etree.NewElement("samlp:AuthnRequest")
	req.CreateAttr("xmlns:samlp", nsSAMLP)
	req.CreateAttr("xmlns:saml", nsSAML)
	req.CreateAttr("ID", id)
	req.CreateAttr("Version", "2.0")
	req.CreateAttr("IssueInstant", samlTime(now))
	req.CreateAttr("Destination", dest)
	req.CreateAttr("ForceAuthn", "true")
	req.CreateAttr("ProtocolBinding", sp.cfg.ResponseBinding)
	req.CreateAttr("AssertionConsumerServiceURL", sp.cfg.ACSURL)
	req.CreateAttr("AttributeConsumingServiceIndex", strconv.Itoa(sp.cfg.AttributeConsumingServiceIndex))
	req.CreateElement("saml:Issuer").SetText(sp.cfg.EntityID)
	if sp.cfg.RequestedAuthnContext {
		rac := req.CreateElement("samlp:RequestedAuthnContext")
		rac.CreateAttr("Comparison", "minimum")
		rac.CreateElement("saml:AuthnContextClassRef").SetText(sp.minLevel)
	}
	return req
}

// redirectURL encodes req for the HTTP-Redirect binding: DEFLATE, base64,
// and a SigAlg/Signature over the query string (RSA-SHA256).
func (sp *ServiceProvider) redirectURL(req *etree.Element, dest, relay string) (string, error) {
	raw, err := serialize(req)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	fw, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(fw, bytes.NewReader(raw)); err != nil {
		return "", err
	}
	if err := fw.Close(); err != nil {
		return "", err
	}
	q := "SAMLRequest=" + url.QueryEscape(base64.StdEncoding.EncodeToString(buf.Bytes()))
	if relay != "" {
		q += "&RelayState=" + url.QueryEscape(relay)
	}
	q += "&SigAlg=" + url.QueryEscape(dsig.RSASHA256SignatureMethod)
	sig, err := sp.signing().signString(q)
	if err != nil {
		return "", err
	}
	q += "&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig))
	u, err := url.Parse(dest)
	if err != nil {
		return "", err
	}
	if u.RawQuery != "" {
		return dest + "&" + q, nil
	}
	return dest + "?" + q, nil
}
