package ledger

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"koers/domain"
)

// BulkStore is what [Handler.ApplyAll] needs of the log beyond [Store]:
// many aggregates loaded in few requests, and many decisions appended in one
// atomic batch. The event store implements it; a store that does not is
// applied one decision at a time.
type BulkStore interface {
	LoadMany(ctx context.Context, refs []domain.Ref) ([]domain.History, error)
	AppendMany(ctx context.Context, decisions []domain.Decided, expected map[domain.Ref]uint64) ([]domain.AppendResult, error)
}

// Line is one decision of a file in its public JSON format, with the line
// (or spreadsheet row) it came from.
type Line struct {
	Line int
	Body []byte
}

// LineResult is what became of one line. Err is set when it was refused
// (nothing of it was written); otherwise Result says where it landed. A
// duplicate found in bulk carries no sequences.
type LineResult struct {
	Line   int
	Result Result
	Err    error
}

// BulkOptions configure [Handler.ApplyAll]. Zero fields take the default
// in their doc.
type BulkOptions struct {
	// KeepGoing goes on after a refused line; without it nothing after the
	// first refused line is applied.
	KeepGoing bool
	// BatchMessages bounds the messages of one atomic batch. Default and
	// maximum 1,000, the JetStream server's limit.
	BatchMessages int
	// Window is how many lines are read ahead, so that the aggregates they
	// name are loaded together. Default 256.
	Window int
	// MaxAttempts bounds how often one batch is re-decided after a conflict.
	// Default: the handler's MaxAttempts.
	MaxAttempts int
	// MaxWorld bounds the aggregates kept in memory between batches: when
	// more are held, all but those the pending batch changed are dropped
	// before the next window and loaded again when needed. Default
	// 100,000: a decision holds about five aggregates, so the last
	// ~20,000 decisions' worth.
	MaxWorld int
	// Handle is passed on to the decisions that are not applied in bulk
	// (those under a board's mandate, which become proposals).
	Handle []HandleOption
	// Report is told about every line once its fate is known: when its
	// batch landed, or at once when it is refused or a duplicate (so a
	// refused line may be reported before the lines above it). Optional.
	Report func(LineResult)
}

// BulkSummary counts what ApplyAll did.
type BulkSummary struct {
	Applied    int
	Duplicates int
	Proposed   int
	Refused    int
}

const (
	defaultWindow   = 256
	maxBatchMsgs    = 1000
	defaultMaxWorld = 100_000
)

// ErrStopped wraps the error ApplyAll returns when it stopped at a refused
// line (no KeepGoing): the lines before it were applied, none after it.
var ErrStopped = errors.New("stopped at a refused line")

// ApplyAll applies decisions in order, each all or nothing, many per atomic
// batch. Every decision is decided against the state the ones before it
// leave behind, kept in memory, and a batch carries as many whole
// decisions as fit in BatchMessages, with the expected version of every
// aggregate as its first decision in the batch saw it. A refused line is
// reported and never written; without KeepGoing the decisions before it
// are appended and ApplyAll returns an error wrapping ErrStopped. The next
// batch is decided while the server stores one, and sent once that one
// has landed. A batch refused for a conflict (another writer moved an
// aggregate on) is decided again from freshly loaded state, from its
// first decision on (with the batch decided after it), at most
// MaxAttempts times. Decisions recorded before (same id) are counted
// as duplicates and written again never, so a second run changes nothing.
//
// Each decision in a batch is held to what [Handler.Handle] holds one to:
// the same domain decide checks that a reused id carries the same content
// (else a *domain.DecisionReusedError) and the actor's signature under the
// ledger's policy as the decisions before it leave it, and the store seals
// each decision on its own (one signature over its own events' Merkle
// root). A ledger key rotation ends its batch.
//
// Measured on this machine (koers bench apply_bulk): one decision per
// atomic batch ran at ~200 decisions/s, since the server stages and syncs
// each batch; filling batches makes throughput a matter of messages.
func (h *Handler) ApplyAll(ctx context.Context, lines iter.Seq2[Line, error], o BulkOptions) (BulkSummary, error) {
	if o.BatchMessages <= 0 || o.BatchMessages > maxBatchMsgs {
		o.BatchMessages = maxBatchMsgs
	}
	if o.Window <= 0 {
		o.Window = defaultWindow
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = h.opts.MaxAttempts
	}
	if o.MaxWorld <= 0 {
		o.MaxWorld = defaultMaxWorld
	}
	if o.Report == nil {
		o.Report = func(LineResult) {}
	}
	bs, ok := h.store.(BulkStore)
	if !ok {
		return h.applyEach(ctx, lines, o)
	}
	b := &bulk{h: h, store: bs, o: o, world: domain.World{}}
	chunk := make([]item, 0, o.Window)
	for l, err := range lines {
		if err != nil {
			if ferr := b.finish(ctx); ferr != nil {
				return b.sum, errors.Join(err, ferr)
			}
			return b.sum, err
		}
		chunk = append(chunk, item{line: l.Line, body: l.Body})
		if len(chunk) == o.Window {
			if err := b.run(ctx, chunk); err != nil {
				return b.sum, b.stop(ctx, err)
			}
			chunk = chunk[:0]
		}
	}
	if err := b.run(ctx, chunk); err != nil {
		return b.sum, b.stop(ctx, err)
	}
	if err := b.finish(ctx); err != nil {
		return b.sum, err
	}
	return b.sum, nil
}

