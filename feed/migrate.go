package feed

import (
	"context"
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
