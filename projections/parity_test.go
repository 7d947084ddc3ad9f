package projections

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"koers/domain"
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

// TestRebuildMatchesTheProjectorOnBackdatedHistory rebuilds a history whose
// beliefs are not recorded in valid-time order — decisions effective before
// earlier ones on the same attributes, retractions whose compensations take
// effect back when the retracted decision did, a budget period closed and a
// KPI measurement undone, a forged message — and wants every row the
// incremental projector writes, in batches of a few events and of a
// rebuild's size. The rebuild derives the facts of attributes in order with
// window functions and resolves the others one by one: both must happen.
func TestRebuildMatchesTheProjectorOnBackdatedHistory(t *testing.T) {
	e := newLog(t)
	e.play(t, script...)
	e.play(t,
		// p-3 moves in June, then a decision recorded later says it moved
		// in May already, then another that it was back in April.
		`{"id":"june","by":"p-root","authority":"root","reason":"plan","effective":"2026-06-01","changes":[
		 {"kind":"person.move","person":"p-3","to":"t-edge"}]}`,
		`{"id":"may","by":"p-root","authority":"root","reason":"earlier, in fact","effective":"2026-05-01","changes":[
		 {"kind":"product.assign-owner","product":"pay-app","owner":"p-3"}]}`,
		`{"id":"owner-back","by":"p-root","authority":"root","reason":"backdated owner change","effective":"2026-02-10","changes":[
		 {"kind":"product.assign-owner","product":"pay-app","owner":"p-2"}]}`,
		`{"id":"open-2027","by":"p-root","authority":"root","reason":"plan","effective":"2026-06-01","changes":[
		 {"kind":"budget.open","period":"2027","amount":"500.00","currency":"EUR"},
		 {"kind":"funding.allocate","period":"2027","to":"product:pay-app","amount":"200.00"}]}`,
		`{"id":"undo-kpis","by":"p-root","authority":"root","reason":"wrong figures","effective":"2026-06-02","changes":[
		 {"kind":"decision.retract","decision":"kpis"}]}`,
		`{"id":"undo-2027","by":"p-root","authority":"root","reason":"too early","effective":"2026-06-03","changes":[
		 {"kind":"decision.retract","decision":"open-2027"}]}`,
		`{"id":"undo-move-ada","by":"p-root","authority":"root","reason":"never moved","effective":"2026-07-01","changes":[
		 {"kind":"decision.retract","decision":"move-ada"}]}`)
	if err := e.nc.Publish("koers.person.p-forged", []byte(`{"v":1,"type":"person.joined"}`)); err != nil {
		t.Fatal(err)
	}
	generate(t, e, 3_000)

	ref := newDB(t)
	catchUp(t, ref, e.st)
	want := dump(t, ref)
	last, err := e.st.LastSequence(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	wantAnchor, err := e.st.Anchor(t.Context(), domain.Anchor{}, last)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(want, "rejected_messages:\n{") {
		t.Fatalf("the history lacks a rejected message:\n%s", want)
	}
	for _, n := range []int{7, RebuildBatchEvents} {
		db := newDB(t)
		if err := db.Rebuild(t.Context(), e.st, ProjectorOptions{BatchEvents: n}, nil); err != nil {
			t.Fatal(err)
		}
		if got := dump(t, db); got != want {
			t.Fatalf("a rebuild in batches of %d events differs from the projector:\n%s\nwant:\n%s", n, got, want)
		}
		// The rebuild anchors the log it read, beside the load.
		if a, ok, err := db.LastAnchor(t.Context()); err != nil || !ok || a != wantAnchor {
			t.Fatalf("anchor after a rebuild: %+v (found: %v, %v), want %+v", a, ok, err, wantAnchor)
		}
		if db.rebuilt.backdatedAttrs == 0 || db.rebuilt.derivedRows == 0 {
			t.Fatalf("rebuild: %d attributes resolved one by one, %d fact rows derived: want both", db.rebuilt.backdatedAttrs, db.rebuilt.derivedRows)
		}
	}
}
