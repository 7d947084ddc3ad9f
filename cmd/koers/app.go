package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"koers/eventstore"
	"koers/internal/pgserver"
	"koers/internal/secretfile"
	"koers/ledger"
	"koers/projections"
)

// settings are the global flags, after environment defaults.
type settings struct {
	natsURL  string // "" = embedded
	dataDir  string
	ledger   string
	keyFile  string // "" = <data>/seal.key
	timezone string
	replicas int
	// databaseURL of the read models; "" = libpq conventions, database koers.
	databaseURL string
	// create lets this command create the ledger's stream: only init and
	// demo do; every other command refuses a missing ledger.
	create bool
	// inspect opens a stream with weakened settings (for verify, which
	// reports them); every other command refuses it.
	inspect bool
}

// app is one opened ledger: the NATS connection (and embedded server), the
// store and the command handler.
type app struct {
	settings settings
	dbURL    string          // resolved database URL, once asked for
	db       *projections.DB // the read models, once opened
	local    *eventstore.Local
	nc       *nats.Conn
	store    *eventstore.Store
	handler  *ledger.Handler
}

func openApp(ctx context.Context, s settings) (*app, error) {
	if err := os.MkdirAll(s.dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data folder %s: %w", s.dataDir, err)
	}
	loc, err := time.LoadLocation(s.timezone)
	if err != nil {
		return nil, fmt.Errorf("time zone %q: %w", s.timezone, err)
	}
	keyFile := s.keyFile
	if keyFile == "" {
		keyFile = filepath.Join(s.dataDir, "seal.key")
	}
	key, err := loadOrCreateKey(keyFile)
	if err != nil {
		return nil, err
	}
	a := &app{settings: s}
	// One embedded server per data folder, whichever process runs it.
	a.local, err = eventstore.OpenLocal(eventstore.LocalOptions{DataDir: s.dataDir, NATSURL: s.natsURL})
	if err != nil {
		return nil, err
	}
	a.nc, err = a.local.Connect()
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("connect to NATS: %w", err)
	}
	js, err := jetstream.New(a.nc)
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	a.store, err = eventstore.Open(ctx, js, eventstore.Config{Stream: s.ledger, SealKey: key, Replicas: s.replicas, Create: s.create, Inspect: s.inspect})
	if err != nil {
		a.Close()
		return nil, err
	}
	a.handler, err = ledger.New(a.store, ledger.Options{Location: loc})
	if err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// Close closes the connection and, if this process runs the data folder's
// embedded server, stops it: a process still using it starts the next.
func (a *app) Close() {
	if a.db != nil {
		a.db.Close()
	}
	if a.nc != nil {
		a.nc.Close()
	}
	if a.local != nil {
		a.local.Close()
	}
}

// loadOrCreateKey reads the ledger's seal key (64 hex digits), creating a
// random one with owner-only permissions on first use. A key file the
// group or others may read is refused with the chmod that fixes it.
func loadOrCreateKey(path string) ([]byte, error) {
	b, err := secretfile.Read(path, "seal key")
	if errors.Is(err, fs.ErrNotExist) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("seal key folder: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("create seal key %s: %w", path, err)
		}
		defer f.Close()
		if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
			return nil, fmt.Errorf("write seal key %s: %w", path, err)
		}
		return key, f.Sync()
	}
	if err != nil {
		return nil, err
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) < eventstore.MinSealKeyBytes {
		return nil, fmt.Errorf("seal key %s: want at least %d bytes as hex digits", path, eventstore.MinSealKeyBytes)
	}
	return key, nil
}

// databaseURL resolves the read models' database once: --database-url as
// given, or libpq conventions with database koers, or a private cluster in
// the data folder; the database is created when missing.
func (a *app) databaseURL(ctx context.Context) (string, error) {
	if a.dbURL != "" {
		return a.dbURL, nil
	}
	u, err := pgserver.Resolve(ctx, pgserver.Options{URL: a.settings.databaseURL, DataDir: a.settings.dataDir})
	if err != nil {
		return "", err
	}
	a.dbURL = u
	return u, nil
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
