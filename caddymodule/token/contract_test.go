package token

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/wijtechniek/wijgate/caddymodule/contract"
)

// tokenOwnClaims are the claims about the token itself rather than the
// person: who issued it, for whom, when and which one.
var tokenOwnClaims = []string{"iss", "aud", "iat", "exp", "nbf", "jti"}

// sessionClaims are about the session the token speaks for, not the
// person, so no header carries them: how the person proved who they are.
var sessionClaims = []string{"amr"}

// TestClaimsAreTheContracts checks that the token carries exactly the
// identity contract's claims, under its names and in its order.
func TestClaimsAreTheContracts(t *testing.T) {
	var want []string
	for _, f := range contract.All() {
		if c := f.Claim(); c != "" {
			want = append(want, c)
		}
	}
	var got []string
	wire := reflect.TypeFor[wireClaims]()
	for i := range wire.NumField() {
		name, _, _ := strings.Cut(wire.Field(i).Tag.Get("json"), ",")
		if !slices.Contains(tokenOwnClaims, name) && !slices.Contains(sessionClaims, name) {
			got = append(got, name)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("the token's identity claims are %q, the contract's %q", got, want)
	}
}
