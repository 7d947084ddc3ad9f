package bench_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"koers/eventstore"
	"koers/internal/bench"
	"koers/internal/ledgertest"
	"koers/internal/pgtest"
)

// TestRun runs the whole bench on a small history against an embedded
// NATS server and a fresh database, and checks that every figure is there
// and that the bench left nothing behind.
func TestRun(t *testing.T) {
	l := ledgertest.New(t)
	dbURL := pgtest.Fresh(t)
	ctx := context.Background()
	// A second server, syncing at nats-server's default interval.
	other, err := eventstore.StartEmbedded(eventstore.EmbeddedOptions{Dir: t.TempDir(), SyncInterval: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Shutdown)
	nc, err := other.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	otherJS, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	rep, err := bench.Run(ctx, bench.Config{
		JS: l.JS, DatabaseURL: dbURL, Events: 3000, Writers: 4, ApplyBulk: 2000,
		AppendDuration: 300 * time.Millisecond, LagRate: 200, LagDuration: 500 * time.Millisecond, Queries: 20,
		DefaultSyncJS: otherJS, ContentionDuration: 300 * time.Millisecond,
		Progress: func(p bench.Progress) {
			if len(steps) == 0 || steps[len(steps)-1] != p.Step {
				steps = append(steps, p.Step)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("steps: %q", steps)
	withRaw := map[string]bool{bench.KeyAppend: true, bench.KeyApplyBulk: true, bench.KeyAppendConcurrent64: true, bench.KeyAppendRawBatch: true, bench.KeyAppendConcurrent: true, bench.KeyAppendConcurrentRawBatch: true,
		bench.KeyAppendDefaultSync: true, bench.KeyRebuild: true, bench.KeyVerify: true, bench.KeyPersonal: true}
	for _, k := range bench.Keys {
		f, ok := rep.Figures[k]
		if !ok {
			t.Errorf("%s: missing", k)
			continue
		}
		t.Logf("%-18s %+v", k, f)
		if f.Koers <= 0 || f.Count <= 0 || f.Unit == "" {
			t.Errorf("%s: koers %v over %d (%s): want positive figures and a unit", k, f.Koers, f.Count, f.Unit)
		}
		if withRaw[k] && (f.Raw <= 0 || f.Ratio <= 0) {
			t.Errorf("%s: raw %v, ratio %v: want positive", k, f.Raw, f.Ratio)
		}
	}
	if lag := rep.Figures[bench.KeyLag]; lag.Rate <= 0 || lag.P50 > lag.P99 {
		t.Errorf("lag: rate %v, p50 %v, p99 %v: want a positive rate and p50 <= p99", lag.Rate, lag.P50, lag.P99)
	}
	for _, k := range []string{bench.KeyContention, bench.KeyContention64, bench.KeyContentionOptimistic, bench.KeyContention64Optimistic} {
		if f := rep.Figures[k]; f.Clients == 0 || f.P50 > f.P99 || f.Max < f.P99 {
			t.Errorf("%s: clients %d, p50 %v, p99 %v, max %v: want clients and p50 <= p99 <= max", k, f.Clients, f.P50, f.P99, f.Max)
		}
	}
	if rep.Events < 3000 || rep.PeakRSSBytes == 0 {
		t.Errorf("events %d, peak RSS %d: want at least 3000 events and a peak RSS", rep.Events, rep.PeakRSSBytes)
	}

	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		t.Fatal(err)
	}
	for _, k := range append([]string{"peak_rss_bytes", "machine"}, bench.Keys...) {
		if _, ok := obj[k]; !ok {
			t.Errorf("json: %s missing in %s", k, b)
		}
	}

	// Nothing left behind: the ledger's stream is the only one, and no
	// bench schema remains.
	names := l.JS.StreamNames(ctx)
	var streams []string
	for n := range names.Name() {
		streams = append(streams, n)
	}
	if names.Err() != nil {
		t.Fatal(names.Err())
	}
	if len(streams) != 1 || streams[0] != "KOERS" {
		t.Errorf("streams after the bench: %q, want only KOERS", streams)
	}
	others := otherJS.StreamNames(ctx)
	for n := range others.Name() {
		t.Errorf("stream %s left on the default-sync server", n)
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var left int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'koers_bench_%'`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d bench schemas left behind", left)
	}
}
