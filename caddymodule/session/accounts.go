package session

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"slices"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// ErrUnknownHandle means no live session of the account has the handle:
// it ended meanwhile, or it belongs to someone else.
var ErrUnknownHandle = errors.New("session: no live session of this account has that handle")

// Handle names a session in its owner's list of sessions. It is a digest
// of the storage key, so a page never shows the key, let alone the
// cookie, and a handle leads to neither.
func Handle(s storage.Session) string {
	sum := sha256.Sum256([]byte("wijgate session handle\x00" + s.Key))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// AccountSessions lists the account's live sessions, the most recently
// used first. The stored LastSeen may lag a request by up to one
// TouchInterval, so a session is left out only once it is past that much
// beyond the idle timeout; Lookup refuses it by then.
func (m *Manager) AccountSessions(accountID string) ([]storage.Session, error) {
	all, err := m.store.AccountSessions(accountID)
	if err != nil {
		return nil, err
	}
	now := m.settings.Now()
	idle := m.settings.IdleTimeout + m.settings.TouchInterval
	live := all[:0]
	for _, s := range all {
		if now.Before(s.ExpiresAt) && now.Sub(s.LastSeen) <= idle {
			live = append(live, s)
		}
	}
	slices.SortFunc(live, func(a, b storage.Session) int { return b.LastSeen.Compare(a.LastSeen) })
	return live, nil
}

// End ends the account's session with this handle and returns it. Only
// the account's own sessions are searched, so a handle of another
// account's session gets ErrUnknownHandle and ends nothing. Deleting moves
// the session's version: no cache serves it on the next request.
func (m *Manager) End(accountID, handle string) (storage.Session, error) {
	all, err := m.store.AccountSessions(accountID)
	if err != nil {
		return storage.Session{}, err
	}
	for _, s := range all {
		if Handle(s) == handle {
			return s, m.store.DeleteSession(s.Key)
		}
	}
	return storage.Session{}, ErrUnknownHandle
}

// EndOthers ends every session of the account except the one with key
// keep, and returns how many it ended. A session started while it runs
// is not "elsewhere" yet, and stays.
func (m *Manager) EndOthers(accountID, keep string) (int, error) {
	all, err := m.store.AccountSessions(accountID)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range all {
		if s.Key == keep {
			continue
		}
		if err := m.store.DeleteSession(s.Key); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
