package feed

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"koers/internal/pgtest"
	"koers/projections"
)

// schemaBeforeGoose is what feed/schema.sql created on every start before
// the feed's tables moved to goose migrations: databases made by it must
// upgrade in place.
const schemaBeforeGoose = `
CREATE SCHEMA IF NOT EXISTS koers_feed;
CREATE TABLE IF NOT EXISTS koers_feed.checkpoint (
	name            text PRIMARY KEY,
	target          text NOT NULL,
	source          text NOT NULL,
	delivered_seq   bigint NOT NULL CHECK (delivered_seq >= 0),
	delivered_total bigint NOT NULL DEFAULT 0,
	poisoned_total  bigint NOT NULL DEFAULT 0,
	rejected_total  bigint NOT NULL DEFAULT 0,
	created_at      timestamptz NOT NULL DEFAULT now(),
	updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS koers_feed.poison (
	"offset"         BIGSERIAL,
	"uuid"           VARCHAR(128) NOT NULL,
	"created_at"     TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
	"payload"        JSON DEFAULT NULL,
	"metadata"       JSON DEFAULT NULL,
	"transaction_id" xid8 NOT NULL,
	PRIMARY KEY ("transaction_id", "offset")
);`

// versions returns the goose versions applied in table, in order.
func versions(tb testing.TB, conn *pgx.Conn, table string) []int64 {
	tb.Helper()
	rows, err := conn.Query(context.Background(), `SELECT version_id FROM `+table+` WHERE is_applied AND version_id > 0 ORDER BY id`)
	if err != nil {
		tb.Fatalf("versions in %s: %v", table, err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		tb.Fatalf("versions in %s: %v", table, err)
	}
	return vs
}

func TestADatabaseOfTheUnversionedSchemaUpgradesInPlace(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Fresh(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	if _, err := conn.Exec(ctx, schemaBeforeGoose); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO koers_feed.checkpoint (name, target, source, delivered_seq, delivered_total)
		VALUES ('bi', 'http://bi.example.org/in', '/koers/KOERS', 41, 41)`); err != nil {
		t.Fatal(err)
	}

	// Twice, the second time with nothing to do.
	for round := 1; round <= 2; round++ {
		pool, err := openPool(ctx, url)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		pool.Close()
		if got := versions(t, conn, feedVersionTable); len(got) != 2 || got[0] != 1 || got[1] != 2 {
			t.Fatalf("round %d: feed versions %v, want [1 2]", round, got)
		}
	}
	cps, err := list(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if len(cps) != 1 || cps[0].Name != "bi" || cps[0].Checkpoint != 41 || cps[0].DeliveredTotal != 41 {
		t.Fatalf("checkpoints after the upgrade: %+v, want bi at 41", cps)
	}

	// The read models migrate in the same database with versions of their
	// own, and the feed's stay as they were.
	db, err := projections.Open(ctx, url, projections.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if got := versions(t, conn, projections.DefaultSchema+".goose_db_version"); len(got) < 4 || got[0] != 1 {
		t.Fatalf("read-model versions %v, want 1, 2, 3, 4, …", got)
	}
	if got := versions(t, conn, feedVersionTable); len(got) != 2 || got[0] != 1 {
		t.Fatalf("feed versions after the read models migrated: %v, want [1 2]", got)
	}
}

func TestFeedsStartingAtOnceMigrateOnce(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Fresh(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			pool, err := openPool(ctx, url)
			if err == nil {
				pool.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if got := versions(t, conn, feedVersionTable); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("feed versions %v, want [1 2] once", got)
	}
}

func mustPool(tb testing.TB, dbURL string) *pgxpool.Pool {
	tb.Helper()
	pool, err := openPool(context.Background(), dbURL)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return pool
}
