package storage

import (
	"time"
)

// Session is the server-side record behind a session cookie.
type Session struct {
	// Key identifies the record; the session package derives it from the
	// cookie's secret ID so that a copy of the database holds no usable IDs.
	Key       string    `json:"key"`
	AccountID string    `json:"account_id"`
	CreatedAt time.Time `json:"created_at"`
	LastSeen  time.Time `json:"last_seen"`
	ExpiresAt time.Time `json:"expires_at"`
	// ActiveOrg is the KvK number of the organisation the person acts for.
	ActiveOrg string `json:"active_org,omitempty"`
	// CredentialVersion is the account's when the session was made; the
	// session is void once the account's has moved on.
	CredentialVersion uint64 `json:"credential_version,omitempty"`
	// AMR are the ways the person proved who they are when the session
	// started (RFC 8176 values: "pwd", "otp", "hwk", "mfa"); the identity
	// token carries them.
	AMR []string `json:"amr,omitempty"`
	// UserAgent and Address are the browser's User-Agent (cut short) and
	// the client address at login, for the person's list of sessions.
	UserAgent string `json:"user_agent,omitempty"`
	Address   string `json:"address,omitempty"`
}

// Touch is activity on a session to record: its LastSeen moves to At.
type Touch struct {
	Key string
	At  time.Time
}

// Apply moves s's LastSeen to the touch's time, never back (touches are
// written late, in any order), and reports whether s changed.
func (t Touch) Apply(s *Session) bool {
	if !t.At.After(s.LastSeen) {
		return false
	}
	s.LastSeen = t.At
	return true
}
