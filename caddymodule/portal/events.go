package portal

import (
	"errors"
	"net/http"

	"github.com/wijtechniek/wijgate/caddymodule/observe"
	"github.com/wijtechniek/wijgate/caddymodule/org"
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

// orgActionOutcome is an organisation change's outcome for the events.
func orgActionOutcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, org.ErrForbidden), errors.Is(err, org.ErrInvitationOtherEmail):
		return "forbidden"
	case errors.Is(err, org.ErrLastAdmin), errors.Is(err, org.ErrUnknownApp), errors.Is(err, org.ErrUnknownRole),
		errors.Is(err, org.ErrInvitationInvalid):
		return "refused"
	}
	return "error"
}
