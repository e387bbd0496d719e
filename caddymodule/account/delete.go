package account

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// What DeleteAccount removes, in one transaction, in every engine: the
// account and its email index; its sessions; its memberships (each
// organisation keeps what AccountDeletion.Leave returns) and its
// eHerkenning pseudonym links; pending invitations to its address and
// those it sent; its verification codes and the flows that name it or its
// address. Audit entries stay, as the organisations' record: those that
// hold its email address get AccountDeletion.Pseudonym instead, and those
// that hold its ID are shown with Pseudonym(id), since the ID leads to no
// account any more. Login-regulation and send-limit counters are left to
// expire (within a day): they guard the address against abuse, also after
// the account is gone.

// deletedPrefix starts the name a removed account has in audit logs.
const deletedPrefix = "verwijderd-account-"

// Pseudonym is the stable name a removed account has in the audit logs
// that mention it: it tells entries of the same person apart from others
// without naming them.
func Pseudonym(accountID string) string {
	sum := sha256.Sum256([]byte(accountID))
	return deletedPrefix + hex.EncodeToString(sum[:5])
}

// Delete removes the account and everything kept for it, in one
// transaction; d says what its organisations keep. storage.ErrNotFound
// when there is no such account.
func (s *Service) Delete(id string, d storage.AccountDeletion) (storage.Account, error) {
	return s.Store.DeleteAccount(id, d)
}

// IsPseudonym reports whether s is a removed account's name from
// Pseudonym.
func IsPseudonym(s string) bool { return strings.HasPrefix(s, deletedPrefix) }
