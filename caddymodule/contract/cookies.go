package contract

// wijgate's own cookies. The guard removes every one of them from the
// requests it hands an application: the session and flow cookies would let
// the application (or anyone who can read its logs) act as the person, and
// the others are of no use to it. The language cookie is the portal's
// choice of language, not the application's.
const (
	// SessionCookie is the session cookie's default name;
	// DomainSessionCookie its default with a cookie domain, where the
	// __Host- prefix is not allowed. Either can be configured.
	SessionCookie       = "__Host-wijgate"
	DomainSessionCookie = "wijgate_session"
	// CSRFCookie holds the portal's anti-forgery token.
	CSRFCookie = "__Host-wijgate_csrf"
	// FlowCookie finds the server-side state of a multi-step form.
	FlowCookie = "__Host-wijgate_flow"
	// EHBindingCookie holds the browser's secret for a started
	// eHerkenning login.
	EHBindingCookie = "__Host-wijgate_eh"
	// LanguageCookie remembers the language chosen in the portal.
	LanguageCookie = "wijgate_lang"
)

// Cookies lists wijgate's own cookies, given the configured session
// cookie's name.
func Cookies(session string) []string {
	return []string{session, CSRFCookie, FlowCookie, EHBindingCookie, LanguageCookie}
}
