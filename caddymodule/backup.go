package caddymodule

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/wijtechniek/wijgate/caddymodule/pgstore"
	"github.com/wijtechniek/wijgate/caddymodule/storage"
	"github.com/wijtechniek/wijgate/caddymodule/store"
)

// A backup is the engine-neutral record stream of `wijgate store copy`
// written to a file, one JSON object a line:
//
//	{"format":"wijgate-backup","version":1,...}   the header
//	{"kind":"account","key":"...","value":"..."}  one line a record
//	{"summary":{"counts":{...},"sha256":"..."}}   the closing line
//
// The records come from one snapshot of the store; the closing line
// counts them kind by kind (known only once the snapshot is read) and
// carries the SHA-256 of every byte before it, so a file that was cut
// short has no closing line and one altered byte fails the checksum. A
// backup the server could not finish ends with {"error":"..."} instead.
const (
	backupFormat  = "wijgate-backup"
	backupVersion = 1
	// backupMaxLine bounds one line when reading, so a damaged file that
	// holds no newline is refused instead of read into memory whole; a
	// record is far smaller (badger refuses values near a megabyte).
	backupMaxLine = 16 << 20
)

// BackupHeader is the first line of a backup.
type BackupHeader struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	// WijGate is the version of the wijgate that wrote the backup, with
	// the Caddy version it was built with.
	WijGate string `json:"wijgate"`
	// Engine is the engine backed up: badger or postgres.
	Engine  string    `json:"engine"`
	TakenAt time.Time `json:"taken_at"`
}

// BackupSummary is the closing line of a backup.
type BackupSummary struct {
	Counts storage.Counts `json:"counts"`
	SHA256 string         `json:"sha256"`
}

// backupLine is any line after the header: a record, the summary or the
// error that ended a backup.
type backupLine struct {
	Kind      storage.Kind   `json:"kind,omitempty"`
	Key       string         `json:"key,omitempty"`
	Group     string         `json:"group,omitempty"`
	ExpiresAt *time.Time     `json:"expires_at,omitempty"`
	Value     []byte         `json:"value,omitempty"`
	Summary   *BackupSummary `json:"summary,omitempty"`
	Error     string         `json:"error,omitempty"`
}

// BackupInfo is what reading a backup end to end found.
type BackupInfo struct {
	Header  BackupHeader
	Summary BackupSummary
	// Size is the file's length in bytes.
	Size int64
}

// recordVisitor is what a backup needs of an engine.
type recordVisitor interface {
	VisitRecords(ctx context.Context, fn func(storage.Record) error) error
}

// engineName is the header's name of the engine a store is.
func engineName(v recordVisitor) string {
	if _, ok := v.(*pgstore.Store); ok {
		return "postgres"
	}
	return "badger"
}

// buildVersion names the wijgate build and the Caddy in it; a build
// without version control information is "(devel)".
func buildVersion() string {
	own := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		own = bi.Main.Version
	}
	caddyVersion, _ := caddy.Version()
	return own + " (Caddy " + caddyVersion + ")"
}

// writeBackup writes every record src holds, from one snapshot, to w as
// a backup. An error after the header has been written ends the stream
// with an error line, so that a reader names the cause rather than a cut.
func writeBackup(ctx context.Context, src recordVisitor, w io.Writer) (BackupSummary, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	sum := sha256.New()
	out := io.MultiWriter(bw, sum)
	enc := json.NewEncoder(out)
	header := BackupHeader{Format: backupFormat, Version: backupVersion, WijGate: buildVersion(), Engine: engineName(src), TakenAt: time.Now().UTC()}
	if err := enc.Encode(header); err != nil {
		return BackupSummary{}, err
	}
	summary := BackupSummary{Counts: storage.Counts{}}
	for _, k := range storage.Kinds {
		summary.Counts[k] = 0
	}
	err := src.VisitRecords(ctx, func(r storage.Record) error {
		line := backupLine{Kind: r.Kind, Key: r.Key, Group: r.Group, Value: r.Value}
		if !r.ExpiresAt.IsZero() {
			line.ExpiresAt = &r.ExpiresAt
		}
		summary.Counts[r.Kind]++
		return enc.Encode(line)
	})
	if err != nil {
		// The error line is outside the checksum: the backup is not one.
		_ = json.NewEncoder(bw).Encode(backupLine{Error: err.Error()})
		_ = bw.Flush()
		return summary, err
	}
	summary.SHA256 = hex.EncodeToString(sum.Sum(nil))
	if err := json.NewEncoder(bw).Encode(backupLine{Summary: &summary}); err != nil {
		return summary, err
	}
	return summary, bw.Flush()
}

