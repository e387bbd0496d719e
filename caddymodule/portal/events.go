package portal

import (
	"net/http"

	"github.com/wijtechniek/wijgate/caddymodule/observe"
)

// record reports an event of this request with its client address and
// request ID.
func (p *Portal) record(r *http.Request, ev observe.Event) {
	ev.Client = p.clientIP(r)
	if p.cfg.RequestID != nil {
		ev.RequestID = p.cfg.RequestID(r)
	}
	p.events.Record(ev)
}
