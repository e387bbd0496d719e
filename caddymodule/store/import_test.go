package store

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

func TestImportWritesWhatTheTransactionsWrite(t *testing.T) {
	dir := t.TempDir()
	st := openTest(t, dir)
	if err := st.CreateAccount(storage.Account{ID: "u-existing", Email: "bestaand@example.nl"}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	version := st.Version("u-existing")
	im := st.NewImporter()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 100 {
		wg.Go(func() {
			id := fmt.Sprintf("u-%03d", i)
			kvk := fmt.Sprintf("%08d", 10_000_000+i)
			if err := im.Account(storage.Account{ID: id, Email: fmt.Sprintf("p%03d@example.nl", i), Name: "Piet", CreatedAt: now}); err != nil {
				errs <- err
				return
			}
			if err := im.Membership(storage.Organisation{KvK: kvk, Name: "Bedrijf"},
				storage.Membership{KvK: kvk, AccountID: id, Role: "admin", Anchor: "eh3", Level: "loa3", Pseudonym: "ps-" + id, Since: now}); err != nil {
				errs <- err
				return
			}
			if err := im.Session(storage.Session{Key: "s-" + id, AccountID: id, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := im.Close(); err != nil {
		t.Fatal(err)
	}
	if st.Version("u-existing") == version {
		t.Error("the import did not move the versions; caches would miss it")
	}
	// Reopen: the import is durable and readable through the ordinary methods.
	st.Close()
	st = openTest(t, dir)
	defer st.Close()
	a, err := st.AccountByEmail("p042@example.nl")
	if err != nil || a.ID != "u-042" || a.Name != "Piet" {
		t.Fatalf("imported account by email: %+v, %v", a, err)
	}
	ms, err := st.AccountMemberships("u-042")
	if err != nil || len(ms) != 1 || ms[0].KvK != "10000042" || ms[0].Role != "admin" {
		t.Fatalf("imported membership: %+v, %v", ms, err)
	}
	if o, err := st.Organisation("10000042"); err != nil || o.Name != "Bedrijf" {
		t.Fatalf("imported organisation: %+v, %v", o, err)
	}
	if _, err := st.LinkOrganisation(storage.Organisation{KvK: "10000043"}, storage.Membership{KvK: "10000043", AccountID: "u-other", Pseudonym: "ps-u-043"}); err != nil {
		t.Fatal(err)
	}
	if same, _ := st.LinkOrganisation(storage.Organisation{KvK: "10000043"}, storage.Membership{KvK: "10000043", AccountID: "u-third", Pseudonym: "ps-u-043"}); len(same) != 2 {
		t.Errorf("pseudonym index after the import: %v, want u-043 and u-other", same)
	}
	if ss, err := st.Session("s-u-007"); err != nil || ss.AccountID != "u-007" {
		t.Fatalf("imported session: %+v, %v", ss, err)
	}
	if _, err := st.UpdateAccount("u-007", func(a *storage.Account) error { a.Disabled = true; return nil }); err != nil {
		t.Fatalf("disabling an imported account: %v", err)
	}
	if _, err := st.Session("s-u-007"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("session after disabling its account: %v", err)
	}
	if err := st.CreateAccount(storage.Account{ID: "u-new", Email: "p001@example.nl"}); !errors.Is(err, storage.ErrExists) {
		t.Errorf("registering an imported email: %v, want ErrExists", err)
	}
}

func TestImportRefusesTakenEmailsAndIDs(t *testing.T) {
	st := openTest(t, t.TempDir())
	defer st.Close()
	if err := st.CreateAccount(storage.Account{ID: "u-1", Email: "een@example.nl"}); err != nil {
		t.Fatal(err)
	}
	im := st.NewImporter()
	for _, tc := range []struct {
		name string
		acct storage.Account
		want error
	}{
		{"email already in the store", storage.Account{ID: "u-2", Email: "een@example.nl"}, storage.ErrExists},
		{"ID already in the store", storage.Account{ID: "u-1", Email: "twee@example.nl"}, storage.ErrExists},
		{"new account", storage.Account{ID: "u-3", Email: "drie@example.nl"}, nil},
		{"email earlier in the import", storage.Account{ID: "u-4", Email: "drie@example.nl"}, storage.ErrExists},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := im.Account(tc.acct); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if err := im.Close(); err != nil {
		t.Fatal(err)
	}
	if a, err := st.Account("u-1"); err != nil || a.Email != "een@example.nl" {
		t.Errorf("the refused import overwrote the stored account: %+v, %v", a, err)
	}
	if _, err := st.Account("u-2"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("refused account u-2 was written: %v", err)
	}
	if a, err := st.AccountByEmail("drie@example.nl"); err != nil || a.ID != "u-3" {
		t.Errorf("the second import of an email replaced the first: %+v, %v", a, err)
	}
}

func TestImportRefusesAMembershipOfAnotherOrganisation(t *testing.T) {
	st := openTest(t, t.TempDir())
	defer st.Close()
	im := st.NewImporter()
	defer im.Cancel()
	if err := im.Membership(storage.Organisation{KvK: "11111111"}, storage.Membership{KvK: "22222222", AccountID: "u-1"}); err == nil {
		t.Fatal("a membership naming another organisation was accepted")
	}
}

// A server opening a freshly imported store must not start by compacting
// it: at 100k accounts that held about 36 MB of table builders and paged
// the whole store in while the first requests came. The second import is
// the benchmark's growing of a seeded store.
func TestBulkLoadLeavesTheTreeCompacted(t *testing.T) {
	defer func(size int64) { bulkMemTableSize = size }(bulkMemTableSize)
	// About 30 MB per import: several memory tables' worth, so without
	// the final compaction each import ends as a stack of level-0 tables.
	bulkMemTableSize = 8 << 20
	dir := t.TempDir()
	password := strings.Repeat("x", 100)
	const perImport = 25_000
	for from := 0; from < 2*perImport; from += perImport {
		st, err := Open(Options{Dir: dir, BulkLoad: true})
		if err != nil {
			t.Fatal(err)
		}
		im := st.NewImporter()
		for i := from; i < from+perImport; i++ {
			id := fmt.Sprintf("u-%06d", i)
			if err := im.Account(storage.Account{ID: id, Email: id + "@example.nl", Name: strings.Repeat("n", 200), PasswordHash: password}); err != nil {
				t.Fatal(err)
			}
			if err := im.Session(storage.Session{Key: fmt.Sprintf("s-%06d-%s", i, strings.Repeat("k", 900)), AccountID: id, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := im.Close(); err != nil {
			t.Fatal(err)
		}
		if from == 0 {
			// Compacting while the import ran rewrote the data once per
			// level it passed; the import leaves that to Close.
			for _, l := range st.db.Levels() {
				if l.Level > 0 && l.NumTables > 0 {
					t.Errorf("the import into an empty store was compacted while it ran: %d tables on level %d", l.NumTables, l.Level)
				}
			}
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		st = openTest(t, dir)
		var levels []string
		for _, l := range st.db.Levels() {
			if l.NumTables > 0 {
				levels = append(levels, fmt.Sprintf("L%d: %d tables", l.Level, l.NumTables))
			}
		}
		if len(levels) != 1 || strings.HasPrefix(levels[0], "L0:") {
			t.Errorf("after importing %d accounts the store opens with tables on %v; want one level below level 0", from+perImport, levels)
		}
		for _, i := range []int{0, from + perImport - 1} {
			if _, err := st.AccountByEmail(fmt.Sprintf("u-%06d@example.nl", i)); err != nil {
				t.Errorf("after importing %d accounts, account %d: %v", from+perImport, i, err)
			}
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