// handleBackup streams a backup of the running server's store: GET
// /wijgate/backup. The records are read from one snapshot while the
// server goes on serving, and written as they are read, never held.
func handleBackup(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method %s not allowed", r.Method)}
	}
	v, err := caddy.ActiveContext().AppIfConfigured("wijgate")
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: errors.New("no wijgate app is running")}
	}
	app := v.(*App)
	src, ok := app.engine.(recordVisitor)
	if !ok {
		return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: errors.New("this store's engine cannot be backed up")}
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	// No intermediary may keep a copy of the keys.
	w.Header().Set("Cache-Control", "no-store")
	summary, err := writeBackup(r.Context(), src, w)
	if err != nil {
		app.logger.Error("backup failed", zap.String("storage", RedactStorage(app.storeKey)), zap.Error(err))
		return nil
	}
	app.logger.Info("backup taken", zap.String("storage", RedactStorage(app.storeKey)), zap.Int("records", summary.Counts.Total()))
	return nil
}

// BackupStore writes a backup of the store at a resolved location, which
// no server holds, to w.
func BackupStore(ctx context.Context, location string, w io.Writer) (BackupSummary, error) {
	if err := checkCopyLocation("--storage", location); err != nil {
		return BackupSummary{}, err
	}
	if !isPostgres(location) {
		if _, err := os.Stat(filepath.Join(location, "MANIFEST")); err != nil {
			return BackupSummary{}, fmt.Errorf("%s is not a badger store (no MANIFEST in it): name the directory the server's storage setting names", location)
		}
	}
	src, closeSrc, err := openBackupStore(ctx, location, false)
	if err != nil {
		return BackupSummary{}, err
	}
	defer closeSrc()
	if note, err := src.CopyMark(); err != nil {
		return BackupSummary{}, storeErr(location, err)
	} else if note != nil {
		return BackupSummary{}, fmt.Errorf("%s holds an incomplete copy or restore (%s), not a store to back up", RedactStorage(location), note)
	}
	summary, err := writeBackup(ctx, src, w)
	if err != nil {
		return summary, storeErr(location, err)
	}
	return summary, nil
}

// openBackupStore opens a store to back up or to restore into. A badger
// directory a running server holds is refused with what to do.
func openBackupStore(ctx context.Context, location string, target bool) (recordStore, func() error, error) {
	if isPostgres(location) {
		openCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		st, err := pgstore.Open(openCtx, pgstore.Options{URL: location})
		if err != nil {
			return nil, nil, storeErr(location, err)
		}
		return st, st.Close, nil
	}
	st, err := store.Open(store.Options{Dir: location, BulkLoad: target})
	if store.Locked(err) {
		if target {
			return nil, nil, fmt.Errorf("the badger directory %s is in use by a running server: a restore never writes into a store a server uses. Restore into a new directory, then point the server's storage setting at it", location)
		}
		return nil, nil, fmt.Errorf("the badger directory %s is in use by a running server whose admin API did not answer: name its admin address with --address", location)
	}
	if err != nil {
		return nil, nil, storeErr(location, err)
	}
	return st, st.Close, nil
}

// BackupError is a backup file that cannot be used, with why.
type BackupError struct {
	File   string
	Reason string
}

func (e *BackupError) Error() string {
	return fmt.Sprintf("the backup %s %s", e.File, e.Reason)
}

