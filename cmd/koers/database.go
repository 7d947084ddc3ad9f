package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"koers/projections"
)

// defaultDatabase is the database name used when --database-url names none.
const defaultDatabase = "koers"

// databaseURL resolves the read models' database: --database-url as given,
// or libpq conventions (PGHOST, PGPORT, PGUSER, … and their defaults) with
// database "koers". The database is created when it does not exist yet.
func (a *app) databaseURL(ctx context.Context) (string, error) {
	if a.dbURL != "" {
		return a.dbURL, nil
	}
	raw := a.settings.databaseURL
	if raw == "" {
		raw = "dbname=" + defaultDatabase
	}
	cfg, err := pgx.ParseConfig(raw)
	if err != nil {
		return "", fmt.Errorf("--database-url: %w", err)
	}
	err = ensureDatabase(ctx, cfg)
	var down *serverDownError
	if errors.As(err, &down) && a.settings.databaseURL == "" {
		// Nothing answers where libpq would look: a private cluster in
		// the data folder, when PostgreSQL is installed.
		private, perr := privatePostgres(ctx, a.settings.dataDir)
		if perr != nil {
			return "", fmt.Errorf("%w; and no private PostgreSQL either: %v", err, perr)
		}
		if cfg, err = pgx.ParseConfig(private); err != nil {
			return "", err
		}
		if err := ensureDatabase(ctx, cfg); err != nil {
			return "", err
		}
		a.dbURL = private
		return private, nil
	}
	if err != nil {
		return "", err
	}
	a.dbURL = raw
	return raw, nil
}

// serverDownError: no PostgreSQL server answered at all.
type serverDownError struct{ err error }

func (e *serverDownError) Error() string { return e.err.Error() }
func (e *serverDownError) Unwrap() error { return e.err }

// ensureDatabase creates cfg's database when the server says it does not
// exist, connecting to the "postgres" database of the same server to do so.
func ensureDatabase(ctx context.Context, cfg *pgx.ConnConfig) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		return conn.Close(ctx)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return &serverDownError{fmt.Errorf("no PostgreSQL answers (%s@%s:%d/%s): %w; start PostgreSQL or set --database-url / KOERS_DATABASE_URL",
			cfg.User, cfg.Host, cfg.Port, cfg.Database, err)}
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

// readModels opens the read models (applying migrations) in the database.
func (a *app) readModels(ctx context.Context) (*projections.DB, error) {
	if a.db != nil {
		return a.db, nil
	}
	u, err := a.databaseURL(ctx)
	if err != nil {
		return nil, err
	}
	db, err := projections.Open(ctx, u, projections.Options{})
	if err != nil {
		return nil, err
	}
	a.db = db
	return db, nil
}
