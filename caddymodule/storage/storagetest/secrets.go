package storagetest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
)

func testSecrets(t *testing.T, e Engine) {
	failed := errors.New("no randomness")
	if _, err := e.Secret("cookie", func() ([]byte, error) { return nil, failed }); !errors.Is(err, failed) {
		t.Fatalf("a secret whose generation failed: %v, want the failure", err)
	}
	got, err := e.Secret("cookie", func() ([]byte, error) { return []byte("first"), nil })
	if err != nil || string(got) != "first" {
		t.Fatalf("a first Secret = %q, %v; want what generate made after a failed try", got, err)
	}
	notAgain := func() ([]byte, error) {
		t.Error("generate called for a secret that exists")
		return []byte("again"), nil
	}
	if got, err := e.Secret("cookie", notAgain); err != nil || string(got) != "first" {
		t.Fatalf("the stored secret = %q, %v; want %q", got, err, "first")
	}
	if got, err := e.Secret("signing", func() ([]byte, error) { return []byte("other"), nil }); err != nil || string(got) != "other" {
		t.Fatalf("another name's secret = %q, %v", got, err)
	}
	if err := e.SetSecret("cookie", []byte("rotated")); err != nil {
		t.Fatal(err)
	}
	if got, err := e.Secret("cookie", notAgain); err != nil || string(got) != "rotated" {
		t.Fatalf("after SetSecret: %q, %v; want %q", got, err, "rotated")
	}
	if err := e.SetSecret("fresh", []byte("set")); err != nil {
		t.Fatal(err)
	}
	if got, err := e.Secret("fresh", notAgain); err != nil || string(got) != "set" {
		t.Fatalf("a secret first set by SetSecret: %q, %v", got, err)
	}
}

// Replicas starting together each generate a key; all must end up
// signing with the same one.
func testConcurrentFirstSecretsAgree(t *testing.T, e Engine) {
	values := make([][][]byte, records)
	for k := range values {
		values[k] = make([][]byte, racers)
	}
	errs := race(racers, func(i int) error {
		for k := range values {
			v, err := e.Secret(fmt.Sprint("signing", k), func() ([]byte, error) { yield(); return []byte(rand.Text()), nil })
			if err != nil {
				return err
			}
			values[k][i] = v
		}
		return nil
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for k, got := range values {
		for i, v := range got {
			if len(v) == 0 || !bytes.Equal(v, got[0]) {
				t.Fatalf("secret %d: racer %d got %q, racer 0 %q", k, i, v, got[0])
			}
		}
	}
}

func testHealth(t *testing.T, e Engine) {
	if ok, detail := e.Health(); !ok {
		t.Fatalf("a fresh engine says it takes no writes: %s", detail)
	}
}