// stop ends a run that failed with err: the batch in flight, if any, is
// waited for, so that every line written is reported.
func (b *bulk) stop(ctx context.Context, err error) error {
	if lerr := b.land(ctx); lerr != nil {
		return errors.Join(err, lerr)
	}
	return err
}

// finish appends the last batch, deciding it again after a conflict.
func (b *bulk) finish(ctx context.Context) error {
	// Bounded: flushOrRequeue gives up after MaxAttempts conflicts in a row.
	for attempt := 0; attempt <= b.o.MaxAttempts; attempt++ {
		var queue []item
		i := 0
		retry, err := b.flushOrRequeue(ctx, &queue, &i)
		if err != nil || !retry {
			return err
		}
		if err := b.run(ctx, queue); err != nil {
			return err
		}
	}
	return fmt.Errorf("bulk apply: last batch: %w", domain.ErrConflict)
}

// applyEach is ApplyAll for a store that cannot append in bulk.
func (h *Handler) applyEach(ctx context.Context, lines iter.Seq2[Line, error], o BulkOptions) (BulkSummary, error) {
	var sum BulkSummary
	for l, err := range lines {
		if err != nil {
			return sum, err
		}
		res, err := h.Submit(ctx, l.Body, o.Handle...)
		o.Report(LineResult{Line: l.Line, Result: res, Err: err})
		if err != nil {
			sum.Refused++
			if !o.KeepGoing || ctx.Err() != nil {
				return sum, fmt.Errorf("line %d: %w: %w", l.Line, ErrStopped, err)
			}
			continue
		}
		countResult(&sum, res)
	}
	return sum, nil
}

func countResult(sum *BulkSummary, res Result) {
	switch {
	case res.Proposal != nil && !res.Duplicate:
		sum.Proposed++
	case res.Duplicate:
		sum.Duplicates++
	default:
		sum.Applied++
	}
}

// item is one line on its way: decoded, then decided into a batch.
type item struct {
	line    int
	body    []byte
	d       domain.Decision // names sealed
	plain   domain.Decision // as decoded, for the handler
	decoded bool
	events  []domain.Event
}

// bulk is one ApplyAll: the world in memory and the batch being filled.
type bulk struct {
	h     *Handler
	store BulkStore
	o     BulkOptions
	sum   BulkSummary
	// world holds every aggregate loaded, with the effects of the decided
	// decisions, pending ones included; versions are those of the log.
	world domain.World
	// The batch being filled: its decisions and messages.
	pending []item
	msgs    int
	// The batch on its way to the log while the next one is decided, if
	// any; nothing after it is sent before it has landed.
	inflight *inflight
	attempts int // conflicts in a row
}

