package caddymodule

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/eherkenning"
	"github.com/wijtechniek/wijgate/internal/pgtest"
)

// TestKeyActivationReachesAnotherReplica: a server on PostgreSQL and a
// second replica's service provider on its own connection pool to the
// same database. An activation through the server's admin API takes
// effect there at once and on the other replica within a minute (its
// re-read interval), not before.
func TestKeyActivationReachesAnotherReplica(t *testing.T) {
	clk := useClock(t)
	db := pgtest.Database(t)
	g := startGateway(t, "eherkenning.caddyfile", gatewayParams{Storage: db})

	e, closeEngine, err := openEngine(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closeEngine() })
	ownKey, ownCert, err := eherkenning.GenerateKeyPair("replica b's own pair")
	if err != nil {
		t.Fatal(err)
	}
	other, err := eherkenning.NewWithoutBrokerMetadata(eherkenning.Config{
		EntityID: "urn:etoegang:DV:00000009999999999999:entities:9001", ACSURL: g.URL + "/eherkenning/acs",
		SigningKey: ownKey, SigningCert: ownCert, EncryptionKey: ownKey, EncryptionCert: ownCert,
		BrokerMetadata: eherkenning.MetadataSource{URL: g.URL + "/ehsim/metadata"},
		ServiceID:      "urn:etoegang:DV:00000009999999999999:services:9001", ServiceUUID: "6a1f3b52-6b55-4f0e-9c43-2d7e8f1a0b90",
		Keys: e, Now: now,
	}, e)
	if err != nil {
		t.Fatal(err)
	}
	before := g.publishedKeys()
	if got := other.KeySet().Current().Fingerprint(); len(before) != 1 || got != before[0] {
		t.Fatalf("the replicas disagree before the rollover: %v and %s", before, got)
	}

	if status, _, body := g.keyOp(http.MethodPost, "/wijgate/eherkenning/keys", SPKeyRequest{}); status != http.StatusOK {
		t.Fatalf("add: %d %s", status, body)
	}
	status, list, body := g.keyOp(http.MethodPost, "/wijgate/eherkenning/keys/activate", SPKeyRequest{Force: true})
	if status != http.StatusOK {
		t.Fatalf("activate: %d %s", status, body)
	}
	activated := list[0].Fingerprint
	if got := g.publishedKeys(); len(got) != 2 || got[0] != activated {
		t.Fatalf("the server that activated publishes %v", got)
	}
	clk.Add(59 * time.Second)
	if got := other.KeySet().Current().Fingerprint(); got != before[0] {
		t.Fatalf("the other replica read the set again within the minute: %s", got)
	}
	clk.Add(time.Second)
	set := other.KeySet()
	if got := set.Current().Fingerprint(); got != activated || len(set.Keys) != 2 {
		t.Fatalf("a minute later the other replica signs with %s (%d keys), not %s", got, len(set.Keys), activated)
	}
}
