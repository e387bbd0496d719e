package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/pgstore"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
	"github.com/wijtechniek/wijgate/caddymodule/store"
)

// recordStore is what a copy needs of an engine: every record handed
// over and taken in, counted independently, and the note that marks a
// copy not finished.
type recordStore interface {
	VisitRecords(ctx context.Context, fn func(storage.Record) error) error
	WriteRecords(ctx context.Context, batch []storage.Record) error
	CountRecords(ctx context.Context, liveAfter time.Time) (storage.Counts, error)
	EmptyRecords(ctx context.Context) error
	SetSecret(name string, value []byte) error
	CopyMark() ([]byte, error)
	ClearCopyMark() error
}

var (
	_ recordStore = (*store.Store)(nil)
	_ recordStore = (*pgstore.Store)(nil)
)

// Batches of a copy: one transaction each, well under badger's limit on
// one transaction (about 1.2 MiB with the options store.Open sets).
const (
	copyBatchRecords = 500
	copyBatchBytes   = 256 << 10
)

// countMargin is how far beyond the end of the copy the counts look:
// records that expire before then are left out on both sides, so a record
// expiring while the sides are counted cannot make them differ.
const countMargin = 10 * time.Second

// CopyOptions say how to copy a store.
type CopyOptions struct {
	// Force empties a target that holds records (or an incomplete copy)
	// instead of refusing it.
	Force bool
}

// CopyCount is one kind's figures of a copy.
type CopyCount struct {
	Kind storage.Kind
	// Copied is how many records the source handed over.
	Copied int
	// Source and Target are the records each side holds after the copy,
	// counted apart from the copy, of those live at the report's LiveAfter.
	Source, Target int
}

// CopyReport is what a copy did, kind by kind.
type CopyReport struct {
	Kinds     []CopyCount
	LiveAfter time.Time
}

// Agrees reports whether both sides hold the same number of records of
// every kind.
func (r CopyReport) Agrees() bool {
	for _, c := range r.Kinds {
		if c.Source != c.Target {
			return false
		}
	}
	return len(r.Kinds) > 0
}

// CopyStore copies every live record, secrets included, from the store at
// one resolved storage location to the store at another, then counts both
// sides kind by kind. The target is marked incomplete before the first
// record is written and the mark is removed only once the counts agree, so
// a copy that stops half-way (an error, a kill) leaves a target that
// CopyStore refuses without Force. Messages name locations redacted.
func CopyStore(ctx context.Context, from, to string, opts CopyOptions) (CopyReport, error) {
	var report CopyReport
	if err := checkCopyLocation("--from", from); err != nil {
		return report, err
	}
	if err := checkCopyLocation("--to", to); err != nil {
		return report, err
	}
	if from == to {
		return report, fmt.Errorf("--from and --to are the same store (%s)", RedactStorage(from))
	}
	src, closeSrc, err := openRecordStore(ctx, from, false)
	if err != nil {
		return report, err
	}
	defer closeSrc()
	dst, closeDst, err := openRecordStore(ctx, to, true)
	if err != nil {
		return report, err
	}
	closed := false
	defer func() {
		if !closed {
			closeDst()
		}
	}()

	if note, err := src.CopyMark(); err != nil {
		return report, storeErr(from, err)
	} else if note != nil {
		return report, fmt.Errorf("%s holds an incomplete copy (%s), not a store to copy from", RedactStorage(from), note)
	}
	held, err := src.CountRecords(ctx, time.Now())
	if err != nil {
		return report, storeErr(from, err)
	}
	if held.Total() == 0 {
		return report, fmt.Errorf("%s holds no records: is it the store you mean?", RedactStorage(from))
	}
	if err := emptyTarget(ctx, dst, to, opts.Force); err != nil {
		return report, err
	}

	note := fmt.Sprintf("copy from %s started %s", RedactStorage(from), time.Now().UTC().Format(time.RFC3339))
	if err := dst.SetSecret(storage.CopyMarker, []byte(note)); err != nil {
		return report, storeErr(to, err)
	}
	incomplete := func(err error) error {
		return fmt.Errorf("%w\n%s is marked as an incomplete copy: run the same command with --force to empty it and copy again", err, RedactStorage(to))
	}
	copied, err := copyRecords(ctx, src, dst, from, to)
	if err != nil {
		return report, incomplete(err)
	}

	report.LiveAfter = time.Now().Add(countMargin)
	srcCounts, err := src.CountRecords(ctx, report.LiveAfter)
	if err != nil {
		return report, incomplete(storeErr(from, err))
	}
	dstCounts, err := dst.CountRecords(ctx, report.LiveAfter)
	if err != nil {
		return report, incomplete(storeErr(to, err))
	}
	for _, k := range storage.Kinds {
		report.Kinds = append(report.Kinds, CopyCount{Kind: k, Copied: copied[k], Source: srcCounts[k], Target: dstCounts[k]})
	}
	if !report.Agrees() {
		return report, incomplete(errors.New("the counts of the two sides differ (a server writing to the source during the copy, or a fault): see the table"))
	}
	if err := dst.ClearCopyMark(); err != nil {
		return report, incomplete(storeErr(to, err))
	}
	closed = true
	if err := closeDst(); err != nil {
		return report, storeErr(to, err)
	}
	return report, nil
}

