package eventstore

import (
	"errors"
	"fmt"
	"time"

	"koers/domain"
)

// MaxBatchServer is the most messages the JetStream server accepts in one
// atomic batch (its default limit).
const MaxBatchServer = 1000

// MinSealKeyBytes is the size of a seal key: an Ed25519 seed.
const MinSealKeyBytes = 32

// Config configures a [Store]. Zero fields take the default in their doc.
type Config struct {
	// Stream is the JetStream stream name. Default "KOERS".
	Stream string
	// Prefix is the first subject token of every aggregate subject.
	// Default "koers"; the stream captures "<Prefix>.>".
	Prefix string
	// Replicas of the stream: 1 on one server, 3 on a cluster. Default 1.
	Replicas int
	// DuplicateWindow is how long the server remembers a decision id for
	// deduplication. Retries after it are still answered with the original
	// result by looking the decision up in the log. Default 2 minutes.
	DuplicateWindow time.Duration
	// MaxBatch is the most events one decision may append. Default and
	// maximum [MaxBatchServer].
	MaxBatch int
	// SealKey is the writer's Ed25519 private key that seals every
	// decision: its 32-byte seed ([MinSealKeyBytes]) or the 64-byte private
	// key. Empty: the store only reads and verifies (Append returns
	// [ErrReadOnly]); checking needs no secret, only the public keys the
	// log records. A writer's key must be the ledger's key in force.
	SealKey []byte
	// Timeout bounds every call whose context has no deadline. Default 5s.
	Timeout time.Duration
	// LoadBatch is how many messages one direct-get request returns when
	// loading an aggregate. Default 256.
	LoadBatch int
	// Inspect opens an existing stream whatever its settings, for
	// verification: a setting that weakens immutability does not fail
	// [Open] but stops the store's writes, and [Store.Verify] reports it.
	// Default false: [Open] refuses such a stream.
	Inspect bool
	// CacheSubjects is how many subject heads (last sequence and hash) the
	// store remembers between a load and an append. Default 65536.
	CacheSubjects int
	// GroupWait bounds how long group commit waits, after sending a batch
	// of several decisions, for more decisions to join the next batch
	// while fewer than GroupFill are queued (see group.go). A single
	// writer never waits. Default 2ms; negative: never wait.
	GroupWait time.Duration
	// GroupFill is how many queued decisions end GroupWait at once.
	// Default 64.
	GroupFill int
	// Existing makes [Open] open only a stream that exists: a missing one
	// is a [*StreamNotFoundError] and nothing is created, so that a query
	// pointed at the wrong server or name never leaves an empty ledger
	// behind. Default false: Open creates a missing stream.
	Existing bool
}

// WithDefaults returns a copy with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Stream == "" {
		c.Stream = "KOERS"
	}
	if c.Prefix == "" {
		c.Prefix = "koers"
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = 2 * time.Minute
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = MaxBatchServer
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	if c.LoadBatch == 0 {
		c.LoadBatch = 256
	}
	if c.CacheSubjects == 0 {
		c.CacheSubjects = 65536
	}
	if c.GroupWait == 0 {
		c.GroupWait = 2 * time.Millisecond
	}
	if c.GroupFill == 0 {
		c.GroupFill = 64
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if err := validToken("stream name", c.Stream, true); err != nil {
		errs = append(errs, err)
	}
	if err := validToken("subject prefix", c.Prefix, false); err != nil {
		errs = append(errs, err)
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("replicas %d: want 1 to 5", c.Replicas))
	}
	if c.DuplicateWindow < time.Second {
		errs = append(errs, fmt.Errorf("duplicate window %s: want at least 1s", c.DuplicateWindow))
	}
	if c.MaxBatch < 1 || c.MaxBatch > MaxBatchServer {
		errs = append(errs, fmt.Errorf("max batch %d: want 1 to %d", c.MaxBatch, MaxBatchServer))
	}
	if n := len(c.SealKey); n != 0 && n != MinSealKeyBytes && n != 64 {
		errs = append(errs, fmt.Errorf("seal key has %d bytes: want an Ed25519 seed of %d bytes or a 64-byte private key", n, MinSealKeyBytes))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout %s: want more than 0", c.Timeout))
	}
	if c.LoadBatch < 1 || c.LoadBatch > 10000 {
		errs = append(errs, fmt.Errorf("load batch %d: want 1 to 10000", c.LoadBatch))
	}
	if c.CacheSubjects < 1 {
		errs = append(errs, fmt.Errorf("cache subjects %d: want at least 1", c.CacheSubjects))
	}
	if c.GroupWait > 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("group wait %s: want at most 100ms", c.GroupWait))
	}
	if c.GroupFill < 1 || c.GroupFill > maxQueued {
		errs = append(errs, fmt.Errorf("group fill %d: want 1 to %d", c.GroupFill, maxQueued))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("eventstore config: %w", err)
	}
	return nil
}

// validToken checks a stream name or subject token: no wildcards,
// separators or white space that would change what a subject matches.
func validToken(what, s string, allowUpper bool) error {
	if s == "" || len(s) > 64 {
		return fmt.Errorf("%s %q: want 1 to 64 characters", what, s)
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' ||
			allowUpper && r >= 'A' && r <= 'Z'
		if !ok {
			return fmt.Errorf("%s %q: character %q not allowed", what, s, r)
		}
	}
	return nil
}

// Subject returns the subject of an aggregate, after checking that its kind
// and id are valid subject tokens.
func (s *Store) Subject(ref domain.Ref) (string, error) {
	return subjectFor(s.cfg.Prefix, ref)
}

func subjectFor(prefix string, ref domain.Ref) (string, error) {
	if err := validToken("aggregate kind", string(ref.Kind), false); err != nil {
		return "", err
	}
	if err := validToken(string(ref.Kind)+" id", ref.ID, false); err != nil {
		return "", err
	}
	return prefix + "." + string(ref.Kind) + "." + ref.ID, nil
}
