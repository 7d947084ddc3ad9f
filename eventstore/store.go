package eventstore

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Store is one ledger's log on a JetStream stream. It is safe for concurrent
// use.
type Store struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	cfg    Config
	priv   ed25519.PrivateKey // nil: read-only
	keys   *keyring
	cache  *headCache
	group  *grouper
	watch  watchState
}

// Open checks the ledger's stream, or creates it unless cfg.Existing says
// not to (only `koers init` and the demo create: a missing stream is
// otherwise a [*StreamNotFoundError]), and returns a Store on it. An
// existing stream with a setting that would weaken
// immutability (or lacks one Koers needs) is a [*StreamSettingError]; Open
// never changes an existing stream.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Store, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := withTimeout(ctx, cfg.Timeout)
	defer cancel()

	want := cfg.want()
	stream, err := js.Stream(ctx, cfg.Stream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound) && cfg.Existing:
		return nil, &StreamNotFoundError{Stream: cfg.Stream}
	case errors.Is(err, jetstream.ErrStreamNotFound):
		stream, err = js.CreateStream(ctx, want)
		if err != nil {
			return nil, serverError("create stream "+cfg.Stream, err)
		}
		// A server older than 2.12 creates the stream without the settings
		// it does not know (atomic batches among them) and says nothing:
		// what it answers is checked like an existing stream, and a stream
		// that cannot hold a ledger is not left behind.
		if err := checkStream(stream.CachedInfo().Config, want); err != nil {
			_ = js.DeleteStream(ctx, cfg.Stream)
			return nil, fmt.Errorf("the NATS server (version %s) cannot hold a Koers ledger, it needs 2.12 or later: %w",
				js.Conn().ConnectedServerVersion(), err)
		}
	case err != nil:
		return nil, serverError("open stream "+cfg.Stream, err)
	default:
		if err := checkStream(stream.CachedInfo().Config, want); err != nil && !cfg.Inspect {
			return nil, err
		}
	}
	var priv ed25519.PrivateKey
	if len(cfg.SealKey) > 0 {
		if priv, err = ParseSealKey(cfg.SealKey); err != nil {
			return nil, fmt.Errorf("eventstore config: %w", err)
		}
	}
	st := &Store{js: js, stream: stream, cfg: cfg, priv: priv, keys: newKeyring(priv), cache: newHeadCache(cfg.CacheSubjects), group: newGrouper()}
	if err := st.checkLegacy(ctx); err != nil {
		return nil, err
	}
	if err := st.refreshKeys(ctx); err != nil {
		return nil, err
	}
	if priv != nil {
		if err := st.checkWriter(ctx); err != nil {
			return nil, err
		}
	}
	// A stream that lost messages (trimmed, a store file cut) opens for
	// reading and verifying, but not for writing: see [Store.Check].
	problems := st.stateProblems(stream.CachedInfo().State, 0)
	if err := checkStream(stream.CachedInfo().Config, want); err != nil {
		for _, e := range unjoin(err) {
			problems = append(problems, "setting weakened: "+e.Error())
		}
	}
	if len(problems) > 0 {
		st.halt(problems)
	}
	return st, nil
}

// want is the stream a ledger needs.
func (s *Store) want() jetstream.StreamConfig { return s.cfg.want() }

func (cfg Config) want() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:               cfg.Stream,
		Description:        "Koers ledger: immutable decisions and their events",
		Subjects:           []string{cfg.Prefix + ".>"},
		Retention:          jetstream.LimitsPolicy,
		MaxMsgs:            -1,
		MaxBytes:           -1,
		MaxAge:             0,
		MaxMsgsPerSubject:  -1,
		Storage:            jetstream.FileStorage,
		Replicas:           cfg.Replicas,
		Duplicates:         cfg.DuplicateWindow,
		DenyDelete:         true,
		DenyPurge:          true,
		AllowRollup:        false,
		AllowDirect:        true,
		AllowAtomicPublish: true,
		Discard:            jetstream.DiscardNew,
	}
}

