package caddymodule

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/wijtechniek/wijgate/caddymodule/observe"
	"github.com/wijtechniek/wijgate/caddymodule/portal"
)

func init() {
	caddy.RegisterModule(ForwardAuth{})
}

// Headers of the forward-auth answer that are meant for the proxy, not
// the app.
const (
	// loginURLHeader carries, on a 401 for a browser, where to send it to
	// log in: nginx's auth_request turns any answer but 2xx, 401 and 403
	// into 500, so the proxy redirects itself (error_page 401).
	loginURLHeader = "X-Wijgate-Login-Url"
	// appCookieHeader carries, on a 200, the request's cookies without
	// wijgate's own, for the proxy to send the app instead of Cookie.
	appCookieHeader = "X-Wijgate-Cookie"
)

// ForwardAuth is the `wijgate forward_auth` HTTP handler. It answers the
// authorization subrequest of a proxy other than Caddy (nginx's
// auth_request, Traefik's forwardAuth) for one app: 200 with the identity
// headers when the guard's policy lets the request through, 401 or 403
// otherwise. The proxy copies the headers into the request it sends the
// app. The app is the handler's, so a proxy asks one endpoint per app and
// no client can choose the app or its policy.
//
// The original request's address and method are believed only from
// TrustedProxies (X-Original-URL, or X-Forwarded-Proto, -Host and -Uri;
// X-Forwarded-Method); a browser without a session is sent to log in with
// that address as the return address, if return_hosts allows it.
type ForwardAuth struct {
	// Handler holds the guard's options for the app (app, name, url,
	// require, admin_only, min_assurance, headers, aliases); its
	// decision is the guard's.
	Handler

	// TrustedProxies are the proxies' addresses, IPs or CIDR ranges
	// (`private_ranges` for every private range), whose headers about the
	// original request are believed. From anyone else they are ignored
	// and logged.
	TrustedProxies []string `json:"trusted_proxies,omitempty"`

	// RedirectBrowsers answers a browser without a session with a 302 to
	// the login page, for proxies that pass the answer on to the client
	// (Traefik). Off, it gets a 401 with the login page's address in
	// X-Wijgate-Login-URL, for nginx to redirect (error_page 401).
	RedirectBrowsers bool `json:"redirect_browsers,omitempty"`

	proxies []netip.Prefix
	returns *portal.ReturnPolicy
}

// CaddyModule returns the Caddy module information.
func (ForwardAuth) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.wijgate_forward_auth",
		New: func() caddy.Module { return new(ForwardAuth) },
	}
}

// Provision sets up the guard's options and reads the trusted proxies.
func (f *ForwardAuth) Provision(ctx caddy.Context) error {
	if f.Portal {
		return errors.New("wijgate forward_auth answers for an app, it cannot serve the portal")
	}
	if err := f.Handler.Provision(ctx); err != nil {
		return err
	}
	for _, expr := range f.TrustedProxies {
		exprs := []string{expr}
		if expr == "private_ranges" {
			exprs = caddyhttp.PrivateRangesCIDR()
		}
		for _, e := range exprs {
			p, err := caddyhttp.CIDRExpressionToPrefix(e)
			if err != nil {
				return fmt.Errorf("trusted_proxies: %q is not an IP address, a CIDR range or private_ranges", expr)
			}
			f.proxies = append(f.proxies, p)
		}
	}
	var err error
	f.returns, err = portal.NewReturnPolicy(f.app.PortalURL, f.app.ReturnHosts)
	return err
}

// Validate checks the guard's options; the route options that make sense
// only for a request passing through are refused.
func (f *ForwardAuth) Validate() error {
	switch {
	case f.App == "":
		return errors.New("wijgate forward_auth: name the app it answers for (`wijgate forward_auth { app <name> }`)")
	case f.WebSocket:
		return errors.New("wijgate forward_auth: websocket is an option of the guard; the proxy decides which requests it asks about")
	case f.AllowEncodedSlashes:
		return errors.New("wijgate forward_auth: allow_encoded_slashes is an option of the guard; the proxy passes the path on as it sees fit")
	}
	return f.Handler.Validate()
}

// originalRequest is what a trusted proxy says about the request it asks
// about.
type originalRequest struct {
	method string
	// url is the absolute address the client asked for; empty when the
	// proxy did not say or is not trusted.
	url string
}

// ServeHTTP answers the proxy's subrequest; it never calls next.
func (f *ForwardAuth) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	a := f.app
	orig := f.original(r)
	w.Header().Set("Cache-Control", "no-store")
	if !a.ready.Load() {
		writeUnavailable(w)
		return nil
	}
	d := f.decide(r)
	switch d.verdict {
	case storageDown:
		a.portal.LogUnavailable(r, d.what, d.err)
		writeUnavailable(w)
		return nil
	case noSession:
		return f.unauthenticated(w, r, orig)
	case refused:
		return f.refuse(w, r, orig, &d)
	}
	values, err := f.identityValues(r, &d)
	if err != nil {
		f.logger.Error("signing the identity token", zap.Error(err))
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	setHeaders(w.Header(), f.send, values)
	removeCookie(r.Header, a.ownCookies)
	if c := r.Header.Values("Cookie"); len(c) > 0 {
		// One value: nginx reads the first of several headers only.
		w.Header().Set(appCookieHeader, strings.Join(c, "; "))
	}
	f.record("ok", "")
	w.WriteHeader(http.StatusOK)
	return nil
}

