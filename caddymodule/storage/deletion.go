package storage

// AccountDeletion says how an engine removes an account (DeleteAccount):
// what the organisations it belongs to keep, and the name that replaces
// its email address where an audit entry wrote it.
type AccountDeletion struct {
	// Leave gets one organisation's memberships, the account's among
	// them, inside the deleting transaction and returns those that stay;
	// an error refuses the whole deletion and comes back unchanged.
	Leave func(kvk string, members []Membership) ([]Membership, error)
	// Pseudonym replaces the account's email address in the Target of
	// every audit entry that holds it, in every organisation.
	Pseudonym string
}
