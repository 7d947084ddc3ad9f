// Package ledger is the command handler: it takes a decision, loads the
// aggregates it touches from the log, lets the domain decide, and appends the
// resulting events with the versions it read, re-reading and re-deciding a
// bounded number of times when another decision got there first. It speaks
// to the log in the domain's terms only ([Store]); cmd/koers wires in the
// event store.
package ledger

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"time"

	"koers/domain"
)

// Store is what the handler needs of the log.
type Store interface {
	Load(ctx context.Context, ref domain.Ref) (domain.History, error)
	LoadAfter(ctx context.Context, ref domain.Ref, c domain.Cursor) (domain.History, error)
	Append(ctx context.Context, meta domain.Meta, events []domain.Event, expected map[domain.Ref]uint64) (domain.AppendResult, error)
	Lookup(ctx context.Context, decisionID string) (domain.AppendResult, bool, error)
}

// Options configure a [Handler]. Zero fields take the default in their doc.
type Options struct {
	// Now is the clock: the effective time of decisions without one, and
	// the moment a decision is recorded, at which its authority is judged
	// (the mandates in force then, whatever the effective time). It should
	// agree with the log server's clock, which stamps the recorded time.
	// Default time.Now.
	Now func() time.Time
	// NewID makes ids for decisions without one. Default: "d-" and 16 random hex digits.
	NewID func() string
	// Location is the ledger's time zone for date-only effective times. Default UTC.
	Location *time.Location
	// MaxAttempts bounds how often one decision is re-read and re-decided
	// after a conflict. Default 10.
	MaxAttempts int
	// Backoff is the first pause after a conflict; each later pause doubles,
	// up to 64 times Backoff, with random jitter so that rivals spread out.
	// Default 1ms.
	Backoff time.Duration
	// MaxLoadRounds bounds how often Decide may ask for more aggregates in
	// one attempt. Default 8.
	MaxLoadRounds int
	// LoadConcurrency is how many aggregates are loaded at once. Default 8.
	LoadConcurrency int
	// CacheAggregates is how many folded aggregates the handler keeps, so
	// that loading one again reads only the events after it. Default 10000.
	CacheAggregates int
}

func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.NewID == nil {
		o.NewID = randomID
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 10
	}
	if o.Backoff == 0 {
		o.Backoff = time.Millisecond
	}
	if o.MaxLoadRounds == 0 {
		o.MaxLoadRounds = 8
	}
	if o.LoadConcurrency == 0 {
		o.LoadConcurrency = 8
	}
	if o.CacheAggregates == 0 {
		o.CacheAggregates = 10000
	}
	return o
}

func (o Options) validate() error {
	switch {
	case o.MaxAttempts < 1 || o.MaxAttempts > 100:
		return fmt.Errorf("ledger options: max attempts %d: want 1 to 100", o.MaxAttempts)
	case o.MaxLoadRounds < 1 || o.MaxLoadRounds > 100:
		return fmt.Errorf("ledger options: max load rounds %d: want 1 to 100", o.MaxLoadRounds)
	case o.Backoff < 0 || o.Backoff > time.Second:
		return fmt.Errorf("ledger options: backoff %s: want 0 to 1s", o.Backoff)
	case o.LoadConcurrency < 1 || o.LoadConcurrency > 64:
		return fmt.Errorf("ledger options: load concurrency %d: want 1 to 64", o.LoadConcurrency)
	case o.CacheAggregates < 1 || o.CacheAggregates > 10_000_000:
		return fmt.Errorf("ledger options: cache aggregates %d: want 1 to 10000000", o.CacheAggregates)
	}
	return nil
}

func randomID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // the runtime guarantees it never fails
	}
	return "d-" + hex.EncodeToString(b[:])
}

// Handler takes decisions. It is safe for concurrent use.
type Handler struct {
	store Store
	opts  Options
	cache *aggCache
}

// New returns a handler on store.
func New(store Store, opts Options) (*Handler, error) {
	if store == nil {
		return nil, errors.New("ledger: store is required")
	}
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	return &Handler{store: store, opts: opts, cache: newAggCache(opts.CacheAggregates)}, nil
}

