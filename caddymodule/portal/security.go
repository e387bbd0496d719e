package portal

import (
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/boombuler/barcode/qr"
	"go.uber.org/zap"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/observe"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// securityPath is the "Beveiliging" page: the account's second factors.
const securityPath = "/account/security"

// securityData is what the Beveiliging page shows.
type securityData struct {
	TOTP     *storage.TOTPFactor
	Passkeys []passkeyView
	// RecoveryLeft is how many recovery codes are unused.
	RecoveryLeft int
	HasFactor    bool
	// Required says the policy requires a factor of this account.
	Required bool
	// Setup is an authenticator app being set up.
	Setup *totpSetupView
	// NewCodes are recovery codes just made, shown this once.
	NewCodes []string
	// Offered says second factors are on offer at all.
	Offered bool
}

// passkeyView is a passkey as the page lists it.
type passkeyView struct {
	storage.Passkey
	// Ref names the passkey in the removal form.
	Ref string
}

// totpSetupView is an authenticator app being set up, as the page shows it.
type totpSetupView struct {
	// QR is the otpauth URL as an inline SVG: a data: image would need
	// the CSP to allow data: URLs.
	QR template.HTML
	// Secret is the secret in groups of four, for typing.
	Secret  string
	Sealed  string
	Expires string
}

func (p *Portal) securityView(w http.ResponseWriter, r *http.Request, lang Lang, a storage.Account) (*view, error) {
	required, err := p.factorRequired(a)
	if err != nil {
		return nil, err
	}
	d := securityData{TOTP: a.TOTP, RecoveryLeft: len(a.RecoveryCodes), HasFactor: a.HasSecondFactor(),
		Required: required, Offered: p.cfg.Factors != nil}
	for _, k := range a.Passkeys {
		d.Passkeys = append(d.Passkeys, passkeyView{Passkey: k, Ref: passkeyRef(k.ID)})
	}
	return &view{Lang: lang, Title: "mfa.security.title", CSRF: csrfToken(w, r), Errors: map[string]string{},
		User: &userView{ID: a.ID, Email: a.Email, Name: a.Name}, Data: d}, nil
}

func (p *Portal) securityPage(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	a, _, ok := p.signedIn(w, r, securityPath)
	if !ok {
		return
	}
	v, err := p.securityView(w, r, lang, a)
	if err != nil {
		p.serverError(w, r, lang, "reading memberships", err)
		return
	}
	q := r.URL.Query()
	switch {
	case q.Get("required") == "1" && !a.HasSecondFactor():
		v.Notice = lang.T("mfa.security.required")
	case q.Get("done") == "removed":
		v.Notice = lang.T("mfa.security.removed")
	case q.Get("done") == "passkey":
		v.Notice = lang.T("mfa.passkey.added")
	}
	p.pages.render(w, r, http.StatusOK, "security", v)
}

// securityAction handles the Beveiliging page's forms.
func (p *Portal) securityAction(w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	if !csrfValid(r) {
		p.formExpired(w, r, lang)
		return
	}
	a, s, ok := p.signedIn(w, r, securityPath)
	if !ok {
		return
	}
	v, err := p.securityView(w, r, lang, a)
	if err != nil {
		p.serverError(w, r, lang, "reading memberships", err)
		return
	}
	if err := parseForm(r, "action", "code", "sealed", "expires", "password", "factor"); err != nil {
		p.logger.Info("security form refused", zap.Error(err), zap.String("remote", p.clientIP(r)))
		v.FormError = lang.T("form.unknown")
		p.pages.render(w, r, http.StatusBadRequest, "security", v)
		return
	}
	if p.cfg.Factors == nil {
		p.notFound(w, r)
		return
	}
	switch r.PostFormValue("action") {
	case "totp-begin":
		p.totpBegin(w, r, v, a)
	case "totp-confirm":
		p.totpConfirm(w, r, v, a)
	case "recovery-new":
		p.recoveryNew(w, r, v, a)
	case "remove":
		p.removeFactor(w, r, v, a, s)
	default:
		v.FormError = lang.T("form.outofstep")
		p.pages.render(w, r, http.StatusConflict, "security", v)
	}
}

func (p *Portal) totpBegin(w http.ResponseWriter, r *http.Request, v *view, a storage.Account) {
	if a.TOTP != nil {
		v.FormError = v.Lang.T("mfa.totp.exists")
		p.pages.render(w, r, http.StatusConflict, "security", v)
		return
	}
	setup, err := p.cfg.Factors.NewTOTP(a)
	if err != nil {
		p.serverError(w, r, v.Lang, "making an authenticator secret", err)
		return
	}
	if err := p.showSetup(v, setup); err != nil {
		p.serverError(w, r, v.Lang, "drawing a QR code", err)
		return
	}
	p.pages.render(w, r, http.StatusOK, "security", v)
}

// showSetup puts an authenticator app being set up on the page.
func (p *Portal) showSetup(v *view, setup *account.TOTPSetup) error {
	svg, err := qrSVG(setup.URL(), v.Lang.T("mfa.totp.qr"))
	if err != nil {
		return err
	}
	var groups []string
	for s := setup.Secret; len(s) > 0; {
		n := min(4, len(s))
		groups, s = append(groups, s[:n]), s[n:]
	}
	d := v.Data.(securityData)
	d.Setup = &totpSetupView{QR: svg, Secret: strings.Join(groups, " "),
		Sealed: base64.RawURLEncoding.EncodeToString(setup.Sealed), Expires: strconv.FormatInt(setup.Expires.Unix(), 10)}
	v.Data = d
	return nil
}

// totpConfirm sets up the authenticator app once its first code is right,
// and gives the account recovery codes if it has none.
func (p *Portal) totpConfirm(w http.ResponseWriter, r *http.Request, v *view, a storage.Account) {
	lang := v.Lang
	sealed, err1 := base64.RawURLEncoding.DecodeString(r.PostFormValue("sealed"))
	unix, err2 := strconv.ParseInt(r.PostFormValue("expires"), 10, 64)
	if err1 != nil || err2 != nil {
		p.logger.Info("authenticator setup form with a damaged secret", zap.String("account", a.ID))
		v.FormError = lang.T("mfa.totp.setupexpired")
		p.pages.render(w, r, http.StatusBadRequest, "security", v)
		return
	}
	expires := time.Unix(unix, 0)
	setup, err := p.cfg.Factors.OpenTOTPSetup(a, sealed, expires)
	if err != nil {
		p.logger.Info("authenticator setup form expired or not this account's", zap.String("account", a.ID), zap.Error(err))
		v.FormError = lang.T("mfa.totp.setupexpired")
		p.pages.render(w, r, http.StatusBadRequest, "security", v)
		return
	}
	code := r.PostFormValue("code")
	if len(code) > maxCodeInput {
		code = ""
	}
	updated, err := p.cfg.Factors.ConfirmTOTP(a.ID, sealed, expires, code)
	switch {
	case errors.Is(err, account.ErrFactorWrong):
		if err := p.showSetup(v, setup); err != nil {
			p.serverError(w, r, lang, "drawing a QR code", err)
			return
		}
		v.Errors["code"] = lang.T("mfa.totp.wrong")
		v.FormError = lang.T("errors.summary")
		p.pages.render(w, r, http.StatusBadRequest, "security", v)
		return
	case errors.Is(err, account.ErrTOTPExists):
		v.FormError = lang.T("mfa.totp.exists")
		p.pages.render(w, r, http.StatusConflict, "security", v)
		return
	case errors.Is(err, account.ErrSetupExpired):
		v.FormError = lang.T("mfa.totp.setupexpired")
		p.pages.render(w, r, http.StatusBadRequest, "security", v)
		return
	case err != nil:
		p.serverError(w, r, lang, "setting up an authenticator app", err)
		return
	}
	p.logger.Info("authenticator app set up", zap.String("account", a.ID))
	p.record(r, observe.Event{Kind: observe.FactorChanged, Outcome: "added", Reason: "totp", Actor: a.ID})
	v.Notice = lang.T("mfa.totp.added")
	if len(updated.RecoveryCodes) == 0 {
		p.recoveryNew(w, r, v, updated)
		return
	}
	p.rerender(w, r, v, updated)
}

// recoveryNew makes a fresh set of recovery codes and shows them once.
func (p *Portal) recoveryNew(w http.ResponseWriter, r *http.Request, v *view, a storage.Account) {
	if !a.HasSecondFactor() {
		v.FormError = v.Lang.T("mfa.recovery.nofactor")
		p.pages.render(w, r, http.StatusConflict, "security", v)
		return
	}
	codes, updated, err := p.cfg.Factors.NewRecoveryCodes(a.ID)
	if err != nil {
		p.serverError(w, r, v.Lang, "making recovery codes", err)
		return
	}
	p.logger.Info("recovery codes made", zap.String("account", a.ID))
	p.record(r, observe.Event{Kind: observe.FactorChanged, Outcome: "added", Reason: "recovery_codes", Actor: a.ID})
	if v.Notice == "" {
		v.Notice = v.Lang.T("mfa.recovery.made")
	}
	nv, err := p.securityView(w, r, v.Lang, updated)
	if err != nil {
		p.serverError(w, r, v.Lang, "reading memberships", err)
		return
	}
	d := nv.Data.(securityData)
	d.NewCodes = codes
	nv.Data, nv.Notice = d, v.Notice
	p.pages.render(w, r, http.StatusOK, "security", nv)
}

// rerender shows the page for the account as it is now, keeping v's notice.
func (p *Portal) rerender(w http.ResponseWriter, r *http.Request, v *view, a storage.Account) {
	nv, err := p.securityView(w, r, v.Lang, a)
	if err != nil {
		p.serverError(w, r, v.Lang, "reading memberships", err)
		return
	}
	nv.Notice = v.Notice
	p.pages.render(w, r, http.StatusOK, "security", nv)
}

// removeFactor takes a factor off after the password is typed again.
// Removal ends every session of the account (the credential version
// moves); this browser gets a new one that keeps what its session had
// proved, so only the other sessions end.
func (p *Portal) removeFactor(w http.ResponseWriter, r *http.Request, v *view, a storage.Account, s storage.Session) {
	lang := v.Lang
	password := r.PostFormValue("password")
	if password == "" || len(password) > maxPasswordInput {
		v.Errors["password"] = lang.T("field.password.empty")
		v.FormError = lang.T("errors.summary")
		p.pages.render(w, r, http.StatusBadRequest, "security", v)
		return
	}
	if !p.passwordAgain(w, r, v, a, password, "security", "mfa.password.wrong", "factor removal") {
		return
	}
	kind := r.PostFormValue("factor")
	required, err := p.factorRequired(a)
	if err != nil {
		p.serverError(w, r, lang, "reading memberships", err)
		return
	}
	updated := a
	ref, isPasskey := strings.CutPrefix(kind, "passkey:")
	switch {
	case kind == "totp":
		updated, err = p.cfg.Factors.RemoveTOTP(a.ID, required)
	case isPasskey:
		id, derr := base64.RawURLEncoding.DecodeString(ref)
		if derr != nil {
			id = nil
		}
		updated, err = p.cfg.Factors.RemovePasskey(a.ID, id, required)
	default:
		err = account.ErrNoSuchFactor
	}
	switch {
	case errors.Is(err, account.ErrLastFactor):
		p.logger.Info("factor removal refused: the last factor while the policy requires one", zap.String("account", a.ID))
		v.FormError = lang.T("mfa.remove.last")
		p.pages.render(w, r, http.StatusConflict, "security", v)
		return
	case errors.Is(err, account.ErrNoSuchFactor):
		p.logger.Info("factor removal of a factor the account does not have", zap.String("account", a.ID), zap.String("factor", kind))
		v.FormError = lang.T("mfa.remove.unknown")
		p.pages.render(w, r, http.StatusBadRequest, "security", v)
		return
	case err != nil:
		p.serverError(w, r, lang, "removing a factor", err)
		return
	}
	p.logger.Info("second factor removed; the account's other sessions end", zap.String("account", a.ID), zap.String("factor", kind))
	removed := "totp"
	if isPasskey {
		removed = "passkey"
	}
	p.record(r, observe.Event{Kind: observe.FactorChanged, Outcome: "removed", Reason: removed, Actor: a.ID})
	if err := p.logInWith(w, r, updated, s.AMR); err != nil {
		p.serverError(w, r, lang, "starting a session after removing a factor", err)
		return
	}
	http.Redirect(w, r, securityPath+"?done=removed", http.StatusSeeOther)
}

// qrSVG draws content as a QR code in an inline SVG, one square per
// module, with the quiet zone the standard asks for.
func qrSVG(content, label string) (template.HTML, error) {
	code, err := qr.Encode(content, qr.M, qr.Auto)
	if err != nil {
		return "", err
	}
	const quiet = 4
	n := code.Bounds().Dx()
	var path strings.Builder
	for y := range n {
		for x := range n {
			if r, _, _, _ := code.At(x, y).RGBA(); r == 0 {
				fmt.Fprintf(&path, "M%d %dh1v1h-1z", x+quiet, y+quiet)
			}
		}
	}
	size := n + 2*quiet
	return template.HTML(fmt.Sprintf(`<svg class="qr" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="240" height="240" role="img" aria-label="%s"><rect width="%d" height="%d" fill="#fff"/><path d="%s" fill="#000"/></svg>`,
		size, size, template.HTMLEscapeString(label), size, size, path.String())), nil
}
