package portal

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wijtechniek/wijgate/caddymodule/account"
)

// Caps on what each field may hold; longer input is refused, not cut.
const (
	maxCodeInput = 20
	maxNameInput = 4 * account.MaxNameLength
)

// parseForm reads a posted form and refuses fields the form does not have,
// so a request can never smuggle in something a handler might pick up.
func parseForm(r *http.Request, allowed ...string) error {
	if err := r.ParseForm(); err != nil {
		return err
	}
	for name := range r.PostForm {
		ok := name == "csrf"
		for _, a := range allowed {
			if name == a {
				ok = true
				break
			}
		}
		if !ok {
			return fmt.Errorf("unknown form field %q", name)
		}
	}
	return nil
}

// checkEmailField validates a typed email address, recording a message
// for the field when it is wrong.
func checkEmailField(v *view, raw string) (string, bool) {
	if len(raw) > account.MaxEmailLength || !utf8.ValidString(raw) {
		v.Values["email"] = ""
		v.Errors["email"] = v.Lang.T("field.toolong")
		return "", false
	}
	email, err := account.NormalizeEmail(raw)
	if err != nil {
		v.Errors["email"] = v.Lang.T("field.email.invalid")
		return "", false
	}
	return email, true
}

// checkNewPassword validates a new password and its repetition.
func checkNewPassword(v *view, password, again, email string) (string, bool) {
	switch {
	case len(password) > 4*account.MaxPasswordLength:
		v.Errors["password"] = v.Lang.T("password.too_long")
		return "", false
	case password == "":
		v.Errors["password"] = v.Lang.T("field.password.empty")
		return "", false
	}
	pw := account.NormalizePassword(password)
	var pe *account.PasswordError
	if err := account.CheckPassword(pw, email); errors.As(err, &pe) {
		v.Errors["password"] = v.Lang.T("password." + string(pe.Reason))
		return "", false
	} else if err != nil {
		v.Errors["password"] = v.Lang.T("password.invalid_utf8")
		return "", false
	}
	if account.NormalizePassword(again) != pw {
		v.Errors["password2"] = v.Lang.T("password.mismatch")
		return "", false
	}
	return pw, true
}

// codeError turns a code check's outcome into a message for the code field.
func codeError(lang Lang, err error) string {
	switch {
	case errors.Is(err, account.ErrCodeWrong):
		return lang.T("code.wrong")
	case errors.Is(err, account.ErrCodeExhausted):
		return lang.T("code.exhausted")
	default:
		return lang.T("code.expired")
	}
}

// minutes renders a wait for people, rounding up.
func minutes(lang Lang, d time.Duration) string {
	m := int((d + time.Minute - 1) / time.Minute)
	if m <= 1 {
		return lang.T("wait.minute")
	}
	return strings.ReplaceAll(lang.T("wait.minutes"), "{n}", fmt.Sprint(m))
}
