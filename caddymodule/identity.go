package caddymodule

import (
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/contract"
	"github.com/wijtechniek/wijgate/caddymodule/internal/pack"
	"github.com/wijtechniek/wijgate/caddymodule/org"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// identity is what the guard hands the upstream about an account, with
// header values encoded once rather than on every request.
type identity struct {
	// version is the store's Version of the account when it was read.
	version uint64
	// confirmed is when the store last vouched for this identity (read
	// it, or its version held), in unix nanoseconds.
	confirmed atomic.Int64
	disabled  bool
	// credentialVersion is the account's; a session made under another
	// one is void.
	credentialVersion uint64
	id                string
	email             string
	name              string
	// nameHeader is name, encoded for a header value.
	nameHeader string
	orgs       []orgIdentity
	// expires is when an eHerkenning verification that orgs rest on
	// lapses, in unix nanoseconds (zero: none does): the identity is read
	// again then, as no write moves the account's version at that moment.
	expires int64
	// waitingKvK and waitingName are a membership that is not anchored
	// (its verification lapsed or ended), for the page that says an admin
	// must verify the company again.
	waitingKvK, waitingName string
}

// orgIdentity is one anchored membership, ready for the headers. It keeps
// only what the guard hands on: a cache of every active account holds one
// per membership.
type orgIdentity struct {
	kvk        string
	name       string
	nameHeader string
	role       string
	assurance  string
	// apps are the configured apps this membership may use.
	apps       []string
	appsHeader string
}

// active returns the organisation the session acts for, if any.
func (id *identity) active(chosen string) (*orgIdentity, bool) {
	var first *orgIdentity
	for i := range id.orgs {
		if id.orgs[i].kvk == chosen {
			return &id.orgs[i], true
		}
		if first == nil {
			first = &id.orgs[i]
		}
	}
	return first, first != nil
}

// maxCachedIdentities bounds the identity cache; only accounts with a live
// session get in, so the bound is reached only by a large user base.
const maxCachedIdentities = 100_000

// identityCache keeps identities per account, trusted only while the
// account's version in the store has not moved since they were read; while
// the store cannot be reached, for the outage grace after it last
// confirmed them. When full it evicts the identities least likely to be
// asked for again (otter's W-TinyLFU), one at a time.
type identityCache struct {
	entries *otter.Cache[string, *identity]
	grace   time.Duration
	// hits and misses count get's use of the cache, for the metrics.
	hits, misses atomic.Uint64
}

func newIdentityCache(grace time.Duration) *identityCache {
	return newBoundedIdentityCache(maxCachedIdentities, grace)
}

func newBoundedIdentityCache(size int, grace time.Duration) *identityCache {
	return &identityCache{entries: otter.Must(&otter.Options[string, *identity]{MaximumSize: size}), grace: grace}
}

// get returns the account's identity, reading the store when the cached
// one is missing or stale. apps lists every app configured in guards; now
// is the request's time (the guard has it from the session lookup, which
// spares the hot path a clock read).
func (c *identityCache) get(versions storage.Versions, accounts *account.Service, orgs *org.Service, apps func() []string, accountID string, now time.Time) (*identity, error) {
	version := versions.Version(accountID)
	cached, _ := c.entries.GetIfPresent(accountID)
	if cached != nil && cached.version == version && (cached.expires == 0 || now.UnixNano() < cached.expires) {
		// Written at most once a second: every request of the account
		// passes here, and the grace is counted in seconds.
		if n := now.UnixNano(); n-cached.confirmed.Load() >= int64(time.Second) {
			cached.confirmed.Store(n)
		}
		c.hits.Add(1)
		return cached, nil
	}
	c.misses.Add(1)
	id, err := c.load(accounts, orgs, apps, accountID, version, now)
	if cached != nil && errors.Is(err, storage.ErrUnavailable) &&
		now.Sub(time.Unix(0, cached.confirmed.Load())) < c.grace {
		return cached, nil
	}
	return id, err
}

// load reads the account's identity from the store and caches it.
func (c *identityCache) load(accounts *account.Service, orgs *org.Service, apps func() []string, accountID string, version uint64, now time.Time) (*identity, error) {
	a, err := accounts.Account(accountID)
	if err != nil {
		return nil, err
	}
	ms, err := orgs.Memberships(accountID)
	if err != nil {
		return nil, err
	}
	id := &identity{
		version:           version,
		disabled:          a.Disabled,
		credentialVersion: a.CredentialVersion,
		id:                a.ID,
		email:             a.Email,
		name:              a.Name,
		nameHeader:        contract.UserName.Encoding().Encode(a.Name),
	}
	all := apps()
	for _, m := range ms {
		if !m.Anchored {
			if m.Lapsed && id.waitingKvK == "" {
				id.waitingKvK, id.waitingName = m.KvK, m.Organisation.Name
			}
			continue
		}
		if until := m.AnchoredUntil.UnixNano(); id.expires == 0 || until < id.expires {
			id.expires = until
		}
		granted := m.AppsFor(all)
		id.orgs = append(id.orgs, orgIdentity{
			kvk:        m.KvK,
			name:       m.Organisation.Name,
			nameHeader: contract.OrgName.Encoding().Encode(m.Organisation.Name),
			role:       m.Role,
			assurance:  m.Assurance(),
			apps:       granted,
			appsHeader: contract.JoinList(granted),
		})
	}
	id.pack()
	id.confirmed.Store(now.UnixNano())
	// Keyed by the identity's own copy of the ID, so the key costs the
	// cache no string of its own.
	c.entries.Set(id.id, id)
	return id, nil
}

// pack moves the identity's strings into one allocation: with 100k
// active accounts cached, marking a dozen strings each took a third of the
// server's CPU.
func (id *identity) pack() {
	fields := []*string{&id.id, &id.email, &id.name, &id.nameHeader, &id.waitingKvK, &id.waitingName}
	for i := range id.orgs {
		o := &id.orgs[i]
		fields = append(fields, &o.kvk, &o.name, &o.nameHeader, &o.role, &o.assurance, &o.appsHeader)
	}
	pack.Strings(fields...)
}

// asMember is the membership of an admin whose session did not pass a
// second factor: handed on as a member (same apps, role member), so no
// admin-only app or admin role reaches an upstream on a password alone.
func (o *orgIdentity) asMember() *orgIdentity {
	m := *o
	m.role = org.RoleMember
	return &m
}

// mayUse reports whether the membership grants the app.
func (o *orgIdentity) mayUse(app string) bool { return slices.Contains(o.apps, app) }
