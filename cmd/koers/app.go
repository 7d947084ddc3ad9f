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
	// keys says what the command needs of the seal key file.
	keys keyUse
}

// keyUse is what a command needs of the ledger's seal key.
type keyUse int

const (
	// keyWrite: the command writes; the key file must exist and hold the
	// ledger's key in force.
	keyWrite keyUse = iota
	// keyRead: the command only reads and verifies; it needs no secret.
	keyRead
	// keyCreate: init and demo, which create the key when it is missing.
	keyCreate
)

// reading returns s for a command that only reads.
func (s *settings) reading() *settings { r := *s; r.keys = keyRead; return &r }

// creating returns s for a command that may create the ledger and its key.
func (s *settings) creating() *settings { r := *s; r.keys = keyCreate; return &r }

// sealKeyFile is the seal key's path.
func (s settings) sealKeyFile() string {
	if s.keyFile != "" {
		return s.keyFile
	}
	return filepath.Join(s.dataDir, "seal.key")
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
	var key []byte
	var writeKey func() error
	switch s.keys {
	case keyWrite:
		if key, err = readSealKey(s.sealKeyFile()); err != nil {
			return nil, err
		}
	case keyCreate:
		if key, writeKey, err = loadOrNewSealKey(s.sealKeyFile()); err != nil {
			return nil, err
		}
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
	a.store, err = eventstore.Open(ctx, js, eventstore.Config{Stream: s.ledger, SealKey: key, Replicas: s.replicas})
	if err != nil {
		a.Close()
		return nil, err
	}
	// A new key is kept only once the ledger accepted it as its writer's:
	// an existing ledger with another key leaves no stray key file behind.
	if writeKey != nil {
		if err := writeKey(); err != nil {
			a.Close()
			return nil, err
		}
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

// SealKeyMissingError is a writer without the ledger's seal key file. The
// key is never made up on the spot: a new key would seal events that no
// verifier accepts as the ledger's.
type SealKeyMissingError struct{ Path string }

func (e *SealKeyMissingError) Error() string {
	return fmt.Sprintf("seal key file %s is missing: writers need the ledger's private seal key (koers init created it); restore it from your backup or point --seal-key-file (KOERS_SEAL_KEY_FILE) at it; reading and verify need no key", e.Path)
}

// readSealKey reads the ledger's seal key: the Ed25519 seed as 64 hex
// digits.
func readSealKey(path string) ([]byte, error) {
	b, err := secretfile.Read(path, "seal key")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &SealKeyMissingError{Path: path}
	}
	if err != nil {
		return nil, err
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != eventstore.MinSealKeyBytes {
		return nil, fmt.Errorf("seal key %s: want an Ed25519 seed as %d hex digits", path, 2*eventstore.MinSealKeyBytes)
	}
	return key, nil
}

// loadOrNewSealKey reads the seal key, or makes a new one and returns the
// function that writes it (mode 0600) once the ledger accepted it.
func loadOrNewSealKey(path string) ([]byte, func() error, error) {
	key, err := readSealKey(path)
	var missing *SealKeyMissingError
	if !errors.As(err, &missing) {
		return key, nil, err
	}
	key = make([]byte, eventstore.MinSealKeyBytes)
	if _, err := rand.Read(key); err != nil {
		return nil, nil, err
	}
	return key, func() error { return writeKeyFile(path, key) }, nil
}

// writeKeyFile writes a new private key as hex digits, readable by its
// owner only; it never replaces a file.
func writeKeyFile(path string, key []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("key folder: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create key %s: %w", path, err)
	}
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("write key %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write key %s: %w", path, err)
	}
	return f.Close()
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
