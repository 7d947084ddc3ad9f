package projections

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/crc64"
	"io/fs"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jackc/puddle/v2"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"koers/domain"
	"koers/internal/pgerr"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DefaultSchema holds the read models unless [Options].Schema says otherwise.
const DefaultSchema = "koers"

// Options configure [Open]. Zero fields take the default in their doc.
type Options struct {
	// Schema is the PostgreSQL schema of the read models, created if
	// missing. Default DefaultSchema.
	Schema string
	// MaxConns bounds the connections held open at once. Default 4.
	MaxConns int
	// ReportingSchema holds the reporting views over the read models of
	// Schema, created if missing; one per Schema. Default
	// DefaultReportingSchema.
	ReportingSchema string
	// ReportingRole may read the reporting views and nothing else; it is
	// created (NOLOGIN) if missing and the connecting role may (CREATEROLE),
	// else the views are not granted until an administrator creates it.
	// Grant it to the roles BI tools log in with. Default
	// DefaultReportingRole.
	ReportingRole string
}

// WithDefaults returns o with every zero field set to its default.
func (o Options) WithDefaults() Options {
	if o.Schema == "" {
		o.Schema = DefaultSchema
	}
	if o.MaxConns == 0 {
		o.MaxConns = 4
	}
	if o.ReportingSchema == "" {
		o.ReportingSchema = DefaultReportingSchema
	}
	if o.ReportingRole == "" {
		o.ReportingRole = DefaultReportingRole
	}
	return o
}

var validSchema = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

func (o Options) validate() error {
	if !validSchema.MatchString(o.Schema) {
		return fmt.Errorf("projections: schema %q: want ^[a-z_][a-z0-9_]{0,62}$", o.Schema)
	}
	if !validSchema.MatchString(o.ReportingSchema) || o.ReportingSchema == o.Schema {
		return fmt.Errorf("projections: reporting schema %q: want ^[a-z_][a-z0-9_]{0,62}$, not the read models' schema", o.ReportingSchema)
	}
	if !validSchema.MatchString(o.ReportingRole) {
		return fmt.Errorf("projections: reporting role %q: want ^[a-z_][a-z0-9_]{0,62}$", o.ReportingRole)
	}
	if o.MaxConns < 1 || o.MaxConns > 64 {
		return fmt.Errorf("projections: max conns %d: want 1 to 64", o.MaxConns)
	}
	return nil
}

// DB is the read-model database: the projector writes it, the queries read
// it. It is safe for concurrent use.
type DB struct {
	// base is the pool configuration without the schema; a rebuild opens
	// its staging schema from it.
	base   *pgxpool.Config
	pool   *pgxpool.Pool
	schema string
	// reporting is the schema of the reporting views, role their reader.
	reporting, role string
	// referenceWrites makes batches write one statement per fact and row,
	// the semantics the batched writer must match (set by tests).
	referenceWrites bool
	// stageFacts makes batches record fact sets as assertions for a
	// rebuild to resolve at the end (stage.go); set by Rebuild on its
	// staging schema until it has.
	stageFacts atomic.Bool
	// rebuilt says how the last rebuild through db derived its facts.
	rebuilt stageStats
	// analyzed tracks the fact rows written through db, to refresh the
	// planner's statistics as the table grows (see [DB.noteFacts]).
	analyzed struct {
		sync.Mutex
		since, at int
	}
	// standby is the session of the last attempt at the projector's lease
	// that found it held, kept for the next attempt (see [DB.TakeLease]).
	standby struct {
		sync.Mutex
		conn   *pgx.Conn
		closed bool // by Close: keep nothing
	}
}

// Open connects to the database at url, creates the schema if missing and
// applies the embedded migrations.
func Open(ctx context.Context, url string, opts Options) (*DB, error) {
	opts = opts.WithDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("projections: database url: %w", err)
	}
	return open(ctx, cfg, opts, true)
}

// open opens the read models in opts.Schema; withReporting creates the
// reporting views over them (a rebuild's staging schema has none).
func open(ctx context.Context, base *pgxpool.Config, opts Options, withReporting bool) (*DB, error) {
	cfg := base.Copy()
	// Every connection resolves the read models' tables in the schema, so
	// that one set of SQL serves any schema; statements are parsed on each
	// execution (only their descriptions are cached), so that after a
	// rebuild switched schemas the names resolve to the new tables.
	cfg.ConnConfig.RuntimeParams["search_path"] = opts.Schema
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
	cfg.MaxConns = int32(opts.MaxConns)
	cfg.MinConns = 0
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("projections: connection pool: %w", err)
	}
	db := &DB{base: base, pool: pool, schema: opts.Schema, reporting: opts.ReportingSchema, role: opts.ReportingRole}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if withReporting {
		err := db.withTx(ctx, func(tx pgx.Tx) error { return db.createReporting(ctx, tx, db.schema, false) })
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("projections: %w", err)
		}
	}
	return db, nil
}

