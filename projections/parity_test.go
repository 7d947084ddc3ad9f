package projections

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// digest is a fingerprint of every read-model table, computed by the
// server, to compare large projections.
func digest(t testing.TB, db *DB) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	err := db.withConn(ctx, func(c *pgx.Conn) error {
		for _, table := range []string{"decisions", "facts", "journal", "kpi_measurements", "rejected_messages", "checkpoint"} {
			var n int64
			var sum string
			q := `SELECT count(*), md5(coalesce(string_agg(r, E'\n' ORDER BY r), '')) FROM (SELECT to_jsonb(t)::text AS r FROM ` + table + ` t) x`
			if table == "checkpoint" {
				q = `SELECT seq, coalesce(ledger_genesis, '') FROM checkpoint`
			}
			if err := c.QueryRow(ctx, q).Scan(&n, &sum); err != nil {
				return err
			}
			fmt.Fprintf(&b, "%s %d %s\n", table, n, sum)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestRebuildParityOnALargeHistory projects a generated history of at
// least 100,000 events (10,000 with -short) live while it is recorded,
// rebuilds it while the live projector runs, and wants the rows of a clean
// build.
func TestRebuildParityOnALargeHistory(t *testing.T) {
	events := uint64(100_000)
	if testing.Short() {
		events = 10_000
	}
	e := newLog(t)
	db := newDB(t)
	ctx := context.Background()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	commits := make(chan uint64, 1)
	live := newProjector(t, db, e.st, ProjectorOptions{FlushInterval: 10 * time.Millisecond, OnCommit: func(cp uint64) {
		select {
		case <-commits:
		default:
		}
		commits <- cp
	}})
	go func() { done <- live.Run(runCtx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("live projector: %v", err)
		}
	}()
	start := time.Now()
	generate(t, e, events)
	last, err := e.st.LastSequence(ctx)
	if err != nil {
		t.Fatal(err)
	}
	generated := time.Since(start)

	start = time.Now()
	if err := db.Rebuild(ctx, e.st, ProjectorOptions{}, nil); err != nil {
		t.Fatal(err)
	}
	rebuilt := time.Since(start)
	// The rebuild reached last; the live projector carries on from there.
	timeout := time.After(2 * time.Minute)
	for cp, err := db.Checkpoint(ctx); cp < last; {
		if err != nil {
			t.Fatal(err)
		}
		select {
		case cp = <-commits:
		case <-timeout:
			t.Fatalf("live projector at %d of %d after the rebuild", cp, last)
		}
	}
	clean := newDB(t)
	if err := newProjector(t, clean, e.st, ProjectorOptions{BatchEvents: RebuildBatchEvents, BatchBytes: RebuildBatchBytes}).CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	got, want := digest(t, db), digest(t, clean)
	if got != want {
		t.Fatalf("after a rebuild of %d events the read models differ from a clean build:\n%s\nwant:\n%s", last, got, want)
	}
	if !strings.Contains(got, "facts ") || strings.Contains(got, "facts 0 ") {
		t.Fatalf("digest without facts: %s", got)
	}
	t.Logf("%d events: generated in %s, rebuilt in %s", last, generated, rebuilt)
}
