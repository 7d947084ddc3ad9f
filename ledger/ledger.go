// Package ledger is the command handler: it takes a decision, loads the
// aggregates it touches from the log, lets the domain decide, and appends the
// resulting events with the versions it read, re-reading and re-deciding a
// bounded number of times when another decision got there first. It speaks
// to the log in the domain's terms only ([Store]); cmd/koers wires in the
// event store.
package ledger

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
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
	AppendGroup(ctx context.Context, decisions []domain.Decided, expected map[domain.Ref]uint64) ([]domain.AppendResult, error)
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
	// NoQueue turns per-aggregate queueing off: decisions on the same
	// aggregates race optimistically, as before queueing (the bench
	// measures both). Default false: they queue (see queue.go).
	NoQueue bool
	// QueueWait bounds how long a decision waits for aggregates that other
	// decisions of this process are changing; then it is a *BusyError.
	// Default 10s.
	QueueWait time.Duration
	// MaxQueued bounds the decisions waiting for one aggregate; one more
	// is a *BusyError at once. Default 1024.
	MaxQueued int
	// ResolveFor bounds how long the handler tries to find out whether a
	// decision whose append went unanswered is in the log, before it
	// answers with an error wrapping domain.ErrOutcomeUnknown. It outlives
	// the caller's context (an answer that says what happened is worth the
	// wait). Default 20s: long enough for a connection to find the next
	// holder of a data folder's server after its holder was killed.
	ResolveFor time.Duration
	// Names seals people's names before a decision is decided, so that
	// the log holds them only encrypted, and destroys an erased person's
	// key once the erasure is recorded (a *keyring.Keyring). Default nil:
	// names are recorded as submitted, in clear — only for tests and
	// tools whose ledgers hold no personal data; koers always sets it.
	Names Names
}

