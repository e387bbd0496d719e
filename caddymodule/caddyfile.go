package caddymodule

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/wijtechniek/wijgate/caddymodule/portal"
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
//	    cookie_name   <name>
//	    cookie_domain <domain>
//	    cookie_key    <hash-key-b64>:<block-key-b64>   # repeat to rotate; first encodes
//	    idle_timeout  <duration>
//	    lifetime      <duration>
//	    portal_url    <url>
//	    return_hosts  <host...>
//	    strip_headers <header...>
//	    audit_retention <duration>
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

// UnmarshalCaddyfile reads the global `wijgate` block.
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // option name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch opt := d.Val(); opt {
		case "storage", "cookie_name", "cookie_domain", "portal_url":
			var v string
			if !d.Args(&v) || d.NextArg() {
				return d.ArgErr()
			}
			var err error
			switch opt {
			case "storage":
				a.Storage = v
			case "cookie_name":
				a.CookieName, err = v, checkCookieName(v)
			case "cookie_domain":
				a.CookieDomain, err = v, checkCookieDomain(v)
			case "portal_url":
				a.PortalURL = v
				_, err = portal.NewReturnPolicy(v, nil)
			}
			if err != nil {
				return d.WrapErr(err)
			}
		case "storage_reserve":
			var v string
			if !d.Args(&v) || d.NextArg() {
				return d.ArgErr()
			}
			n, err := humanize.ParseBytes(v)
			if err != nil || n == 0 {
				return d.Errf("storage_reserve: %q is not a size such as 64MiB", v)
			}
			a.StorageReserve = n
		case "cookie_key":
			var v string
			if !d.Args(&v) || d.NextArg() {
				return d.ArgErr()
			}
			if err := checkCookieKey(v); err != nil {
				return d.WrapErr(err)
			}
			a.CookieKeys = append(a.CookieKeys, v)
		case "idle_timeout", "lifetime":
			var v string
			if !d.Args(&v) || d.NextArg() {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur <= 0 || checkSessionDuration(opt, dur) != nil {
				return d.Errf("%s: %q is not a duration between 1s and 720h", opt, v)
			}
			if opt == "idle_timeout" {
				a.IdleTimeout = caddy.Duration(dur)
			} else {
				a.Lifetime = caddy.Duration(dur)
			}
		case "audit_retention":
			var v string
			if !d.Args(&v) || d.NextArg() {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur <= 0 || checkAuditRetention(dur) != nil {
				return d.Errf("audit_retention: %q is not a duration of 24h or more", v)
			}
			a.AuditRetention = caddy.Duration(dur)
		case "return_hosts":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			if _, err := portal.NewReturnPolicy("", args); err != nil {
				return d.WrapErr(err)
			}
			a.ReturnHosts = append(a.ReturnHosts, args...)
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
		case "strip_headers":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			for _, name := range args {
				if err := checkHeaderName(name); err != nil {
					return d.Errf("strip_headers: %w", err)
				}
			}
			a.StripHeaders = append(a.StripHeaders, args...)
		default:
			return d.Errf("unknown wijgate option %q", opt)
		}
	}
	return nil
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
		var v string
		if !d.Args(&v) || d.NextArg() {
			return d.ArgErr()
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
			if v != "starttls" && v != "tls" && v != "none" {
				return d.Errf("mail security %q: want starttls, tls or none", v)
			}
			m.Security = v
		case "timeout":
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur <= 0 {
				return d.Errf("mail timeout %q is not a positive duration", v)
			}
			m.Timeout = caddy.Duration(dur)
		case "hello":
			m.HelloName = v
		case "outbox":
			m.Outbox = v
		default:
			return d.Errf("unknown mail option %q", opt)
		}
	}
	// At the block's closing brace, which names its end.
	if err := m.checkDelivery(); err != nil {
		return d.WrapErr(err)
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
		opt := d.Val()
		if opt == "requested_authn_context" {
			if d.NextArg() {
				return d.ArgErr()
			}
			c.RequestedAuthnContext = true
			continue
		}
		var v string
		if !d.Args(&v) || d.NextArg() {
			return d.ArgErr()
		}
		switch {
		case fields[opt] != nil:
			if err := checkEHerkenningOption(opt, v); err != nil {
				return d.WrapErr(err)
			}
			*fields[opt] = v
		case opt == "broker_metadata_cert":
			c.BrokerMetadataCerts = append(c.BrokerMetadataCerts, v)
		case opt == "metadata_refresh":
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur <= 0 || checkMetadataRefresh(dur) != nil {
				return d.Errf("metadata_refresh %q: want a duration of at least 1m", v)
			}
			c.MetadataRefresh = caddy.Duration(dur)
		case opt == "attribute_consuming_service_index":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return d.Errf("attribute_consuming_service_index %q: want a number", v)
			}
			c.AttributeConsumingServiceIndex = n
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
//	    headers       <fact...>          # id email name org_kvk org_name org_role apps assurance
//	    alias         <Header-Name> <fact>
//	    websocket                          # let WebSocket upgrades through
//	    allow_encoded_slashes              # let %2F and %5C in paths through
//	}
func parseHandlerDirective(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var handler Handler
	if err := handler.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	if handler.Portal {
		// The first portal's place is kept for the whole Caddyfile, so
		// a second one names both.
		here := fmt.Sprintf("%s:%d", h.File(), h.Line())
		if first, ok := h.State[portalPlaceKey].(string); ok {
			return nil, h.Errf("wijgate portal: a second portal handler (the first is at %s); serve the portal on one site only", first)
		}
		h.State[portalPlaceKey] = here
	}
	return &handler, nil
}

// portalPlaceKey keeps the first portal's place in the Caddyfile adapter's
// state.
const portalPlaceKey = "wijgate.portal"

// UnmarshalCaddyfile reads the `wijgate` directive.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		if d.Val() == "portal" {
			h.Portal = true
		} else {
			h.App = d.Val()
			if err := checkAppName(h.App); err != nil {
				return d.WrapErr(err)
			}
		}
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	for d.NextBlock(0) {
		if h.Portal {
			return d.Errf("wijgate portal takes no options, got %q", d.Val())
		}
		switch opt := d.Val(); opt {
		case "app", "name", "url", "require", "min_assurance":
			var v string
			if !d.Args(&v) || d.NextArg() {
				return d.ArgErr()
			}
			var err error
			switch opt {
			case "app":
				h.App, err = v, checkAppName(v)
			case "name":
				h.Name = v
			case "url":
				h.URL, err = v, checkAppURL(v)
			case "require":
				h.Require, err = v, checkRequire(v)
			case "min_assurance":
				h.MinAssurance, err = v, checkMinAssurance(v)
			}
			if err != nil {
				return d.WrapErr(err)
			}
		case "admin_only", "websocket", "allow_encoded_slashes":
			if d.NextArg() {
				return d.ArgErr()
			}
			switch opt {
			case "admin_only":
				h.AdminOnly = true
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
			for _, f := range facts {
				if _, err := checkFact("headers", f); err != nil {
					return d.WrapErr(err)
				}
			}
			h.Headers = append(h.Headers, facts...)
		case "alias":
			var header, f string
			if !d.Args(&header, &f) || d.NextArg() {
				return d.ArgErr()
			}
			if err := checkAlias(header, f); err != nil {
				return d.WrapErr(err)
			}
			if h.Aliases == nil {
				h.Aliases = map[string]string{}
			}
			h.Aliases[header] = f
		default:
			return d.Errf("unknown wijgate option %q", opt)
		}
	}
	if !h.Portal && h.App == "" {
		return d.Err("wijgate: name the guarded app, or use `wijgate portal`")
	}
	return nil
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*App)(nil)
	_ caddyfile.Unmarshaler = (*Handler)(nil)
)
