package portal

import (
	"errors"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// unavailableRetry is the Retry-After of the page shown while the storage
// cannot be reached, in seconds.
const unavailableRetry = "30"

// outageQuiet is how long the storage must have answered before a failure
// to reach it is news for the log again: one line per outage, not one per
// request.
const outageQuiet = time.Minute

// outageLog tells the operator once per burst that the storage could not be
// reached.
type outageLog struct {
	logger *zap.Logger
	now    func() time.Time
	// last is the last failure, in unix nanoseconds.
	last atomic.Int64
}

func (o *outageLog) note(what, path string, err error) {
	now := o.now().UnixNano()
	if prev := o.last.Swap(now); time.Duration(now-prev) < outageQuiet {
		return
	}
	o.logger.Error("opslag onbereikbaar: the storage cannot be reached, requests that need it answer 503",
		zap.String("during", what), zap.String("path", path), zap.Error(err))
}

// Unavailable answers a request that needs the storage while it cannot
// be reached: the plain "busy or maintenance" page, 503. The operator's log
// hears of it once per outage; what names what failed.
func (p *Portal) Unavailable(w http.ResponseWriter, r *http.Request, what string, err error) {
	p.LogUnavailable(r, what, err)
	unavailablePage(p.pages, w, r)
}

// LogUnavailable notes, for the operator's log, a request that failed
// because the storage cannot be reached, for a caller that answers it
// itself (an API client's 503).
func (p *Portal) LogUnavailable(r *http.Request, what string, err error) {
	p.outages.note(what, r.URL.Path, err)
}

func unavailablePage(pages *renderer, w http.ResponseWriter, r *http.Request) {
	lang := requestLang(w, r)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Retry-After", unavailableRetry)
	pages.render(w, r, http.StatusServiceUnavailable, "unavailable",
		&view{Lang: lang, Title: "unavailable.title", Data: lang.T("unavailable.busy")})
}

// isUnavailable reports whether err means the storage cannot be reached.
func isUnavailable(err error) bool { return errors.Is(err, storage.ErrUnavailable) }

// Waiting answers in the portal's place while the server waits for its
// storage at start: /healthz says "not ready" (503), every page is the
// "busy or maintenance" page.
type Waiting struct {
	pages  *renderer
	static http.Handler
	detail func() string
}

// NewWaiting builds the waiting pages; detail says in a few words what
// the server waits for and since when.
func NewWaiting(logger *zap.Logger, detail func() string) (*Waiting, error) {
	pages, err := newRenderer(logger)
	if err != nil {
		return nil, err
	}
	static, _ := fs.Sub(staticFS, "static")
	return &Waiting{pages: pages, static: http.StripPrefix("/static/", http.FileServerFS(static)), detail: detail}, nil
}

// ServeHTTP answers a request for the portal.
func (wt *Waiting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w, r)
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/healthz":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "not ready: "+wt.detail()+"\n")
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/static/"):
		// The page's style sheet.
		wt.static.ServeHTTP(w, r)
	default:
		unavailablePage(wt.pages, w, r)
	}
}

// Page answers a browser's request for a guarded page.
func (wt *Waiting) Page(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w, r)
	unavailablePage(wt.pages, w, r)
}
