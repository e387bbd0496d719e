package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

// TestDatabasesAreSeparateAndSurviveAPause: each test's database is its
// own, and data written before an outage is there after it.
func TestDatabasesAreSeparateAndSurviveAPause(t *testing.T) {
	ctx := context.Background()
	a, b := Database(t), Database(t)
	if a == b {
		t.Fatalf("two tests got the same database %s", a)
	}
	conn, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE t (v text); INSERT INTO t VALUES ('kept')"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	other, err := pgx.Connect(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Exec(ctx, "SELECT 1 FROM t"); err == nil {
		t.Fatal("the second database sees the first one's table")
	}
	other.Close(ctx)

	srv := Shared(t)
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	if c, err := pgx.Connect(ctx, a); err == nil {
		c.Close(ctx)
		t.Fatal("connected while the server was stopped")
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	conn, err = pgx.Connect(ctx, a)
	if err != nil {
		t.Fatalf("after resuming: %v\n%s", err, srv.LogTail())
	}
	defer conn.Close(ctx)
	var v string
	if err := conn.QueryRow(ctx, "SELECT v FROM t").Scan(&v); err != nil || v != "kept" {
		t.Fatalf("after an outage: %q, %v", v, err)
	}
}
