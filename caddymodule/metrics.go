package caddymodule

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/wijtechniek/wijgate/caddymodule/observe"
)

// eventMetric is the counter an event kind feeds, and which of the
// event's fields fill its labels, in order.
type eventMetric struct {
	name, help string
	labels     []string
}

// eventMetrics has a row for every observe.Kind (TestEveryKindHasAMetric).
// Label values come only from bounded fields: outcomes, reasons and stable
// codes from the code, app names from the configuration.
var eventMetrics = map[observe.Kind]eventMetric{
	observe.Login: {"wijgate_logins_total",
		"Logins by result: ok, wrong, locked, busy, second_factor (password right, second step asked).", []string{"result"}},
	observe.FactorChanged: {"wijgate_factor_changes_total",
		"Changes to accounts' second factors by kind (totp, recovery_codes, passkey) and change (added, removed).", []string{"kind", "change"}},
	observe.SessionEnded: {"wijgate_sessions_ended_total",
		"Sessions ended by their owner, by how.", []string{"how"}},
	observe.EHerkenningAnswer: {"wijgate_eherkenning_answers_total",
		"Answers from the eHerkenning broker by result and stable error code.", []string{"result", "code"}},
	observe.OrganisationLinked: {"wijgate_organisations_linked_total",
		"eHerkenning verifications by how they ended: linked, renewed, or refused (collected by another account or browser).", []string{"how"}},
	observe.AdminAPI: {"wijgate_admin_api_calls_total",
		"Calls to wijgate's routes on the admin endpoint by route and result.", []string{"route", "result"}},
	observe.Guard: {"wijgate_guard_decisions_total",
		"Guard decisions by app, outcome (through, redirect, 400, 401, 403) and refusal reason.", []string{"app", "outcome", "reason"}},
	observe.ForwardAuth: {"wijgate_forward_auth_decisions_total",
		"forward_auth answers to another proxy by app, outcome (ok, redirect, 401, 403) and refusal reason.", []string{"app", "outcome", "reason"}},
	observe.Mail: {"wijgate_mail_messages_total",
		"Messages handed to the mail relay by result: sent, unavailable, failed.", []string{"result"}},
	observe.OrganisationChange: {"wijgate_organisation_changes_total",
		"Changes to organisations' members by action (invite, apps, role, remove, withdraw, accept) and result.", []string{"action", "result"}},
	observe.EmailChange: {"wijgate_email_changes_total",
		"Owners' moves of their accounts to a new address by step: requested, confirmed, undone.", []string{"step"}},
	observe.AccountData: {"wijgate_account_data_total",
		"Accounts exported or deleted by their owners on the portal.", []string{"how"}},
	observe.CodeSent: {"wijgate_codes_total",
		"Codes asked for by purpose and result: sent, limited, mail_failed.", []string{"purpose", "result"}},
	observe.FlowStep: {"wijgate_flow_steps_total",
		"Steps of the registration, reset and email-change flows: code_verified, code_wrong, code_limited, completed.", []string{"flow", "step"}},
}

// labelValue is the event's value for one of eventMetrics' labels.
func labelValue(ev *observe.Event, label string) string {
	switch label {
	case "result", "how", "outcome", "step", "change":
		return ev.Outcome
	case "code", "reason", "route", "purpose", "flow", "action", "kind":
		return ev.Reason
	case "app":
		return ev.App
	}
	return ""
}

// eventCounters are one configuration's counters, registered with the
// registry Caddy gives that configuration: a reload builds new ones in a
// new registry, so nothing is registered twice.
type eventCounters map[observe.Kind]*prometheus.CounterVec

func newEventCounters(reg prometheus.Registerer) (eventCounters, error) {
	c := make(eventCounters, len(eventMetrics))
	for kind, m := range eventMetrics {
		vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: m.name, Help: m.help}, m.labels)
		if err := reg.Register(vec); err != nil {
			return nil, err
		}
		c[kind] = vec
	}
	return c, nil
}

