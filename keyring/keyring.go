// Package keyring keeps the data keys that seal people's names in the log
// (see domain/personal.go): one AES-256-GCM key per person, in a NATS KV
// bucket beside the ledger's stream, each wrapped by the ledger's names
// key (a file in the data folder, kept like the seal key). Erasing a
// person destroys their data key; the log is never touched.
//
// Why a KV bucket and not a PostgreSQL table: `serve` keeps accepting
// decisions while PostgreSQL is down, and a person who joins then needs a
// key; the bucket lives on the same servers as the stream (same replicas,
// file storage) and, unlike the ledger's stream, allows deletion. History
// is 1: an older value of a key is never kept.
package keyring

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"koers/domain"
)

// KeyBytes is the size of a data key and of the names key: AES-256.
const KeyBytes = 32

const (
	nonceBytes = 12
	// erasedValue replaces a destroyed data key: the bucket remembers that
	// the person was erased, so that a restore never brings the key back.
	erasedValue = "erased"
	// wrappedPrefix starts a wrapped data key: "k1:" and hex of nonce and
	// ciphertext.
	wrappedPrefix = "k1:"
	boxTag        = "koers-name-box-v1"
	wrapTag       = "koers-data-key-v1"
	saltTag       = "koers-name-salt-v1"
)

// Config configures a [Keyring]. Zero fields take the default in their doc.
type Config struct {
	// Ledger is the ledger's stream name, bound into every box and wrapped
	// key so that neither can be moved to another ledger. Required.
	Ledger string
	// Bucket is the KV bucket. Default "<Ledger>_KEYS".
	Bucket string
	// Replicas of the bucket: the stream's. Default 1.
	Replicas int
	// NamesKey is the ledger's names key that wraps every data key
	// ([KeyBytes] bytes). Required.
	NamesKey []byte
	// CacheKeys bounds the unwrapped data keys kept in memory. Default 10000.
	CacheKeys int
	// Timeout bounds every call whose context has no deadline. Default 5s.
	Timeout time.Duration
	// Existing opens only a bucket that exists (a reader never creates
	// one). Default false: a missing bucket is created.
	Existing bool
}

func (c Config) withDefaults() Config {
	if c.Bucket == "" {
		c.Bucket = c.Ledger + "_KEYS"
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.CacheKeys == 0 {
		c.CacheKeys = 10000
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Ledger == "":
		return errors.New("keyring: ledger is required")
	case len(c.NamesKey) != KeyBytes:
		return fmt.Errorf("keyring: names key is %d bytes, want %d", len(c.NamesKey), KeyBytes)
	case c.Replicas < 1 || c.Replicas > 5:
		return fmt.Errorf("keyring: replicas %d: want 1 to 5", c.Replicas)
	case c.CacheKeys < 1 || c.CacheKeys > 10_000_000:
		return fmt.Errorf("keyring: cache keys %d: want 1 to 10000000", c.CacheKeys)
	}
	return nil
}

// Keyring seals and opens people's names. It is safe for concurrent use.
type Keyring struct {
	cfg    Config
	kv     jetstream.KeyValue
	stream jetstream.Stream // the bucket's stream, for secure deletion
	wrap   cipher.AEAD
	// Erased, when set, tells whether the log records the person's
	// erasure; it is asked when a person's key is missing, so that a key
	// lost with the bucket is told from one destroyed by erasure.
	Erased func(ctx context.Context, person string) (bool, error)

	mu    sync.Mutex
	cache map[string][]byte
	// warmed: the bucket was read into the cache once (see warm).
	warmed bool
}

// Open opens (or creates) the key bucket.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Keyring, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := withTimeout(ctx, cfg.Timeout)
	defer cancel()
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	switch {
	case errors.Is(err, jetstream.ErrBucketNotFound) && cfg.Existing:
		return nil, &MissingBucketError{Bucket: cfg.Bucket}
	case errors.Is(err, jetstream.ErrBucketNotFound):
		// The bucket's stream is made here with the KV conventions, but
		// without DenyDelete (which CreateKeyValue sets): erasure deletes a
		// key's message securely, overwriting its bytes on disk.
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name: "KV_" + cfg.Bucket, Subjects: []string{"$KV." + cfg.Bucket + ".>"},
			Description:       "Koers: data keys of people's names in ledger " + cfg.Ledger,
			MaxMsgsPerSubject: 1, MaxMsgs: -1, MaxBytes: -1, MaxMsgSize: -1, MaxConsumers: -1,
			Discard: jetstream.DiscardNew, AllowRollup: true, AllowDirect: true,
			Storage: jetstream.FileStorage, Replicas: cfg.Replicas, Duplicates: 2 * time.Minute,
		})
		if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil, fmt.Errorf("key bucket %s: %w", cfg.Bucket, err)
		}
		kv, err = js.KeyValue(ctx, cfg.Bucket)
	}
	if err != nil {
		return nil, fmt.Errorf("key bucket %s: %w", cfg.Bucket, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("key bucket %s: %w", cfg.Bucket, err)
	}
	if st.History() != 1 {
		return nil, fmt.Errorf("key bucket %s keeps %d values per key: a destroyed key would survive as history; want 1", cfg.Bucket, st.History())
	}
	stream, err := js.Stream(ctx, "KV_"+cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("key bucket %s: %w", cfg.Bucket, err)
	}
	if stream.CachedInfo().Config.DenyDelete {
		return nil, fmt.Errorf("key bucket %s denies deleting messages: an erased key could not be overwritten on disk; move its keys to a bucket Koers creates (koers keys backup, delete the bucket, koers keys restore)", cfg.Bucket)
	}
	block, err := aes.NewCipher(cfg.NamesKey)
	if err != nil {
		return nil, err
	}
	wrap, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Keyring{cfg: cfg, kv: kv, stream: stream, wrap: wrap, cache: make(map[string][]byte)}, nil
}

