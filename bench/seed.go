package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/account"
	"github.com/wijtechniek/wijgate/caddymodule/session"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
	"github.com/wijtechniek/wijgate/caddymodule/store"
)

// Seeded accounts are made straight through the store package's bulk
// importer while no server runs: per account the records CreateAccount,
// LinkOrganisation (an eHerkenning-anchored admin of its own organisation,
// so the default `require app` guard lets it in) and CreateSession write,
// committed in large batches.

// seedPassword is every seeded account's password (the login storm's right
// password). It passes wijgate's password rules.
const seedPassword = "bench paard batterij nietje 42"

// seeder makes accounts and sessions whose cookies it can mint later: the
// session IDs are derived from a per-run secret and the account's index.
type seeder struct {
	secret [32]byte
	hash   string // argon2id hash of seedPassword, shared by all accounts
	now    time.Time
	codec  *session.Codec
}

func newSeeder() (*seeder, error) {
	s := &seeder{now: time.Now()}
	_, _ = rand.Read(s.secret[:])
	h, err := account.NewHasher(account.HasherOptions{})
	if err != nil {
		return nil, err
	}
	if s.hash, err = h.Hash(context.Background(), seedPassword); err != nil {
		return nil, err
	}
	return s, nil
}

var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func (s *seeder) derive(kind string, i int) [32]byte {
	b := make([]byte, 0, 64)
	b = append(b, s.secret[:]...)
	return sha256.Sum256(fmt.Appendf(b, "/%s/%d", kind, i))
}

// sessionID is a 26-character base32 ID, the shape session.NewID makes.
func (s *seeder) sessionID(i int) string {
	d := s.derive("session", i)
	return strings.ToUpper(lowerBase32.EncodeToString(d[:]))[:26]
}

func (s *seeder) accountID(i int) string {
	d := s.derive("account", i)
	return "u-" + lowerBase32.EncodeToString(d[:])[:26]
}

func seedEmail(i int) string { return fmt.Sprintf("seed%07d@bench.wij-techniek.nl", i) }

func seedKvK(i int) string { return fmt.Sprintf("%08d", 20_000_000+i) }

// storageKey is how the session package keys a session in the store: the
// unpadded base64url SHA-256 of the ID (caddymodule/session/manager.go).
func storageKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// seedRange writes accounts [from, to) with workers concurrent writers.
func (s *seeder) seedRange(st *store.Store, from, to, workers int) error {
	im := st.NewImporter()
	var next atomic.Int64
	next.Store(int64(from))
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= to {
					return
				}
				if err := s.seedOne(im, i); err != nil {
					once.Do(func() { firstErr = fmt.Errorf("seeding account %d: %w", i, err) })
					next.Store(int64(to))
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		im.Cancel()
		return firstErr
	}
	return im.Close()
}

func (s *seeder) seedOne(im *store.Importer, i int) error {
	id := s.accountID(i)
	now := s.now
	if err := im.Account(storage.Account{
		ID: id, Email: seedEmail(i), Name: fmt.Sprintf("Bench Jänssen %d", i),
		PasswordHash: s.hash, Lang: "nl", CreatedAt: now, PasswordChangedAt: now,
	}); err != nil {
		return err
	}
	kvk := seedKvK(i)
	if err := im.Membership(
		storage.Organisation{KvK: kvk, Name: fmt.Sprintf("Bench & Zonen %d B.V.", i), CreatedAt: now, UpdatedAt: now},
		storage.Membership{KvK: kvk, AccountID: id, Role: "admin", Anchor: "eh3", Level: "loa3", Since: now, VerifiedAt: now},
	); err != nil {
		return err
	}
	return im.Session(storage.Session{
		Key: storageKey(s.sessionID(i)), AccountID: id,
		CreatedAt: now, LastSeen: time.Now(), ExpiresAt: now.Add(session.DefaultLifetime),
	})
}

// linkOrg makes the account an eHerkenning-anchored admin of the
// organisation, as a completed eHerkenning login does.
func (s *seeder) linkOrg(st *store.Store, accountID, kvk, name string) error {
	now := s.now
	_, err := st.LinkOrganisation(
		storage.Organisation{KvK: kvk, Name: name, CreatedAt: now, UpdatedAt: now},
		storage.Membership{KvK: kvk, AccountID: accountID, Role: "admin", Anchor: "eh3", Level: "loa3",
			Since: now, VerifiedAt: now},
	)
	return err
}

// loadCodec reads the cookie keys the server keeps in the store (secret
// "cookie-keys", a JSON list of "hash:block" pairs; see
// caddymodule/app.go cookieKeys), making them the way the server would if
// it has not yet.
func (s *seeder) loadCodec(st *store.Store) error {
	raw, err := st.Secret("cookie-keys", func() ([]byte, error) {
		return json.Marshal([]string{session.NewKeyPair().String()})
	})
	if err != nil {
		return err
	}
	var stored []string
	if err := json.Unmarshal(raw, &stored); err != nil {
		return err
	}
	var keys []session.KeyPair
	for _, k := range stored {
		kp, err := session.ParseKeyPair(k)
		if err != nil {
			return err
		}
		keys = append(keys, kp)
	}
	s.codec, err = session.NewCodec(cookieName, keys...)
	return err
}

// cookie mints the session cookie value of seeded account i.
func (s *seeder) cookie(i int) (string, error) {
	return s.codec.Encode(s.sessionID(i))
}

// guardedRequests serialises a guarded request for each of n seeded
// sessions (0..n-1).
func (s *seeder) guardedRequests(host string, n int) ([][]byte, error) {
	out := make([][]byte, n)
	for i := range n {
		c, err := s.cookie(i)
		if err != nil {
			return nil, err
		}
		out[i] = buildRequest(requestOpts{host: host, path: "/g/app", accept: "application/json", cookie: c})
	}
	return out, nil
}
