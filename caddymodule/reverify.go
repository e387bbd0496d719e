package caddymodule

import (
	"context"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/wijtechniek/wijgate/caddymodule/mail"
	"github.com/wijtechniek/wijgate/caddymodule/org"
)

// reverifyCheckInterval is how often each server looks for eHerkenning
// verifications that reached a reminder or lapsed. Whether access holds
// does not wait for it (that is computed when memberships are read); it
// only times the reminders and the audit entry of a lapse. Tests shorten
// it.
var reverifyCheckInterval = time.Hour

// reverifyCheck runs org.Service.CheckReverify in the background, from
// the start and then every interval. Its progress is in the store, so it
// resumes after a restart, and replicas share it.
type reverifyCheck struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// startReverifyCheck starts the background check, mailing reminders with
// mailer.
func (a *App) startReverifyCheck(mailer mail.Sender) *reverifyCheck {
	ctx, cancel := context.WithCancel(context.Background())
	c := &reverifyCheck{cancel: cancel, done: make(chan struct{})}
	logger := a.logger.Named("reverify")
	go func() {
		defer close(c.done)
		tick := time.NewTicker(reverifyCheckInterval)
		defer tick.Stop()
		for {
			a.checkReverify(ctx, mailer, logger)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return c
}

// stop ends the check and waits for a round in progress.
func (c *reverifyCheck) stop() {
	if c == nil {
		return
	}
	c.cancel()
	<-c.done
}

// checkReverify is one round: it mails the reminders due and logs every
// step for the operator.
func (a *App) checkReverify(ctx context.Context, mailer mail.Sender, logger *zap.Logger) {
	steps, err := a.orgs.CheckReverify(func(n org.ReverifyNotice) error {
		return a.sendReverifyReminder(ctx, mailer, logger, n)
	})
	for _, n := range steps {
		fields := []zap.Field{zap.String("kvk", n.Organisation.KvK), zap.String("account", n.Membership.AccountID),
			zap.Time("verified_at", n.Membership.VerifiedAt), zap.Time("lapses_at", n.LapsesAt)}
		switch {
		case n.Step == org.StepLapsed:
			logger.Warn("eHerkenning verification lapsed: not verified again in time", fields...)
		case n.Err != nil:
			logger.Error("re-verification reminder not sent; trying again at the next check", append(fields, zap.Error(n.Err))...)
		default:
			logger.Info("re-verification reminder sent", append(fields, zap.Int("step", n.Step))...)
		}
	}
	if err != nil {
		logger.Error("checking eHerkenning verifications for renewal; trying again at the next check", zap.Error(err))
	}
}

// sendReverifyReminder mails the organisation's admins (and the holder of
// the verification, should they no longer be one) that a
// verification lapses soon. Failing at the first mail (the mail server is
// down) fails the reminder, which is then sent again at the next check;
// once one mail went out, a later failure is logged and not retried, so
// nobody gets the reminder twice.
func (a *App) sendReverifyReminder(ctx context.Context, mailer mail.Sender, logger *zap.Logger, n org.ReverifyNotice) error {
	members, err := a.orgs.Members(n.Organisation.KvK)
	if err != nil {
		return err
	}
	holder, err := a.accounts.Account(n.Membership.AccountID)
	if err != nil {
		return err
	}
	orgName := n.Organisation.Name
	if orgName == "" {
		orgName = "KvK " + n.Organisation.KvK
	}
	dashboard := ""
	if a.PortalURL != "" {
		dashboard = strings.TrimSuffix(a.PortalURL, "/") + "/dashboard"
	}
	sent := 0
	for _, m := range members {
		if m.Role != org.RoleAdmin && m.AccountID != holder.ID {
			continue
		}
		to, err := a.accounts.Account(m.AccountID)
		if err != nil || to.Disabled {
			continue
		}
		msg := mail.ReverifyReminderMessage(mail.Lang(to.Lang), to.Email, orgName, holder.Name, to.ID == holder.ID, n.LapsesAt, dashboard)
		send, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = mailer.Send(send, msg)
		cancel()
		if err != nil && sent == 0 {
			return err
		}
		if err != nil {
			logger.Error("re-verification reminder to one admin not sent", zap.String("kvk", n.Organisation.KvK),
				zap.String("admin", to.ID), zap.Error(err))
			continue
		}
		sent++
	}
	return nil
}
