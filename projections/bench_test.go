package projections

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"koers/domain"
	"koers/eventstore"
)

// rawRate measures the floor a projection cannot beat: an ordered read of
// the whole stream with nothing done per event, then a COPY of one row per
// event into one table. It returns events per second over both.
func rawRate(tb testing.TB, db *DB, src *eventstore.Store, last uint64) float64 {
	tb.Helper()
	ctx := context.Background()
	start := time.Now()
	var seqs [][]any
	for rec, err := range src.Read(ctx, 1, domain.ReadOptions{Until: last}) {
		if err != nil {
			tb.Fatal(err)
		}
		seqs = append(seqs, []any{int64(rec.Sequence), rec.Type, rec.Data})
	}
	err := db.withConn(ctx, func(c *pgx.Conn) error {
		if _, err := c.Exec(ctx, `CREATE TEMP TABLE raw_events (seq bigint, type text, data bytea)`); err != nil {
			return err
		}
		defer c.Exec(context.WithoutCancel(ctx), `DROP TABLE raw_events`)
		_, err := c.CopyFrom(ctx, pgx.Identifier{"raw_events"}, []string{"seq", "type", "data"}, pgx.CopyFromRows(seqs))
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return float64(len(seqs)) / time.Since(start).Seconds()
}

// BenchmarkRebuild rebuilds the read models from a generated history of
// 100,000 events and reports events/s next to the raw rate of the same run
// (ordered read + COPY of one row per event) and their ratio.
func BenchmarkRebuild(b *testing.B) {
	e := newLog(b)
	generate(b, e, 100_000)
	ctx := context.Background()
	last, err := e.st.LastSequence(ctx)
	if err != nil {
		b.Fatal(err)
	}
	db := newDB(b)
	raw := rawRate(b, db, e.st, last)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if err := db.Rebuild(ctx, e.st, ProjectorOptions{}, nil); err != nil {
			b.Fatal(err)
		}
	}
	rate := float64(last) * float64(b.N) / time.Since(start).Seconds()
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(raw, "raw-events/s")
	b.ReportMetric(rate/raw, "ratio")
	b.ReportMetric(float64(last), "events")
}
