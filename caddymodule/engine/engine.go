// Package engine names what a storage engine implements: the storage
// every service defines, the secrets the adapter keeps (cookie, code and SP
// keys, through token.KeyStore), its health, and the note of an incomplete
// copy. The adapter opens engines as this interface (services.go is the one
// place that names them), and the contract suite checks engines against it.
package engine

import (
	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/eherkenning"
	"github.com/wijtechniek/wijgate/caddymodule/org"
	"github.com/wijtechniek/wijgate/caddymodule/privacy"
	"github.com/wijtechniek/wijgate/caddymodule/session"
	"github.com/wijtechniek/wijgate/caddymodule/token"
)

// Engine is a store engine (badger or PostgreSQL). Swapping engines means
// another implementation of this interface that passes the contract suite
// (storage/storagetest), opened in the adapter's services.go and
// storepool.go.
type Engine interface {
	account.Store
	account.CodeStore
	account.CounterStore
	session.Store
	org.Store
	privacy.Store
	eherkenning.StateStore
	token.KeyStore
	// Health reports whether the engine takes writes, in a few words.
	Health() (ok bool, detail string)
	// CopyMark is the note `wijgate store copy` leaves on a target until
	// the copy is complete; nil when there is none.
	CopyMark() (note []byte, err error)
	// LiveSessions counts the stored sessions whose lifetime has not
	// ended (one left idle counts until then). It reads every session's
	// key or row, so the metrics ask at most twice a minute.
	LiveSessions() (int, error)
}