// Close closes the connections; those in use close when they are released.
// Calls after Close fail with ErrClosed.
func (db *DB) Close() {
	db.pool.Close()
	db.standby.Lock()
	conn := db.standby.conn
	db.standby.conn, db.standby.closed = nil, true
	db.standby.Unlock()
	if conn != nil {
		closeLocked(conn)
	}
}

// ErrClosed is returned by every call on a [DB] after Close. It wraps
// domain.ErrUnavailable: to a caller, read models shutting down are read
// models that do not answer.
var ErrClosed = fmt.Errorf("read-model database closed: %w", domain.ErrUnavailable)

// Schema is the PostgreSQL schema of the read models.
func (db *DB) Schema() string { return db.schema }

// withConn runs fn on a connection from the pool. pgxpool destroys a
// connection released inside a transaction instead of reusing it.
func (db *DB) withConn(ctx context.Context, fn func(*pgx.Conn) error) error {
	c, err := db.pool.Acquire(ctx)
	if err != nil {
		if errors.Is(err, puddle.ErrClosedPool) {
			return ErrClosed
		}
		if ctx.Err() != nil {
			return fmt.Errorf("wait for a database connection: %w", ctx.Err())
		}
		return fmt.Errorf("connect to the read-model database: %w", translate(err))
	}
	defer c.Release()
	return translate(fn(c.Conn()))
}

// ErrDatabase is wrapped by every [*DatabaseError].
var ErrDatabase = errors.New("read-model database")

// DatabaseError is a PostgreSQL error, translated so that no driver type
// leaves the package. It wraps [ErrDatabase], and domain.ErrUnavailable as
// well when the server could not be reached or is going away (no SQLSTATE,
// class 08, 57P01–57P03, 53300): the same call may succeed later.
type DatabaseError struct {
	Code    string // the SQLSTATE, e.g. 40001; "" when no server answered
	Message string // what failed, with the server's message
}

func (e *DatabaseError) Error() string {
	if e.Code == "" {
		return e.Message
	}
	return e.Message + " (SQLSTATE " + e.Code + ")"
}

func (e *DatabaseError) Unwrap() []error {
	switch {
	case e.Code == "", strings.HasPrefix(e.Code, "08"), e.Code == "57P01", e.Code == "57P02", e.Code == "57P03", e.Code == "53300":
		return []error{ErrDatabase, domain.ErrEngine, domain.ErrUnavailable}
	}
	return []error{ErrDatabase, domain.ErrEngine}
}

// translate turns an error of the driver (a server's error, a failure to
// connect, a connection that broke) into a *DatabaseError; any other error
// passes unchanged (context errors stay matchable with errors.Is).
func translate(err error) error {
	if err == nil || !pgerr.Driver(err) {
		return err
	}
	return &DatabaseError{Code: pgerr.Code(err), Message: err.Error()}
}

// withTx runs fn in a transaction and commits when fn returns nil.
func (db *DB) withTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return db.withConn(ctx, func(c *pgx.Conn) error {
		tx, err := c.Begin(ctx)
		if err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		defer tx.Rollback(context.WithoutCancel(ctx))
		if err := fn(tx); err != nil {
			return err
		}
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		return nil
	})
}

// migrate creates the schema and applies the embedded migrations not yet
// applied with goose, each in its own transaction, under a PostgreSQL
// advisory lock of the schema's own so that two processes starting at once
// do not race. The versions are in goose_db_version in the schema.
func (db *DB) migrate(ctx context.Context) error {
	lockID := int64(crc64.Checksum([]byte("koers-migrate:"+db.schema), crc64.MakeTable(crc64.ECMA)) >> 1)
	// Under the lock: CREATE SCHEMA IF NOT EXISTS run by two processes at
	// once fails in one of them with a duplicate key.
	err := db.withTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{db.schema}.Sanitize())
		return err
	})
	if err != nil {
		return fmt.Errorf("projections: create schema %s: %w", db.schema, err)
	}
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("projections: migrations: %w", err)
	}
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(lockID), lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("projections: migration lock: %w", err)
	}
	sqlDB := stdlib.OpenDBFromPool(db.pool)
	defer sqlDB.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, fsys,
		goose.WithTableName(db.schema+".goose_db_version"),
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("projections: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("projections: migrate %s: %w", db.schema, translate(err))
	}
	return nil
}

// Checkpoint returns the last stream sequence applied to the read models.
func (db *DB) Checkpoint(ctx context.Context) (uint64, error) {
	var seq int64
	err := db.withConn(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT seq FROM checkpoint`).Scan(&seq)
	})
	if err != nil {
		return 0, fmt.Errorf("read checkpoint: %w", err)
	}
	return uint64(seq), nil
}

// GapError is returned when a batch does not start right after the
// checkpoint: the checkpoint moved under the projector (another projector, or
// a rebuild switched in). [Projector.Run] reads again from the checkpoint.
type GapError struct {
	Checkpoint uint64
	First      uint64 // the first sequence of the batch
}

func (e *GapError) Error() string {
	return fmt.Sprintf("batch starts at %d, checkpoint is %d", e.First, e.Checkpoint)
}