// Result is where a decision landed.
type Result struct {
	DecisionID string   `json:"id"`
	Sequences  []uint64 `json:"sequences"`
	// Duplicate: the decision was recorded before; nothing new was written
	// and Sequences are those of the first time.
	Duplicate bool `json:"duplicate,omitempty"`
	// State is set when a proposal is involved: "pending" for a decision
	// under a board's mandate recorded as a proposal, or the proposal's
	// state after an action on it (decided, refused, rejected, withdrawn).
	State string `json:"state,omitempty"`
	// Proposal is the proposal the decision or action is about.
	Proposal *Proposal `json:"proposal,omitempty"`
}

// Decode parses a decision in its public JSON format with the handler's
// clock, id generator and time zone.
func (h *Handler) Decode(data []byte) (domain.Decision, error) {
	return domain.DecodeDecision(data, domain.DecodeOptions{Location: h.opts.Location, Now: h.opts.Now, NewID: h.opts.NewID})
}

// Submit decodes and handles one decision.
func (h *Handler) Submit(ctx context.Context, data []byte, opts ...HandleOption) (Result, error) {
	d, err := h.Decode(data)
	if err != nil {
		return Result{}, err
	}
	return h.Handle(ctx, d, opts...)
}

// HandleOption changes how one decision is handled.
type HandleOption func(*handleOpts)

type handleOpts struct {
	expect map[domain.Ref]uint64
	ttl    time.Duration
}

// Expires sets how long a decision under a board's mandate waits for its
// approvals when it becomes a proposal (0: domain.DefaultProposalTTL).
func Expires(ttl time.Duration) HandleOption {
	return func(o *handleOpts) { o.ttl = ttl }
}

// ExpectVersions makes the decision conditional: each named aggregate must
// still be at the given version (what the caller saw, e.g. an HTTP If-Match).
// If one moved on, the decision is refused with domain.ErrConflict at once
// rather than re-decided on the newer state, since the caller decided on
// what it saw.
func ExpectVersions(v map[domain.Ref]uint64) HandleOption {
	return func(o *handleOpts) { o.expect = v }
}

// VersionMismatchError says which aggregate moved on since the caller saw it.
type VersionMismatchError struct {
	Ref      domain.Ref
	Expected uint64
	Current  uint64
}

func (e *VersionMismatchError) Error() string {
	return fmt.Sprintf("%s is at version %d, the decision expected %d", e.Ref, e.Current, e.Expected)
}

func (e *VersionMismatchError) Unwrap() error { return domain.ErrConflict }

// Init starts a new ledger: the genesis decision grants the root mandate to
// rootActor, effective from effective on (zero: now). The root mandate is
// in force from the ledger's creation on, whatever that date: authority is
// judged when a decision is recorded, so the root holder may record
// decisions effective before it. On a ledger that was started already it
// returns the first result with Duplicate set.
func (h *Handler) Init(ctx context.Context, rootActor string, effective time.Time, opts ...InitOption) (Result, error) {
	if effective.IsZero() {
		effective = h.opts.Now()
	}
	var o domain.GenesisOptions
	for _, opt := range opts {
		opt(&o)
	}
	// The log's writer seals with its key: the genesis records its public
	// part, so that anyone can check the seals with the log alone.
	if ks, ok := h.store.(interface{ PublicKey() string }); ok && o.LedgerKey == "" {
		o.LedgerKey = ks.PublicKey()
	}
	d, events, err := domain.GenesisWith(rootActor, effective, o)
	if err != nil {
		return Result{}, err
	}
	if res, found, err := h.store.Lookup(ctx, d.ID); err != nil || found {
		if err != nil {
			return Result{}, err
		}
		// The same genesis is answered as a duplicate only for the same
		// root: asking for another root on an existing ledger is refused,
		// never silently ignored.
		root, err := h.loadOne(ctx, domain.Ref{Kind: domain.KindMandate, ID: domain.RootMandate})
		if err != nil {
			return Result{}, fmt.Errorf("init ledger: root mandate: %w", err)
		}
		if root.Mandate != nil && root.Mandate.Holder != rootActor {
			return Result{}, &LedgerExistsError{Holder: root.Mandate.Holder, Want: rootActor}
		}
		return toResult(res), nil
	}
	expected := make(map[domain.Ref]uint64, len(events))
	for _, e := range events {
		expected[e.Aggregate] = 0
	}
	res, err := h.store.Append(ctx, d.Meta(), events, expected)
	if err != nil {
		return Result{}, fmt.Errorf("init ledger: %w", err)
	}
	return toResult(res), nil
}

