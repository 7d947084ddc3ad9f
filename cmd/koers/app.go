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
	"koers/keyring"
	"koers/ledger"
	"koers/projections"
)

// settings are the global flags, after environment defaults.
type settings struct {
	natsURL string // "" = embedded
	dataDir string
	ledger  string
	keyFile string // "" = <data>/seal.key
	// namesKeyFile "" = <data>/names.key
	namesKeyFile string
	timezone     string
	replicas     int
	// databaseURL of the read models; "" = libpq conventions, database koers.
	databaseURL string
	// inspect opens a stream with weakened settings (for verify, which
	// reports them); every other command refuses it.
	inspect bool
	// stderr receives notices, such as a private PostgreSQL started.
	stderr io.Writer
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
	// keyCreate: init and demo (createApp), which create the key when it is
	// missing.
	keyCreate
)

// reading returns s for a command that only reads.
func (s *settings) reading() *settings { r := *s; r.keys = keyRead; return &r }

// sealKeyFile is the seal key's path.
func (s settings) sealKeyFile() string {
	if s.keyFile != "" {
		return s.keyFile
	}
	return filepath.Join(s.dataDir, "seal.key")
}

// namesKeyPath is the names key's path.
func (s settings) namesKeyPath() string {
	if s.namesKeyFile != "" {
		return s.namesKeyFile
	}
	return filepath.Join(s.dataDir, "names.key")
}

// app is one opened ledger: the NATS connection (and embedded server), the
// store and the command handler.
type app struct {
	settings settings
	keyFile  string          // the seal key's file
	keyPrint string          // its fingerprint: the key id of its public key (see sealKeyPrint)
	dbURL    string          // resolved database URL, once asked for
	db       *projections.DB // the read models, once opened
	local    *eventstore.Local
	nc       *nats.Conn
	store    *eventstore.Store
	handler  *ledger.Handler
	// names seals and opens people's names: a *keyring.Keyring, or, for a
	// reader without the names key, *noNames.
	names namesKeeper
}

// openApp opens an existing ledger, for writing (s.keys keyWrite: the seal
// key file must be there) or for reading (s.reading(): no key is read).
// Where no ledger is, it refuses with a *noLedgerError and creates nothing
// (no data folder, seal key or stream).
func openApp(ctx context.Context, s settings) (*app, error) { return open(ctx, s, false) }

// createApp opens the ledger, creating the data folder, the seal key and the
// stream when they are missing (keyCreate): init and demo only. A new key
// is written only once the ledger accepted it.
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
	// Only a command that may create the ledger may create its key; any
	// other that asked for keyCreate is a writer.
	switch {
	case create:
		s.keys = keyCreate
	case s.keys == keyCreate:
		s.keys = keyWrite
	}
	loc, err := time.LoadLocation(s.timezone)
	if err != nil {
		return nil, fmt.Errorf("time zone %q: %w", s.timezone, err)
	}
	// Where no ledger is, that is said first: a wrong folder is "no ledger
	// here", never "seal key missing".
	if create {
		if err := os.MkdirAll(s.dataDir, 0o750); err != nil {
			return nil, fmt.Errorf("data folder %s: %w", s.dataDir, err)
		}
	} else {
		if _, err := os.Stat(s.dataDir); errors.Is(err, fs.ErrNotExist) {
			return nil, &noLedgerError{s: s, why: "the folder does not exist"}
		}
	}
	keyFile := s.sealKeyFile()
	// A writer's key that is there but unfit (readable by others, not an
	// Ed25519 seed) is reported before a missing NATS store: it is what to
	// fix whatever else is missing. Readers read no key at all.
	var key []byte
	var writeKey func() error
	var missingKey *SealKeyMissingError
	switch s.keys {
	case keyWrite:
		key, err = readSealKey(keyFile)
		if err != nil && !errors.As(err, &missingKey) {
			return nil, err
		}
	case keyCreate:
		if key, writeKey, err = loadOrNewSealKey(keyFile); err != nil {
			return nil, err
		}
	}
	if !create && s.natsURL == "" {
		if _, err := os.Stat(filepath.Join(s.dataDir, "nats")); errors.Is(err, fs.ErrNotExist) {
			return nil, &noLedgerError{s: s, why: "the folder holds no NATS store"}
		}
	}
	a := &app{settings: s, keyFile: keyFile}
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
	if missingKey != nil {
		// Which is missing, the ledger or only its key?
		exists, err := eventstore.Exists(ctx, js, s.ledger)
		a.Close()
		switch {
		case err != nil:
			return nil, err
		case !exists:
			return nil, &noLedgerError{s: s, why: "no stream " + s.ledger + " and no seal key"}
		}
		return nil, missingKey
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
	// A new key is kept only once the ledger accepted it as its writer's:
	// an existing ledger with another key leaves no stray key file behind.
	if writeKey != nil {
		if err := writeKey(); err != nil {
			a.Close()
			return nil, err
		}
	}
	a.keyPrint = sealKeyPrint(a.store)
	if a.names, err = openNames(ctx, js, s, a.store); err != nil {
		a.Close()
		return nil, err
	}
	var sealer ledger.Names
	if k, ok := a.names.(*keyring.Keyring); ok {
		sealer = k
	}
	a.handler, err = ledger.New(a.store, ledger.Options{Location: loc, Names: sealer})
	if err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// sealKeyPrint is the seal key's fingerprint for status: the id of the
// writer's public key; for a reader, which holds no key, the id of the
// ledger's key in force as the log records it, else that none is needed.
func sealKeyPrint(st *eventstore.Store) string {
	if pub := st.PublicKey(); pub != "" {
		if b, err := hex.DecodeString(pub); err == nil {
			return eventstore.KeyID(b)
		}
	}
	if keys := st.Keys(); len(keys) > 0 {
		return keys[len(keys)-1].ID
	}
	return "not needed to read"
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

func (e *SealKeyMissingError) Unwrap() error { return fs.ErrNotExist }

// readSealKey reads the ledger's seal key: the Ed25519 seed as 64 hex
// digits. A key file the group or others may read is refused with the
// chmod that fixes it.
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