// record counts an answer in wijgate_forward_auth_decisions_total, apart
// from the guard's decisions: it answers a question, and the proxy may
// ask more than once for one request (nginx asks again on an internal
// redirect) and does what it likes with a yes.
func (f *ForwardAuth) record(outcome, reason string) {
	f.app.events.Record(observe.Event{Kind: observe.ForwardAuth, App: f.App, Outcome: outcome, Reason: reason})
}

// original reads the original request's method and address from a
// trusted proxy's headers; anyone else's are ignored, and logged: only
// the proxy knows what its client asked for.
func (f *ForwardAuth) original(r *http.Request) originalRequest {
	fromProxy := r.Header.Get("X-Original-Url") != "" || r.Header.Get("X-Forwarded-Uri") != "" ||
		r.Header.Get("X-Forwarded-Method") != ""
	if !f.trusted(r.RemoteAddr) {
		if fromProxy {
			f.logger.Warn("forward_auth: ignoring X-Original-URL and X-Forwarded-* from an address that is not in trusted_proxies",
				zap.String("app", f.App), zap.String("remote", r.RemoteAddr))
		}
		return originalRequest{method: r.Method}
	}
	o := originalRequest{method: r.Method, url: r.Header.Get("X-Original-Url")}
	if m := r.Header.Get("X-Forwarded-Method"); m != "" {
		o.method = m
	}
	if o.url == "" {
		proto, host, uri := r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-Host"), r.Header.Get("X-Forwarded-Uri")
		if host != "" && uri != "" && (proto == "http" || proto == "https") {
			o.url = proto + "://" + host + uri
		}
	}
	return o
}

// trusted tells whether a peer address is one of the trusted proxies.
func (f *ForwardAuth) trusted(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, p := range f.proxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// navigation tells whether the original request is a browser opening a
// page, as the guard tells it.
func (o originalRequest) navigation(r *http.Request) bool {
	return isNavigation(&http.Request{Method: o.method, Header: r.Header})
}

// loginURL is the absolute address of the login page, with the original
// address to return to when the return-address policy allows it: the
// proxy may send the browser there from another host.
func (f *ForwardAuth) loginURL(r *http.Request, orig originalRequest) string {
	back := ""
	if orig.url != "" {
		if back = f.returns.Safe(orig.url, r.Host); back == "" {
			f.logger.Info("forward_auth: the original address is not a return address return_hosts allows; logging in leads to the dashboard",
				zap.String("app", f.App), zap.String("original_url", orig.url))
		}
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return f.returns.PortalURL(scheme, r.Host, "/login?return="+url.QueryEscape(back))
}

// unauthenticated answers a request without a valid session: a browser
// is sent to log in (a 302, or a 401 naming the login page for nginx),
// anything else gets the guard's 401.
func (f *ForwardAuth) unauthenticated(w http.ResponseWriter, r *http.Request, orig originalRequest) error {
	login := f.loginURL(r, orig)
	if orig.navigation(r) {
		w.Header().Set(loginURLHeader, login)
		if f.RedirectBrowsers {
			f.record("redirect", "")
			http.Redirect(w, r, login, http.StatusFound)
			return nil
		}
	}
	f.record("401", "")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("WWW-Authenticate", `Cookie realm="wijgate"`)
	w.WriteHeader(http.StatusUnauthorized)
	_, err := fmt.Fprintf(w, `{"error":"unauthenticated","login":%q}`+"\n", login)
	return err
}

// refuse answers a logged-in request the policy does not let through:
// 403, with the guard's no-access page for a browser (which Traefik
// shows; nginx shows its own 403 page). With RedirectBrowsers, a browser
// without an organisation goes to verify one, as with the guard.
func (f *ForwardAuth) refuse(w http.ResponseWriter, r *http.Request, orig originalRequest, d *decision) error {
	f.logger.Info("forward_auth: request refused by policy", zap.String("app", f.App), zap.String("account", d.id.accountID()),
		zap.String("reason", d.reason), zap.String("original_url", orig.url))
	browser := orig.navigation(r)
	if browser && d.reason == "no_org" && f.RedirectBrowsers {
		f.record("redirect", d.reason)
		http.Redirect(w, r, f.app.portal.PortalPath(r, "/eherkenning"), http.StatusFound)
		return nil
	}
	f.record("403", d.reason)
	if browser && d.reason != "no_org" {
		var kvk, orgName string
		if d.active != nil {
			kvk, orgName = d.id.orgKvK(d.active), d.id.orgName(d.active)
		}
		f.app.portal.NoAccess(w, r, portal.NoAccessInfo{
			App: f.displayName(), Reason: d.reason, OrgKvK: kvk, OrgName: orgName,
		})
		return nil
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusForbidden)
	_, err := fmt.Fprintf(w, `{"error":"forbidden","reason":%q}`+"\n", d.reason)
	return err
}

// Interface guards
var (
	_ caddy.Provisioner           = (*ForwardAuth)(nil)
	_ caddy.Validator             = (*ForwardAuth)(nil)
	_ caddyhttp.MiddlewareHandler = (*ForwardAuth)(nil)
)
