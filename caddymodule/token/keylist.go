package token

import "time"

// Roles of the published keys, as KeyList shows them.
const (
	RoleCurrent  = "current"  // signs
	RoleNext     = "next"     // published, signs after the next rotation
	RolePrevious = "previous" // stopped signing, published until the next rotation
)

// KeyInfo is one published key as the operator commands show it.
type KeyInfo struct {
	ID      string    `json:"kid"`
	Role    string    `json:"role"`
	Created time.Time `json:"created"`
	// Since is when the current key began signing; for the next key, the
	// earliest a rotation may make it sign.
	Since time.Time `json:"since,omitzero"`
}

// KeyList returns the published keys, current first, as the key set in
// use holds them.
func (s *Signer) KeyList() []KeyInfo {
	s.maybeRefresh(s.now())
	st := s.keys.Load().stored
	out := []KeyInfo{
		{ID: st.Current.ID, Role: RoleCurrent, Created: st.Current.Created, Since: st.Since},
		{ID: st.Next.ID, Role: RoleNext, Created: st.Next.Created, Since: st.nextMaySignAt()},
	}
	if st.Previous != nil {
		out = append(out, KeyInfo{ID: st.Previous.ID, Role: RolePrevious, Created: st.Previous.Created})
	}
	return out
}