// newHashQueueWait is the histogram of how long password hashing waited
// for a slot (account.HasherOptions.OnWait).
func newHashQueueWait(reg prometheus.Registerer) (prometheus.Histogram, error) {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "wijgate_password_hash_queue_wait_seconds",
		Help:    "How long a password hash or check waited for a free hashing slot.",
		Buckets: []float64{.001, .01, .05, .1, .25, .5, 1, 2.5, 5},
	})
	return h, reg.Register(h)
}

func (c eventCounters) count(ev *observe.Event) {
	if counter := c.counter(ev); counter != nil {
		counter.Inc()
	}
}

// counter is the counter ev feeds, nil for a kind without one.
func (c eventCounters) counter(ev *observe.Event) prometheus.Counter {
	vec, ok := c[ev.Kind]
	if !ok {
		return nil
	}
	m := eventMetrics[ev.Kind]
	var values [3]string
	for i, label := range m.labels {
		values[i] = labelValue(ev, label)
	}
	return vec.WithLabelValues(values[:len(m.labels)]...)
}

// refusalOutcome is how the guard answers a refusal: a browser without an
// organisation is sent to verify one, everything else is a 403.
func refusalOutcome(r *http.Request, reason string) string {
	if reason == "no_org" && isNavigation(r) {
		return "redirect"
	}
	return "403"
}

var cacheLookupsDesc = prometheus.NewDesc("wijgate_cache_lookups_total",
	"Lookups in the session and identity caches by result: hit (a current entry) or miss (the store was read).",
	[]string{"cache", "result"}, nil)

// cacheLookups reads the caches' counts when /metrics is scraped, so the
// guard's hot path only adds to a counter of its own.
type cacheLookups struct{ app *App }

// Describe implements prometheus.Collector.
func (c cacheLookups) Describe(ch chan<- *prometheus.Desc) { ch <- cacheLookupsDesc }

// Collect implements prometheus.Collector.
func (c cacheLookups) Collect(ch chan<- prometheus.Metric) {
	a := c.app
	if !a.ready.Load() {
		return
	}
	sessionHits, sessionMisses := a.sessions.CacheCounts()
	for _, m := range []struct {
		cache, result string
		n             uint64
	}{
		{"session", "hit", sessionHits}, {"session", "miss", sessionMisses},
		{"identity", "hit", a.identity.hits.Load()}, {"identity", "miss", a.identity.misses.Load()},
	} {
		ch <- prometheus.MustNewConstMetric(cacheLookupsDesc, prometheus.CounterValue, float64(m.n), m.cache, m.result)
	}
}

// sessionCountEvery is how long one count of the live sessions serves the
// scrapes: counting reads every session's key or row, too dear for every
// scrape of a store with a million sessions.
const sessionCountEvery = 30 * time.Second

var activeSessionsDesc = prometheus.NewDesc("wijgate_sessions_active",
	"Sessions in the store whose lifetime has not ended, one left idle included; counted at most every 30 s.",
	nil, nil)

// activeSessions counts the store's live sessions when /metrics is
// scraped, at most once in sessionCountEvery; a scrape in between reports
// the last count. The session cache's size is no such count: it holds
// only the sessions this process has seen.
type activeSessions struct {
	app *App
	mu  sync.Mutex
	// n is the last count, taken at; ok is false when none was taken or
	// the last attempt failed, and then the gauge is left out rather
	// than reporting a count the store can no longer vouch for.
	n  int
	at time.Time
	ok bool
}

// Describe implements prometheus.Collector.
func (c *activeSessions) Describe(ch chan<- *prometheus.Desc) { ch <- activeSessionsDesc }

// Collect implements prometheus.Collector.
func (c *activeSessions) Collect(ch chan<- prometheus.Metric) {
	a := c.app
	if !a.ready.Load() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := now(); c.at.IsZero() || t.Sub(c.at) >= sessionCountEvery {
		n, err := a.engine.LiveSessions()
		// A failed count is tried again after the same wait, so a store
		// that is down is asked, and logged, at most that often.
		c.n, c.at, c.ok = n, t, err == nil
		if err != nil {
			a.logger.Warn("counting the live sessions for wijgate_sessions_active; the gauge is left out until a count succeeds",
				zap.Error(err))
		}
	}
	if c.ok {
		ch <- prometheus.MustNewConstMetric(activeSessionsDesc, prometheus.GaugeValue, float64(c.n))
	}
}
