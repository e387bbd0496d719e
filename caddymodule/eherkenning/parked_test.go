package eherkenning

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestParkedResultIsCollectedOnceBeforeItExpires: the token collects the
// result once, a wrong or late token collects nothing, and the state holds
// no token that could collect it.
func TestParkedResultIsCollectedOnceBeforeItExpires(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	var clock atomic.Int64
	base := time.Now()
	cfg := h.cfg
	cfg.Now = func() time.Time { return base.Add(time.Duration(clock.Load())) }
	sp, err := New(cfg, h.store)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	want := Result{KvK: "12345678", Pseudonym: "p-1", Request: TrackedRequest{ID: "_r1", AccountID: "u-1"}}

	token, err := sp.ParkResult(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	for key := range h.store.parked {
		if strings.Contains(key, token) || strings.Contains(token, key) {
			t.Fatalf("the state keeps the token itself: %q", key)
		}
	}
	if _, err := sp.CollectResult(ctx, token+"x"); !errors.Is(err, ErrUnknownResult) {
		t.Fatalf("a wrong token: %v, want ErrUnknownResult", err)
	}
	if _, err := sp.CollectResult(ctx, ""); !errors.Is(err, ErrUnknownResult) {
		t.Fatalf("no token: %v, want ErrUnknownResult", err)
	}
	got, err := sp.CollectResult(ctx, token)
	if err != nil || got.KvK != want.KvK || got.Pseudonym != want.Pseudonym || got.Request.AccountID != want.Request.AccountID {
		t.Fatalf("collect: %+v, %v", got, err)
	}
	if _, err := sp.CollectResult(ctx, token); !errors.Is(err, ErrUnknownResult) {
		t.Fatalf("a second collect: %v, want ErrUnknownResult", err)
	}

	late, err := sp.ParkResult(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	clock.Store(int64(ParkedLifetime))
	if _, err := sp.CollectResult(ctx, late); !errors.Is(err, ErrUnknownResult) {
		t.Fatalf("collect after %s: %v, want ErrUnknownResult", ParkedLifetime, err)
	}
}
