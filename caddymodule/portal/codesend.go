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
	"github.com/wijtechniek/wijgate/caddymodule/store"
)

// sendTimeout bounds a mail delivery, so a person hears within ten
// seconds when the mail server is down.
const sendTimeout = 8 * time.Second

// errSendLimited means the person asked for too many codes.
var errSendLimited = errors.New("code send limit reached")

// sendCode issues a code for the flow's purpose and mails the right
// message. Known and unknown addresses take the same steps — a code is
// stored and one message is sent — so neither the answer nor its timing
// tells whether an account exists.
func (p *Portal) sendCode(r *http.Request, lang Lang, purpose account.Purpose, email string) (retryAfter time.Duration, err error) {
	ok, retry, err := p.cfg.Limits.AllowCodeSend(email, p.clientIP(r))
	if err != nil {
		return 0, err
	}
	if !ok {
		p.logger.Warn("code send limit reached", zap.String("purpose", string(purpose)), zap.String("remote", p.clientIP(r)))
		return retry, errSendLimited
	}
	code, err := p.cfg.Codes.Issue(purpose, email)
	if err != nil {
		return 0, err
	}
	_, lookupErr := p.cfg.Accounts.Store.AccountByEmail(email)
	exists := lookupErr == nil
	if lookupErr != nil && !errors.Is(lookupErr, store.ErrNotFound) {
		return 0, lookupErr
	}
	ml := mail.Lang(lang)
	var msg mail.Message
	switch {
	case purpose == account.PurposeRegister && exists:
		msg = mail.AlreadyRegisteredMessage(ml, email, p.portalURL(r, "/login"), p.portalURL(r, "/password/forgot"))
	case purpose == account.PurposeReset && !exists:
		msg = mail.NoAccountMessage(ml, email, p.portalURL(r, "/register"))
	default:
		msg = mail.VerificationCodeMessage(ml, email, code, string(purpose), account.CodeValidity)
	}
	ctx, cancel := context.WithTimeout(r.Context(), sendTimeout)
	defer cancel()
	if err := p.cfg.Mailer.Send(ctx, msg); err != nil {
		p.logger.Error("sending a code email failed", zap.String("purpose", string(purpose)), zap.Error(err))
		return 0, errMailFailed
	}
	return 0, nil
}

// errMailFailed means the mail server did not take the message.
var errMailFailed = errors.New("mail not sent")

// codeSendError fills the view with the right message after sendCode
// failed, and returns the status to answer with.
func (p *Portal) codeSendError(w http.ResponseWriter, v *view, retry time.Duration, err error) int {
	switch {
	case errors.Is(err, errSendLimited):
		w.Header().Set("Retry-After", retryAfterSeconds(retry))
		v.FormError = v.Lang.T("code.limited") + " " + minutes(v.Lang, retry)
		return http.StatusTooManyRequests
	case errors.Is(err, errMailFailed):
		v.FormError = v.Lang.T("mail.failed")
		return http.StatusServiceUnavailable
	case errors.Is(err, store.ErrStorageFull):
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