// InitOption changes what the genesis records.
type InitOption func(*domain.GenesisOptions)

// RootKey registers the root actor's public key (hex) in the genesis.
func RootKey(key string) InitOption {
	return func(o *domain.GenesisOptions) { o.RootKey = key }
}

// RequireSignatures makes the ledger refuse unsigned decisions from its
// start; it needs RootKey.
func RequireSignatures() InitOption {
	return func(o *domain.GenesisOptions) { o.RequireSignatures = true }
}

// LedgerExistsError is returned by [Handler.Init] when the ledger exists
// already with its root mandate held by another actor than the one asked
// for. It wraps domain.ErrRefused.
type LedgerExistsError struct {
	Holder string // who holds the root mandate
	Want   string // the root asked for
}

func (e *LedgerExistsError) Error() string {
	return fmt.Sprintf("the ledger exists already, its root mandate held by %s, not %s", e.Holder, e.Want)
}

func (e *LedgerExistsError) Unwrap() error { return domain.ErrRefused }

// Handle decides and appends one decision. A decision whose id was recorded
// before is answered with the first result (Duplicate set). A conflict is
// retried up to MaxAttempts times, each time on freshly loaded state; after
// that the error wraps domain.ErrConflict.
func (h *Handler) Handle(ctx context.Context, d domain.Decision, opts ...HandleOption) (Result, error) {
	var o handleOpts
	for _, opt := range opts {
		opt(&o)
	}
	var lastErr error
	for attempt := 0; attempt < h.opts.MaxAttempts; attempt++ {
		world, events, err := h.decide(ctx, d, o.expect)
		var dup *domain.DuplicateDecisionError
		var dupProposal *domain.DuplicateProposalError
		var needsApprovals *domain.ApprovalsNeededError
		switch {
		case errors.As(err, &dup):
			return h.earlier(ctx, d.ID)
		case errors.As(err, &dupProposal):
			return h.pendingAgain(ctx, d.ID)
		case errors.As(err, &needsApprovals):
			return h.propose(ctx, d, o)
		}
		if err != nil {
			return Result{}, err
		}
		if err := checkExpected(world, o.expect); err != nil {
			return Result{}, fmt.Errorf("decision %s: %w", d.ID, err)
		}
		expected := make(map[domain.Ref]uint64, len(events))
		for _, e := range events {
			expected[e.Aggregate] = world[e.Aggregate].Version
		}
		for ref, v := range o.expect {
			if _, touched := expected[ref]; touched {
				expected[ref] = v
			}
		}
		res, err := h.store.Append(ctx, d.Meta(), events, expected)
		if err == nil && res.Duplicate && attempt+1 < h.opts.MaxAttempts {
			// Another append of this id got there first (a retry, or a
			// rival with other content): decide again, so that its
			// content is compared with what was recorded.
			continue
		}
		if err == nil {
			return toResult(res), nil
		}
		if !errors.Is(err, domain.ErrConflict) {
			return Result{}, err
		}
		lastErr = err
		if err := h.pause(ctx, attempt); err != nil {
			return Result{}, err
		}
	}
	return Result{}, fmt.Errorf("decision %s: gave up after %d attempts: %w", d.ID, h.opts.MaxAttempts, lastErr)
}

