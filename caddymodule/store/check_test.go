package store

import (
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// TestCheckFindsEachBrokenLink writes a consistent store, then removes
// one record of a pair at a time: Check passes before and names the
// broken link after.
func TestCheckFindsEachBrokenLink(t *testing.T) {
	for _, tc := range []struct {
		remove, want string
	}{
		{prefixAccountEmail + "jan@example.nl", "no email index"},
		{prefixAccount + "a1", "does not exist"},
		{prefixAccountSession + "a1/s1", "no " + prefixAccountSession + "a1/s1"},
		{prefixSession + "s1", "lists session s1, which does not exist"},
		{prefixOrg + "12345678", "no " + prefixOrg + "12345678"},
		{prefixAccountOrg + "a1/12345678", "no " + prefixAccountOrg},
		{prefixMember + "12345678/a1", "without a membership"},
	} {
		t.Run(tc.remove, func(t *testing.T) {
			st, err := Open(Options{InMemory: true})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			now := time.Now()
			if err := st.CreateAccount(storage.Account{ID: "a1", Email: "jan@example.nl"}); err != nil {
				t.Fatal(err)
			}
			if err := st.CreateSession(storage.Session{Key: "s1", AccountID: "a1", ExpiresAt: now.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			if _, err := st.LinkOrganisation(storage.Organisation{KvK: "12345678"}, storage.Membership{KvK: "12345678", AccountID: "a1", Role: "admin"}); err != nil {
				t.Fatal(err)
			}
			if err := st.Check(); err != nil {
				t.Fatalf("a consistent store: %v", err)
			}
			if err := st.db.Update(func(txn *badger.Txn) error { return txn.Delete([]byte(tc.remove)) }); err != nil {
				t.Fatal(err)
			}
			err = st.Check()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("without %s: %v, want it to say %q", tc.remove, err, tc.want)
			}
		})
	}
}
