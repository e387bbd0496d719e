package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// RestoreOptions say how to restore a backup.
type RestoreOptions struct {
	// Force empties a target that holds an incomplete copy or restore.
	// A store that holds records and no such mark is never overwritten.
	Force bool
}

// RestoreCount is one kind's figures of a restore.
type RestoreCount struct {
	Kind storage.Kind
	// InBackup is how many records of the kind the backup holds.
	InBackup int
	// Live is how many of them are live at the report's LiveAfter, and
	// Target how many of those the target holds, counted apart from the
	// restore.
	Live, Target int
}

// RestoreReport is what a restore did, kind by kind.
type RestoreReport struct {
	Backup    BackupInfo
	Kinds     []RestoreCount
	LiveAfter time.Time
}

// Agrees reports whether the target holds every record of the backup
// that is still live.
func (r RestoreReport) Agrees() bool {
	for _, c := range r.Kinds {
		if c.Live != c.Target {
			return false
		}
	}
	return len(r.Kinds) > 0
}

// liveCounter counts a backup's records by the second they expire, so
// that they can be counted live after a time known only once they are
// written, as the engines count to the second.
type liveCounter struct {
	permanent storage.Counts
	expiring  map[storage.Kind][]int64
}

func (c *liveCounter) add(r storage.Record) {
	if r.ExpiresAt.IsZero() {
		c.permanent[r.Kind]++
		return
	}
	c.expiring[r.Kind] = append(c.expiring[r.Kind], r.ExpiresAt.Unix())
}

func (c *liveCounter) liveAfter(t time.Time) storage.Counts {
	counts := storage.Counts{}
	for _, k := range storage.Kinds {
		counts[k] = c.permanent[k]
		for _, exp := range c.expiring[k] {
			if exp > t.Unix() {
				counts[k]++
			}
		}
	}
	return counts
}

// RestoreBackup writes every record of the backup in file into the empty
// store at a resolved location (badger directory or PostgreSQL), then
// counts the target kind by kind against the backup's records that are
// still live. The file is read end to end first, so a damaged one writes
// nothing; the target is marked incomplete before the first record is
// written, and the mark is removed only once the counts agree, so that a
// server refuses to start on a restore that stopped half-way.
func RestoreBackup(ctx context.Context, file, to string, opts RestoreOptions) (RestoreReport, error) {
	var report RestoreReport
	if err := checkCopyLocation("--storage", to); err != nil {
		return report, err
	}
	info, err := ReadBackup(file, nil)
	if err != nil {
		return report, err
	}
	report.Backup = info
	if !isPostgres(to) {
		if err := checkRestoreDir(to); err != nil {
			return report, err
		}
	}
	dst, closeDst, err := openBackupStore(ctx, to, true)
	if err != nil {
		return report, err
	}
	closed := false
	defer func() {
		if !closed {
			closeDst()
		}
	}()
	if err := emptyRestoreTarget(ctx, dst, to, opts.Force); err != nil {
		return report, err
	}

	note := fmt.Sprintf("restore of %s (taken %s) started %s", file, info.Header.TakenAt.Format(time.RFC3339), time.Now().UTC().Format(time.RFC3339))
	if err := dst.SetSecret(storage.CopyMarker, []byte(note)); err != nil {
		return report, storeErr(to, err)
	}
	incomplete := func(err error) error {
		return fmt.Errorf("%w\n%s is marked as an incomplete restore and no server starts on it: run the same command with --force to empty it and restore again", err, RedactStorage(to))
	}
	counter := &liveCounter{permanent: storage.Counts{}, expiring: map[storage.Kind][]int64{}}
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
	_, err = ReadBackup(file, func(r storage.Record) error {
		counter.add(r)
		batch = append(batch, r)
		size += len(r.Key) + len(r.Value)
		if len(batch) < copyBatchRecords && size < copyBatchBytes {
			return nil
		}
		return flush()
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return report, incomplete(err)
	}

	report.LiveAfter = time.Now().Add(countMargin)
	live := counter.liveAfter(report.LiveAfter)
	held, err := dst.CountRecords(ctx, report.LiveAfter)
	if err != nil {
		return report, incomplete(storeErr(to, err))
	}
	for _, k := range storage.Kinds {
		report.Kinds = append(report.Kinds, RestoreCount{Kind: k, InBackup: info.Summary.Counts[k], Live: live[k], Target: held[k]})
	}
	if !report.Agrees() {
		return report, incomplete(errors.New("the target's counts differ from the backup's live records: see the table"))
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

// checkRestoreDir refuses a directory that holds files but no badger
// store: a restore would scatter a store among them.
func checkRestoreDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot use %s as the restore's target: %w", dir, err)
	}
	if len(entries) == 0 {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, "MANIFEST")); err != nil {
		return fmt.Errorf("%s holds other files and no badger store: restore into a new or empty directory", dir)
	}
	return nil
}

// emptyRestoreTarget refuses a target that holds records; one that holds
// an incomplete copy or restore is emptied with force.
func emptyRestoreTarget(ctx context.Context, dst recordStore, to string, force bool) error {
	note, err := dst.CopyMark()
	if err != nil {
		return storeErr(to, err)
	}
	held, err := dst.CountRecords(ctx, time.Now())
	if err != nil {
		return storeErr(to, err)
	}
	switch {
	case note == nil && held.Total() == 0:
		return nil
	case note == nil:
		return fmt.Errorf("%s already holds %d records: a restore never overwrites a store. Restore into a new directory or an empty database, then point the server's storage setting at it", RedactStorage(to), held.Total())
	case !force:
		return fmt.Errorf("%s holds an incomplete copy or restore (%s): add --force to empty it and restore again", RedactStorage(to), note)
	}
	if err := dst.EmptyRecords(ctx); err != nil {
		return storeErr(to, err)
	}
	return nil
}
