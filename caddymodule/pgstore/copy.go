package pgstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/wijtechniek/wijgate/caddymodule/storage"
)

// recordTable is where one kind of record lives, and how a row reads as a
// storage.Record: expressions for its key, group and value, and whether
// it expires. The other columns are rebuilt from the record when it is
// written.
type recordTable struct {
	kind    storage.Kind
	table   string
	key     string
	group   string
	value   string
	expires bool
	order   string
}

const jsonValue = "record::text"

var recordTables = []recordTable{
	{kind: storage.KindSecret, table: "secret", key: "name", value: "value", order: "name"},
	{kind: storage.KindAccount, table: "account", key: "id", value: jsonValue, order: "id"},
	{kind: storage.KindSession, table: "session", key: "key", value: jsonValue, expires: true, order: "key"},
	{kind: storage.KindCode, table: "code", key: "purpose || '/' || email", value: jsonValue, expires: true, order: "purpose, email"},
	{kind: storage.KindFlow, table: "flow", key: "id", value: jsonValue, expires: true, order: "id"},
	{kind: storage.KindCounter, table: "counter", key: "key", value: jsonValue, expires: true, order: "key"},
	{kind: storage.KindOrganisation, table: "organisation", key: "kvk", value: jsonValue, order: "kvk"},
	{kind: storage.KindMembership, table: "membership", key: "kvk || '/' || account_id", value: jsonValue, order: "kvk, account_id"},
	{kind: storage.KindPseudonym, table: "pseudonym", key: "pseudonym || '/' || account_id", order: "pseudonym, account_id"},
	{kind: storage.KindInvitation, table: "invitation", key: "id", value: jsonValue, expires: true, order: "id"},
	// In the order of the log, so a copy keeps the order of entries made
	// in the same instant.
	{kind: storage.KindAudit, table: "audit", key: "kvk", group: "grp", value: jsonValue, expires: true, order: "kvk, at, id"},
	{kind: storage.KindSAMLRequest, table: "saml_request", key: "id", value: jsonValue, expires: true, order: "id"},
	{kind: storage.KindSAMLSeen, table: "saml_seen", key: "key", expires: true, order: "key"},
	{kind: storage.KindParked, table: "parked_result", key: "key", value: jsonValue, expires: true, order: "key"},
}

// where is the condition that leaves out the copy marker and, for a table
// whose rows expire, the rows not live by live ($1).
func (t recordTable) where(live string) string {
	var cond []string
	if t.kind == storage.KindSecret {
		cond = append(cond, "name <> '"+storage.CopyMarker+"'")
	}
	if t.expires {
		cond = append(cond, "expires_at "+live)
	}
	if len(cond) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(cond, " AND ")
}

// snapshot runs fn in one read-only transaction that sees one snapshot of
// every table, with no operation timeout: reading a large store takes as
// long as it takes.
func (s *Store) snapshot(ctx context.Context, fn func(pgx.Tx) error) error {
	return mapErr(pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn))
}

