package account

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters: the OWASP Password Storage Cheat Sheet's first
// recommended set (19 MiB, 2 passes, 1 lane), the floor NewHasher accepts.
const (
	defaultMemoryKiB    = 19456
	defaultTime         = 2
	defaultThreads      = 1
	defaultQueueTimeout = 5 * time.Second
	saltLen             = 16
	keyLen              = 32
)

// Bounds on parameters read from a stored hash. A corrupt or planted
// record must not make one login allocate gigabytes or spin for minutes,
// nor (with an empty hash) match any password.
const (
	maxMemoryKiB  = 1 << 20 // 1 GiB
	maxTime       = 10
	maxThreads    = 16
	minStoredSalt = 8
	maxStoredSalt = 64
	minStoredKey  = 16
	maxStoredKey  = 128
)

// ErrBusy means no hashing slot came free within the queue timeout, or the
// context ended while waiting. Callers should answer "try again later"
// rather than queue more work.
var ErrBusy = errors.New("account: password hasher busy")

// ErrInvalidHash means a stored password hash is malformed, not argon2id,
// or has parameters outside the accepted bounds.
var ErrInvalidHash = errors.New("account: invalid password hash")

// HasherOptions configures NewHasher; zero fields take the defaults.
type HasherOptions struct {
	// Concurrency is how many hashes may run at once; each holds MemoryKiB
	// of memory while it runs. Default runtime.GOMAXPROCS(0).
	Concurrency int
	// QueueTimeout is how long a call waits for a free slot before
	// returning ErrBusy. Default 5s.
	QueueTimeout time.Duration
	// MemoryKiB is the argon2id memory cost; at least 19456 (the default).
	MemoryKiB uint32
	// Time is the argon2id number of passes; at least 2 (the default).
	Time uint32
	// OnWait, when set, is told how long each call waited for a slot
	// (zero when one was free), also when it gave up with ErrBusy.
	OnWait func(time.Duration)
}

// Hasher hashes and verifies passwords with argon2id. A semaphore bounds
// how many hashes run at once, so a burst of logins queues briefly and then
// fails fast with ErrBusy instead of exhausting memory and CPU. It is safe
// for concurrent use.
type Hasher struct {
	memory       uint32
	time         uint32
	threads      uint8
	queueTimeout time.Duration
	// sem holds one token per running hash.
	sem    chan struct{}
	onWait func(time.Duration)
	// dummy is a well-formed hash with the current parameters that no
	// password matches, verified against for unknown accounts.
	dummy string
}

// NewHasher returns a Hasher for o. It refuses parameters weaker than the
// defaults, so a configuration mistake cannot silently weaken storage.
func NewHasher(o HasherOptions) (*Hasher, error) {
	if o.MemoryKiB == 0 {
		o.MemoryKiB = defaultMemoryKiB
	}
	if o.Time == 0 {
		o.Time = defaultTime
	}
	if o.MemoryKiB < defaultMemoryKiB || o.MemoryKiB > maxMemoryKiB {
		return nil, fmt.Errorf("account: hasher memory %d KiB outside [%d, %d]", o.MemoryKiB, defaultMemoryKiB, maxMemoryKiB)
	}
	if o.Time < defaultTime || o.Time > maxTime {
		return nil, fmt.Errorf("account: hasher time %d outside [%d, %d]", o.Time, defaultTime, maxTime)
	}
	return newHasher(o)
}

// NewTestHasher returns a Hasher with tiny parameters (64 KiB, 1 pass) so
// that tests of other packages run fast. It is for tests only: hashes it
// makes are cheap to crack, and a production Hasher reports them through
// NeedsRehash.
func NewTestHasher() *Hasher {
	h, err := newHasher(HasherOptions{MemoryKiB: 64, Time: 1})
	if err != nil {
		panic(err)
	}
	return h
}

// newHasher fills the remaining defaults without the strength floor that
// NewHasher enforces.
func newHasher(o HasherOptions) (*Hasher, error) {
	if o.Concurrency < 0 {
		return nil, fmt.Errorf("account: hasher concurrency %d is negative", o.Concurrency)
	}
	if o.QueueTimeout < 0 {
		return nil, fmt.Errorf("account: hasher queue timeout %v is negative", o.QueueTimeout)
	}
	if o.Concurrency == 0 {
		o.Concurrency = runtime.GOMAXPROCS(0)
	}
	if o.QueueTimeout == 0 {
		o.QueueTimeout = defaultQueueTimeout
	}
	h := &Hasher{
		memory:       o.MemoryKiB,
		time:         o.Time,
		threads:      defaultThreads,
		queueTimeout: o.QueueTimeout,
		sem:          make(chan struct{}, o.Concurrency),
		onWait:       o.OnWait,
	}
	if h.onWait == nil {
		h.onWait = func(time.Duration) {}
	}
	// Random bytes stand in for the key: VerifyDummy only needs the
	// argon2id work to be done, never a match.
	h.dummy = encodePHC(phc{
		memory: h.memory, time: h.time, threads: h.threads,
		salt: randomBytes(saltLen), key: randomBytes(keyLen),
	})
	return h, nil
}

// Hash returns the PHC-format argon2id hash of password with a fresh
// random salt. It waits for a slot as described on Hasher.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	p := phc{memory: h.memory, time: h.time, threads: h.threads, salt: randomBytes(saltLen)}
	p.key = argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, keyLen)
	return encodePHC(p), nil
}