// run decides items in order into batches, flushing full ones. A conflict
// on a flush puts the failed batch's decisions back in front of what is
// left and decides them again on freshly loaded state.
func (b *bulk) run(ctx context.Context, items []item) error {
	queue := items
	if len(b.world) > b.o.MaxWorld {
		// Keep what the pending and in-flight batches changed (not in
		// the log yet); load everything else again when it is needed.
		kept := domain.World{}
		for r := range b.unlanded() {
			kept[r] = b.world[r]
		}
		b.world = kept
	}
	if err := b.prefetch(ctx, queue); err != nil {
		return err
	}
	for i := 0; i < len(queue); i++ {
		if err := ctx.Err(); err != nil {
			return errors.Join(err, b.flush(ctx))
		}
		it := &queue[i]
		if !it.decoded {
			err := b.decode(ctx, it)
			if errors.Is(err, domain.ErrErased) {
				// A retry of a decision naming a person erased since.
				res, rerr := b.h.recordedBefore(ctx, it.plain.ID, err)
				if rerr == nil {
					b.sum.Duplicates++
					b.o.Report(LineResult{Line: it.line, Result: res})
					continue
				}
				err = rerr
			}
			if err != nil {
				if retry, stop := b.refuse(ctx, &queue, &i, err); stop != nil || retry {
					if stop != nil {
						return stop
					}
				}
				continue
			}
		}
		events, state, err := b.decide(ctx, it.d)
		var dup *domain.DuplicateDecisionError
		var dupProposal *domain.DuplicateProposalError
		var needsApprovals *domain.ApprovalsNeededError
		switch {
		case errors.As(err, &dup):
			b.sum.Duplicates++
			b.o.Report(LineResult{Line: it.line, Result: Result{DecisionID: it.d.ID, Duplicate: true}})
			continue
		case errors.As(err, &dupProposal), errors.As(err, &needsApprovals):
			// A proposal: recorded on its own by the handler, after
			// everything before it has landed.
			if retry, err := b.flushOrRequeue(ctx, &queue, &i); err != nil || retry {
				if err != nil {
					return err
				}
				continue
			}
			res, err := b.h.Handle(ctx, it.plain, b.o.Handle...)
			b.world = domain.World{} // the proposal changed what was loaded
			if err != nil {
				if _, stop := b.refuse(ctx, &queue, &i, err); stop != nil {
					return stop
				}
				continue
			}
			countResult(&b.sum, res)
			b.o.Report(LineResult{Line: it.line, Result: res})
			continue
		case err != nil:
			if _, stop := b.refuse(ctx, &queue, &i, err); stop != nil {
				return stop
			}
			continue
		}
		if b.msgs+len(events) > b.o.BatchMessages {
			if retry, err := b.sendOrRequeue(ctx, &queue, &i); err != nil || retry {
				if err != nil {
					return err
				}
				continue
			}
			// The world was decided on with the pending batch in it,
			// which is on its way: the decision stands as it was, and
			// goes out after it.
		}
		if len(events) > b.o.BatchMessages {
			if _, stop := b.refuse(ctx, &queue, &i, fmt.Errorf("decision %s: %d events do not fit one batch of %d", it.d.ID, len(events), b.o.BatchMessages)); stop != nil {
				return stop
			}
			continue
		}
		for r, a := range state {
			a.Ref = r
			b.world[r] = a
		}
		it.events = events
		b.pending = append(b.pending, *it)
		b.msgs += len(events)
		if rotatesKey(events) {
			// A ledger key rotation ends its batch: the decisions after
			// it are sealed under the new key, which the log is asked
			// for before the next append (a writer holding the old key
			// is refused then, as on the single path).
			if retry, err := b.flushOrRequeue(ctx, &queue, &i); err != nil || retry {
				if err != nil {
					return err
				}
				continue
			}
		}
	}
	return nil
}

// rotatesKey tells whether a decision's events record a new ledger key.
func rotatesKey(events []domain.Event) bool {
	for _, e := range events {
		if e.Aggregate == domain.LedgerKeysRef {
			return true
		}
	}
	return false
}

// flushOrRequeue appends the in-flight and pending batches and waits for
// them. On a conflict it puts the decisions of both back in front of
// queue[*i:], resets *i to decide them again and reports retry.
func (b *bulk) flushOrRequeue(ctx context.Context, queue *[]item, i *int) (retry bool, err error) {
	failed := b.unsent()
	err = b.flush(ctx)
	return b.requeue(ctx, queue, i, failed, err)
}

// sendOrRequeue waits for the in-flight batch and sends the pending one
// without waiting for it, so that the next batch is decided while the
// server stores this one. A conflict is handled as by flushOrRequeue.
func (b *bulk) sendOrRequeue(ctx context.Context, queue *[]item, i *int) (retry bool, err error) {
	failed := b.unsent()
	err = b.land(ctx)
	if err == nil {
		b.send(ctx)
	} else {
		b.pending, b.msgs = nil, 0
	}
	return b.requeue(ctx, queue, i, failed, err)
}

