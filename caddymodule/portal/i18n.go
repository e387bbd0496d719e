package portal

import (
	"net/http"
	"strings"

	"github.com/wijtechniek/wijgate/caddymodule/contract"
)

// Lang is a page language. Dutch comes first; English is a switch away.
type Lang string

// The languages the portal speaks.
const (
	Dutch   Lang = "nl"
	English Lang = "en"
)

// langCookie remembers the chosen language between pages.
const langCookie = contract.LanguageCookie

// catalog holds every text of the portal, one file per language.
var catalog = map[Lang]map[string]string{Dutch: textsNL, English: textsEN}

// T returns the text for key in this language; a missing key shows itself,
// which a test catches before release.
func (l Lang) T(key string) string {
	if s, ok := catalog[l][key]; ok {
		return s
	}
	return "[" + key + "]"
}

// parseLang accepts "nl" and "en" only.
func parseLang(s string) (Lang, bool) {
	switch Lang(strings.ToLower(s)) {
	case Dutch:
		return Dutch, true
	case English:
		return English, true
	}
	return "", false
}

// requestLang picks the language: an explicit ?lang= (which is then
// remembered), the remembered choice, or Dutch.
func requestLang(w http.ResponseWriter, r *http.Request) Lang {
	if l, ok := parseLang(r.URL.Query().Get("lang")); ok {
		http.SetCookie(w, &http.Cookie{
			Name: langCookie, Value: string(l), Path: "/", MaxAge: 365 * 24 * 3600,
			Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
		})
		return l
	}
	if c, err := r.Cookie(langCookie); err == nil {
		if l, ok := parseLang(c.Value); ok {
			return l
		}
	}
	return Dutch
}