// ReadBackup reads the backup in file end to end, handing every record to
// fn (nil only checks), and returns its header and summary. The file is
// refused unless it is a whole backup of a format this wijgate reads, its
// checksum matches and its records agree with its counts; fn has then
// seen records of a file that turned out damaged, so a writer checks the
// file first.
func ReadBackup(file string, fn func(storage.Record) error) (BackupInfo, error) {
	var info BackupInfo
	f, err := os.Open(file)
	if err != nil {
		return info, fmt.Errorf("cannot read the backup: %w", err)
	}
	defer f.Close()
	refuse := func(format string, args ...any) error {
		return &BackupError{File: file, Reason: fmt.Sprintf(format, args...)}
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), backupMaxLine)
	sum := sha256.New()
	next := func() ([]byte, bool) {
		if !sc.Scan() {
			return nil, false
		}
		return sc.Bytes(), true
	}
	line, ok := next()
	if !ok || json.Unmarshal(line, &info.Header) != nil || info.Header.Format != backupFormat {
		if err := sc.Err(); err != nil && !errors.Is(err, bufio.ErrTooLong) {
			return info, fmt.Errorf("cannot read the backup %s: %w", file, err)
		}
		return info, refuse("is not a wijgate backup: it does not start with a %s header", backupFormat)
	}
	if info.Header.Version != backupVersion {
		return info, refuse("has format version %d, written by wijgate %s; this wijgate reads version %d: restore it with a wijgate that reads its version",
			info.Header.Version, info.Header.WijGate, backupVersion)
	}
	hashLine(sum, line)
	found := storage.Counts{}
	known := map[storage.Kind]bool{}
	for _, k := range storage.Kinds {
		known[k], found[k] = true, 0
	}
	n := 1
	for {
		line, ok := next()
		if !ok {
			break
		}
		n++
		var l backupLine
		if err := json.Unmarshal(line, &l); err != nil {
			if !sc.Scan() && sc.Err() == nil {
				return info, refuse("is truncated: it ends in the middle of line %d, after %d records, without its closing line (a backup that stopped, a full disk, a partial copy). Use another backup", n, found.Total())
			}
			return info, refuse("is damaged: line %d is not a record (%v)", n, err)
		}
		switch {
		case l.Error != "":
			return info, refuse("is not a whole backup: the server stopped it after %d records with %q", found.Total(), l.Error)
		case l.Summary != nil:
			info.Summary = *l.Summary
			if sc.Scan() {
				return info, refuse("is damaged: it goes on after its closing line (line %d)", n)
			}
			if st, err := f.Stat(); err == nil {
				info.Size = st.Size()
			}
			return info, checkBackupEnd(file, info, found, sum)
		case !known[l.Kind]:
			return info, refuse("is damaged: line %d holds a record of no kind this wijgate knows (%q)", n, l.Kind)
		}
		r := storage.Record{Kind: l.Kind, Key: l.Key, Group: l.Group, Value: l.Value}
		if l.ExpiresAt != nil {
			r.ExpiresAt = *l.ExpiresAt
		}
		hashLine(sum, line)
		found[r.Kind]++
		if fn != nil {
			if err := fn(r); err != nil {
				return info, err
			}
		}
	}
	if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
		return info, refuse("is damaged: line %d is longer than any record", n+1)
	} else if err != nil {
		return info, fmt.Errorf("cannot read the backup %s: %w", file, err)
	}
	return info, refuse("is truncated: it ends after %d records without its closing line (a backup that stopped, a full disk, a partial copy). Use another backup", found.Total())
}

// hashLine adds a line, with the newline the scanner took off, to sum.
func hashLine(sum hash.Hash, line []byte) {
	sum.Write(line)
	sum.Write([]byte{'\n'})
}

// checkBackupEnd compares a backup's closing line with what its records
// were.
func checkBackupEnd(file string, info BackupInfo, found storage.Counts, sum hash.Hash) error {
	if got := hex.EncodeToString(sum.Sum(nil)); got != info.Summary.SHA256 {
		return &BackupError{File: file, Reason: fmt.Sprintf("has been altered or damaged: its content does not match its checksum (sha256 %s, the file says %s). Use another backup", got, info.Summary.SHA256)}
	}
	for _, k := range storage.Kinds {
		if found[k] != info.Summary.Counts[k] {
			return &BackupError{File: file, Reason: fmt.Sprintf("is damaged: it holds %d %s records, its closing line says %d", found[k], k, info.Summary.Counts[k])}
		}
	}
	return nil
}
