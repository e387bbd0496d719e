package storage

import "time"

// Kind names a kind of record an engine keeps. Moving a store from one
// engine to another (`wijgate store copy`) hands over every record with
// its kind; each engine rebuilds its own indexes from them.
type Kind string

// The kinds of record, in the order a copy writes them: accounts before
// the sessions and memberships that name them.
const (
	KindSecret       Kind = "secret" // cookie keys, code key, SP and simulator key pairs, identity-token keys
	KindAccount      Kind = "account"
	KindSession      Kind = "session"
	KindCode         Kind = "code"
	KindFlow         Kind = "flow"
	KindCounter      Kind = "counter" // rate limits, login regulation, code guesses
	KindOrganisation Kind = "organisation"
	KindMembership   Kind = "membership"
	KindPseudonym    Kind = "pseudonym"
	KindInvitation   Kind = "invitation"
	KindAudit        Kind = "audit"
	KindSAMLRequest  Kind = "saml-request"
	KindSAMLSeen     Kind = "saml-seen"
	KindParked       Kind = "parked-result"
)

// Kinds are all kinds, in the order a copy writes them.
var Kinds = []Kind{
	KindSecret, KindAccount, KindSession, KindCode, KindFlow, KindCounter,
	KindOrganisation, KindMembership, KindPseudonym, KindInvitation, KindAudit,
	KindSAMLRequest, KindSAMLSeen, KindParked,
}

// Record is one record as an engine keeps it, in terms no engine owns.
type Record struct {
	Kind Kind
	// Key identifies the record within its kind: the account ID, session
	// key, flow or invitation ID, counter key, KvK number, request ID,
	// assertion key, parked-result key or secret name; "<purpose>/<email>"
	// for a code, "<kvk>/<account ID>" for a membership and
	// "<pseudonym>/<account ID>" for a pseudonym. An audit entry's key is
	// its organisation's KvK number, which several entries share.
	Key string
	// Group names the audit entries that are one line in the log
	// (GroupAudit); empty for every other record.
	Group string
	// ExpiresAt is when the engine drops the record; zero is never.
	ExpiresAt time.Time
	// Value is the record's JSON (Account, Session, ...), a secret's raw
	// bytes, and empty for a pseudonym or a replay mark, whose key is all
	// there is.
	Value []byte
}

// Counts are how many live records of each kind a store holds.
type Counts map[Kind]int

// Total is the number of records of every kind.
func (c Counts) Total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// CopyMarker names the secret `wijgate store copy` keeps in a target from
// before it writes the first record until the counts of both sides agree:
// a store that holds it is an incomplete copy. Engines leave it out when
// they visit or count their records.
const CopyMarker = "store-copy-incomplete"
