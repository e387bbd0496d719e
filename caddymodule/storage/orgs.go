package storage

import (
	"time"
)

// Organisation is a company, identified by its KvK number.
type Organisation struct {
	KvK string `json:"kvk"`
	// Name as the broker gave it (may be empty).
	Name string `json:"name,omitempty"`
	RSIN string `json:"rsin,omitempty"`
	// Branch is the vestigingsnummer when the machtiging is limited to one.
	Branch    string    `json:"branch,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Membership says that an account acts for an organisation.
type Membership struct {
	KvK       string `json:"kvk"`
	AccountID string `json:"account_id"`
	// Role is "admin" or "member".
	Role string `json:"role"`
	// Anchor is how the membership is anchored: "eh3" (the person proved
	// it with eHerkenning) or "invited" (an admin invited them).
	Anchor string `json:"anchor"`
	// Level is the eHerkenning level achieved, e.g. "loa3", for Anchor eh3.
	Level     string `json:"level,omitempty"`
	Pseudonym string `json:"pseudonym,omitempty"`
	// InvitedBy is the admin's account ID, for Anchor invited.
	InvitedBy string `json:"invited_by,omitempty"`
	// Apps are the apps a member may use; admins may use all.
	Apps       []string  `json:"apps,omitempty"`
	Since      time.Time `json:"since"`
	VerifiedAt time.Time `json:"verified_at,omitzero"`
	// AnchorEndedAt is when the broker answered that the person holds no
	// machtiging for the company: their eh3 anchor ended then, whatever
	// VerifiedAt says, until they verify again.
	AnchorEndedAt time.Time `json:"anchor_ended_at,omitzero"`
	// ReverifyStep is how far the renewal of this verification has gone:
	// 1 once the reminder a month before it lapses is sent, 2 the one a
	// week before, 3 once its lapse is recorded. A new verification
	// starts again at 0.
	ReverifyStep int `json:"reverify_step,omitempty"`
}

// Invitation asks someone to join an organisation with a set of apps.
type Invitation struct {
	ID        string    `json:"id"`
	KvK       string    `json:"kvk"`
	Email     string    `json:"email"`
	Apps      []string  `json:"apps,omitempty"`
	InvitedBy string    `json:"invited_by"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// AuditEntry is one recorded change (or refused attempt) in an
// organisation.
type AuditEntry struct {
	At  time.Time `json:"at"`
	KvK string    `json:"kvk"`
	// Actor is the account that acted.
	Actor  string `json:"actor"`
	Action string `json:"action"`
	// Target is the account or invitation acted on.
	Target string `json:"target,omitempty"`
	Detail string `json:"detail,omitempty"`
	// Count is how many attempts an entry that groups them stands for,
	// the first at At and the last at Until.
	Count int       `json:"count,omitempty"`
	Until time.Time `json:"until,omitzero"`
	// ExpiresAt is when the store drops the entry; it is read from the
	// record's TTL, not stored in it.
	ExpiresAt time.Time `json:"-"`
}
