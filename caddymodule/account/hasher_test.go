package account

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func newRealHasher(t testing.TB) *Hasher {
	t.Helper()
	h, err := NewHasher(HasherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// newTinyHasher is a fast hasher with the given slot count and queue timeout.
func newTinyHasher(t *testing.T, concurrency int, queue time.Duration) *Hasher {
	t.Helper()
	h, err := newHasher(HasherOptions{Concurrency: concurrency, QueueTimeout: queue, MemoryKiB: 64, Time: 1})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

var phcPattern = regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$`)

func TestHashAndVerify(t *testing.T) {
	h := newRealHasher(t)
	ctx := context.Background()
	const pw = "één koffie met mélk graag"

	enc, err := h.Hash(ctx, pw)
	if err != nil {
		t.Fatal(err)
	}
	m := phcPattern.FindStringSubmatch(enc)
	if m == nil {
		t.Fatalf("hash %q is not argon2id PHC with m=19456,t=2,p=1", enc)
	}
	salt, err := base64.RawStdEncoding.DecodeString(m[1])
	if err != nil || len(salt) < 16 {
		t.Fatalf("salt %q: %d bytes, err %v; want at least 16", m[1], len(salt), err)
	}
	key, err := base64.RawStdEncoding.DecodeString(m[2])
	if err != nil || len(key) != 32 {
		t.Fatalf("hash %q: %d bytes, err %v; want 32", m[2], len(key), err)
	}

	enc2, err := h.Hash(ctx, pw)
	if err != nil {
		t.Fatal(err)
	}
	if enc2 == enc {
		t.Fatal("two hashes of the same password are equal; salt is not random")
	}

	tests := []struct {
		name string
		pw   string
		want bool
	}{
		{"right password", pw, true},
		{"wrong password", "kwtnbrqzplmx", false},
		{"one character changed", "één koffie met melk graag", false},
		{"NFD form of the right password", "e\u0301e\u0301n koffie met me\u0301lk graag", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := h.Verify(ctx, enc, tc.pw)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tc.want {
				t.Fatalf("Verify(%q) = %v, want %v", tc.pw, ok, tc.want)
			}
		})
	}
}

func TestVerifyUsesStoredParams(t *testing.T) {
	ctx := context.Background()
	old, err := NewTestHasher().Hash(ctx, "kwtnbrqzplmx")
	if err != nil {
		t.Fatal(err)
	}
	h := newRealHasher(t)
	ok, err := h.Verify(ctx, old, "kwtnbrqzplmx")
	if err != nil || !ok {
		t.Fatalf("Verify of a hash with older params = %v, %v; want true, nil", ok, err)
	}
}

func TestVerifyMalformed(t *testing.T) {
	salt := base64.RawStdEncoding.EncodeToString(make([]byte, 16))
	key := base64.RawStdEncoding.EncodeToString(make([]byte, 32))
	phcString := func(alg, ver, params, salt, key string) string {
		return "$" + alg + "$" + ver + "$" + params + "$" + salt + "$" + key
	}
	valid := phcString("argon2id", "v=19", "m=64,t=1,p=1", salt, key)
	tests := []struct {
		name    string
		encoded string
		wantErr bool
	}{
		{"well-formed control", valid, false},
		{"empty", "", true},
		{"only dollars", "$$$$$", true},
		{"hash field missing", strings.TrimSuffix(valid, "$"+key), true},
		{"cut inside params", valid[:len("$argon2id$v=19$m=6")], true},
		{"extra field", valid + "$AAAA", true},
		{"no leading dollar", strings.TrimPrefix(valid, "$"), true},
		{"argon2i", phcString("argon2i", "v=19", "m=64,t=1,p=1", salt, key), true},
		{"bcrypt", "$2a$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW", true},
		{"version 16", phcString("argon2id", "v=16", "m=64,t=1,p=1", salt, key), true},
		{"missing version", "$argon2id$m=64,t=1,p=1$" + salt + "$" + key, true},
		{"params out of order", phcString("argon2id", "v=19", "t=1,m=64,p=1", salt, key), true},
		{"extra param", phcString("argon2id", "v=19", "m=64,t=1,p=1,x=1", salt, key), true},
		{"missing param", phcString("argon2id", "v=19", "m=64,t=1", salt, key), true},
		{"non-numeric m", phcString("argon2id", "v=19", "m=abc,t=1,p=1", salt, key), true},
		{"signed m", phcString("argon2id", "v=19", "m=+64,t=1,p=1", salt, key), true},
		{"leading zero m", phcString("argon2id", "v=19", "m=064,t=1,p=1", salt, key), true},
		{"m overflows uint32", phcString("argon2id", "v=19", "m=99999999999,t=1,p=1", salt, key), true},
		{"m over 1 GiB", phcString("argon2id", "v=19", "m=1048577,t=1,p=1", salt, key), true},
		{"m below 8 per lane", phcString("argon2id", "v=19", "m=8,t=1,p=2", salt, key), true},
		{"t zero", phcString("argon2id", "v=19", "m=64,t=0,p=1", salt, key), true},
		{"t over 10", phcString("argon2id", "v=19", "m=64,t=11,p=1", salt, key), true},
		{"p zero", phcString("argon2id", "v=19", "m=64,t=1,p=0", salt, key), true},
		{"p over 16", phcString("argon2id", "v=19", "m=1024,t=1,p=17", salt, key), true},
		{"p over 255", phcString("argon2id", "v=19", "m=4096,t=1,p=257", salt, key), true},
		{"salt not base64", phcString("argon2id", "v=19", "m=64,t=1,p=1", "!!!!", key), true},
		{"salt padded", phcString("argon2id", "v=19", "m=64,t=1,p=1", salt+"==", key), true},
		{"salt with newline", phcString("argon2id", "v=19", "m=64,t=1,p=1", salt[:8]+"\n"+salt[8:], key), true},
		{"salt too short", phcString("argon2id", "v=19", "m=64,t=1,p=1", "AAAA", key), true},
		{"empty hash", phcString("argon2id", "v=19", "m=64,t=1,p=1", salt, ""), true},
		{"hash too short", phcString("argon2id", "v=19", "m=64,t=1,p=1", salt, "AAAAAAAA"), true},
		{"hash non-canonical bits", phcString("argon2id", "v=19", "m=64,t=1,p=1", salt, key[:len(key)-1]+"B"), true},
		{"huge", phcString("argon2id", "v=19", "m=64,t=1,p=1", salt, strings.Repeat("A", 1<<20)), true},
	}
	h := NewTestHasher()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := h.Verify(context.Background(), tc.encoded, "kwtnbrqzplmx")
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("Verify(%q) error %v, want nil", tc.encoded, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidHash) || ok {
				t.Fatalf("Verify(%q) = %v, %v; want false, ErrInvalidHash", tc.encoded, ok, err)
			}
			if !h.NeedsRehash(tc.encoded) {
				t.Fatalf("NeedsRehash(%q) = false for a malformed hash", tc.encoded)
			}
		})
	}
}

func TestNeedsRehash(t *testing.T) {
	h := newRealHasher(t)
	current, err := h.Hash(context.Background(), "kwtnbrqzplmx")
	if err != nil {
		t.Fatal(err)
	}
	salt := make([]byte, 16)
	key := make([]byte, 32)
	tests := []struct {
		name    string
		encoded string
		want    bool
	}{
		{"current params", current, false},
		{"test hasher params", NewTestHasher().dummy, true},
		{"more time", encodePHC(phc{memory: 19456, time: 3, threads: 1, salt: salt, key: key}), true},
		{"more memory", encodePHC(phc{memory: 65536, time: 2, threads: 1, salt: salt, key: key}), true},
		{"two lanes", encodePHC(phc{memory: 19456, time: 2, threads: 2, salt: salt, key: key}), true},
		{"short salt", encodePHC(phc{memory: 19456, time: 2, threads: 1, salt: salt[:8], key: key}), true},
		{"short key", encodePHC(phc{memory: 19456, time: 2, threads: 1, salt: salt, key: key[:16]}), true},
		{"malformed", "$argon2id$", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := h.NeedsRehash(tc.encoded); got != tc.want {
				t.Fatalf("NeedsRehash(%q) = %v, want %v", tc.encoded, got, tc.want)
			}
		})
	}
}

func TestNewHasherOptions(t *testing.T) {
	tests := []struct {
		name       string
		opts       HasherOptions
		wantErr    bool
		wantMemory uint32
		wantTime   uint32
	}{
		{"defaults", HasherOptions{}, false, 19456, 2},
		{"stronger", HasherOptions{MemoryKiB: 65536, Time: 3}, false, 65536, 3},
		{"memory below floor", HasherOptions{MemoryKiB: 19455}, true, 0, 0},
		{"time below floor", HasherOptions{Time: 1}, true, 0, 0},
		{"memory over 1 GiB", HasherOptions{MemoryKiB: 1<<20 + 1}, true, 0, 0},
		{"time over 10", HasherOptions{Time: 11}, true, 0, 0},
		{"negative concurrency", HasherOptions{Concurrency: -1}, true, 0, 0},
		{"negative queue timeout", HasherOptions{QueueTimeout: -time.Second}, true, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := NewHasher(tc.opts)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("NewHasher(%+v) succeeded, want error", tc.opts)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.memory != tc.wantMemory || h.time != tc.wantTime || h.threads != 1 {
				t.Fatalf("params m=%d t=%d p=%d, want m=%d t=%d p=1", h.memory, h.time, h.threads, tc.wantMemory, tc.wantTime)
			}
			if cap(h.sem) != runtime.GOMAXPROCS(0) || h.queueTimeout != 5*time.Second {
				t.Fatalf("concurrency %d, queue timeout %v; want GOMAXPROCS and 5s", cap(h.sem), h.queueTimeout)
			}
		})
	}
}

func TestNewTestHasherIsFastAndWorks(t *testing.T) {
	h := NewTestHasher()
	if h.memory != 64 || h.time != 1 {
		t.Fatalf("test hasher m=%d t=%d, want m=64 t=1", h.memory, h.time)
	}
	ctx := context.Background()
	enc, err := h.Hash(ctx, "kwtnbrqzplmx")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := h.Verify(ctx, enc, "kwtnbrqzplmx"); err != nil || !ok {
		t.Fatalf("Verify = %v, %v; want true, nil", ok, err)
	}
}

func TestVerifyDummyDoesRealWork(t *testing.T) {
	h := newRealHasher(t)
	// A malformed dummy would make VerifyDummy return at once, and unknown
	// accounts would answer faster than known ones.
	if _, err := parsePHC(h.dummy); err != nil {
		t.Fatalf("dummy hash %q: %v", h.dummy, err)
	}
	if h.NeedsRehash(h.dummy) {
		t.Fatalf("dummy hash %q does not use the hasher's params", h.dummy)
	}
	// A dummy that some password matched would let that password into
	// unknown accounts; the random key makes that practically impossible.
	if h.dummy == newRealHasher(t).dummy {
		t.Fatal("dummy hashes are not random")
	}
}

func TestHashBusy(t *testing.T) {
	ctx := context.Background()
	h := newTinyHasher(t, 1, 20*time.Millisecond)

	// Take the only slot as a concurrent hash would.
	if err := h.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if n := h.InFlight(); n != 1 {
		t.Fatalf("InFlight = %d, want 1", n)
	}
	start := time.Now()
	if _, err := h.Hash(ctx, "kwtnbrqzplmx"); !errors.Is(err, ErrBusy) {
		t.Fatalf("Hash with no free slot = %v, want ErrBusy", err)
	}
	// A queued call must wait out its timeout, not fail at once.
	if waited := time.Since(start); waited < h.queueTimeout {
		t.Fatalf("Hash gave up after %v, before the %v queue timeout", waited, h.queueTimeout)
	}
	if _, err := h.Verify(ctx, h.dummy, "kwtnbrqzplmx"); !errors.Is(err, ErrBusy) {
		t.Fatalf("Verify with no free slot = %v, want ErrBusy", err)
	}
	h.release()

	if _, err := h.Hash(ctx, "kwtnbrqzplmx"); err != nil {
		t.Fatalf("Hash after the slot came free = %v", err)
	}
	if n := h.InFlight(); n != 0 {
		t.Fatalf("InFlight after Hash = %d, want 0", n)
	}
}

// waitCtx tells the test, through waiting, when a caller starts to block on
// its Done channel, so the test can cancel at exactly that point.
type waitCtx struct {
	context.Context
	once    sync.Once
	waiting chan struct{}
}

func (c *waitCtx) Done() <-chan struct{} {
	c.once.Do(func() { close(c.waiting) })
	return c.Context.Done()
}

func TestHashBusyContextCancelled(t *testing.T) {
	h := newTinyHasher(t, 1, time.Hour)
	if err := h.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer h.release()

	inner, cancel := context.WithCancel(context.Background())
	ctx := &waitCtx{Context: inner, waiting: make(chan struct{})}
	done := make(chan error)
	go func() {
		_, err := h.Hash(ctx, "kwtnbrqzplmx")
		done <- err
	}()
	<-ctx.waiting
	cancel()
	err := <-done
	if !errors.Is(err, ErrBusy) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Hash cancelled while queued = %v, want ErrBusy and context.Canceled", err)
	}
}

func TestHashCancelledBeforeStart(t *testing.T) {
	h := newTinyHasher(t, 1, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.Hash(ctx, "kwtnbrqzplmx"); !errors.Is(err, ErrBusy) {
		t.Fatalf("Hash with a done context and a free slot = %v, want ErrBusy", err)
	}
}

func TestHashStormQueuesAndReleases(t *testing.T) {
	const workers = 16
	h := newTinyHasher(t, 2, time.Minute)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for i := range workers {
		wg.Go(func() {
			pw := fmt.Sprintf("storm password %d", i)
			enc, err := h.Hash(ctx, pw)
			if err == nil {
				var ok bool
				ok, err = h.Verify(ctx, enc, pw)
				if err == nil && !ok {
					err = fmt.Errorf("%q did not verify", pw)
				}
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := h.InFlight(); n != 0 {
		t.Fatalf("InFlight after storm = %d, want 0: slots leaked", n)
	}
}

func BenchmarkHash(b *testing.B) {
	h := newRealHasher(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := h.Hash(ctx, "één koffie met mélk graag"); err != nil {
			b.Fatal(err)
		}
	}
}
