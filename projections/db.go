package projections

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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
}

// WithDefaults returns o with every zero field set to its default.
func (o Options) WithDefaults() Options {
	if o.Schema == "" {
		o.Schema = DefaultSchema
	}
	if o.MaxConns == 0 {
		o.MaxConns = 4
	}
	return o
}

var validSchema = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

func (o Options) validate() error {
	if !validSchema.MatchString(o.Schema) {
		return fmt.Errorf("projections: schema %q: want ^[a-z_][a-z0-9_]{0,62}$", o.Schema)
	}
	if o.MaxConns < 1 || o.MaxConns > 64 {
		return fmt.Errorf("projections: max conns %d: want 1 to 64", o.MaxConns)
	}
	return nil
}

// DB is the read-model database: the projector writes it, the queries read
// it. It is safe for concurrent use.
//
// It holds a small pool of pgx connections of its own: pgxpool (and the
// database/sql driver built on it, which goose needs) would add
// github.com/jackc/puddle/v2 to go.mod.
type DB struct {
	cfg    *pgx.ConnConfig
	schema string
	// slots bounds the open connections; idle holds the ones not in use.
	slots  chan struct{}
	mu     sync.Mutex
	idle   []*pgx.Conn
	closed bool
}

// Open connects to the database at url, creates the schema if missing and
// applies the embedded migrations.
func Open(ctx context.Context, url string, opts Options) (*DB, error) {
	opts = opts.WithDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("projections: database url: %w", err)
	}
	return open(ctx, cfg, opts)
}

func open(ctx context.Context, cfg *pgx.ConnConfig, opts Options) (*DB, error) {
	cfg = cfg.Copy()
	// Every connection resolves the read models' tables in the schema, so
	// that one set of SQL serves any schema; statements are parsed on each
	// execution (only their descriptions are cached), so that after a
	// rebuild switched schemas the names resolve to the new tables.
	cfg.RuntimeParams["search_path"] = opts.Schema
	cfg.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
	db := &DB{cfg: cfg, schema: opts.Schema, slots: make(chan struct{}, opts.MaxConns)}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Close closes the connections; those in use close when they are released.
// Calls after Close fail.
func (db *DB) Close() {
	db.mu.Lock()
	db.closed = true
	db.mu.Unlock()
	db.dropIdle()
}

// dropIdle closes the idle connections.
func (db *DB) dropIdle() {
	db.mu.Lock()
	idle := db.idle
	db.idle = nil
	db.mu.Unlock()
	for _, c := range idle {
		c.Close(context.Background())
	}
}

// ErrClosed is returned by every call on a [DB] after Close.
var ErrClosed = errors.New("read-model database closed")

// Schema is the PostgreSQL schema of the read models.
func (db *DB) Schema() string { return db.schema }

// acquire returns a connection, waiting for a free slot at most until ctx
// ends; release gives it back.
func (db *DB) acquire(ctx context.Context) (*pgx.Conn, error) {
	select {
	case db.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for a database connection: %w", ctx.Err())
	}
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		<-db.slots
		return nil, ErrClosed
	}
	if n := len(db.idle); n > 0 {
		c := db.idle[n-1]
		db.idle = db.idle[:n-1]
		db.mu.Unlock()
		return c, nil
	}
	db.mu.Unlock()
	c, err := pgx.ConnectConfig(ctx, db.cfg)
	if err != nil {
		<-db.slots
		return nil, fmt.Errorf("connect to the read-model database: %w", err)
	}
	return c, nil
}

func (db *DB) release(c *pgx.Conn) {
	defer func() { <-db.slots }()
	db.mu.Lock()
	keep := !db.closed && !c.IsClosed() && c.PgConn().TxStatus() == 'I'
	if keep {
		db.idle = append(db.idle, c)
	}
	db.mu.Unlock()
	if !keep {
		c.Close(context.Background())
	}
}

// withConn runs fn on a connection from the pool.
func (db *DB) withConn(ctx context.Context, fn func(*pgx.Conn) error) error {
	c, err := db.acquire(ctx)
	if err != nil {
		return err
	}
	defer db.release(c)
	return translate(fn(c))
}

// DatabaseError is a PostgreSQL error, translated so that no driver type
// leaves the package.
type DatabaseError struct {
	Code    string // the SQLSTATE, e.g. 40001
	Message string // what failed, with the server's message
}

func (e *DatabaseError) Error() string { return e.Message + " (SQLSTATE " + e.Code + ")" }

// translate turns an error carrying a *pgconn.PgError into a
// *DatabaseError; any other error passes unchanged (context errors stay
// matchable with errors.Is).
func translate(err error) error {
	var pg *pgconn.PgError
	if err == nil || !errors.As(err, &pg) {
		return err
	}
	return &DatabaseError{Code: pg.Code, Message: err.Error()}
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

// migration is one embedded file: NNNNN_name.sql in goose's format.
type migration struct {
	version int64
	name    string
	up      string
}

func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("migration %s: want NNNNN_name.sql", e.Name())
		}
		body, err := migrations.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		up, ok := gooseUp(string(body))
		if !ok {
			return nil, fmt.Errorf("migration %s: no -- +goose Up section", e.Name())
		}
		ms = append(ms, migration{version: v, name: e.Name(), up: up})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// gooseUp returns the part of a goose SQL migration between "-- +goose Up"
// and "-- +goose Down".
func gooseUp(s string) (string, bool) {
	_, rest, ok := strings.Cut(s, "-- +goose Up")
	if !ok {
		return "", false
	}
	up, _, _ := strings.Cut(rest, "-- +goose Down")
	return up, true
}

// migrate applies the embedded migrations not yet applied, each in its own
// transaction, under an advisory lock so that two processes starting at once
// do not race. The versions are kept in goose's table and format
// (goose_db_version), so the goose CLI can read and continue them.
func (db *DB) migrate(ctx context.Context) error {
	ms, err := loadMigrations()
	if err != nil {
		return fmt.Errorf("projections: %w", err)
	}
	return db.withConn(ctx, func(c *pgx.Conn) error {
		if _, err := c.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{db.schema}.Sanitize()); err != nil {
			return fmt.Errorf("projections: create schema %s: %w", db.schema, err)
		}
		if _, err := c.Exec(ctx, `SELECT pg_advisory_lock(hashtext('koers-migrate:' || $1))`, db.schema); err != nil {
			return fmt.Errorf("projections: lock migrations: %w", err)
		}
		defer c.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtext('koers-migrate:' || $1))`, db.schema)
		if _, err := c.Exec(ctx, `CREATE TABLE IF NOT EXISTS goose_db_version (
			id serial PRIMARY KEY, version_id bigint NOT NULL, is_applied boolean NOT NULL,
			tstamp timestamp NOT NULL DEFAULT now())`); err != nil {
			return fmt.Errorf("projections: migration table: %w", err)
		}
		var current int64
		if err := c.QueryRow(ctx, `SELECT coalesce(max(version_id), 0) FROM goose_db_version WHERE is_applied`).Scan(&current); err != nil {
			return fmt.Errorf("projections: migration version: %w", err)
		}
		for _, m := range ms {
			if m.version <= current {
				continue
			}
			err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, m.up); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, `INSERT INTO goose_db_version (version_id, is_applied) VALUES ($1, true)`, m.version)
				return err
			})
			if err != nil {
				return fmt.Errorf("projections: migration %s: %w", m.name, err)
			}
		}
		return nil
	})
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

// ErrNotFound is returned by a query for one thing (an aggregate, a
// decision) that the read models do not know at the time asked.
var ErrNotFound = errors.New("not found")
