package caddymodule

import (
	"encoding/json"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("wijgate", parseGlobalOption)
	httpcaddyfile.RegisterHandlerDirective("wijgate", parseHandlerDirective)
	// Identity must be settled before the request is proxied or answered;
	// this spot is where Caddy's own auth handlers sit.
	httpcaddyfile.RegisterDirectiveOrder("wijgate", httpcaddyfile.Before, "basic_auth")
}

// parseGlobalOption sets up the wijgate app from the global options block:
//
//	wijgate {
//	    storage       <dir>
//	    storage_reserve <size>
//	    storage_outage_grace <duration>
//	    cookie_name   <name>
//	    cookie_domain <domain>
//	    cookie_key    <hash-key-b64>:<block-key-b64>   # repeat to rotate; first encodes
//	    idle_timeout  <duration>
//	    lifetime      <duration>
//	    portal_url    <url>
//	    return_hosts  <host...>
//	    strip_headers <header...>
//	    audit_retention <duration>
//	    reverify_after <duration>
//	    reverify_grace <duration>
//	    second_factor admins|everyone|off
//	    passkey_rp_id <domain>
//	    mail { ... }
//	    eherkenning { ... }
//	}
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	var app App
	if existing != nil {
		if err := json.Unmarshal(existing.(httpcaddyfile.App).Value, &app); err != nil {
			return nil, err
		}
	}
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "wijgate", Value: caddyconfig.JSON(app, nil)}, nil
}

// UnmarshalCaddyfile reads the global `wijgate` block. It reads syntax
// only: what a value means is checked once, by Provision and Validate, so
// a JSON configuration gets the same answer.
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // option name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch opt := d.Val(); opt {
		case "second_factor", "passkey_rp_id":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			if opt == "second_factor" {
				a.SecondFactor = v
			} else {
				a.PasskeyRPID = v
			}
		case "storage", "cookie_name", "cookie_domain", "portal_url", "cookie_key":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			switch opt {
			case "storage":
				a.Storage = v
			case "cookie_name":
				a.CookieName = v
			case "cookie_domain":
				a.CookieDomain = v
			case "portal_url":
				a.PortalURL = v
			case "cookie_key":
				a.CookieKeys = append(a.CookieKeys, v)
			}
		case "storage_reserve":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			n, err := humanize.ParseBytes(v)
			if err != nil {
				return d.Errf("storage_reserve: %q is not a size such as 64MiB", v)
			}
			if n == 0 {
				return d.Errf("storage_reserve: 0 would be the default; leave the option out for that")
			}
			a.StorageReserve = n
		case "idle_timeout", "lifetime", "audit_retention", "storage_outage_grace", "reverify_after", "reverify_grace":
			dur, err := durationArg(d, opt)
			if err != nil {
				return err
			}
			switch opt {
			case "idle_timeout":
				a.IdleTimeout = dur
			case "lifetime":
				a.Lifetime = dur
			case "audit_retention":
				a.AuditRetention = dur
			case "storage_outage_grace":
				a.StorageOutageGrace = dur
			case "reverify_after":
				a.ReverifyAfter = dur
			case "reverify_grace":
				a.ReverifyGrace = dur
			}
		case "return_hosts", "strip_headers":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			if opt == "return_hosts" {
				a.ReturnHosts = append(a.ReturnHosts, args...)
			} else {
				a.StripHeaders = append(a.StripHeaders, args...)
			}
		case "mail":
			if d.NextArg() {
				return d.ArgErr()
			}
			if err := a.unmarshalMail(d); err != nil {
				return err
			}
		case "eherkenning":
			if d.NextArg() {
				return d.ArgErr()
			}
			if err := a.unmarshalEHerkenning(d); err != nil {
				return err
			}
		default:
			return d.Errf("unknown wijgate option %q", opt)
		}
	}
	return nil
}

// oneArg reads the single argument of the option at hand.
func oneArg(d *caddyfile.Dispenser) (string, error) {
	var v string
	if !d.Args(&v) || d.NextArg() {
		return "", d.ArgErr()
	}
	return v, nil
}

