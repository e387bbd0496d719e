package portal

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/mail"
	"github.com/wijtechniek/wijgate/caddymodule/observe"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// sendTimeout bounds a mail delivery, so a person hears within ten
// seconds when the mail server is down.
const sendTimeout = 8 * time.Second

// sendCode issues a code for the flow's purpose and mails the right
// message. Known and unknown addresses take the same steps — a code is
// stored and one message is sent — so neither the answer nor its timing
// tells whether an account exists. A message the mail server did not take
// does not count toward the send limits, only toward the budget of failed
// sends.
func (p *Portal) sendCode(r *http.Request, lang Lang, purpose account.Purpose, email string) error {
	client := p.clientIP(r)
	var limited *account.SendLimitError
	if err := p.cfg.Limits.ReserveCodeSend(email, client); errors.As(err, &limited) {
		reason := "code send limit reached"
		if limited.FailedSends {
			reason = "code send refused: too many failed sends to the mail server"
		}
		p.logger.Warn(reason, zap.String("purpose", string(purpose)), zap.String("remote", client), zap.Duration("wait", limited.Wait))
		p.record(r, observe.Event{Kind: observe.CodeSent, Outcome: "limited", Reason: string(purpose)})
		return err
	} else if err != nil {
		return err
	}
	sent := false
	defer func() {
		if err := p.cfg.Limits.CodeSendDone(email, client, sent); err != nil {
			p.logger.Error("settling a code send's limits", zap.Error(err))
		}
	}()
	code, err := p.cfg.Codes.Issue(purpose, email)
	if err != nil {
		return err
	}
	_, lookupErr := p.cfg.Accounts.AccountByEmail(email)
	exists := lookupErr == nil
	if lookupErr != nil && !errors.Is(lookupErr, storage.ErrNotFound) {
		return lookupErr
	}
	ml := mail.Lang(lang)
	var msg mail.Message
	switch {
	case purpose == account.PurposeRegister && exists:
		msg = mail.AlreadyRegisteredMessage(ml, email, p.portalURL(r, "/login"), p.portalURL(r, "/password/forgot"))
	case purpose == account.PurposeReset && !exists:
		msg = mail.NoAccountMessage(ml, email, p.portalURL(r, "/register"))
	case purpose == account.PurposeEmailChange && exists:
		msg = mail.AddressInUseMessage(ml, email, p.portalURL(r, "/password/forgot"))
	case purpose == account.PurposeEmailChange:
		msg = mail.EmailChangeCodeMessage(ml, email, code, account.CodeValidity)
	default:
		msg = mail.VerificationCodeMessage(ml, email, code, string(purpose), account.CodeValidity)
	}
	ctx, cancel := context.WithTimeout(r.Context(), sendTimeout)
	defer cancel()
	if err := p.cfg.Mailer.Send(ctx, msg); err != nil {
		p.logger.Error("sending a code email failed; it does not count toward the send limits",
			zap.String("purpose", string(purpose)), zap.String("remote", client), zap.Error(err))
		p.record(r, observe.Event{Kind: observe.CodeSent, Outcome: "mail_failed", Reason: string(purpose)})
		return errMailFailed
	}
	p.record(r, observe.Event{Kind: observe.CodeSent, Outcome: "sent", Reason: string(purpose)})
	sent = true
	return nil
}

// errMailFailed means the mail server did not take the message.
var errMailFailed = errors.New("mail not sent")

// codeSendError fills the view with the right message after sendCode
// failed, and returns the status to answer with.
func (p *Portal) codeSendError(w http.ResponseWriter, v *view, err error) int {
	var limited *account.SendLimitError
	switch {
	case errors.As(err, &limited):
		w.Header().Set("Retry-After", retryAfterSeconds(limited.Wait))
		key := "code.limited"
		if limited.FailedSends {
			key = "mail.failedlimit"
		}
		v.FormError = v.Lang.T(key) + " " + minutes(v.Lang, limited.Wait)
		return http.StatusTooManyRequests
	case errors.Is(err, errMailFailed):
		v.FormError = v.Lang.T("mail.failed")
		return http.StatusServiceUnavailable
	case isUnavailable(err):
		p.outages.note("issuing a code", "", err)
		w.Header().Set("Retry-After", unavailableRetry)
		v.FormError = v.Lang.T("unavailable.busy")
		return http.StatusServiceUnavailable
	case errors.Is(err, storage.ErrStorageFull):
		w.Header().Set("Retry-After", "300")
		v.FormError = v.Lang.T("unavailable.storage")
		return http.StatusServiceUnavailable
	}
	p.logger.Error("issuing a code failed", zap.Error(err))
	v.FormError = v.Lang.T("error.generic")
	return http.StatusInternalServerError
}

func (p *Portal) portalURL(r *http.Request, path string) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return p.cfg.Returns.PortalURL(scheme, r.Host, path)
}

func (p *Portal) clientIP(r *http.Request) string {
	if p.cfg.ClientIP != nil {
		return p.cfg.ClientIP(r)
	}
	return r.RemoteAddr
}

func retryAfterSeconds(d time.Duration) string {
	s := int((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return strconv.Itoa(s)
}
