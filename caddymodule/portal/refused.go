package portal

import "net/http"

// Refused renders the page that tells a person, in their language, why
// the guard refused a request: status, and the catalogue key of the
// message.
func (p *Portal) Refused(w http.ResponseWriter, r *http.Request, status int, key string) {
	lang := requestLang(w, r)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'; form-action 'self'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	p.pages.render(w, r, status, "error", &view{Lang: lang, Title: "error.title", Data: lang.T(key), Dashboard: p.portalURL(r, "/dashboard")})
}