// Bucket is the key bucket's name.
func (k *Keyring) Bucket() string { return k.cfg.Bucket }

// Empty reports whether the bucket holds no key at all.
func (k *Keyring) Empty(ctx context.Context) (bool, error) {
	ctx, cancel := withTimeout(ctx, k.cfg.Timeout)
	defer cancel()
	info, err := k.stream.Info(ctx)
	if err != nil {
		return false, fmt.Errorf("key bucket %s: %w", k.cfg.Bucket, err)
	}
	return info.State.Msgs == 0, nil
}

// ErasedError is a name asked of a person who was erased: sealing one is
// refused.
type ErasedError struct{ Person string }

func (e *ErasedError) Error() string {
	return fmt.Sprintf("person %s was erased: no name of theirs can be recorded again", e.Person)
}

func (e *ErasedError) Unwrap() []error { return []error{domain.ErrRefused, domain.ErrErased} }

// MissingKeyError is a sealed name of a person who was not erased, whose
// data key is not in the bucket: the bucket was lost or restored from an
// older backup. It never becomes garbage or an "erased" label.
type MissingKeyError struct {
	Person string
	Bucket string
}

func (e *MissingKeyError) Error() string {
	return fmt.Sprintf("the data key of person %s is missing from key bucket %s, and the log records no erasure of them: restore the bucket from a key backup (koers keys restore FILE)",
		e.Person, e.Bucket)
}

func (e *MissingKeyError) Unwrap() error { return domain.ErrNotFound }

// MissingBucketError is a key bucket that does not exist where a reader
// expected one.
type MissingBucketError struct{ Bucket string }

func (e *MissingBucketError) Error() string {
	return fmt.Sprintf("key bucket %s does not exist: restore it from a key backup (koers keys restore FILE)", e.Bucket)
}

func (e *MissingBucketError) Unwrap() error { return domain.ErrNotFound }

// WrongKeyError is a data key that does not unwrap with the names key in
// hand: another ledger's, or another names key file.
type WrongKeyError struct {
	Person string
	Bucket string
}

func (e *WrongKeyError) Error() string {
	return fmt.Sprintf("the data key of person %s in key bucket %s does not open with this names key: is the names key file the one of this ledger?", e.Person, e.Bucket)
}

// BrokenNameError is a sealed name whose box does not open with its
// person's key, or opens to a name that does not match its commitment.
type BrokenNameError struct {
	Person string
	Why    string
}

func (e *BrokenNameError) Error() string {
	return fmt.Sprintf("sealed name of person %s: %s", e.Person, e.Why)
}

func (e *BrokenNameError) Unwrap() error { return domain.ErrInvalid }