// unsent is every decided decision not in the log yet: the in-flight
// batch's, then the pending batch's.
func (b *bulk) unsent() []item {
	var out []item
	if b.inflight != nil {
		out = append(out, b.inflight.items...)
	}
	return append(out, b.pending...)
}

// unlanded is every aggregate the in-flight and pending batches change.
func (b *bulk) unlanded() map[domain.Ref]bool {
	out := map[domain.Ref]bool{}
	for _, it := range b.unsent() {
		for _, e := range it.events {
			out[e.Aggregate] = true
		}
	}
	return out
}

// requeue handles the outcome err of appending failed: on a conflict it
// puts failed back in front of queue[*i:] to be decided again.
func (b *bulk) requeue(ctx context.Context, queue *[]item, i *int, failed []item, err error) (retry bool, _ error) {
	if err == nil || !errors.Is(err, domain.ErrConflict) {
		return false, err
	}
	b.attempts++
	if b.attempts >= b.o.MaxAttempts {
		return false, fmt.Errorf("bulk apply: batch from line %d: gave up after %d attempts: %w", failed[0].line, b.attempts, err)
	}
	if err := b.h.pause(ctx, b.attempts); err != nil {
		return false, err
	}
	// Everything in memory may be stale: load again what is decided next.
	b.world = domain.World{}
	rest := append(append(make([]item, 0, len(failed)+len(*queue)-*i), failed...), (*queue)[*i:]...)
	for k := range rest {
		rest[k].events = nil
	}
	*queue, *i = rest, -1
	return true, b.prefetch(ctx, rest)
}

// inflight is a batch sent to the log whose answer is awaited.
type inflight struct {
	items   []item
	done    chan struct{}
	results []domain.AppendResult
	err     error
}

// flush appends the in-flight and pending batches, in order, and waits
// for both. On success the world's versions move on to the new sequences
// and every line is reported; on an error (a conflict) both are dropped,
// unwritten (the caller decides them again).
func (b *bulk) flush(ctx context.Context) error {
	if err := b.land(ctx); err != nil {
		b.pending, b.msgs = nil, 0
		return err
	}
	b.send(ctx)
	return b.land(ctx)
}

// send starts appending the pending batch; land waits for it. The
// previous batch has landed, so the world's versions are the log's for
// every aggregate but those the pending batch changes, and the version of
// each of those as its first decision in the batch saw it.
//
// Measured with koers bench apply_bulk (100,000 decisions): deciding,
// encoding and sealing a batch took about as long as the server took to
// store it, one after the other; deciding the next batch meanwhile lets
// the two overlap.
func (b *bulk) send(ctx context.Context) {
	if len(b.pending) == 0 {
		return
	}
	ds := make([]domain.Decided, len(b.pending))
	expected := map[domain.Ref]uint64{}
	for k, it := range b.pending {
		ds[k] = domain.Decided{Meta: it.d.Meta(), Events: it.events}
		for _, e := range it.events {
			if _, ok := expected[e.Aggregate]; !ok {
				expected[e.Aggregate] = b.world[e.Aggregate].Version
			}
		}
	}
	f := &inflight{items: b.pending, done: make(chan struct{})}
	b.pending, b.msgs, b.inflight = nil, 0, f
	go func() {
		defer close(f.done)
		f.results, f.err = b.store.AppendMany(ctx, ds, expected)
	}()
}

// land waits for the in-flight batch, if any. On success the world's
// versions move on to the new sequences and every line of the batch is
// reported; on a conflict the batch is dropped (the caller decides it
// again).
func (b *bulk) land(ctx context.Context) error {
	f := b.inflight
	if f == nil {
		return nil
	}
	// AppendMany is bounded by the store's timeout and ends with ctx.
	<-f.done
	b.inflight = nil
	results, err, pending := f.results, f.err, f.items
	if err != nil {
		if errors.Is(err, domain.ErrConflict) {
			return err
		}
		return fmt.Errorf("bulk apply: batch of lines %d to %d: %w", pending[0].line, pending[len(pending)-1].line, err)
	}
	b.attempts = 0
	var next map[domain.Ref]bool // what the batch decided meanwhile changes
	for k, it := range pending {
		for j, e := range it.events {
			a := b.world[e.Aggregate]
			a.Version = results[k].Sequences[j]
			b.world[e.Aggregate] = a
		}
		// A decision's own record and proposal are new aggregates that
		// no later decision of a run normally touches again (a repeated
		// id or a retraction loads them from the log). Kept, they were
		// two of every decision's world entries: the world passed
		// MaxWorld after ~48,000 decisions and was dropped, and loading
		// the teams again walked their whole history (6 s at 50,000
		// decisions of koers bench apply_bulk).
		if next == nil {
			next = b.unlanded()
		}
		for _, r := range []domain.Ref{{Kind: domain.KindDecision, ID: it.d.ID}, {Kind: domain.KindProposal, ID: it.d.ID}} {
			if !next[r] { // a decision after it may have changed it (retracted it)
				delete(b.world, r)
			}
		}
		if err := b.h.eraseKeys(ctx, it.d); err != nil {
			return fmt.Errorf("bulk apply: line %d: %w", it.line, err)
		}
		b.sum.Applied++
		b.o.Report(LineResult{Line: it.line, Result: toResult(results[k])})
	}
	return nil
}

