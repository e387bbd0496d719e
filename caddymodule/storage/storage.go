// Package storage is the vocabulary shared by the services' storage
// interfaces and the engines that implement them: the records as stored,
// the errors an engine returns, and the contract that tells caches when
// what they hold may be stale. It knows no engine.
package storage

import "errors"

// ErrNotFound is returned when a record does not exist (or has expired).
var ErrNotFound = errors.New("storage: not found")

// ErrExists is returned when a unique record (an email address, a
// single-use token) is already taken.
var ErrExists = errors.New("storage: already exists")

// ErrStorageFull is returned for a write that the engine refused before
// trying it, because what it writes to is (nearly) full.
var ErrStorageFull = errors.New("storage: storage full")

// ErrUnavailable wraps an error of reaching a shared engine (a database
// that is down or does not answer in time), as opposed to one it answered.
// Callers show a plain "busy or under maintenance" page and try nothing
// half: the engine wrote nothing of the operation.
var ErrUnavailable = errors.New("storage: unavailable")

// ErrStale means the account's credentials changed (or it was disabled or
// removed) since they were read for the login that wanted this session.
var ErrStale = errors.New("storage: credentials changed since they were checked")

// Versions is the cache-invalidation contract. Version is a number that
// moves after every committed write that can make something cached about
// key stale. key is an account ID (its record, its memberships and their
// organisations) or a session key (the session). In the process that
// wrote, it has moved by the time the write returns, and not before the
// write is visible; the versions of keys the write did not touch stay
// (but for keys sharing a counter with one it touched), so one logout
// does not empty every cache. A cache reads the version before it reads
// the records and trusts what it holds while the version is unchanged.
//
// An engine shared by several processes must move the version for writes
// made by any of them. While it cannot vouch for that (it lost its feed of
// other processes' writes), Version must return a number that differs on
// every call, so that no cache trusts what it holds until the feed is back.
type Versions interface {
	Version(key string) uint64
}