// Seal returns the sealed form of one person's name in decision decisionID.
// The salt is the signer's when given (a signature covers the commitment
// it makes); otherwise it is derived from the person's data key and the
// decision id, so that the same decision submitted again seals to the same
// commitment and is recognised as a retry.
func (k *Keyring) Seal(ctx context.Context, decisionID string, p domain.PersonalName) (string, error) {
	if domain.IsSealedName(p.Name) {
		return "", fmt.Errorf("name of person %s: %w", p.Person, domain.ErrPlainSealed)
	}
	key, err := k.dataKey(ctx, p.Person, true)
	if err != nil {
		return "", err
	}
	var salt []byte
	if p.Salt != "" {
		if salt, err = domain.ParseSalt(p.Salt); err != nil {
			return "", &domain.FieldError{Field: "name_salt", Err: err}
		}
	} else {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(saltTag))
		m.Write([]byte(decisionID))
		salt = m.Sum(nil)
	}
	commit := domain.NameCommitment(salt, p.Name)
	aead, err := gcm(key)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, nonceBytes, nonceBytes+domain.SaltBytes+len(p.Name)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	plain := append(append([]byte(nil), salt...), p.Name...)
	box := aead.Seal(nonce, nonce, plain, k.boxAAD(p.Person, commit))
	return domain.SealedName{Commitment: commit, Box: box}.String(), nil
}

// Open returns the plain name of a sealed name, and [domain.ErasedLabel]
// for an erased person's. A plain name (written before names were sealed)
// is returned as it is unless the person was erased since: the bucket's
// marker says so (one request per such name: logs of plain names pay it).
func (k *Keyring) Open(ctx context.Context, person, name string) (string, error) {
	if !domain.IsSealedName(name) {
		erased, _, err := k.state(ctx, person)
		if err != nil {
			return "", err
		}
		if erased {
			return domain.ErasedLabel(person), nil
		}
		return name, nil
	}
	s, err := domain.ParseSealedName(name)
	if err != nil {
		return "", &BrokenNameError{Person: person, Why: err.Error()}
	}
	key, err := k.dataKey(ctx, person, false)
	var erased *ErasedError
	if errors.As(err, &erased) {
		return domain.ErasedLabel(person), nil
	}
	if err != nil {
		return "", err
	}
	aead, err := gcm(key)
	if err != nil {
		return "", err
	}
	if len(s.Box) < nonceBytes+aead.Overhead()+domain.SaltBytes {
		return "", &BrokenNameError{Person: person, Why: "box too short"}
	}
	plain, err := aead.Open(nil, s.Box[:nonceBytes], s.Box[nonceBytes:], k.boxAAD(person, s.Commitment))
	if err != nil {
		return "", &BrokenNameError{Person: person, Why: "does not open with the person's data key (sealed for another person or ledger, or altered)"}
	}
	salt, plainName := plain[:domain.SaltBytes], string(plain[domain.SaltBytes:])
	c := domain.NameCommitment(salt, plainName)
	if subtle.ConstantTimeCompare(c[:], s.Commitment[:]) != 1 {
		return "", &BrokenNameError{Person: person, Why: "the name does not match its commitment"}
	}
	return plainName, nil
}

// Erase destroys the person's data key: the bucket's message that held it
// is securely deleted (its bytes overwritten on the server's disk) and an
// "erased" marker takes its place. Erasing again, or a person who never
// had a key, is not an error.
func (k *Keyring) Erase(ctx context.Context, person string) error {
	ctx, cancel := withTimeout(ctx, k.cfg.Timeout)
	defer cancel()
	k.mu.Lock()
	delete(k.cache, person)
	k.mu.Unlock()
	e, err := k.kv.Get(ctx, person)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return fmt.Errorf("erase key of %s: %w", person, err)
	case string(e.Value()) == erasedValue:
		return nil
	default:
		if err := k.stream.SecureDeleteMsg(ctx, e.Revision()); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("erase key of %s: %w", person, err)
		}
	}
	if _, err := k.kv.Put(ctx, person, []byte(erasedValue)); err != nil {
		return fmt.Errorf("erase key of %s: %w", person, err)
	}
	return nil
}

