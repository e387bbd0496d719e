package caddymodule

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/contract"
	"github.com/wijtechniek/wijgate/caddymodule/org"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// identity is what the guard hands the upstream about an account, with
// header values encoded once rather than on every request. A cache of
// every active account holds one each, so it is laid out for size and for
// the collector: the strings are one packed text addressed by offsets,
// the one membership most accounts have sits inline, and what many
// memberships share (role, assurance, apps) is one interned orgTerms.
type identity struct {
	// version is the store's Version of the account when it was read.
	version uint64
	// credentialVersion is the account's; a session made under another
	// one is void.
	credentialVersion uint64
	// text is the account's strings end to end (see the field
	// constants), then each membership's kvk, name and name header.
	text string
	ends [accountFields]uint16
	// expires and confirmed are unix seconds (see unixSeconds), which
	// keep an identity in an 80-byte allocation rather than a 96-byte
	// one. expires is when an eHerkenning verification that the
	// memberships rest on lapses (zero: none does): the identity is read
	// again then, as no write moves the account's version at that
	// moment. confirmed is when the store last vouched for this identity
	// (read it, or its version held), for the outage grace.
	expires   uint32
	confirmed atomic.Uint32
	// orgs is how many anchored memberships there are: the first inline,
	// the others in more.
	orgs     uint16
	disabled bool
	first    orgIdentity
	more     *[]orgIdentity
}

// unixSeconds is t as an identity keeps its times: unix seconds rounded
// down, so that an expiry comes and the outage grace ends up to a second
// early, never late; at least 1, as an expiry of zero means none.
func unixSeconds(t time.Time) uint32 {
	return uint32(min(max(t.Unix(), 1), math.MaxUint32))
}

// The account's strings in identity.text, in order. waitingKvK and
// waitingName are a membership that is not anchored (its verification
// lapsed or ended), for the page that says an admin must verify the
// company again; nameHeader is name encoded for a header value.
const (
	fieldID = iota
	fieldEmail
	fieldName
	fieldNameHeader
	fieldWaitingKvK
	fieldWaitingName
	accountFields
)

// maxIdentityText bounds an identity's packed strings, as their offsets
// are 16 bits.
const maxIdentityText = 1<<16 - 1

// errIdentityTooLarge is an account whose strings do not fit an identity.
var errIdentityTooLarge = errors.New("identity: the account's names and memberships exceed 64 KiB")

// orgIdentity is one membership of an identity, ready for the headers:
// where its strings lie in the identity's text, and its terms.
type orgIdentity struct {
	// from and ends are where the kvk, name and name header lie in the
	// identity's text: text[from:ends[0]], text[ends[0]:ends[1]],
	// text[ends[1]:ends[2]].
	from  uint16
	ends  [3]uint16
	terms *orgTerms
}

// orgTerms are what a membership grants: many memberships share each.
type orgTerms struct {
	role, assurance string
	// apps are the configured apps the membership may use.
	apps       []string
	appsHeader string
	// member is the same terms with the member role (itself for a
	// member), for an admin whose session did not pass a second factor.
	member *orgTerms
}

// noTerms are those of a membership that grants nothing (one waiting for
// verification).
var noTerms = func() *orgTerms {
	t := &orgTerms{}
	t.member = t
	return t
}()

func (id *identity) field(f int) string {
	from := uint16(0)
	if f > 0 {
		from = id.ends[f-1]
	}
	return id.text[from:id.ends[f]]
}

func (id *identity) accountID() string { return id.field(fieldID) }
func (id *identity) email() string     { return id.field(fieldEmail) }
func (id *identity) name() string      { return id.field(fieldName) }

// nameHeader is empty in the text when it is the name itself, as it is
// for most names.
func (id *identity) nameHeader() string {
	if h := id.field(fieldNameHeader); h != "" {
		return h
	}
	return id.name()
}

// org returns the i-th anchored membership.
func (id *identity) org(i int) *orgIdentity {
	if i == 0 {
		return &id.first
	}
	return &(*id.more)[i-1]
}