// durationArg reads the single argument of option as a duration; which
// durations make sense is Validate's to say. Zero is refused here: in
// JSON it is the option left out, so the Caddyfile could not say it.
func durationArg(d *caddyfile.Dispenser, option string) (caddy.Duration, error) {
	v, err := oneArg(d)
	if err != nil {
		return 0, err
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil {
		return 0, d.Errf("%s: %q is not a duration such as 30m", option, v)
	}
	if dur == 0 {
		return 0, d.Errf("%s: 0 would be the default; leave the option out for that", option)
	}
	return caddy.Duration(dur), nil
}

// unmarshalMail reads the `mail` block:
//
//	mail {
//	    from     <address>
//	    smtp     <host:port>
//	    username <user>
//	    password <password>
//	    security starttls|tls|none
//	    timeout  <duration>
//	    hello    <name>
//	    outbox   <dir>
//	    allow_remote
//	}
func (a *App) unmarshalMail(d *caddyfile.Dispenser) error {
	if a.Mail == nil {
		a.Mail = new(MailConfig)
	}
	m := a.Mail
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if opt == "allow_remote" {
			if d.NextArg() {
				return d.ArgErr()
			}
			m.AllowRemote = true
			continue
		}
		if opt == "timeout" {
			dur, err := durationArg(d, "mail timeout")
			if err != nil {
				return err
			}
			m.Timeout = dur
			continue
		}
		v, err := oneArg(d)
		if err != nil {
			return err
		}
		switch opt {
		case "from":
			m.From = v
		case "smtp":
			m.SMTP = v
		case "username":
			m.Username = v
		case "password":
			m.Password = v
		case "security":
			m.Security = v
		case "hello":
			m.HelloName = v
		case "outbox":
			m.Outbox = v
		default:
			return d.Errf("unknown mail option %q", opt)
		}
	}
	return nil
}

// unmarshalEHerkenning reads the `eherkenning` block:
//
//	eherkenning {
//	    entity_id         urn:etoegang:DV:<OIN>:entities:<n>
//	    acs_url           <url>
//	    signing_cert      <pem file>
//	    signing_key       <pem file>
//	    encryption_cert   <pem file>
//	    encryption_key    <pem file>
//	    broker_metadata   <file or url>
//	    broker_entity_id  <entityID>
//	    broker_metadata_cert <pem file>     # repeatable
//	    metadata_refresh  <duration>
//	    service_id        urn:etoegang:DV:<OIN>:services:<n>
//	    service_uuid      <uuid>
//	    attribute_consuming_service_index <n>
//	    min_level         loa3
//	    requested_authn_context
//	    artifact_client_cert <pem file>
//	    artifact_client_key  <pem file>
//	}
func (a *App) unmarshalEHerkenning(d *caddyfile.Dispenser) error {
	if a.EHerkenning == nil {
		a.EHerkenning = new(EHerkenningConfig)
	}
	c := a.EHerkenning
	fields := map[string]*string{
		"entity_id": &c.EntityID, "acs_url": &c.ACSURL,
		"signing_cert": &c.SigningCert, "signing_key": &c.SigningKey,
		"encryption_cert": &c.EncryptionCert, "encryption_key": &c.EncryptionKey,
		"broker_metadata": &c.BrokerMetadata, "broker_entity_id": &c.BrokerEntityID,
		"service_id": &c.ServiceID, "service_uuid": &c.ServiceUUID, "min_level": &c.MinLevel,
		"artifact_client_cert": &c.ArtifactClientCert, "artifact_client_key": &c.ArtifactClientKey,
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch opt := d.Val(); {
		case opt == "requested_authn_context":
			if d.NextArg() {
				return d.ArgErr()
			}
			c.RequestedAuthnContext = true
		case opt == "metadata_refresh":
			dur, err := durationArg(d, opt)
			if err != nil {
				return err
			}
			c.MetadataRefresh = dur
		case fields[opt] != nil, opt == "broker_metadata_cert", opt == "attribute_consuming_service_index":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			switch opt {
			case "broker_metadata_cert":
				c.BrokerMetadataCerts = append(c.BrokerMetadataCerts, v)
			case "attribute_consuming_service_index":
				n, err := strconv.Atoi(v)
				if err != nil {
					return d.Errf("attribute_consuming_service_index: %q is not a number", v)
				}
				c.AttributeConsumingServiceIndex = n
			default:
				*fields[opt] = v
			}
		default:
			return d.Errf("unknown eherkenning option %q", opt)
		}
	}
	return nil
}

