// Package observe names the security and operational events wijgate
// reports. A service or the portal reports each event once, to a Sink; the
// Caddy adapter's Sink both counts it in a Prometheus metric and, for the
// audited kinds, writes it to the `wijgate.audit` log, so an event cannot
// reach one and miss the other. The package knows nothing of Caddy.
package observe

// Kind is what happened. Each kind is one metric; the audited ones are
// also one entry on the audit stream.
type Kind string

// The kinds, with the outcomes each takes. Outcomes and reasons are fixed
// sets of words (they become metric labels): never an address, a KvK
// number or a path.
const (
	// Login is a login: ok, wrong, locked, busy, or second_factor (the
	// password was right and the second step is asked). Reason names the
	// step that decided a second-step or passkey login (totp, recovery,
	// passkey).
	Login Kind = "login"
	// FactorChanged is a change to an account's second factors: added or
	// removed; Reason is the kind (totp, recovery_codes, passkey).
	FactorChanged Kind = "factor_changed"
	// SessionEnded is a session ended by its owner: logout, from_list
	// (one session on the sessions page), others (all but the current).
	SessionEnded Kind = "session_ended"
	// EHerkenningAnswer is an answer from the broker: ok, or error with
	// the eherkenning package's stable code as Reason.
	EHerkenningAnswer Kind = "eherkenning_answer"
	// OrganisationLinked is an eHerkenning verification applied to an
	// account: linked (first time) or renewed; or refused, the answer
	// collected by another account or browser than the one that started
	// the login (Reason other_account or other_browser, Subject the
	// account that started it).
	OrganisationLinked Kind = "organisation_linked"
	// AdminAPI is a call to wijgate's routes on Caddy's admin endpoint:
	// ok or refused; Reason is the route.
	AdminAPI Kind = "admin_api"
	// Guard is a guard's decision on a request to an app: through,
	// redirect, 401, 403 with the policy's reason or websocket (an upgrade
	// the route does not allow), or 400 with ambiguous_path. Not audited:
	// it happens on every proxied request.
	Guard Kind = "guard"
	// ForwardAuth is a forward_auth answer to another proxy's question
	// about a request to an app: ok (200 with the identity headers),
	// redirect, 401, or 403 with the policy's reason. Not audited, as the
	// guard's decisions.
	ForwardAuth Kind = "forward_auth"
	// Mail is a message handed to the mail relay: sent, unavailable (it
	// may pass) or failed. Not audited: the event that sent it is.
	Mail Kind = "mail"
	// CodeSent is a code asked for; Reason is its purpose (register,
	// reset, email-change): sent, limited (send limits), mail_failed.
	CodeSent Kind = "code_sent"
	// FlowStep is a step of a flow with a code; Reason is the flow
	// (register, reset, email-change): code_verified, code_wrong,
	// code_limited (too many wrong codes), completed.
	FlowStep Kind = "flow_step"
	// OrganisationChange is a change to an organisation's members;
	// Reason is the action: an admin's invite, apps, role, remove,
	// withdraw, or accept, an invitee taking an invitation. Subject is the
	// member or invitation: ok, forbidden (not the actor's to do; an
	// invitation for another address), refused (a rule said no; an
	// unknown, used or expired invitation) or error.
	OrganisationChange Kind = "organisation_change"
	// EmailChange is an owner's move of their account to a new address:
	// requested (password right, a code asked for the new address),
	// confirmed (the code was right, the address moved), undone (the old
	// address took it back with the notice's link; Subject is the
	// account, the actor unknown).
	EmailChange Kind = "email_change"
	// AccountData is an owner's use of their data rights: exported,
	// deleted.
	AccountData Kind = "account_data"
)

// Audited reports whether events of this kind go to the audit stream.
func (k Kind) Audited() bool { return k != Guard && k != ForwardAuth && k != Mail }

// Kinds lists every kind, for the adapter's table and its test.
var Kinds = []Kind{Login, FactorChanged, SessionEnded, EHerkenningAnswer, OrganisationLinked, AdminAPI, Guard, ForwardAuth, Mail,
	CodeSent, FlowStep, OrganisationChange, EmailChange, AccountData}

// Event is one occurrence. Fields a kind does not use stay empty.
type Event struct {
	Kind    Kind
	Outcome string
	// Reason refines the outcome: a policy reason, a stable error code,
	// an admin route.
	Reason string
	// App is the guarded app's configured name.
	App string
	// Actor is the account that acted; Subject the account acted upon
	// when that is another (empty: the actor's own).
	Actor, Subject string
	// Organisation is a KvK number: fine in the audit log, never a label.
	Organisation string
	// Client is the client's address; RequestID ties the entry to the
	// access log.
	Client, RequestID string
}

// Sink receives events. Record must be cheap and must not fail the
// request: it is called on the request's path.
type Sink interface {
	Record(Event)
}

// Discard is the Sink of a service built without an observer (tests,
// operator commands on a store).
type Discard struct{}

// Record drops the event.
func (Discard) Record(Event) {}