// orgKvK, orgName and orgNameHeader are the strings of o, a membership
// of id.
func (id *identity) orgKvK(o *orgIdentity) string  { return id.text[o.from:o.ends[0]] }
func (id *identity) orgName(o *orgIdentity) string { return id.text[o.ends[0]:o.ends[1]] }

// orgNameHeader is empty in the text when it is the name itself.
func (id *identity) orgNameHeader(o *orgIdentity) string {
	if h := id.text[o.ends[1]:o.ends[2]]; h != "" {
		return h
	}
	return id.orgName(o)
}

// waiting is the membership waiting for verification, if any: its kvk
// and name, granting nothing.
func (id *identity) waiting() *orgIdentity {
	kvk := id.ends[fieldWaitingKvK]
	if kvk == id.ends[fieldNameHeader] {
		return nil
	}
	name := id.ends[fieldWaitingName]
	return &orgIdentity{from: id.ends[fieldNameHeader], ends: [3]uint16{kvk, name, name}, terms: noTerms}
}

// active returns the organisation the session acts for, if any.
func (id *identity) active(chosen string) (*orgIdentity, bool) {
	for i := range int(id.orgs) {
		if o := id.org(i); id.orgKvK(o) == chosen {
			return o, true
		}
	}
	if id.orgs == 0 {
		return nil, false
	}
	return &id.first, true
}

// maxCachedIdentities bounds the identity cache; only accounts with a live
// session get in, so the bound is reached only by a large user base.
const maxCachedIdentities = 100_000

// identityShards is how many shards a full-size identity cache has. A
// shard's CLOCK keeps only the accounts in use that fall in it, so it
// must be far larger than their share: a cache is split into shards of
// at least minIdentityShard identities, a smaller one is a single shard.
const (
	identityShards   = 64
	minIdentityShard = 256
)

// identityCache keeps identities per account, trusted only while the
// account's version in the store has not moved since they were read; while
// the store cannot be reached, for the outage grace after it last
// confirmed them. When full it evicts one identity at a time, one not
// asked for since the last sweep passed it (CLOCK), so the accounts in use
// stay cached.
type identityCache struct {
	seed     maphash.Seed
	perShard int
	shards   []identityShard
	terms    termsTable
	grace    time.Duration
	// hits and misses count get's use of the cache, for the metrics.
	hits, misses atomic.Uint64
}

// identityShard is the identities of the account IDs whose hash falls in
// it. Cached identities are never changed but for their confirmed time,
// only replaced, so one a request holds stays right after it is evicted.
type identityShard struct {
	mu sync.RWMutex
	// index maps an account ID's hash (see locate) to its identity's
	// slot in ring; it holds no pointers, so the collector does not scan
	// it. Two IDs with the same hash share a slot, holding whichever was
	// read last.
	index map[uint32]uint32
	ring  []*identity
	// used has a bit per slot, set when the slot's identity is asked for
	// and cleared when hand passes it; hand evicts the first it finds
	// clear.
	used []atomic.Uint64
	hand int
}

func newIdentityCache(grace time.Duration) *identityCache {
	return newBoundedIdentityCache(maxCachedIdentities, grace)
}

func newBoundedIdentityCache(size int, grace time.Duration) *identityCache {
	shards := min(identityShards, max(1, size/minIdentityShard))
	c := &identityCache{seed: maphash.MakeSeed(), perShard: max(1, size/shards), shards: make([]identityShard, shards), grace: grace}
	for i := range c.shards {
		c.shards[i].index = make(map[uint32]uint32)
	}
	return c
}

// locate is the account's shard, picked by the low bits of its hash, and
// its key in the shard's index, the high 32 bits: as the ID is checked on
// every hit, a shared key costs only a miss, and 4-byte keys halve the
// index.
func (c *identityCache) locate(accountID string) (*identityShard, uint32) {
	hash := maphash.String(c.seed, accountID)
	return &c.shards[hash%uint64(len(c.shards))], uint32(hash >> 32)
}

