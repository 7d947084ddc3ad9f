// Package pgserver finds the PostgreSQL server that holds the read models,
// creates their database when it is missing, and, when no server answers
// where libpq would look, runs a private cluster in the data folder.
package pgserver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DefaultDatabase is the database name used when no URL is given.
const DefaultDatabase = "koers"

// ErrNoServer is wrapped by the errors of [Resolve] and [EnsureDatabase]
// when no PostgreSQL server answered at all (as opposed to one that
// answered and refused).
var ErrNoServer = errors.New("no PostgreSQL answers")

// Options say where to look.
type Options struct {
	// URL of the database, a URL or libpq key=value string; "" means libpq
	// conventions (PGHOST, PGPORT, PGUSER, … and their defaults) with
	// database DefaultDatabase, and a private cluster in DataDir when
	// nothing answers there.
	URL string
	// DataDir holds the private cluster (postgres/, postgres-socket/).
	DataDir string
	// Started, when set, is told when Resolve started the private cluster
	// (not when it found it running): it keeps running after the process,
	// and people should know.
	Started func(PrivateCluster)
}

// Resolve returns the connection string of the read models' database,
// creating the database when it does not exist yet.
func Resolve(ctx context.Context, o Options) (string, error) {
	raw := o.URL
	if raw == "" {
		raw = "dbname=" + DefaultDatabase
	}
	cfg, err := pgx.ParseConfig(raw)
	if err != nil {
		return "", fmt.Errorf("database URL: %w", err)
	}
	err = EnsureDatabase(ctx, cfg)
	if errors.Is(err, ErrNoServer) && o.URL == "" && o.DataDir != "" {
		// Nothing answers where libpq would look: a private cluster in
		// the data folder, when PostgreSQL is installed.
		private, started, perr := startPrivate(ctx, o.DataDir)
		if perr != nil {
			return "", fmt.Errorf("%w; and no private PostgreSQL either: %v", err, perr)
		}
		if cfg, err = pgx.ParseConfig(private); err != nil {
			return "", err
		}
		if started && o.Started != nil {
			o.Started(Cluster(o.DataDir))
		}
		if err := EnsureDatabase(ctx, cfg); err != nil {
			return "", err
		}
		return private, nil
	}
	if err != nil {
		return "", err
	}
	return raw, nil
}

// EnsureDatabase creates cfg's database when the server says it does not
// exist, connecting to the "postgres" database of the same server to do so.
func EnsureDatabase(ctx context.Context, cfg *pgx.ConnConfig) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		return conn.Close(ctx)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return fmt.Errorf("%w (%s@%s:%d/%s): %w; start PostgreSQL or set --database-url / KOERS_DATABASE_URL",
			ErrNoServer, cfg.User, cfg.Host, cfg.Port, cfg.Database, err)
	}
	if pgErr.Code != "3D000" { // invalid_catalog_name
		return fmt.Errorf("connect to PostgreSQL (%s@%s:%d/%s): %w; start PostgreSQL or set --database-url / KOERS_DATABASE_URL",
			cfg.User, cfg.Host, cfg.Port, cfg.Database, err)
	}
	admin := cfg.Copy()
	admin.Database = "postgres"
	conn, err = pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return fmt.Errorf("create database %s: connect to postgres: %w", cfg.Database, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{cfg.Database}.Sanitize()); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database: created meanwhile
			return nil
		}
		return fmt.Errorf("create database %s: %w", cfg.Database, err)
	}
	return nil
}