// VisitRecords hands every live record to fn, kind by kind, from one
// snapshot. The copy marker is left out.
func (s *Store) VisitRecords(ctx context.Context, fn func(storage.Record) error) error {
	return s.snapshot(ctx, func(tx pgx.Tx) error {
		for _, t := range recordTables {
			group, value, expires := "NULL::text", "NULL::text", "NULL::timestamptz"
			if t.group != "" {
				group = t.group
			}
			if t.value != "" {
				value = t.value
			}
			if t.expires {
				expires = "expires_at"
			}
			rows, err := tx.Query(ctx, "SELECT "+t.key+", "+group+", "+expires+", "+value+" FROM "+t.table+t.where("> now()")+" ORDER BY "+t.order)
			if err != nil {
				return err
			}
			var key string
			var grp pgtype.Text
			var exp pgtype.Timestamptz
			var val []byte
			_, err = pgx.ForEachRow(rows, []any{&key, &grp, &exp, &val}, func() error {
				r := storage.Record{Kind: t.kind, Key: key, Group: grp.String, Value: bytes.Clone(val)}
				if exp.Valid && exp.InfinityModifier == pgtype.Finite {
					r.ExpiresAt = exp.Time
				}
				return fn(r)
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// CountRecords counts, kind by kind, the records whose expiry, to the
// second, is after liveAfter's second, as the badger engine keeps them.
// It shares no code with VisitRecords and WriteRecords, so it checks
// them. The copy marker is left out.
func (s *Store) CountRecords(ctx context.Context, liveAfter time.Time) (storage.Counts, error) {
	counts := storage.Counts{}
	from := liveAfter.Truncate(time.Second).Add(time.Second)
	err := s.snapshot(ctx, func(tx pgx.Tx) error {
		for _, t := range recordTables {
			q := "SELECT count(*) FROM " + t.table + t.where(">= $1")
			args := []any{from}
			if !t.expires {
				args = nil
			}
			var n int
			if err := tx.QueryRow(ctx, q, args...).Scan(&n); err != nil {
				return err
			}
			counts[t.kind] = n
		}
		return nil
	})
	return counts, err
}

// batchTimeout bounds one WriteRecords, so that a database that stops
// answering fails a copy instead of holding it.
const batchTimeout = time.Minute

// WriteRecords writes a batch of records, with the columns they imply, in
// one transaction. A record that has expired already is left out.
func (s *Store) WriteRecords(ctx context.Context, batch []storage.Record) error {
	ctx, cancel := context.WithTimeout(ctx, batchTimeout)
	defer cancel()
	now := time.Now()
	var b pgx.Batch
	for _, r := range batch {
		if !r.ExpiresAt.IsZero() && !r.ExpiresAt.After(now) {
			continue
		}
		sql, args, err := insertRecord(r)
		if err != nil {
			return fmt.Errorf("postgres: writing %s %q: %w", r.Kind, r.Key, err)
		}
		b.Queue(sql, args...)
	}
	return mapErr(pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return tx.SendBatch(ctx, &b).Close()
	}))
}

// insertRecord is the statement that writes r.
func insertRecord(r storage.Record) (string, []any, error) {
	rec, exp := string(r.Value), expiry(r.ExpiresAt)
	switch r.Kind {
	case storage.KindSecret:
		return "INSERT INTO secret (name, value) VALUES ($1, $2)", []any{r.Key, r.Value}, nil
	case storage.KindAccount:
		var a storage.Account
		err := json.Unmarshal(r.Value, &a)
		return "INSERT INTO account (id, email, record) VALUES ($1, $2, $3)", []any{r.Key, a.Email, rec}, err
	case storage.KindSession:
		var ss storage.Session
		err := json.Unmarshal(r.Value, &ss)
		return "INSERT INTO session (key, account_id, expires_at, record) VALUES ($1, $2, $3, $4)", []any{r.Key, ss.AccountID, exp, rec}, err
	case storage.KindCode:
		var c storage.VerificationCode
		err := json.Unmarshal(r.Value, &c)
		return "INSERT INTO code (purpose, email, expires_at, record) VALUES ($1, $2, $3, $4)", []any{c.Purpose, c.Email, exp, rec}, err
	case storage.KindFlow:
		return "INSERT INTO flow (id, expires_at, record) VALUES ($1, $2, $3)", []any{r.Key, exp, rec}, nil
	case storage.KindCounter:
		return "INSERT INTO counter (key, expires_at, record) VALUES ($1, $2, $3)", []any{r.Key, exp, rec}, nil
	case storage.KindOrganisation:
		return "INSERT INTO organisation (kvk, record) VALUES ($1, $2)", []any{r.Key, rec}, nil
	case storage.KindMembership:
		var m storage.Membership
		err := json.Unmarshal(r.Value, &m)
		return "INSERT INTO membership (kvk, account_id, record) VALUES ($1, $2, $3)", []any{m.KvK, m.AccountID, rec}, err
	case storage.KindPseudonym:
		// Account IDs hold no slash; a pseudonym may.
		i := strings.LastIndexByte(r.Key, '/')
		if i < 0 {
			return "", nil, errors.New("the key is not <pseudonym>/<account ID>")
		}
		return "INSERT INTO pseudonym (pseudonym, account_id) VALUES ($1, $2)", []any{r.Key[:i], r.Key[i+1:]}, nil
	case storage.KindInvitation:
		var inv storage.Invitation
		err := json.Unmarshal(r.Value, &inv)
		return "INSERT INTO invitation (id, kvk, expires_at, record) VALUES ($1, $2, $3, $4)", []any{r.Key, inv.KvK, exp, rec}, err
	case storage.KindAudit:
		var e storage.AuditEntry
		err := json.Unmarshal(r.Value, &e)
		var group *string
		if r.Group != "" {
			group = &r.Group
		}
		return "INSERT INTO audit (kvk, at, grp, expires_at, record) VALUES ($1, $2, $3, $4, $5)", []any{e.KvK, e.At, group, exp, rec}, err
	case storage.KindSAMLRequest:
		return "INSERT INTO saml_request (id, expires_at, record) VALUES ($1, $2, $3)", []any{r.Key, exp, rec}, nil
	case storage.KindSAMLSeen:
		return "INSERT INTO saml_seen (key, expires_at) VALUES ($1, $2)", []any{r.Key, exp}, nil
	case storage.KindParked:
		return "INSERT INTO parked_result (key, expires_at, record) VALUES ($1, $2, $3)", []any{r.Key, exp, rec}, nil
	}
	return "", nil, errors.New("unknown kind of record")
}

// EmptyRecords deletes every record, for a copy that replaces what a
// database holds.
func (s *Store) EmptyRecords(ctx context.Context) error {
	tables := make([]string, len(recordTables))
	for i, t := range recordTables {
		tables[i] = t.table
	}
	_, err := s.pool.Exec(ctx, "TRUNCATE "+strings.Join(tables, ", "))
	return mapErr(err)
}

// CopyMark returns the note of an incomplete copy, nil when the database
// holds none.
func (s *Store) CopyMark() (note []byte, err error) {
	err = s.read(func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, "SELECT value FROM secret WHERE name = $1", storage.CopyMarker).Scan(&note)
	})
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	return note, err
}

// ClearCopyMark removes the note of an incomplete copy.
func (s *Store) ClearCopyMark() error {
	return s.write(func(ctx context.Context, tx pgx.Tx, _ *changed) error {
		_, err := tx.Exec(ctx, "DELETE FROM secret WHERE name = $1", storage.CopyMarker)
		return err
	})
}