// cached returns the account's cached identity, if any, and marks it used.
func (c *identityCache) cached(accountID string) *identity {
	s, key := c.locate(accountID)
	s.mu.RLock()
	defer s.mu.RUnlock()
	slot, ok := s.index[key]
	if !ok || s.ring[slot].accountID() != accountID {
		return nil
	}
	// Written only when clear: a busy account's requests only read it.
	if word, bit := &s.used[slot/64], uint64(1)<<(slot%64); word.Load()&bit == 0 {
		word.Or(bit)
	}
	return s.ring[slot]
}

// put caches id in place of the account's cached identity, or of the
// first one the sweep finds unused when the shard is full.
func (c *identityCache) put(id *identity) {
	s, key := c.locate(id.accountID())
	s.mu.Lock()
	defer s.mu.Unlock()
	if slot, ok := s.index[key]; ok {
		s.ring[slot] = id
		return
	}
	if len(s.ring) < c.perShard {
		if len(s.ring)%64 == 0 {
			s.used = append(s.used, atomic.Uint64{})
		}
		s.index[key] = uint32(len(s.ring))
		s.ring = append(s.ring, id)
		return
	}
	// Each pass clears the bits it finds set, so a full round at most
	// comes back to a clear one.
	for {
		s.hand = (s.hand + 1) % len(s.ring)
		word, bit := &s.used[s.hand/64], uint64(1)<<(s.hand%64)
		if word.Load()&bit == 0 {
			break
		}
		word.And(^bit)
	}
	_, evicted := c.locate(s.ring[s.hand].accountID())
	delete(s.index, evicted)
	s.index[key] = uint32(s.hand)
	s.ring[s.hand] = id
}

// len is how many identities are cached.
func (c *identityCache) len() int {
	n := 0
	for i := range c.shards {
		c.shards[i].mu.RLock()
		n += len(c.shards[i].index)
		c.shards[i].mu.RUnlock()
	}
	return n
}

