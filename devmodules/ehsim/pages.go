package ehsim

import (
	"embed"
	"html/template"
	"net/http"
	"net/url"
)

//go:embed templates/*.html static/*
var assets embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"t": func(lang, key string) string {
		if v, ok := texts[lang][key]; ok {
			return v
		}
		return texts["nl"][key]
	},
}).ParseFS(assets, "templates/*.html"))

// texts holds every visible string, Dutch first.
var texts = map[string]map[string]string{
	"nl": {
		"banner":         "SIMULATOR — geen echte eHerkenning",
		"switch":         "English",
		"switchLang":     "en",
		"choose.title":   "Kies hoe u wilt inloggen",
		"choose.intro":   "U wilt inloggen bij %s voor %s. U heeft hiervoor een inlogmiddel nodig van minimaal betrouwbaarheidsniveau %s.",
		"choose.label":   "Kies uw leverancier",
		"choose.pick":    "Maak een keuze",
		"choose.missing": "Kies eerst een leverancier.",
		"next":           "Verder",
		"cancel":         "Annuleren",
		"login.title":    "Testinlog",
		"login.via":      "Inloggen via",
		"login.company":  "Voor welk bedrijf logt u in?",
		"login.other":    "Ander bedrijf",
		"login.kvk":      "KvK-nummer (8 cijfers)",
		"login.name":     "Bedrijfsnaam",
		"login.person":   "Naam van de testpersoon",
		"login.scenario": "Wat moet er gebeuren?",
		"login.submit":   "Inloggen",
		"sc.eh3":         "Gelukt op EH3",
		"sc.eh4":         "Gelukt op EH4",
		"sc.eh2plus":     "Niveau te laag (EH2+)",
		"sc.cancel":      "Annuleren",
		"sc.nomandate":   "Geen machtiging",
		"sc.branch":      "Gelukt, beperkt tot één vestiging",
		"sc.rollover":    "Gelukt, ondertekend met het tweede makelaarcertificaat",
		"post.title":     "U wordt teruggestuurd",
		"post.text":      "Klik op Verder als u niet automatisch wordt doorgestuurd.",
		"error.title":    "Er ging iets mis",
		"error.text":     "De simulator kan dit verzoek niet verwerken:",
	},
	"en": {
		"banner":         "SIMULATOR — not real eHerkenning",
		"switch":         "Nederlands",
		"switchLang":     "nl",
		"choose.title":   "Choose how you want to log in",
		"choose.intro":   "You want to log in to %s for %s. You need a login means of at least assurance level %s.",
		"choose.label":   "Choose your provider",
		"choose.pick":    "Make a choice",
		"choose.missing": "Choose a provider first.",
		"next":           "Continue",
		"cancel":         "Cancel",
		"login.title":    "Test login",
		"login.via":      "Logging in with",
		"login.company":  "Which company are you logging in for?",
		"login.other":    "Another company",
		"login.kvk":      "KvK number (8 digits)",
		"login.name":     "Company name",
		"login.person":   "Name of the test person",
		"login.scenario": "What should happen?",
		"login.submit":   "Log in",
		"sc.eh3":         "Success at EH3",
		"sc.eh4":         "Success at EH4",
		"sc.eh2plus":     "Level too low (EH2+)",
		"sc.cancel":      "Cancel",
		"sc.nomandate":   "No authorisation (machtiging)",
		"sc.branch":      "Success, restricted to one branch",
		"sc.rollover":    "Success, signed with the second broker certificate",
		"post.title":     "You are being sent back",
		"post.text":      "Click Continue if you are not sent on automatically.",
		"error.title":    "Something went wrong",
		"error.text":     "The simulator cannot handle this request:",
	},
}

func pageLang(r *http.Request) string {
	if r.URL.Query().Get("lang") == "en" || r.FormValue("lang") == "en" {
		return "en"
	}
	return "nl"
}

type field struct{ Name, Value string }

// render writes a page with the shared layout and a strict CSP: no inline
// script or style; forms may post to the SP's ACS.
func (s *Simulator) render(w http.ResponseWriter, r *http.Request, name, lang string, data map[string]any) {
	s.renderStatus(w, r, http.StatusOK, name, lang, data, "")
}

func (s *Simulator) renderStatus(w http.ResponseWriter, r *http.Request, status int, name, lang string, data map[string]any, formTarget string) {
	if data == nil {
		data = map[string]any{}
	}
	data["Lang"] = lang
	data["Base"] = s.base.Path
	data["Org"] = s.cfg.OrganizationName
	data["Service"] = s.cfg.ServiceName
	data["Level"] = s.cfg.RequiredLevel
	if r != nil {
		q := r.URL.Query()
		q.Set("lang", texts[lang]["switchLang"])
		data["SwitchURL"] = s.base.Path + r.URL.Path[1:] + "?" + q.Encode()
	}
	csp := "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
	if formTarget != "" {
		csp += " " + formTarget
	}
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = pages.ExecuteTemplate(w, name+".html", data)
}

func (s *Simulator) renderError(w http.ResponseWriter, lang string, status int, err error) {
	s.renderStatus(w, nil, status, "error", lang, map[string]any{"Error": err.Error()}, "")
}

// renderPost writes the HTTP-POST binding page: a form that a same-origin
// script submits, with a Continue button for browsers without JavaScript.
func (s *Simulator) renderPost(w http.ResponseWriter, r *http.Request, lang, action string, fields []field) {
	origin := ""
	if u, err := url.Parse(action); err == nil {
		origin = u.Scheme + "://" + u.Host
	}
	s.renderStatus(w, r, http.StatusOK, "post", lang, map[string]any{"Action": action, "Fields": fields}, origin)
}

func (s *Simulator) handleStatic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	b, err := assets.ReadFile("static/" + name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	switch {
	case len(name) > 3 && name[len(name)-3:] == ".js":
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	default:
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(b)
}