// refuse reports the refused line queue[*i]. Without KeepGoing the
// decisions before it are appended first and the run stops with an error
// wrapping ErrStopped; if their batch meets a conflict, they and the
// refused line are decided again (retry, nothing reported yet).
func (b *bulk) refuse(ctx context.Context, queue *[]item, i *int, err error) (retry bool, stop error) {
	it := (*queue)[*i]
	if !b.o.KeepGoing || ctx.Err() != nil {
		retry, ferr := b.flushOrRequeue(ctx, queue, i)
		if ferr != nil || retry {
			return retry, ferr
		}
	}
	b.sum.Refused++
	b.o.Report(LineResult{Line: it.line, Err: err})
	if b.o.KeepGoing && ctx.Err() == nil {
		return false, nil
	}
	return false, fmt.Errorf("line %d: %w: %w", it.line, ErrStopped, err)
}

// decode decodes an item and seals the names of people in it.
func (b *bulk) decode(ctx context.Context, it *item) error {
	d, err := b.h.Decode(it.body)
	if err != nil {
		return err
	}
	it.plain = d
	sealed, err := b.h.sealNames(ctx, d)
	if err != nil {
		return err
	}
	it.plain, it.d, it.decoded = d, sealed, true
	return nil
}

// prefetch loads, in one go, the planned aggregates of items not in the
// world yet, decoding the items on the way.
func (b *bulk) prefetch(ctx context.Context, items []item) error {
	var refs []domain.Ref
	want := map[domain.Ref]bool{}
	for k := range items {
		it := &items[k]
		if !it.decoded {
			if err := b.decode(ctx, it); err != nil {
				continue // refused when its turn comes
			}
		}
		for _, r := range domain.Plan(it.d) {
			if _, ok := b.world[r]; !ok && !want[r] {
				want[r] = true
				refs = append(refs, r)
			}
		}
	}
	return b.loadInto(ctx, refs)
}

// loadInto folds refs from the log into the world.
func (b *bulk) loadInto(ctx context.Context, refs []domain.Ref) error {
	if len(refs) == 0 {
		return nil
	}
	hists, err := b.store.LoadMany(ctx, refs)
	if err != nil {
		return fmt.Errorf("bulk apply: %w", err)
	}
	for k, r := range refs {
		a, err := domain.Fold(r, hists[k].Events)
		if err != nil {
			return fmt.Errorf("bulk apply: fold %s: %w", r, err)
		}
		a.Ref, a.Version = r, hists[k].Version
		b.world[r] = a
	}
	return nil
}

// decide decides d against the world, loading what it asks for in bounded
// rounds.
func (b *bulk) decide(ctx context.Context, d domain.Decision) ([]domain.Event, map[domain.Ref]domain.Aggregate, error) {
	for round := 0; round < b.h.opts.MaxLoadRounds; round++ {
		events, state, err := domain.DecideState(b.world, d, b.h.opts.Now())
		var need *domain.NeedError
		if !errors.As(err, &need) {
			return events, state, err
		}
		var refs []domain.Ref
		for _, r := range need.Refs {
			if _, ok := b.world[r]; !ok {
				refs = append(refs, r)
			}
		}
		if err := b.loadInto(ctx, refs); err != nil {
			return nil, nil, err
		}
	}
	return nil, nil, fmt.Errorf("decision %s: still needs more aggregates after %d rounds of loading", d.ID, b.h.opts.MaxLoadRounds)
}
