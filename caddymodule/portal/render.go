package portal

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"

	"go.uber.org/zap"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// view is what every page template receives.
type view struct {
	Lang  Lang
	Title string // catalogue key
	// CSRF is the anti-forgery token every form posts back.
	CSRF string
	// SwitchURL is this page in the other language.
	SwitchURL string
	// Values are the form values to show again; never passwords.
	Values map[string]string
	// Errors are translated messages per field name.
	Errors map[string]string
	// FormError is a translated message about the form as a whole.
	FormError string
	Notice    string
	Return    string
	User      *userView
	Data      any
	// Dashboard is the absolute dashboard URL, for pages shown on an
	// app's host.
	Dashboard string
	// ErrorList repeats the field errors in form order for the summary at
	// the top, each linking to its field.
	ErrorList []fieldError
	// focus is the first field with an error; it gets autofocus.
	focus string
}

// fieldError is one entry of the error summary.
type fieldError struct{ Field, Message string }

// fieldOrder is the order fields appear in on every form.
var fieldOrder = []string{"email", "code", "recovery", "password", "password2", "name", "confirm"}

// userView is the logged-in person as pages show them.
type userView struct {
	ID, Email, Name string
}

// field is one labelled input, rendered by the "field" template.
type field struct {
	Name, Type, Label, Autocomplete, Value, Error, Hint string
	Required, Autofocus                                 bool
	MaxLength                                           int
}

// fieldArgs builds a field from the view: fieldArgs . name type labelKey autocomplete maxlength.
func fieldArgs(v *view, name, typ, labelKey, autocomplete string, maxLength int) field {
	f := field{
		Name: name, Type: typ, Label: v.Lang.T(labelKey), Autocomplete: autocomplete,
		Error: v.Errors[name], Required: true, MaxLength: maxLength, Autofocus: name == v.focus,
	}
	if name == "password" && autocomplete == "new-password" {
		f.Hint = v.Lang.T("password.rules")
	}
	if typ != "password" {
		f.Value = v.Values[name]
	}
	return f
}

// pages are parsed once: each page template with the shared layout.
type renderer struct {
	pages  map[string]*template.Template
	logger *zap.Logger
}

func newRenderer(logger *zap.Logger) (*renderer, error) {
	r := &renderer{pages: map[string]*template.Template{}, logger: logger}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	funcs := template.FuncMap{"field": fieldArgs, "date": formatDate, "has": slices.Contains[[]string, string]}
	for _, n := range names {
		page := n[len("templates/") : len(n)-len(".html")]
		if page == "layout" {
			continue
		}
		t, err := template.New(page).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, err
		}
		r.pages[page] = t
	}
	return r, nil
}

// render writes a page with the given status. Rendering into a buffer
// first means a template error becomes a clean 500 page, not half a page.
func (rd *renderer) render(w http.ResponseWriter, r *http.Request, status int, page string, v *view) {
	if v.Values == nil {
		v.Values = map[string]string{}
	}
	if v.Errors == nil {
		v.Errors = map[string]string{}
	}
	for _, name := range fieldOrder {
		if msg, ok := v.Errors[name]; ok {
			if v.focus == "" {
				v.focus = name
			}
			if v.FormError != "" {
				v.ErrorList = append(v.ErrorList, fieldError{Field: name, Message: msg})
			}
		}
	}
	q := r.URL.Query()
	q.Set("lang", v.Lang.T("lang.switch.to"))
	v.SwitchURL = (&url.URL{Path: r.URL.Path, RawQuery: q.Encode()}).String()

	var buf bytes.Buffer
	t := rd.pages[page]
	if t == nil {
		rd.logger.Error("no such page template", zap.String("page", page))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		rd.logger.Error("rendering page", zap.String("page", page), zap.Error(err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Language", string(v.Lang))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