// Exists reports whether the server has a stream of that name, creating
// nothing.
func Exists(ctx context.Context, js jetstream.JetStream, stream string) (bool, error) {
	ctx, cancel := withTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := js.Stream(ctx, stream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return false, nil
	case err != nil:
		return false, serverError("stream "+stream, err)
	}
	return true, nil
}

// checkStream compares an existing stream's settings with what the ledger
// needs. Every difference that matters is reported, never fixed.
func checkStream(have, want jetstream.StreamConfig) error {
	var errs []error
	bad := func(setting, h, w string) {
		errs = append(errs, &StreamSettingError{Stream: have.Name, Setting: setting, Have: h, Want: w})
	}
	boolStr := strconv.FormatBool
	if have.Storage != jetstream.FileStorage {
		bad("storage", have.Storage.String(), "file")
	}
	if !slices.Contains(have.Subjects, want.Subjects[0]) {
		bad("subjects", fmt.Sprint(have.Subjects), fmt.Sprintf("to include %s", want.Subjects[0]))
	}
	if have.Retention != jetstream.LimitsPolicy {
		bad("retention", have.Retention.String(), "limits (other policies remove messages)")
	}
	if !have.DenyDelete {
		bad("deny_delete", boolStr(have.DenyDelete), "true")
	}
	if !have.DenyPurge {
		bad("deny_purge", boolStr(have.DenyPurge), "true")
	}
	if have.AllowRollup {
		bad("allow_rollup_hdrs", "true", "false (a rollup purges a subject)")
	}
	if have.AllowMsgTTL {
		bad("allow_msg_ttl", "true", "false (a message TTL deletes history)")
	}
	if have.MaxAge != 0 {
		bad("max_age", have.MaxAge.String(), "0 (unlimited)")
	}
	if have.MaxMsgs > 0 {
		bad("max_msgs", strconv.FormatInt(have.MaxMsgs, 10), "-1 (unlimited)")
	}
	if have.MaxBytes > 0 {
		bad("max_bytes", strconv.FormatInt(have.MaxBytes, 10), "-1 (unlimited)")
	}
	if have.MaxMsgsPerSubject > 0 {
		bad("max_msgs_per_subject", strconv.FormatInt(have.MaxMsgsPerSubject, 10), "-1 (unlimited)")
	}
	if have.PersistMode != jetstream.DefaultPersistMode {
		bad("persist_mode", have.PersistMode.String(), "default (acknowledged writes are flushed)")
	}
	if have.Mirror != nil {
		bad("mirror", have.Mirror.Name, "none (a mirror cannot be appended to)")
	}
	if have.Sealed {
		bad("sealed", "true", "false")
	}
	if !have.AllowDirect {
		bad("allow_direct", "false", "true")
	}
	if !have.AllowAtomicPublish {
		bad("allow_atomic", "false", "true")
	}
	if have.Duplicates <= 0 {
		bad("duplicate_window", have.Duplicates.String(), "more than 0")
	}
	return errors.Join(errs...)
}

// Config returns the store's configuration with defaults applied.
func (s *Store) Config() Config { c := s.cfg; c.SealKey = nil; return c }

// LastSequence returns the sequence of the last message in the stream (0 when
// empty).
func (s *Store) LastSequence(ctx context.Context) (uint64, error) {
	// The caller's ctx, not the default timeout's, tells whether the caller
	// gave up or the server did not answer.
	cctx, cancel := withTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	info, err := s.stream.Info(cctx)
	if err != nil {
		return 0, logError(ctx, "stream "+s.cfg.Stream+" last sequence", err)
	}
	return info.State.LastSeq, nil
}

// Replicas returns the stream's replicas as the server has them.
func (s *Store) Replicas(ctx context.Context) (int, error) {
	ctx, cancel := withTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	info, err := s.stream.Info(ctx)
	if err != nil {
		return 0, serverError("stream "+s.cfg.Stream+" info", err)
	}
	return info.Config.Replicas, nil
}

// withTimeout applies d only when ctx has no deadline of its own.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}