// get returns the account's identity, reading the store when the cached
// one is missing or stale. apps lists every app configured in guards; now
// is the request's time (the guard has it from the session lookup, which
// spares the hot path a clock read).
func (c *identityCache) get(versions storage.Versions, accounts *account.Service, orgs *org.Service, apps func() []string, accountID string, now time.Time) (*identity, error) {
	version := versions.Version(accountID)
	cached := c.cached(accountID)
	nowSeconds := unixSeconds(now)
	if cached != nil && cached.version == version && (cached.expires == 0 || nowSeconds < cached.expires) {
		// Written once a second: every request of the account passes
		// here.
		if cached.confirmed.Load() != nowSeconds {
			cached.confirmed.Store(nowSeconds)
		}
		c.hits.Add(1)
		return cached, nil
	}
	c.misses.Add(1)
	id, err := c.load(accounts, orgs, apps, accountID, version, now)
	if cached != nil && errors.Is(err, storage.ErrUnavailable) &&
		now.Sub(time.Unix(int64(cached.confirmed.Load()), 0)) < c.grace {
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
	f := identityFacts{id: a.ID, email: a.Email, name: a.Name}
	var expires uint32
	all := apps()
	for _, m := range ms {
		if !m.Anchored {
			if m.Lapsed && f.waitingKvK == "" {
				f.waitingKvK, f.waitingName = m.KvK, m.Organisation.Name
			}
			continue
		}
		if until := unixSeconds(m.AnchoredUntil); expires == 0 || until < expires {
			expires = until
		}
		f.orgs = append(f.orgs, orgFacts{kvk: m.KvK, name: m.Organisation.Name, role: m.Role,
			assurance: m.Assurance(), apps: m.AppsFor(all)})
	}
	id, err := c.terms.pack(f)
	if err != nil {
		return nil, fmt.Errorf("account %s: %w", accountID, err)
	}
	id.version, id.credentialVersion, id.disabled, id.expires = version, a.CredentialVersion, a.Disabled, expires
	id.confirmed.Store(unixSeconds(now))
	c.put(id)
	return id, nil
}

// identityFacts are an account's strings and anchored memberships, before
// they are packed into an identity.
type identityFacts struct {
	id, email, name         string
	orgs                    []orgFacts
	waitingKvK, waitingName string
}

type orgFacts struct {
	kvk, name, role, assurance string
	apps                       []string
}

// pack lays f out as an identity: one string for the text, the
// memberships' terms interned in t.
func (t *termsTable) pack(f identityFacts) (*identity, error) {
	nameHeader := headerUnlessSame(contract.UserName.Encoding().Encode(f.name), f.name)
	account := [accountFields]string{f.id, f.email, f.name, nameHeader, f.waitingKvK, f.waitingName}
	orgNameHeaders := make([]string, len(f.orgs))
	n := 0
	for _, s := range account {
		n += len(s)
	}
	for i, o := range f.orgs {
		orgNameHeaders[i] = headerUnlessSame(contract.OrgName.Encoding().Encode(o.name), o.name)
		n += len(o.kvk) + len(o.name) + len(orgNameHeaders[i])
	}
	if n > maxIdentityText || len(f.orgs) > maxIdentityText {
		return nil, errIdentityTooLarge
	}
	var b strings.Builder
	b.Grow(n)
	id := &identity{orgs: uint16(len(f.orgs))}
	for i, s := range account {
		b.WriteString(s)
		id.ends[i] = uint16(b.Len())
	}
	records := make([]orgIdentity, len(f.orgs))
	for i, o := range f.orgs {
		r := &records[i]
		r.from = uint16(b.Len())
		for j, s := range [3]string{o.kvk, o.name, orgNameHeaders[i]} {
			b.WriteString(s)
			r.ends[j] = uint16(b.Len())
		}
		r.terms = t.intern(o.role, o.assurance, o.apps)
	}
	id.text = b.String()
	if len(records) > 0 {
		id.first = records[0]
	}
	if len(records) > 1 {
		more := records[1:]
		id.more = &more
	}
	return id, nil
}

// headerUnlessSame is a name's header encoding as the text keeps it:
// empty when it is the name itself.
func headerUnlessSame(header, name string) string {
	if header == name {
		return ""
	}
	return header
}

// maxInternedTerms bounds a termsTable; past it, new terms are not
// shared, which costs memory but changes nothing else.
const maxInternedTerms = 4096

// termsTable interns orgTerms: a role, an assurance and a set of apps are
// shared by many memberships.
type termsTable struct {
	mu sync.Mutex
	m  map[string]*orgTerms
}

func (t *termsTable) intern(role, assurance string, apps []string) *orgTerms {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.internLocked(role, assurance, apps)
}

func (t *termsTable) internLocked(role, assurance string, apps []string) *orgTerms {
	key := role + "\x00" + assurance + "\x00" + strings.Join(apps, "\x00")
	if o, ok := t.m[key]; ok {
		return o
	}
	o := &orgTerms{role: role, assurance: assurance, apps: slices.Clip(apps), appsHeader: contract.JoinList(apps)}
	o.member = o
	if role != org.RoleMember {
		o.member = t.internLocked(org.RoleMember, assurance, apps)
	}
	if t.m == nil {
		t.m = make(map[string]*orgTerms)
	}
	if len(t.m) < maxInternedTerms {
		t.m[key] = o
	}
	return o
}

func (o *orgIdentity) role() string       { return o.terms.role }
func (o *orgIdentity) assurance() string  { return o.terms.assurance }
func (o *orgIdentity) apps() []string     { return o.terms.apps }
func (o *orgIdentity) appsHeader() string { return o.terms.appsHeader }

// asMember is the membership of an admin whose session did not pass a
// second factor: handed on as a member (same apps, role member), so no
// admin-only app or admin role reaches an upstream on a password alone.
func (o *orgIdentity) asMember() *orgIdentity {
	m := *o
	m.terms = o.terms.member
	return &m
}

// mayUse reports whether the membership grants the app.
func (o *orgIdentity) mayUse(app string) bool { return slices.Contains(o.terms.apps, app) }