// copyRecords hands every record of src to dst in batches, and returns
// how many of each kind it handed over.
func copyRecords(ctx context.Context, src, dst recordStore, from, to string) (storage.Counts, error) {
	copied := storage.Counts{}
	var batch []storage.Record
	size := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := dst.WriteRecords(ctx, batch); err != nil {
			return storeErr(to, err)
		}
		batch, size = batch[:0], 0
		return nil
	}
	var writeErr error
	err := src.VisitRecords(ctx, func(r storage.Record) error {
		copied[r.Kind]++
		batch = append(batch, r)
		size += len(r.Key) + len(r.Value)
		if len(batch) < copyBatchRecords && size < copyBatchBytes {
			return nil
		}
		writeErr = flush()
		return writeErr
	})
	if writeErr != nil {
		return copied, writeErr
	}
	if err != nil {
		return copied, storeErr(from, err)
	}
	return copied, flush()
}

// emptyTarget refuses a target that holds records or an incomplete copy,
// or with force empties it.
func emptyTarget(ctx context.Context, dst recordStore, to string, force bool) error {
	note, err := dst.CopyMark()
	if err != nil {
		return storeErr(to, err)
	}
	held, err := dst.CountRecords(ctx, time.Now())
	if err != nil {
		return storeErr(to, err)
	}
	if note == nil && held.Total() == 0 {
		return nil
	}
	if !force {
		what := fmt.Sprintf("%d records", held.Total())
		if note != nil {
			what = fmt.Sprintf("an incomplete copy (%s)", note)
		}
		return fmt.Errorf("%s already holds %s: copying into it would mix two stores. Name an empty one, or add --force to empty it first (everything in it is lost)", RedactStorage(to), what)
	}
	if err := dst.EmptyRecords(ctx); err != nil {
		return storeErr(to, err)
	}
	return nil
}

// checkCopyLocation refuses a location that is neither a PostgreSQL URL
// nor a path (a URL of another scheme would be taken for a directory
// name), and a PostgreSQL URL that cannot be read, before anything quotes
// it with its password.
func checkCopyLocation(flag, location string) error {
	if location == "" {
		return fmt.Errorf("%s is missing: name a badger directory or a postgres:// URL", flag)
	}
	scheme, _, isURL := strings.Cut(location, "://")
	if isPostgres(location) {
		if _, err := url.Parse(location); err != nil {
			return fmt.Errorf("%s: the postgres:// URL cannot be read; write it as postgres://user:password@host:port/database", flag)
		}
		return nil
	}
	if isURL {
		return fmt.Errorf("%s: a %s:// URL is neither a badger directory nor a postgres:// URL", flag, scheme)
	}
	return nil
}

// openRecordStore opens one side of a copy. A badger source must exist
// (Open would create an empty one); a badger target is opened for a bulk
// load. A badger directory a server holds is refused with what to do.
func openRecordStore(ctx context.Context, location string, target bool) (recordStore, func() error, error) {
	if isPostgres(location) {
		openCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		st, err := pgstore.Open(openCtx, pgstore.Options{URL: location})
		if err != nil {
			return nil, nil, storeErr(location, err)
		}
		return st, st.Close, nil
	}
	if !target {
		if _, err := os.Stat(filepath.Join(location, "MANIFEST")); err != nil {
			return nil, nil, fmt.Errorf("%s is not a badger store (no MANIFEST in it): name the directory the server's storage setting names", location)
		}
	}
	st, err := store.Open(store.Options{Dir: location, BulkLoad: target})
	if store.Locked(err) {
		if target {
			return nil, nil, fmt.Errorf("the badger directory %s is in use by a running server: stop it first (wijgate stop); no server may use a store while it is copied into", location)
		}
		return nil, nil, fmt.Errorf("the badger directory %s is in use by a running server: stop it first (wijgate stop), or copy from the database it writes to", location)
	}
	if err != nil {
		return nil, nil, storeErr(location, err)
	}
	return st, st.Close, nil
}

// storeErr says which store an error came from, with no password in it
// even where a driver quotes the connection string.
func storeErr(location string, err error) error {
	msg := err.Error()
	if u, perr := url.Parse(location); perr == nil && isPostgres(location) {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	}
	return fmt.Errorf("%s: %s", RedactStorage(location), msg)
}
