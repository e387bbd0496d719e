package storagetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/eherkenning"
)

func testTrackedRequestsAreTakenOnce(t *testing.T, e Engine) {
	ctx := context.Background()
	r := eherkenning.TrackedRequest{ID: "_req1", RelayState: "relay", AccountID: "piet", BrowserBinding: "bind", ReturnTo: "/apps", CreatedAt: now(), ExpiresAt: now().Add(10 * time.Minute)}
	if err := e.TrackRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got, err := e.TakeRequest(ctx, "_req1"); err != nil || !same(got, r) {
		t.Fatalf("TakeRequest = %+v, %v, want %+v", got, err, r)
	}
	if _, err := e.TakeRequest(ctx, "_req1"); !errors.Is(err, eherkenning.ErrUnknownRequest) {
		t.Fatalf("a second take: %v, want ErrUnknownRequest", err)
	}
	if _, err := e.TakeRequest(ctx, "_unknown"); !errors.Is(err, eherkenning.ErrUnknownRequest) {
		t.Fatalf("an unknown request: %v, want ErrUnknownRequest", err)
	}

	exactlyOnce(t, eherkenning.ErrUnknownRequest, func(id string) error {
		r.ID = id
		return e.TrackRequest(ctx, r)
	}, func(id string, _ int) error {
		_, err := e.TakeRequest(ctx, id)
		return err
	})
}

func testAssertionsAreSeenFirstOnce(t *testing.T, e Engine) {
	ctx := context.Background()
	until := now().Add(time.Hour)
	for _, tc := range []struct {
		key   string
		first bool
	}{{"issuer/a1", true}, {"issuer/a1", false}, {"issuer/a2", true}} {
		if first, err := e.MarkAssertionSeen(ctx, tc.key, until); err != nil || first != tc.first {
			t.Fatalf("marking %s: first %v, %v; want %v", tc.key, first, err, tc.first)
		}
	}
	seenBefore := errors.New("seen before")
	exactlyOnce(t, seenBefore, func(string) error { return nil }, func(key string, _ int) error {
		first, err := e.MarkAssertionSeen(ctx, key, until)
		if err == nil && !first {
			return seenBefore
		}
		return err
	})
}

func testParkedResultsAreTakenOnce(t *testing.T, e Engine) {
	ctx := context.Background()
	p := eherkenning.ParkedResult{
		Result: eherkenning.Result{
			Request: eherkenning.TrackedRequest{ID: "_req1", AccountID: "piet", CreatedAt: now(), ExpiresAt: now().Add(time.Minute)},
			Issuer:  "urn:broker", AssertionID: "_a1", Level: "urn:etoegang:core:assurance-class:loa3",
			KvK: "12345678", RSIN: "123456789", CompanyName: "Bouw B.V.", Pseudonym: "ps", NameID: "n", SessionIndex: "s",
			AuthnInstant: now(),
		},
		ExpiresAt: now().Add(5 * time.Minute),
	}
	if err := e.ParkResult(ctx, "hash1", p); err != nil {
		t.Fatal(err)
	}
	if got, err := e.TakeParkedResult(ctx, "hash1"); err != nil || !same(got, p) {
		t.Fatalf("TakeParkedResult = %+v, %v, want %+v", got, err, p)
	}
	if _, err := e.TakeParkedResult(ctx, "hash1"); !errors.Is(err, eherkenning.ErrUnknownResult) {
		t.Fatalf("a second take: %v, want ErrUnknownResult", err)
	}
	if _, err := e.TakeParkedResult(ctx, "unknown"); !errors.Is(err, eherkenning.ErrUnknownResult) {
		t.Fatalf("an unknown result: %v, want ErrUnknownResult", err)
	}

	exactlyOnce(t, eherkenning.ErrUnknownResult, func(key string) error {
		return e.ParkResult(ctx, key, p)
	}, func(key string, _ int) error {
		_, err := e.TakeParkedResult(ctx, key)
		return err
	})
}
