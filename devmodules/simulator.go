package devmodules

import (
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/wijtechniek/wijgate/devmodules/ehsim"
)

func init() {
	caddy.RegisterModule(Simulator{})
	httpcaddyfile.RegisterHandlerDirective("eherkenning_simulator", parseSimulator)
	httpcaddyfile.RegisterDirectiveOrder("eherkenning_simulator", httpcaddyfile.Before, "basic_auth")
}

// Simulator is the `eherkenning_simulator` handler: a stand-in
// eHerkenning broker for development and acceptance tests, labelled as a
// simulator on every page. It exists only where an operator configures
// it. Its keys are kept in the wijgate store, so its metadata stays the
// same across restarts.
type Simulator struct {
	// BaseURL is the absolute URL the simulator is served at, e.g.
	// `http://localhost:8080/ehsim/`.
	BaseURL string `json:"base_url,omitempty"`
	// SPMetadata is the URL of our service provider's metadata, e.g.
	// `http://localhost:8080/eherkenning/metadata`; the simulator checks
	// AuthnRequest signatures against it.
	SPMetadata string `json:"sp_metadata,omitempty"`
	// ServiceUUID is echoed in answers, as the dienstcatalogus would.
	ServiceUUID string `json:"service_uuid,omitempty"`
	// AllowRemote lets clients on other machines use the simulator. By
	// default only loopback clients may: anyone who can reach it can make
	// themselves admin of any company.
	AllowRemote bool `json:"allow_remote,omitempty"`

	sim    *ehsim.Simulator
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Simulator) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.eherkenning_simulator",
		New: func() caddy.Module { return new(Simulator) },
	}
}

// wijgateApp is what the simulator needs from the `wijgate` app: a place
// for its keys that outlives restarts, and the clock the service provider
// checks its answers against. Named here so the adapter need not know of
// development modules.
type wijgateApp interface {
	StoredKeyPair(name string, generate func() (*rsa.PrivateKey, *x509.Certificate, error)) (*rsa.PrivateKey, *x509.Certificate, error)
	Now() time.Time
}

// Provision builds the simulator with keys from the store. The required
// options are checked first, before any key is made.
func (s *Simulator) Provision(ctx caddy.Context) error {
	if s.BaseURL == "" || s.SPMetadata == "" {
		return errors.New("eherkenning_simulator: base_url and sp_metadata are required")
	}
	v, err := ctx.App("wijgate")
	if err != nil {
		return err
	}
	app, ok := v.(wijgateApp)
	if !ok {
		return fmt.Errorf("eherkenning_simulator: the wijgate app is a %T, which keeps no keys", v)
	}
	keyPair := func(name, commonName string) (*rsa.PrivateKey, *x509.Certificate, error) {
		return app.StoredKeyPair(name, func() (*rsa.PrivateKey, *x509.Certificate, error) {
			return ehsim.GenerateKeyPair(commonName)
		})
	}
	key1, cert1, err := keyPair("ehsim-signing-1", "eHerkenning simulator signing 1")
	if err != nil {
		return err
	}
	key2, cert2, err := keyPair("ehsim-signing-2", "eHerkenning simulator signing 2")
	if err != nil {
		return err
	}
	_, other, err := keyPair("ehsim-other-recipient", "eHerkenning simulator other recipient")
	if err != nil {
		return err
	}
	repl := caddy.NewReplacer()
	s.sim, err = ehsim.New(ehsim.Config{
		BaseURL:       repl.ReplaceAll(s.BaseURL, ""),
		SPMetadataURL: repl.ReplaceAll(s.SPMetadata, ""),
		ServiceUUID:   repl.ReplaceAll(s.ServiceUUID, ""),
		SigningKey:    key1, SigningCert: cert1,
		SecondSigningKey: key2, SecondSigningCert: cert2,
		OtherRecipientCert: other,
		Now:                app.Now,
	})
	if err != nil {
		return err
	}
	s.logger = ctx.Logger()
	if s.AllowRemote {
		s.logger.Warn("the eHerkenning simulator is on, for clients on any machine (allow_remote): anyone who reaches it can make themselves admin of any company; for development and tests only",
			zap.String("base_url", s.BaseURL))
	} else {
		s.logger.Warn("the eHerkenning simulator is on, for loopback clients only: it is a stand-in broker for development and tests",
			zap.String("base_url", s.BaseURL))
	}
	return nil
}

// ServeHTTP serves the simulator's pages and endpoints to loopback
// clients, or to anyone with AllowRemote.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if !s.AllowRemote && !isLoopback(clientIP(r)) {
		s.logger.Info("eHerkenning simulator refused a client that is not on this machine",
			zap.String("client_ip", clientIP(r)), zap.String("path", r.URL.Path))
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, simulatorRemoteRefusal)
		return nil
	}
	s.sim.ServeHTTP(w, r)
	return nil
}

// simulatorRemoteRefusal is the simulator's answer to a client on another
// machine: plain text, Dutch first, English below.
const simulatorRemoteRefusal = `De eHerkenning-simulator is alleen te gebruiken op de computer waarop wijgate draait (http://localhost).
The eHerkenning simulator can only be used on the computer wijgate runs on (http://localhost).
`

// clientIP is the client address Caddy determined, honouring its
// trusted_proxies setting.
func clientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// isLoopback reports whether a client address is this machine's own.
func isLoopback(ip string) bool {
	addr, err := netip.ParseAddr(ip)
	return err == nil && addr.Unmap().IsLoopback()
}

// parseSimulator reads:
//
//	eherkenning_simulator {
//	    base_url     <url>
//	    sp_metadata  <url>
//	    service_uuid <uuid>
//	    allow_remote
//	}
func parseSimulator(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	s := new(Simulator)
	err := s.UnmarshalCaddyfile(h.Dispenser)
	return s, err
}

// UnmarshalCaddyfile reads the `eherkenning_simulator` directive.
func (s *Simulator) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		opt := d.Val()
		if opt == "allow_remote" {
			if d.NextArg() {
				return d.ArgErr()
			}
			s.AllowRemote = true
			continue
		}
		var v string
		if !d.Args(&v) || d.NextArg() {
			return d.ArgErr()
		}
		switch opt {
		case "base_url":
			s.BaseURL = v
		case "sp_metadata":
			s.SPMetadata = v
		case "service_uuid":
			s.ServiceUUID = v
		default:
			return d.Errf("unknown eherkenning_simulator option %q", opt)
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Simulator)(nil)
	_ caddyhttp.MiddlewareHandler = (*Simulator)(nil)
	_ caddyfile.Unmarshaler       = (*Simulator)(nil)
)