// Verify reports whether password matches the encoded hash. The
// parameters come from encoded, so hashes made under older settings keep
// verifying. A malformed or out-of-bounds encoded returns ErrInvalidHash
// without doing any hashing work; no slot returns ErrBusy.
func (h *Hasher) Verify(ctx context.Context, encoded, password string) (bool, error) {
	p, err := parsePHC(encoded)
	if err != nil {
		return false, err
	}
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()
	key := argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	return subtle.ConstantTimeCompare(key, p.key) == 1, nil
}

// VerifyDummy does the work of a Verify with the current parameters,
// including waiting for a slot, and discards the result. Calling it for
// unknown accounts makes their response time match that of known ones, so
// timing does not reveal which email addresses have accounts.
func (h *Hasher) VerifyDummy(ctx context.Context, password string) {
	_, _ = h.Verify(ctx, h.dummy, password)
}

// NeedsRehash reports whether encoded should be replaced, after a
// successful login, by a fresh Hash: it is malformed or was made with
// parameters other than this Hasher's.
func (h *Hasher) NeedsRehash(encoded string) bool {
	p, err := parsePHC(encoded)
	if err != nil {
		return true
	}
	return p.memory != h.memory || p.time != h.time || p.threads != h.threads ||
		len(p.salt) < saltLen || len(p.key) != keyLen
}

// InFlight returns how many hashes are running now.
func (h *Hasher) InFlight() int {
	return len(h.sem)
}

// acquire takes a hashing slot, waiting at most the queue timeout.
func (h *Hasher) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrBusy, err)
	}
	select {
	case h.sem <- struct{}{}:
		h.onWait(0)
		return nil
	default:
	}
	start := time.Now()
	defer func() { h.onWait(time.Since(start)) }()
	t := time.NewTimer(h.queueTimeout)
	defer t.Stop()
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrBusy, ctx.Err())
	case <-t.C:
		return ErrBusy
	}
}

func (h *Hasher) release() { <-h.sem }

// phc is a decoded argon2id hash string.
type phc struct {
	memory, time uint32
	threads      uint8
	salt, key    []byte
}

// encodePHC renders p as "$argon2id$v=19$m=..,t=..,p=..$salt$key".
func encodePHC(p phc) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		p.memory, p.time, p.threads,
		base64.RawStdEncoding.EncodeToString(p.salt),
		base64.RawStdEncoding.EncodeToString(p.key))
}

// parsePHC decodes an argon2id PHC string strictly: exact field order,
// canonical numbers and base64, and every parameter within bounds.
func parsePHC(s string) (phc, error) {
	var p phc
	f := strings.Split(s, "$")
	if len(f) != 6 || f[0] != "" || f[1] != "argon2id" {
		return p, fmt.Errorf("%w: not an argon2id PHC string", ErrInvalidHash)
	}
	if f[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, fmt.Errorf("%w: unsupported version %q", ErrInvalidHash, f[2])
	}
	params := strings.Split(f[3], ",")
	if len(params) != 3 {
		return p, fmt.Errorf("%w: want parameters m,t,p", ErrInvalidHash)
	}
	m, err1 := phcParam(params[0], "m", maxMemoryKiB)
	t, err2 := phcParam(params[1], "t", maxTime)
	th, err3 := phcParam(params[2], "p", maxThreads)
	if err := errors.Join(err1, err2, err3); err != nil {
		return p, err
	}
	// Argon2 needs 8 KiB per lane; below that the library would quietly
	// use different parameters from those recorded.
	if m < 8*th {
		return p, fmt.Errorf("%w: m=%d below 8*p", ErrInvalidHash, m)
	}
	p.memory, p.time, p.threads = uint32(m), uint32(t), uint8(th)
	var err error
	if p.salt, err = phcBase64(f[4], minStoredSalt, maxStoredSalt); err != nil {
		return p, fmt.Errorf("%w: salt: %w", ErrInvalidHash, err)
	}
	if p.key, err = phcBase64(f[5], minStoredKey, maxStoredKey); err != nil {
		return p, fmt.Errorf("%w: hash: %w", ErrInvalidHash, err)
	}
	return p, nil
}

// phcParam parses "name=value" with value a canonical decimal in [1, hi].
func phcParam(kv, name string, hi uint64) (uint64, error) {
	v, ok := strings.CutPrefix(kv, name+"=")
	if !ok {
		return 0, fmt.Errorf("%w: want %s= in %q", ErrInvalidHash, name, kv)
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n < 1 || n > hi || strconv.FormatUint(n, 10) != v {
		return 0, fmt.Errorf("%w: %s=%q not in [1, %d]", ErrInvalidHash, name, v, hi)
	}
	return n, nil
}

// phcBase64 decodes unpadded standard base64 of lo to hi bytes. The
// re-encoding check rejects what the decoder would tolerate (embedded
// newlines, stray low bits), so each hash has exactly one spelling.
func phcBase64(s string, lo, hi int) ([]byte, error) {
	b, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	if base64.RawStdEncoding.EncodeToString(b) != s {
		return nil, errors.New("not canonical base64")
	}
	if len(b) < lo || len(b) > hi {
		return nil, fmt.Errorf("%d bytes, want %d to %d", len(b), lo, hi)
	}
	return b, nil
}

// randomBytes returns n bytes from the system CSPRNG; crypto/rand.Read
// never fails (it crashes the program if the OS cannot supply entropy).
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