// decide loads what the domain asks for and decides, in bounded rounds.
func (h *Handler) decide(ctx context.Context, d domain.Decision, expect map[domain.Ref]uint64) (domain.World, []domain.Event, error) {
	world := domain.World{}
	refs := domain.Plan(d)
	for ref := range expect {
		refs = append(refs, ref)
	}
	for round := 0; round < h.opts.MaxLoadRounds; round++ {
		if err := h.load(ctx, world, refs); err != nil {
			return nil, nil, err
		}
		// Read after loading, so that everything loaded was recorded
		// before the moment authority is judged at (a revocation recorded
		// meanwhile is then seen as in effect).
		now := h.opts.Now()
		events, err := domain.Decide(world, d, now)
		var need *domain.NeedError
		if !errors.As(err, &need) {
			return world, events, err
		}
		refs = need.Refs
	}
	return nil, nil, fmt.Errorf("decision %s: still needs more aggregates after %d rounds of loading", d.ID, h.opts.MaxLoadRounds)
}

// checkExpected compares what was loaded with the versions the caller saw.
func checkExpected(world domain.World, expect map[domain.Ref]uint64) error {
	for ref, v := range expect {
		if cur := world[ref].Version; cur != v {
			return &VersionMismatchError{Ref: ref, Expected: v, Current: cur}
		}
	}
	return nil
}

// load folds every ref not yet in world, a bounded number at a time.
func (h *Handler) load(ctx context.Context, world domain.World, refs []domain.Ref) error {
	var todo []domain.Ref
	for _, r := range refs {
		if _, ok := world[r]; !ok {
			todo = append(todo, r)
		}
	}
	aggs := make([]domain.Aggregate, len(todo))
	errs := make([]error, len(todo))
	sem := make(chan struct{}, h.opts.LoadConcurrency)
	var wg sync.WaitGroup
	for i, r := range todo {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			aggs[i], errs[i] = h.loadOne(ctx, r)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for i, r := range todo {
		world[r] = aggs[i]
	}
	return nil
}

// pause waits before the next attempt: exponential, capped, jittered.
func (h *Handler) pause(ctx context.Context, attempt int) error {
	d := h.opts.Backoff << min(attempt, 6)
	d = d/2 + time.Duration(mrand.Int64N(int64(d/2)+1))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// loadOne returns an aggregate folded up to the log's current version: from
// the cache plus the events after it, or from its whole history.
func (h *Handler) loadOne(ctx context.Context, r domain.Ref) (domain.Aggregate, error) {
	if c, ok := h.cache.get(r); ok {
		hist, err := h.store.LoadAfter(ctx, r, c.cursor)
		if err != nil {
			return domain.Aggregate{}, err
		}
		agg := c.agg
		for _, e := range hist.Events {
			// Evolve returns a new state: the cached one, which other
			// decisions may be reading, is never changed.
			if agg, err = domain.Evolve(agg, e); err != nil {
				return domain.Aggregate{}, fmt.Errorf("fold %s: %w", r, err)
			}
		}
		agg.Ref, agg.Version = r, hist.Version
		h.cache.put(r, cached{agg: agg, cursor: hist.Cursor})
		return agg, nil
	}
	hist, err := h.store.Load(ctx, r)
	if err != nil {
		return domain.Aggregate{}, err
	}
	agg, err := domain.Fold(r, hist.Events)
	if err != nil {
		return domain.Aggregate{}, fmt.Errorf("fold %s: %w", r, err)
	}
	// The version to expect is the subject's last sequence, which counts
	// messages that are not genuine events too.
	agg.Ref, agg.Version = r, hist.Version
	h.cache.put(r, cached{agg: agg, cursor: hist.Cursor})
	return agg, nil
}

func (h *Handler) earlier(ctx context.Context, id string) (Result, error) {
	res, found, err := h.store.Lookup(ctx, id)
	if err != nil {
		return Result{}, err
	}
	if !found {
		return Result{}, fmt.Errorf("decision %s is recorded but its events cannot be found: %w", id, domain.ErrNotFound)
	}
	return toResult(res), nil
}

func toResult(r domain.AppendResult) Result {
	return Result{DecisionID: r.DecisionID, Sequences: r.Sequences, Duplicate: r.Duplicate}
}