// parseHandlerDirective sets up a wijgate handler:
//
//	wijgate portal
//	wijgate <app>
//	wijgate {
//	    app           <app>
//	    name          <name shown to people>
//	    url           <where people open it>
//	    require       session|org|app
//	    admin_only
//	    min_assurance invited|eh3|eh4
//	    headers       <fact...>          # id email name org_kvk org_name org_role apps assurance assertion
//	    assertion                          # also send the signed token X-Wij-Assertion
//	    alias         <Header-Name> <fact>
//	    websocket                          # let WebSocket upgrades through
//	    allow_encoded_slashes              # let %2F and %5C in paths through
//	}
//
//	wijgate forward_auth {
//	    app               <app>
//	    ...                                # the options above but websocket and allow_encoded_slashes
//	    trusted_proxies   <ip or cidr...>  # private_ranges for every private range
//	    redirect_browsers                  # 302 rather than 401 (Traefik)
//	}
func parseHandlerDirective(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	forwardAuth := h.Next() && h.NextArg() && h.Val() == "forward_auth"
	h.Reset()
	if forwardAuth {
		var f ForwardAuth
		err := f.UnmarshalCaddyfile(h.Dispenser)
		return &f, err
	}
	var handler Handler
	err := handler.UnmarshalCaddyfile(h.Dispenser)
	return &handler, err
}

// UnmarshalCaddyfile reads the `wijgate` directive, syntax only, as the
// global option.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		if d.Val() == "portal" {
			h.Portal = true
		} else {
			h.App = d.Val()
		}
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	for d.NextBlock(0) {
		if h.Portal {
			return d.Errf("wijgate portal takes no options, got %q", d.Val())
		}
		if err := h.unmarshalOption(d); err != nil {
			return err
		}
	}
	return nil
}

// unmarshalOption reads one option of the `wijgate` directive's block.
func (h *Handler) unmarshalOption(d *caddyfile.Dispenser) error {
	switch opt := d.Val(); opt {
	case "app", "name", "url", "require", "min_assurance":
		v, err := oneArg(d)
		if err != nil {
			return err
		}
		switch opt {
		case "app":
			h.App = v
		case "name":
			h.Name = v
		case "url":
			h.URL = v
		case "require":
			h.Require = v
		case "min_assurance":
			h.MinAssurance = v
		}
	case "admin_only", "assertion", "websocket", "allow_encoded_slashes":
		if d.NextArg() {
			return d.ArgErr()
		}
		switch opt {
		case "admin_only":
			h.AdminOnly = true
		case "assertion":
			h.Assertion = true
		case "websocket":
			h.WebSocket = true
		case "allow_encoded_slashes":
			h.AllowEncodedSlashes = true
		}
	case "headers":
		facts := d.RemainingArgs()
		if len(facts) == 0 {
			return d.ArgErr()
		}
		h.Headers = append(h.Headers, facts...)
	case "alias":
		var header, fact string
		if !d.Args(&header, &fact) || d.NextArg() {
			return d.ArgErr()
		}
		if h.Aliases == nil {
			h.Aliases = map[string]string{}
		}
		h.Aliases[header] = fact
	default:
		return d.Errf("unknown wijgate option %q", opt)
	}
	return nil
}

// UnmarshalCaddyfile reads `wijgate forward_auth`: the guard's options
// and its own, syntax only.
func (f *ForwardAuth) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	d.Next() // forward_auth
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "trusted_proxies":
			ranges := d.RemainingArgs()
			if len(ranges) == 0 {
				return d.ArgErr()
			}
			f.TrustedProxies = append(f.TrustedProxies, ranges...)
		case "redirect_browsers":
			if d.NextArg() {
				return d.ArgErr()
			}
			f.RedirectBrowsers = true
		default:
			if err := f.unmarshalOption(d); err != nil {
				return err
			}
		}
	}
	return nil
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*App)(nil)
	_ caddyfile.Unmarshaler = (*Handler)(nil)
	_ caddyfile.Unmarshaler = (*ForwardAuth)(nil)
)
