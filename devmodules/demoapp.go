package devmodules

import (
	"encoding/json"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/wijtechniek/wijgate/examples/verifyjwt"
)

func init() {
	caddy.RegisterModule(DemoApp{})
	httpcaddyfile.RegisterHandlerDirective("wijgate_demo_app", parseDemoApp)
	httpcaddyfile.RegisterDirectiveOrder("wijgate_demo_app", httpcaddyfile.Before, "respond")
}

// DemoApp is the `wijgate_demo_app` handler: a stand-in for an old
// application behind wijgate, for `make run`. It shows every request
// header it received and verifies X-Wij-Assertion the way the README
// tells app owners to (package examples/verifyjwt).
type DemoApp struct {
	// Name is the application's name on the page.
	Name string `json:"name,omitempty"`
	// JWKS is the URL of wijgate's public keys.
	JWKS string `json:"jwks,omitempty"`
	// Issuer is the expected iss (the portal's URL).
	Issuer string `json:"issuer,omitempty"`
	// Audience is this app's name in wijgate (the expected aud).
	Audience string `json:"audience,omitempty"`

	keys *verifyjwt.RemoteJWKS
}

// CaddyModule returns the Caddy module information.
func (DemoApp) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.wijgate_demo_app",
		New: func() caddy.Module { return new(DemoApp) },
	}
}

// Provision prepares the key fetcher.
func (d *DemoApp) Provision(caddy.Context) error {
	if d.JWKS != "" {
		d.keys = verifyjwt.NewRemoteJWKS(d.JWKS)
	}
	return nil
}

var demoPage = template.Must(template.New("demo").Parse(`<!doctype html>
<html lang="nl"><head><meta charset="utf-8"><title>{{.Name}} (demo)</title>
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1f2933}
pre{background:#f5f7fa;padding:1rem;border:1px solid #cbd2d9;white-space:pre-wrap;word-break:break-all}
h1 small{color:#52606d;font-weight:400}.ok{color:#1e6b3a}.bad{color:#b3261e}</style></head>
<body><h1>{{.Name}} <small>demo-app achter wijgate</small></h1>
<p>Deze app ontving de volgende request headers van wijgate:</p>
<pre>{{range .Headers}}{{.}}
{{end}}</pre>
<h2>X-Wij-Assertion</h2>
{{if .Claims}}<p class="ok">Handtekening, uitgever, doelgroep en geldigheid gecontroleerd met de openbare sleutels van wijgate.</p>
<pre>{{.Claims}}</pre>{{else}}<p class="bad">{{.Problem}}</p>{{end}}
<p><a href="/dashboard">Naar het dashboard</a></p>
</body></html>`))

// ServeHTTP renders the page.
func (d *DemoApp) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	var lines []string
	for name, values := range r.Header {
		for _, v := range values {
			lines = append(lines, name+": "+v)
		}
	}
	slices.Sort(lines)
	data := struct {
		Name            string
		Headers         []string
		Claims, Problem string
	}{Name: d.Name, Headers: lines}
	switch tok := r.Header.Get("X-Wij-Assertion"); {
	case tok == "":
		data.Problem = "Geen token ontvangen."
	case d.keys == nil:
		data.Problem = "Geen JWKS ingesteld."
	default:
		c, err := verifyjwt.Verify(tok, d.keys, d.Issuer, d.Audience, time.Now())
		if err != nil {
			data.Problem = "Token afgewezen: " + err.Error()
		} else {
			b, _ := json.MarshalIndent(c, "", "  ")
			data.Claims = string(b)
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	return demoPage.Execute(w, data)
}

// parseDemoApp reads:
//
//	wijgate_demo_app <name> {
//	    jwks     <url>
//	    issuer   <url>
//	    audience <app>
//	}
func parseDemoApp(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	d := new(DemoApp)
	err := d.UnmarshalCaddyfile(h.Dispenser)
	return d, err
}

// UnmarshalCaddyfile reads the `wijgate_demo_app` directive.
func (d *DemoApp) UnmarshalCaddyfile(disp *caddyfile.Dispenser) error {
	disp.Next()
	d.Name = strings.Join(disp.RemainingArgs(), " ")
	for disp.NextBlock(0) {
		opt := disp.Val()
		var v string
		if !disp.Args(&v) || disp.NextArg() {
			return disp.ArgErr()
		}
		switch opt {
		case "jwks":
			d.JWKS = v
		case "issuer":
			d.Issuer = v
		case "audience":
			d.Audience = v
		default:
			return disp.Errf("unknown wijgate_demo_app option %q", opt)
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*DemoApp)(nil)
	_ caddyhttp.MiddlewareHandler = (*DemoApp)(nil)
	_ caddyfile.Unmarshaler       = (*DemoApp)(nil)
)
