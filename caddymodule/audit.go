package caddymodule

import (
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/wijtechniek/wijgate/caddymodule/observe"
)

// eventSink is the events' one sink: it counts every event and writes the
// audited kinds to the audit stream.
type eventSink struct {
	counters eventCounters
	audit    *zap.Logger
}

// Record counts the event and, for an audited kind, logs it. A nil sink,
// that of an App not built by Provision (the guard's unit tests and
// benchmark), drops it.
func (o *eventSink) Record(ev observe.Event) {
	if o == nil {
		return
	}
	o.counters.count(&ev)
	if !ev.Kind.Audited() {
		return
	}
	fields := []zap.Field{zap.String("event", string(ev.Kind)), zap.String("outcome", ev.Outcome)}
	for _, f := range [...]struct{ key, value string }{
		{"reason", ev.Reason}, {"app", ev.App}, {"actor", ev.Actor}, {"subject", ev.Subject},
		{"organisation", ev.Organisation}, {"client", ev.Client}, {"request_id", ev.RequestID},
	} {
		if f.value != "" {
			fields = append(fields, zap.String(f.key, f.value))
		}
	}
	o.audit.Info(string(ev.Kind), fields...)
}

// counter is the counter that events like ev feed, its labels resolved
// once: the guard counts every request it lets through, and resolving
// the labels on each (hashing them, a lock) cost as much as its session
// lookup. Nil for a nil sink; ev's kind must not be audited, as the
// counter bypasses Record.
func (o *eventSink) counter(ev observe.Event) prometheus.Counter {
	if o == nil || ev.Kind.Audited() {
		return nil
	}
	return o.counters.counter(&ev)
}

// requestID is Caddy's ID of the request, the {http.request.uuid} its
// access log shows, made on first use and kept for the request.
func requestID(r *http.Request) string {
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		return ""
	}
	return repl.ReplaceAll("{http.request.uuid}", "")
}

// newEventSink builds one configuration's sink: its counters in the
// registry Caddy gives that configuration (served on the admin endpoint's
// /metrics), its entries on the app logger's `audit` child: the logger
// `wijgate.audit`, which an operator routes with `log { include
// wijgate.audit }`.
func newEventSink(ctx caddy.Context, logger *zap.Logger) (*eventSink, error) {
	counters, err := newEventCounters(ctx.GetMetricsRegistry())
	if err != nil {
		return nil, fmt.Errorf("registering the wijgate metrics: %w", err)
	}
	return &eventSink{counters: counters, audit: logger.Named("audit")}, nil
}

// auditedRoutes reports every call to the routes as an AdminAPI event of
// the running configuration. The admin endpoint knows no accounts: the
// entry names the route, the result and the caller's address.
func auditedRoutes(routes []caddy.AdminRoute) []caddy.AdminRoute {
	for i, route := range routes {
		// "/wijgate/accounts/disable" counts as "accounts_disable".
		next, name := route.Handler, strings.ReplaceAll(strings.Trim(strings.TrimPrefix(route.Pattern, "/wijgate/"), "/"), "/", "_")
		routes[i].Handler = caddy.AdminHandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			err := next.ServeHTTP(w, r)
			v, aerr := caddy.ActiveContext().AppIfConfigured("wijgate")
			if aerr != nil {
				return err
			}
			ev := observe.Event{Kind: observe.AdminAPI, Outcome: "ok", Reason: name, Client: r.RemoteAddr}
			if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
				ev.Client = host
			}
			if err != nil {
				ev.Outcome = "refused"
			}
			v.(*App).events.Record(ev)
			return err
		})
	}
	return routes
}
