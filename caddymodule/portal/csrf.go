package portal

import (
	"crypto/rand"
	"crypto/subtle"
	"net/http"

	"github.com/wijtechniek/wijgate/caddymodule/contract"
)

// csrfCookie holds the anti-forgery secret that each form echoes. Together
// with http.CrossOriginProtection (Sec-Fetch-Site / Origin) this is a
// double-submit check: a page on another site can neither read the cookie
// nor make the browser send a same-origin form.
const csrfCookie = contract.CSRFCookie

// csrfToken returns the request's anti-forgery token, setting a new one
// when the browser has none yet.
func csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 26 {
		return c.Value
	}
	t := rand.Text()
	http.SetCookie(w, &http.Cookie{
		Name: csrfCookie, Value: t, Path: "/",
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
	return t
}

// csrfValid reports whether a posted form carries the browser's token.
func csrfValid(r *http.Request) bool {
	c, err := r.Cookie(csrfCookie)
	if err != nil || len(c.Value) != 26 {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue("csrf"))) == 1
}
