package feed

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"hash/crc64"
	"io/fs"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Where the feeds' tables and their migration versions live. The version
// table has a name of its own, so that it never meets the read models'
// goose_db_version even if the read models were put in this schema.
const (
	feedSchema       = "koers_feed"
	feedVersionTable = feedSchema + ".goose_feed_version"
)

// migrateLockID serialises the feeds' migrations between processes (a
// PostgreSQL session advisory lock), apart from the read models' locks,
// which hash "koers-migrate:<schema>" the same way.
var migrateLockID = int64(crc64.Checksum([]byte("koers-migrate-feed:"+feedSchema), crc64.MakeTable(crc64.ECMA)) >> 1)

// createSchema creates the feeds' schema, where goose keeps its versions,
// under a transaction lock: CREATE SCHEMA IF NOT EXISTS run by two
// processes at once fails in one of them with a duplicate key.
func createSchema(ctx context.Context, pool *pgxpool.Pool) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("feed schema: %w", translate(err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrateLockID); err != nil {
		return fmt.Errorf("feed schema: lock: %w", translate(err))
	}
	if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+feedSchema); err != nil {
		return fmt.Errorf("feed schema: %w", translate(err))
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("feed schema: %w", translate(err))
	}
	return nil
}

// migrate creates the feeds' schema and applies the embedded migrations
// not yet applied, with goose as the read models do, each in its own
// transaction.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	if err := createSchema(ctx, pool); err != nil {
		return err
	}
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("feed migrations: %w", translate(err))
	}
	// Wait up to 300 × 1 s for another process's migration.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrateLockID), lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("feed migration lock: %w", translate(err))
	}
	sqlDB := stdlib.OpenDBFromPool(pool)
	defer sqlDB.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, fsys,
		goose.WithGoMigrations(goose.NewGoMigration(2, &goose.GoFunc{RunTx: maskStoredTargets}, nil)),
		goose.WithTableName(feedVersionTable),
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("feed migrations: %w", translate(err))
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("feed schema: migrate: %w", translate(err))
	}
	return nil
}

// maxStoredTargets bounds the rows migration 2 reads: feeds are a few per
// ledger.
const maxStoredTargets = 100_000

// maskStoredTargets is migration 2: the targets that earlier builds stored
// with only their password masked (a token in the user name, the path or
// the query was kept) are stored as redact shows them now, in the
// checkpoints and in the poison queue's metadata. Without it, a feed
// registered before would no longer match its own target.
func maskStoredTargets(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT name, target FROM koers_feed.checkpoint ORDER BY name LIMIT $1`, maxStoredTargets)
	if err != nil {
		return fmt.Errorf("mask stored targets: %w", err)
	}
	type row struct{ name, target string }
	var todo []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.name, &r.target); err != nil {
			rows.Close()
			return fmt.Errorf("mask stored targets: %w", err)
		}
		todo = append(todo, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("mask stored targets: %w", err)
	}
	for _, r := range todo {
		masked := redactStored(r.target)
		if masked == r.target {
			continue
		}
		if _, err := tx.ExecContext(ctx, `UPDATE koers_feed.checkpoint SET target = $2 WHERE name = $1`, r.name, masked); err != nil {
			return fmt.Errorf("mask stored target of feed %s: %w", r.name, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE koers_feed.poison
			SET metadata = jsonb_set(metadata::jsonb, '{koers_target}', to_jsonb($2::text))::json
			WHERE metadata->>'koers_target' = $1`, r.target, masked); err != nil {
			return fmt.Errorf("mask stored target of feed %s: %w", r.name, err)
		}
	}
	return nil
}