// Names is what the handler needs of the key store of people's names.
type Names interface {
	// Seal returns the sealed form of a person's name in decision
	// decisionID; the same decision sealed again gets the same commitment.
	Seal(ctx context.Context, decisionID string, p domain.PersonalName) (string, error)
	// Erase destroys the person's data key; again is not an error.
	Erase(ctx context.Context, person string) error
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
	if o.QueueWait == 0 {
		o.QueueWait = 10 * time.Second
	}
	if o.MaxQueued == 0 {
		o.MaxQueued = 1024
	}
	if o.ResolveFor == 0 {
		o.ResolveFor = 20 * time.Second
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
	case o.QueueWait < time.Millisecond || o.QueueWait > 10*time.Minute:
		return fmt.Errorf("ledger options: queue wait %s: want 1ms to 10m", o.QueueWait)
	case o.MaxQueued < 1 || o.MaxQueued > 1_000_000:
		return fmt.Errorf("ledger options: max queued %d: want 1 to 1000000", o.MaxQueued)
	case o.ResolveFor < time.Millisecond || o.ResolveFor > 10*time.Minute:
		return fmt.Errorf("ledger options: resolve for %s: want 1ms to 10m", o.ResolveFor)
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
	queue *queue
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
	return &Handler{store: store, opts: opts, cache: newAggCache(opts.CacheAggregates), queue: newQueue(opts.MaxQueued, opts.QueueWait)}, nil
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
	if errors.Is(err, domain.ErrOutcomeUnknown) {
		res, err = h.resolve(ctx, d.Meta(), events, expected, err)
	}
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
// before is answered with the first result (Duplicate set). Decisions of
// this handler that write the same aggregates queue for them (see
// queue.go). A conflict is retried up to MaxAttempts times, each time on
// freshly loaded state; after that the error wraps domain.ErrConflict.
//
// Handle never answers an error for a decision that is in the log: when an
// append goes unanswered, it finds out whether the decision landed (see
// [Options].ResolveFor) and answers its result, or an error that says
// certainly nothing was written; only if it cannot find out in time does
// the error wrap domain.ErrOutcomeUnknown.
func (h *Handler) Handle(ctx context.Context, d domain.Decision, opts ...HandleOption) (Result, error) {
	sealed, err := h.sealNames(ctx, d)
	if errors.Is(err, domain.ErrErased) {
		return h.recordedBefore(ctx, d.ID, err)
	}
	if err != nil {
		return Result{}, err
	}
	d = sealed
	res, err := h.handle(ctx, d, opts...)
	if err != nil || res.State == domain.ProposalPending {
		return res, err
	}
	// Also on a duplicate: a retry after a crash between the append and
	// the key's destruction finishes the erasure.
	return res, h.eraseKeys(ctx, d)
}

// recordedBefore answers a decision naming an erased person: a retry of
// the decision that recorded them is answered with its first result (its
// content can no longer be compared: the name is gone); any other is
// refused with err.
func (h *Handler) recordedBefore(ctx context.Context, id string, err error) (Result, error) {
	res, found, lerr := h.store.Lookup(ctx, id)
	if lerr != nil {
		return Result{}, errors.Join(err, lerr)
	}
	if !found {
		return Result{}, err
	}
	out := toResult(res)
	out.Duplicate = true
	return out, nil
}

// sealNames replaces the names of people in d by their sealed form.
func (h *Handler) sealNames(ctx context.Context, d domain.Decision) (domain.Decision, error) {
	if h.opts.Names == nil {
		return d, nil
	}
	changes, err := domain.WithNames(d.Changes, func(p domain.PersonalName) (string, error) {
		return h.opts.Names.Seal(ctx, d.ID, p)
	})
	if err != nil {
		return domain.Decision{}, fmt.Errorf("decision %s: %w", d.ID, err)
	}
	d.Changes = changes
	return d, nil
}

// eraseKeys destroys the data keys of the people d erases, once d is in
// the log. If it fails, the decision stays recorded and the error says
// so; submitting the decision again, or the projector applying the
// erasure, finishes it.
func (h *Handler) eraseKeys(ctx context.Context, d domain.Decision) error {
	if h.opts.Names == nil {
		return nil
	}
	for _, c := range d.Changes {
		if c.Kind != domain.ChangePersonErase {
			continue
		}
		if err := h.opts.Names.Erase(ctx, c.Person); err != nil {
			return fmt.Errorf("decision %s is recorded, but the data key of %s is not destroyed yet (submit the decision again, or let the projector apply it): %w", d.ID, c.Person, err)
		}
	}
	return nil
}

func (h *Handler) handle(ctx context.Context, d domain.Decision, opts ...HandleOption) (Result, error) {
	var o handleOpts
	for _, opt := range opts {
		opt(&o)
	}
	hold := &held{q: h.queue}
	defer hold.release()
	// A decision without versions of its own to expect may be taken into
	// the append of the decision it waits for (group.go).
	var w *waiter
	if !h.opts.NoQueue && o.expect == nil {
		w = &waiter{d: d, hold: hold, answer: make(chan groupAnswer, 1)}
	}
	var lastErr error
	for attempt := 0; attempt < h.opts.MaxAttempts; attempt++ {
		world, events, err := h.decideQueued(ctx, d, o.expect, hold, w)
		if errors.Is(err, errClaimed) {
			// The holder answers, within its own bounds (an append and,
			// if need be, ResolveFor): the decision may be in its append,
			// so the answer is awaited whatever ctx says.
			a := <-w.answer
			if !a.again {
				return a.res, a.err
			}
			continue
		}
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
		var members []member
		if w != nil {
			members = h.gather(ctx, world, d, events, hold)
		}
		expected := make(map[domain.Ref]uint64, len(events))
		for _, e := range events {
			expected[e.Aggregate] = world[e.Aggregate].Version
		}
		for _, m := range members {
			for _, e := range m.events {
				expected[e.Aggregate] = world[e.Aggregate].Version
			}
		}
		for ref, v := range o.expect {
			if _, touched := expected[ref]; touched {
				expected[ref] = v
			}
		}
		var res domain.AppendResult
		if len(members) == 0 {
			res, err = h.store.Append(ctx, d.Meta(), events, expected)
			if errors.Is(err, domain.ErrOutcomeUnknown) {
				res, err = h.resolve(ctx, d.Meta(), events, expected, err)
			}
		} else {
			res, err = h.appendGroup(ctx, d, events, members, expected)
		}
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

// maxQueueRounds bounds how often one attempt decides again because the
// aggregates it writes changed while it queued for them: each round queues
// for more aggregates than the one before, which a decision has few of.
const maxQueueRounds = 4

// decideQueued decides, then queues for the aggregates the events write.
// When it had to wait, those aggregates were being changed by the decision
// before it, so it decides again on what they are now. Whatever it still
// does not hold after maxQueueRounds is appended optimistically: the log
// checks every version anyway. With w, the holder of what it waits for may
// claim it (errClaimed).
func (h *Handler) decideQueued(ctx context.Context, d domain.Decision, expect map[domain.Ref]uint64, hold *held, w *waiter) (domain.World, []domain.Event, error) {
	for round := 0; ; round++ {
		world, events, err := h.decide(ctx, d, expect)
		if err != nil || h.opts.NoQueue || round == maxQueueRounds {
			return world, events, err
		}
		refs := writes(d.ID, events)
		if hold.covers(refs) {
			return world, events, nil
		}
		if w != nil {
			w.writes = refs
		}
		waited, err := h.queue.acquire(ctx, hold, refs, w)
		if errors.Is(err, errClaimed) {
			return nil, nil, err
		}
		if err != nil {
			return nil, nil, fmt.Errorf("decision %s: %w", d.ID, err)
		}
		if !waited {
			return world, events, nil
		}
	}
}

// resolve finds out what became of a decision whose append went
// unanswered (cause wraps domain.ErrOutcomeUnknown), for at most
// ResolveFor: its record looked up by id, and when it is not there, the
// same events appended again with the same id and expected versions. That
// second append is what makes the answer certain: the first one can land
// no more once the second has landed (the record's subject exists) or was
// refused for a stale version (every version only grows), and a first one
// that landed before is found by the look-up the store makes on a
// conflict. It returns the decision's result when it is in the log (with
// the same content: another decision under the same id is an
// *IDInUseError), domain.ErrConflict when it is certainly not, or an
// error wrapping domain.ErrOutcomeUnknown when it could not tell in time.
func (h *Handler) resolve(ctx context.Context, meta domain.Meta, events []domain.Event, expected map[domain.Ref]uint64, cause error) (domain.AppendResult, error) {
	id := meta.DecisionID
	// An append without the decision's record (a proposal, an approval
	// under a generated id) cannot be looked up by its record: appending it
	// again tells, the store finding an earlier append of the id among the
	// events of its subjects when that one conflicts. Nobody else appends
	// under such an id, so what is found is this append.
	own := domain.Ref{Kind: domain.KindDecision, ID: id}
	hasRecord := false
	for _, e := range events {
		hasRecord = hasRecord || e.Aggregate == own && e.Type == domain.EventDecisionRecorded
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.opts.ResolveFor)
	defer cancel()
	pause := resolvePause
	for try := 0; try < maxResolveTries; try++ {
		if try > 0 {
			t := time.NewTimer(pause)
			select {
			case <-ctx.Done():
				t.Stop()
				return domain.AppendResult{}, &UnresolvedError{DecisionID: id, Tries: try, Waited: time.Since(start), Err: cause}
			case <-t.C:
			}
			pause = min(2*pause, resolvePauseMax)
		}
		callCtx, callCancel := context.WithTimeout(ctx, resolveCallTimeout)
		var (
			res   domain.AppendResult
			found bool
			err   error
		)
		if hasRecord {
			res, found, err = h.store.Lookup(callCtx, id)
		}
		if err == nil && !found {
			res, err = h.store.Append(callCtx, meta, events, expected)
			found = err == nil
		}
		if found && hasRecord {
			err = h.sameDecision(callCtx, id, events)
		}
		callCancel()
		switch {
		case err == nil:
			// This call's decision landed (on the first append or the
			// second): it is no duplicate of an earlier call's.
			res.Duplicate = false
			return res, nil
		case errors.Is(err, domain.ErrConflict):
			return domain.AppendResult{}, err
		case errors.Is(err, domain.ErrOutcomeUnknown), errors.Is(err, domain.ErrUnavailable),
			errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
			cause = err
		default:
			// Refused as the first append would have been, or a record
			// under this id that is not this decision.
			return domain.AppendResult{}, err
		}
	}
	return domain.AppendResult{}, &UnresolvedError{DecisionID: id, Tries: maxResolveTries, Waited: time.Since(start), Err: cause}
}

// Bounds of resolve: a look-up (and an append) at most every resolvePause,
// doubling up to resolvePauseMax, each call at most resolveCallTimeout, at
// most maxResolveTries times, all within Options.ResolveFor. The first
// pause is short because an acknowledgement lost on a live connection is
// answered by the first look-up; a reconnection to the next holder of a
// data folder's server took 0.3–2 s in cmd/koers's process test.
const (
	resolvePause       = 50 * time.Millisecond
	resolvePauseMax    = time.Second
	resolveCallTimeout = 5 * time.Second
	maxResolveTries    = 50
)

// UnresolvedError is returned when the handler could not find out in time
// whether a decision whose append went unanswered is in the log. It wraps
// domain.ErrOutcomeUnknown and the last cause: submitting the decision
// again with the same id answers which, and records it at most once.
type UnresolvedError struct {
	DecisionID string
	Tries      int
	Waited     time.Duration
	Err        error
}

func (e *UnresolvedError) Error() string {
	return fmt.Sprintf("decision %s: %s: could not find out whether it was recorded (%d look-ups in %s): submit it again with the same id: %v",
		e.DecisionID, domain.ErrOutcomeUnknown, e.Tries, e.Waited.Round(time.Millisecond), e.Err)
}

func (e *UnresolvedError) Unwrap() []error { return []error{domain.ErrOutcomeUnknown, e.Err} }

// IDInUseError is returned when the log holds another decision under the
// id of the one submitted (its record differs). It wraps domain.ErrRefused.
type IDInUseError struct{ DecisionID string }

func (e *IDInUseError) Error() string {
	return fmt.Sprintf("decision id %s is in use by another decision: choose another id", e.DecisionID)
}

func (e *IDInUseError) Unwrap() error { return domain.ErrRefused }

// sameDecision checks that the record the log holds under id is the one
// events would write.
func (h *Handler) sameDecision(ctx context.Context, id string, events []domain.Event) error {
	own := domain.Ref{Kind: domain.KindDecision, ID: id}
	var want json.RawMessage
	for _, e := range events {
		if e.Aggregate == own && e.Type == domain.EventDecisionRecorded {
			want = e.Data
		}
	}
	hist, err := h.store.Load(ctx, own)
	if err != nil {
		return fmt.Errorf("decision %s: load its record: %w", id, err)
	}
	if len(hist.Events) == 0 || hist.Events[0].Type != domain.EventDecisionRecorded {
		// Not a not-found: the record was there a moment ago. On a
		// cluster, reads are direct gets that any replica answers, and one
		// that has not caught up yet (a restarted node, a failover) does
		// not have it: the fault matrix saw such a decision answered 404
		// although it was in the log. Whether this decision landed is not
		// known yet; asked again (resolve does, a client with the same id
		// does) the answer comes from an up-to-date replica.
		return fmt.Errorf("decision %s is recorded but its record cannot be read yet: %w", id, domain.ErrOutcomeUnknown)
	}
	if !sameJSON(hist.Events[0].Data, want) {
		return &IDInUseError{DecisionID: id}
	}
	return nil
}

func sameJSON(a, b []byte) bool {
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return false
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}

// decide loads what the domain asks for and decides, in bounded rounds.
func (h *Handler) decide(ctx context.Context, d domain.Decision, expect map[domain.Ref]uint64) (domain.World, []domain.Event, error) {
	world := domain.World{}
	refs := domain.Plan(d)
	for ref := range expect {
		refs = append(refs, ref)
	}
	events, err := h.decideOn(ctx, world, d, refs)
	return world, events, err
}

// decideOn decides d on world, loading into it what is not there yet.
func (h *Handler) decideOn(ctx context.Context, world domain.World, d domain.Decision, refs []domain.Ref) ([]domain.Event, error) {
	for round := 0; round < h.opts.MaxLoadRounds; round++ {
		if err := h.load(ctx, world, refs); err != nil {
			return nil, err
		}
		// Read after loading, so that everything loaded was recorded
		// before the moment authority is judged at (a revocation recorded
		// meanwhile is then seen as in effect).
		now := h.opts.Now()
		events, err := domain.Decide(world, d, now)
		var need *domain.NeedError
		if !errors.As(err, &need) {
			return events, err
		}
		refs = need.Refs
	}
	return nil, fmt.Errorf("decision %s: still needs more aggregates after %d rounds of loading", d.ID, h.opts.MaxLoadRounds)
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
		// A replica behind, as in sameDecision: not a not-found.
		return Result{}, fmt.Errorf("decision %s is recorded but its events cannot be read yet: %w", id, domain.ErrOutcomeUnknown)
	}
	return toResult(res), nil
}

func toResult(r domain.AppendResult) Result {
	return Result{DecisionID: r.DecisionID, Sequences: r.Sequences, Duplicate: r.Duplicate}
}