// dataKey returns the person's data key, creating it when create is set.
func (k *Keyring) dataKey(ctx context.Context, person string, create bool) ([]byte, error) {
	k.mu.Lock()
	key, ok := k.cache[person]
	k.mu.Unlock()
	if ok {
		return key, nil
	}
	ctx, cancel := withTimeout(ctx, k.cfg.Timeout)
	defer cancel()
	if !create {
		// A reader (the projector, a feed) opens the names of many people
		// in a row: one streamed read of the whole bucket instead of a
		// round trip per person (on this loaded machine the bench could
		// not tell the two apart in a rebuild of 100,000 events; a remote
		// cluster's round trips would).
		if err := k.warm(ctx); err != nil {
			return nil, err
		}
		k.mu.Lock()
		key, ok = k.cache[person]
		k.mu.Unlock()
		if ok {
			return key, nil
		}
	}
	// Two rounds at most: a rival may create the key between our get and
	// our create.
	for round := 0; round < 2; round++ {
		e, err := k.kv.Get(ctx, person)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			if !create {
				return nil, k.missing(ctx, person)
			}
			key = make([]byte, KeyBytes)
			if _, err := rand.Read(key); err != nil {
				return nil, err
			}
			_, err = k.kv.Create(ctx, person, k.wrapKey(person, key))
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("create key of %s in %s: %w", person, k.cfg.Bucket, err)
			}
			k.remember(person, key)
			return key, nil
		}
		if err != nil {
			return nil, fmt.Errorf("key of %s in %s: %w", person, k.cfg.Bucket, err)
		}
		if string(e.Value()) == erasedValue {
			return nil, &ErasedError{Person: person}
		}
		key, err = k.unwrapKey(person, e.Value())
		if err != nil {
			return nil, err
		}
		k.remember(person, key)
		return key, nil
	}
	return nil, fmt.Errorf("key of %s in %s: created and removed again while reading", person, k.cfg.Bucket)
}

// warm reads the bucket's keys into the cache, once per keyring and up to
// CacheKeys of them, in one ordered read of its stream.
func (k *Keyring) warm(ctx context.Context) error {
	k.mu.Lock()
	done := k.warmed
	k.warmed = true
	k.mu.Unlock()
	if done {
		return nil
	}
	w, err := k.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("read key bucket %s: %w", k.cfg.Bucket, err)
	}
	defer w.Stop()
	for n := 0; n < k.cfg.CacheKeys; n++ {
		var e jetstream.KeyValueEntry
		select {
		case e = <-w.Updates():
		case <-ctx.Done():
			return fmt.Errorf("read key bucket %s: %w", k.cfg.Bucket, ctx.Err())
		}
		if e == nil {
			return nil // the initial values are all read
		}
		if string(e.Value()) == erasedValue {
			continue
		}
		key, err := k.unwrapKey(e.Key(), e.Value())
		if err != nil {
			return err
		}
		k.remember(e.Key(), key)
	}
	return nil
}

// missing tells an erasure whose marker is gone (the bucket was lost) from
// a lost key.
func (k *Keyring) missing(ctx context.Context, person string) error {
	if k.Erased != nil {
		erased, err := k.Erased(ctx, person)
		if err != nil {
			return fmt.Errorf("is %s erased: %w", person, err)
		}
		if erased {
			return &ErasedError{Person: person}
		}
	}
	return &MissingKeyError{Person: person, Bucket: k.cfg.Bucket}
}

func (k *Keyring) remember(person string, key []byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.cache) >= k.cfg.CacheKeys {
		for p := range k.cache { // any one: the map's order is random
			delete(k.cache, p)
			break
		}
	}
	k.cache[person] = key
}

func (k *Keyring) wrapAAD(person string) []byte {
	return []byte(wrapTag + "\x00" + k.cfg.Ledger + "\x00" + person)
}

func (k *Keyring) boxAAD(person string, commit [sha256.Size]byte) []byte {
	var b bytes.Buffer
	b.WriteString(boxTag + "\x00" + k.cfg.Ledger + "\x00" + person + "\x00")
	b.Write(commit[:])
	return b.Bytes()
}

func (k *Keyring) wrapKey(person string, key []byte) []byte {
	nonce := make([]byte, nonceBytes)
	if _, err := rand.Read(nonce); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // the runtime guarantees it never fails
	}
	ct := k.wrap.Seal(nonce, nonce, key, k.wrapAAD(person))
	return []byte(wrappedPrefix + hex.EncodeToString(ct))
}

func (k *Keyring) unwrapKey(person string, v []byte) ([]byte, error) {
	h, ok := strings.CutPrefix(string(v), wrappedPrefix)
	b, err := hex.DecodeString(h)
	if !ok || err != nil || len(b) < nonceBytes+k.wrap.Overhead() {
		return nil, fmt.Errorf("key of %s in %s is not a wrapped data key", person, k.cfg.Bucket)
	}
	key, err := k.wrap.Open(nil, b[:nonceBytes], b[nonceBytes:], k.wrapAAD(person))
	if err != nil || len(key) != KeyBytes {
		return nil, &WrongKeyError{Person: person, Bucket: k.cfg.Bucket}
	}
	return key, nil
}

func gcm(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}
