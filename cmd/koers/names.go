package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"koers/domain"
	"koers/eventstore"
	"koers/internal/secretfile"
	"koers/keyring"
)

// namesKeeper is what commands need of the keeper of people's names.
type namesKeeper interface {
	Open(ctx context.Context, person, name string) (string, error)
	Erase(ctx context.Context, person string) error
}

// noNames stands in for the keyring of a reader without the names key:
// plain names (written before names were sealed) pass, a sealed name is
// an error saying which key is missing.
type noNames struct{ err error }

func (n *noNames) Open(_ context.Context, person, name string) (string, error) {
	if !domain.IsSealedName(name) {
		return name, nil
	}
	return "", fmt.Errorf("name of %s is sealed: %w", person, n.err)
}

func (n *noNames) Erase(_ context.Context, person string) error {
	return fmt.Errorf("erase key of %s: %w", person, n.err)
}

// NamesKeyMissingError is a names key file that is missing while the key
// bucket holds keys it wrapped: a new key would not open them.
type NamesKeyMissingError struct {
	Path   string
	Bucket string
}

func (e *NamesKeyMissingError) Error() string {
	return fmt.Sprintf("names key file %s is missing, and key bucket %s holds people's data keys wrapped by it: restore it from your backup or point --names-key-file (KOERS_NAMES_KEY_FILE) at it; verify needs no key",
		e.Path, e.Bucket)
}

func (e *NamesKeyMissingError) Unwrap() error { return fs.ErrNotExist }

// readNamesKey reads the names key: 32 bytes as 64 hex digits, in a file
// nobody but its owner may read.
func readNamesKey(path string) ([]byte, error) {
	b, err := secretfile.Read(path, "names key")
	if err != nil {
		return nil, err
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != keyring.KeyBytes {
		return nil, fmt.Errorf("names key %s: want %d hex digits", path, 2*keyring.KeyBytes)
	}
	return key, nil
}

// openNames opens the key bucket of the ledger with the names key. The
// names key is made (0600, next to the seal key) only while the bucket
// holds no key: then nothing was wrapped by another one. A reader without
// the key gets a *noNames.
func openNames(ctx context.Context, js jetstream.JetStream, s settings, st *eventstore.Store) (namesKeeper, error) {
	path := s.namesKeyPath()
	key, err := readNamesKey(path)
	missing := errors.Is(err, fs.ErrNotExist)
	bucket := s.ledger + "_KEYS"
	switch {
	case err != nil && !missing && s.keys != keyRead:
		return nil, err
	case missing && s.keys == keyRead:
		return &noNames{err: fmt.Errorf("names key file %s is missing (--names-key-file, KOERS_NAMES_KEY_FILE): reading people's names needs it", path)}, nil
	case err != nil && s.keys == keyRead:
		// verify and other readers that open no name need no key: an
		// unfit one is reported only where a name is opened.
		return &noNames{err: err}, nil
	}
	var write func() error
	if missing {
		key = make([]byte, keyring.KeyBytes)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		write = func() error { return writeKeyFile(path, key) }
	}
	k, err := keyring.Open(ctx, js, keyring.Config{Ledger: s.ledger, Bucket: bucket, Replicas: s.replicas, NamesKey: key})
	if err != nil {
		return nil, err
	}
	k.Erased = func(ctx context.Context, person string) (bool, error) { return erasedInLog(ctx, st, person) }
	if write != nil {
		empty, err := k.Empty(ctx)
		if err != nil {
			return nil, err
		}
		if !empty {
			return nil, &NamesKeyMissingError{Path: path, Bucket: bucket}
		}
		if err := write(); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// erasedInLog tells whether the log records person's erasure.
func erasedInLog(ctx context.Context, st *eventstore.Store, person string) (bool, error) {
	h, err := st.Load(ctx, domain.Ref{Kind: domain.KindPerson, ID: person})
	if err != nil {
		return false, err
	}
	for _, e := range h.Events {
		if e.Type == domain.EventPersonErased {
			return true, nil
		}
	}
	return false, nil
}
