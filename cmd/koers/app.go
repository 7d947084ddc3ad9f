package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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
	// inspect opens a stream with weakened settings (for verify, which
	// reports them); every other command refuses it.
	inspect bool
	// stderr receives notices, such as a private PostgreSQL started.
	stderr io.Writer
}

// app is one opened ledger: the NATS connection (and embedded server), the
// store and the command handler.
type app struct {
	settings settings
	keyFile  string          // the seal key's file
	keyPrint string          // its fingerprint
	dbURL    string          // resolved database URL, once asked for
	db       *projections.DB // the read models, once opened
	local    *eventstore.Local
	nc       *nats.Conn
	store    *eventstore.Store
	handler  *ledger.Handler
}

// openApp opens an existing ledger: where none is, it refuses with a
// *noLedgerError and creates nothing (no data folder, seal key or stream).
func openApp(ctx context.Context, s settings) (*app, error) { return open(ctx, s, false) }

// createApp opens the ledger, creating the data folder, the seal key and the
// stream when they are missing: init and demo only.
func createApp(ctx context.Context, s settings) (*app, error) { return open(ctx, s, true) }

// noLedgerError says where a command looked for a ledger and found none,
// and what to do.
type noLedgerError struct {
	s   settings
	why string
}

func (e *noLedgerError) Error() string {
	where := "in data folder " + e.s.dataDir
	if e.s.natsURL != "" {
		where = "on " + e.s.where()
	}
	return fmt.Sprintf("no ledger %s %s: %s; create one with `koers init --root ACTOR`, or give --data (or --nats-url and --ledger) where a ledger is",
		e.s.ledger, where, e.why)
}

// where names the ledger's place: the data folder, or the NATS URL.
func (s settings) where() string {
	if s.natsURL != "" {
		return fmt.Sprintf("NATS %s (data folder %s)", s.natsURL, s.dataDir)
	}
	return "data folder " + s.dataDir
}

func open(ctx context.Context, s settings, create bool) (*app, error) {
	loc, err := time.LoadLocation(s.timezone)
	if err != nil {
		return nil, fmt.Errorf("time zone %q: %w", s.timezone, err)
	}
	if create {
		if err := os.MkdirAll(s.dataDir, 0o750); err != nil {
			return nil, fmt.Errorf("data folder %s: %w", s.dataDir, err)
		}
	} else {
		if _, err := os.Stat(s.dataDir); errors.Is(err, fs.ErrNotExist) {
			return nil, &noLedgerError{s: s, why: "the folder does not exist"}
		}
	}
	keyFile := s.keyFile
	if keyFile == "" {
		keyFile = filepath.Join(s.dataDir, "seal.key")
	}
	// A key that is there but unfit (readable by others, not hex) is
	// reported first: it is what to fix whatever else is missing.
	key, err := loadKey(keyFile, create)
	missingKey := errors.Is(err, fs.ErrNotExist)
	if err != nil && !missingKey {
		return nil, err
	}
	if !create && s.natsURL == "" {
		if _, err := os.Stat(filepath.Join(s.dataDir, "nats")); errors.Is(err, fs.ErrNotExist) {
			return nil, &noLedgerError{s: s, why: "the folder holds no NATS store"}
		}
	}
	a := &app{settings: s, keyFile: keyFile}
	if key != nil {
		a.keyPrint = fingerprint(key)
	}
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
	if missingKey {
		// Which is missing, the ledger or only its key?
		exists, err := eventstore.Exists(ctx, js, s.ledger)
		a.Close()
		switch {
		case err != nil:
			return nil, err
		case !exists:
			return nil, &noLedgerError{s: s, why: "no stream " + s.ledger + " and no seal key"}
		}
		return nil, fmt.Errorf("seal key %s is missing: ledger %s exists but cannot be sealed or checked without it; give --seal-key-file", keyFile, s.ledger)
	}
	a.store, err = eventstore.Open(ctx, js, eventstore.Config{Stream: s.ledger, SealKey: key, Replicas: s.replicas, Existing: !create, Inspect: s.inspect})
	var notFound *eventstore.StreamNotFoundError
	if errors.As(err, &notFound) {
		a.Close()
		return nil, &noLedgerError{s: s, why: "no stream " + s.ledger}
	}
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

// loadKey reads the ledger's seal key (64 hex digits); with create, a
// missing one is made random with owner-only permissions, else the error
// wraps fs.ErrNotExist. A key file the group or others may read is refused
// with the chmod that fixes it.
func loadKey(path string, create bool) ([]byte, error) {
	b, err := secretfile.Read(path, "seal key")
	if errors.Is(err, fs.ErrNotExist) && !create {
		return nil, err
	}
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
	u, err := pgserver.Resolve(ctx, pgserver.Options{URL: a.settings.databaseURL, DataDir: a.settings.dataDir,
		Started: func(c pgserver.PrivateCluster) {
			if a.settings.stderr != nil {
				fmt.Fprintf(a.settings.stderr, "koers: no PostgreSQL answered, so a private one now runs for the read models in %s; it keeps running after this command: stop it with\n  %s\n",
					c.Dir, c.Stop)
			}
		}})
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
