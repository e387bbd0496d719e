package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/wijtechniek/wijgate/caddymodule/eherkenning"
	"github.com/wijtechniek/wijgate/caddymodule/engine"
	"github.com/wijtechniek/wijgate/caddymodule/mail"
	"github.com/wijtechniek/wijgate/caddymodule/observe"
	"github.com/wijtechniek/wijgate/caddymodule/portal"
)

// certificateWarning is how long before a certificate expires it is a
// warning: in the log, in /readyz, and for the alert on the metric.
const certificateWarning = 30 * 24 * time.Hour

// certificateWarningGap is how often the log repeats the warning for one
// certificate.
const certificateWarningGap = 24 * time.Hour

// readyChecks are /readyz's checks. Only the storage is critical: without
// the broker, a mail relay or a valid certificate the guarded apps keep
// working, so a load balancer must not take the server out for them.
func (a *App) readyChecks(st engine.Engine, sp *eherkenning.ServiceProvider) []portal.ReadyCheck {
	checks := []portal.ReadyCheck{
		{Name: "storage", Critical: true, Check: func() portal.Readiness {
			ok, detail := st.Health()
			return portal.Readiness{OK: ok, Detail: detail}
		}},
		{Name: "mail", Check: a.relay.readiness},
	}
	if sp != nil {
		checks = append(checks,
			portal.ReadyCheck{Name: "broker_metadata", Check: func() portal.Readiness { return brokerReadiness(sp.BrokerStatus()) }},
			portal.ReadyCheck{Name: "certificates", Check: a.certificates.readiness})
	}
	return checks
}

// brokerReadiness reports the broker's metadata: the age of the copy in
// use and since when loading a new one fails.
func brokerReadiness(st eherkenning.BrokerStatus) portal.Readiness {
	facts := map[string]any{}
	if !st.LoadedAt.IsZero() {
		facts["loaded_at"] = st.LoadedAt.UTC()
		facts["age_seconds"] = int64(now().Sub(st.LoadedAt).Seconds())
	}
	switch {
	case st.Err == nil && st.LoadedAt.IsZero():
		return portal.Readiness{OK: true, Detail: "not loaded yet", Facts: facts}
	case st.Err == nil:
		return portal.Readiness{OK: true, Detail: "loaded", Facts: facts}
	}
	facts["failing_since"] = st.FailingSince.UTC()
	if st.LoadedAt.IsZero() {
		return portal.Readiness{Detail: "cannot be loaded: eHerkenning logins fail (see the log)", Facts: facts}
	}
	return portal.Readiness{Detail: "refresh failing: the last good copy is in use (see the log)", Facts: facts}
}

// certificates watches the certificates eHerkenning depends on: a gauge
// of their expiry, a warning in the log once a day per certificate
// within certificateWarning, and a check in /readyz.
type certificates struct {
	sp     atomic.Pointer[eherkenning.ServiceProvider]
	logger *zap.Logger
	mu     sync.Mutex
	// warned is when the log last warned of a certificate, by name.
	warned map[string]time.Time
}

var certificateExpiryDesc = prometheus.NewDesc("wijgate_certificate_expiry_timestamp_seconds",
	"When a certificate eHerkenning logins depend on expires (Unix time): sp_signing, sp_encryption, broker_signing.",
	[]string{"certificate"}, nil)

func newCertificates(reg prometheus.Registerer, logger *zap.Logger) (*certificates, error) {
	c := &certificates{logger: logger, warned: map[string]time.Time{}}
	if err := reg.Register(c); err != nil {
		return nil, fmt.Errorf("registering the certificate metric: %w", err)
	}
	return c, nil
}

func (c *certificates) list() []eherkenning.CertificateExpiry {
	if sp := c.sp.Load(); sp != nil {
		return sp.Certificates()
	}
	return nil
}

// Describe implements prometheus.Collector.
func (c *certificates) Describe(ch chan<- *prometheus.Desc) { ch <- certificateExpiryDesc }

// Collect implements prometheus.Collector.
func (c *certificates) Collect(ch chan<- prometheus.Metric) {
	for _, e := range c.list() {
		ch <- prometheus.MustNewConstMetric(certificateExpiryDesc, prometheus.GaugeValue, float64(e.NotAfter.Unix()), e.Name)
	}
}

// warn logs each certificate that expires within certificateWarning, at
// most once per certificateWarningGap; the broker watch calls it.
func (c *certificates) warn() {
	t := now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.list() {
		left := e.NotAfter.Sub(t)
		if left >= certificateWarning || t.Sub(c.warned[e.Name]) < certificateWarningGap {
			continue
		}
		c.warned[e.Name] = t
		fields := []zap.Field{zap.String("certificate", e.Name), zap.String("subject", e.Subject),
			zap.Time("not_after", e.NotAfter), zap.Int("days_left", int(left.Hours()/24))}
		if left <= 0 {
			c.logger.Error("a certificate eHerkenning depends on has expired: replace it", fields...)
		} else {
			c.logger.Warn("a certificate eHerkenning depends on expires soon: replace it", fields...)
		}
	}
}

// readiness reports each certificate's expiry; not OK when one expires
// within certificateWarning.
func (c *certificates) readiness() portal.Readiness {
	t := now()
	res := portal.Readiness{OK: true, Facts: map[string]any{}}
	var soon []string
	for _, e := range c.list() {
		res.Facts[e.Name] = map[string]any{"not_after": e.NotAfter.UTC(), "days_left": int(e.NotAfter.Sub(t).Hours() / 24)}
		if e.NotAfter.Sub(t) < certificateWarning {
			soon = append(soon, e.Name)
		}
	}
	if len(soon) > 0 {
		res.OK, res.Detail = false, "expires within 30 days: "+strings.Join(soon, ", ")
	}
	return res
}

// mailRelay is the mail sender with its last result kept for /readyz and
// each message counted.
type mailRelay struct {
	next   mail.Sender
	events observe.Sink
	mu     sync.Mutex
	// at and err are the last conversation with the relay: when, and how
	// it ended. A message refused before any conversation (an invalid
	// address) says nothing of the relay and is not kept.
	at  time.Time
	err error
}

// Send sends through the configured sender and records the result.
func (m *mailRelay) Send(ctx context.Context, msg mail.Message) error {
	err := m.next.Send(ctx, msg)
	result := "sent"
	switch {
	case errors.Is(err, mail.ErrUnavailable):
		result = "unavailable"
	case err != nil:
		result = "failed"
	}
	m.events.Record(observe.Event{Kind: observe.Mail, Outcome: result})
	if !errors.Is(err, mail.ErrInvalidMessage) {
		m.mu.Lock()
		m.at, m.err = now(), err
		m.mu.Unlock()
	}
	return err
}

// readiness reports the relay's last answer. A relay that refused a
// message answered: only one that could not be reached is not OK. The
// error itself, which may name an address, stays in the log.
func (m *mailRelay) readiness() portal.Readiness {
	m.mu.Lock()
	at, err := m.at, m.err
	m.mu.Unlock()
	if at.IsZero() {
		return portal.Readiness{OK: true, Detail: "nothing sent yet"}
	}
	facts := map[string]any{"last_at": at.UTC()}
	switch {
	case err == nil:
		return portal.Readiness{OK: true, Detail: "the last message was sent", Facts: facts}
	case errors.Is(err, mail.ErrUnavailable):
		return portal.Readiness{Detail: "the relay could not take the last message: codes and notices are not sent (see the log)", Facts: facts}
	}
	return portal.Readiness{OK: true, Detail: "the relay refused the last message (see the log)", Facts: facts}
}
