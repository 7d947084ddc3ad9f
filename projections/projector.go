package projections

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"koers/domain"
	"koers/eventstore"
)

// Source is what the projector needs of the log; *eventstore.Store is one.
type Source interface {
	Read(ctx context.Context, from uint64, opts eventstore.ReadOptions) iter.Seq2[domain.Recorded, error]
	LastSequence(ctx context.Context) (uint64, error)
}

// ProjectorOptions configure a [Projector]. Zero fields take the default in
// their doc.
type ProjectorOptions struct {
	// BatchEvents bounds the events applied in one transaction. A decision
	// is never split, so a batch holds at least one whole decision even
	// when that is more. Default 1000.
	BatchEvents int
	// BatchBytes bounds the payload bytes applied in one transaction, with
	// the same exception. Default 4 MiB.
	BatchBytes int
	// FlushInterval is the longest complete decisions wait for more before
	// they are applied. Default 100ms.
	FlushInterval time.Duration
	// OnCommit, if set, is called after each committed batch with the new
	// checkpoint, from the projector's goroutine.
	OnCommit func(checkpoint uint64)
}

// WithDefaults returns o with every zero field set to its default.
func (o ProjectorOptions) WithDefaults() ProjectorOptions {
	if o.BatchEvents == 0 {
		o.BatchEvents = 1000
	}
	if o.BatchBytes == 0 {
		o.BatchBytes = 4 << 20
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = 100 * time.Millisecond
	}
	return o
}

func (o ProjectorOptions) validate() error {
	switch {
	case o.BatchEvents < 1 || o.BatchEvents > 100_000:
		return fmt.Errorf("projector: batch events %d: want 1 to 100000", o.BatchEvents)
	case o.BatchBytes < 1 || o.BatchBytes > 256<<20:
		return fmt.Errorf("projector: batch bytes %d: want 1 to 256 MiB", o.BatchBytes)
	case o.FlushInterval < time.Millisecond || o.FlushInterval > time.Minute:
		return fmt.Errorf("projector: flush interval %s: want 1ms to 1m", o.FlushInterval)
	}
	return nil
}

// maxUnitEvents bounds the events of one decision the projector holds while
// waiting for its decision.recorded: the domain never writes more.
const maxUnitEvents = domain.MaxEvents + 1

// Projector keeps the read models of a [DB] up to date with a [Source].
type Projector struct {
	db   *DB
	src  Source
	opts ProjectorOptions
	// ident is the source's ledger identity, once known.
	ident LedgerIdentity
}

// NewProjector returns a projector from src into db.
func NewProjector(db *DB, src Source, opts ProjectorOptions) (*Projector, error) {
	if db == nil || src == nil {
		return nil, errors.New("projector: database and source are required")
	}
	opts = opts.WithDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	return &Projector{db: db, src: src, opts: opts}, nil
}

// Lag is how far the read models are behind the log.
type Lag struct {
	Last       uint64 // the stream's last sequence
	Checkpoint uint64 // the last sequence applied
}

// Events is the number of stream messages not yet applied.
func (l Lag) Events() uint64 {
	if l.Checkpoint >= l.Last {
		return 0
	}
	return l.Last - l.Checkpoint
}

// Lag reports the stream's last sequence and the checkpoint.
func (p *Projector) Lag(ctx context.Context) (Lag, error) {
	cp, err := p.db.Checkpoint(ctx)
	if err != nil {
		return Lag{}, err
	}
	last, err := p.src.LastSequence(ctx)
	if err != nil {
		return Lag{}, fmt.Errorf("lag: %w", err)
	}
	return Lag{Last: last, Checkpoint: cp}, nil
}

// Run applies the log from the checkpoint on and then follows it live until
// ctx ends, when it returns nil. Whatever batch was in flight then is not
// committed and is read again by the next run.
func (p *Projector) Run(ctx context.Context) error {
	for gaps := 0; ; gaps++ {
		err := p.run(ctx, 0)
		if ctx.Err() != nil {
			return nil
		}
		var gap *GapError
		if !errors.As(err, &gap) || gaps >= maxGapRestarts {
			return err
		}
	}
}

// maxGapRestarts bounds how often one Run reads again from a checkpoint that
// moved under it before it gives up (and its caller starts it again).
const maxGapRestarts = 10

// CatchUp applies the log from the checkpoint up to the stream's last
// sequence when it is called, and returns.
func (p *Projector) CatchUp(ctx context.Context) error {
	last, err := p.src.LastSequence(ctx)
	if err != nil {
		return fmt.Errorf("catch up: %w", err)
	}
	cp, err := p.db.Checkpoint(ctx)
	if err != nil {
		return err
	}
	if cp >= last {
		return nil
	}
	return p.run(ctx, last)
}

// item is one message read: an event or a rejected message.
type item struct {
	rec      domain.Recorded
	rejected *eventstore.RejectedError
}

func (it item) seq() uint64 {
	if it.rejected != nil {
		return it.rejected.Sequence
	}
	return it.rec.Sequence
}

// unit is what is applied whole: the events of one decision (ending with its
// decision.recorded) or one rejected message.
type unit struct {
	items []item
	bytes int
}

func (u *unit) last() uint64 { return u.items[len(u.items)-1].seq() }

// read pumps the source into a channel until it ends, ctx ends, or it fails.
func (p *Projector) read(ctx context.Context, from, until uint64, out chan<- item, errc chan<- error) {
	defer close(out)
	for rec, err := range p.src.Read(ctx, from, eventstore.ReadOptions{Until: until}) {
		var it item
		if err != nil {
			var rej *eventstore.RejectedError
			if !errors.As(err, &rej) {
				errc <- err
				return
			}
			it.rejected = rej
		} else {
			it.rec = rec
		}
		select {
		case out <- it:
		case <-ctx.Done():
			return
		}
	}
}

func (p *Projector) run(ctx context.Context, until uint64) error {
	cp, err := p.db.Checkpoint(ctx)
	if err != nil {
		return err
	}
	if p.ident.IsZero() {
		if p.ident, err = IdentityOf(ctx, p.src); err != nil {
			return fmt.Errorf("projector: %w", err)
		}
	}
	// Refuse another ledger before reading it; apply checks again under
	// the checkpoint's lock.
	if have, err := p.db.LedgerIdentity(ctx); err != nil {
		return err
	} else if !have.IsZero() && !p.ident.IsZero() && !have.Same(p.ident) {
		return fmt.Errorf("projector: %w", &LedgerMismatchError{Have: have, Want: p.ident})
	}
	rctx, cancel := context.WithCancel(ctx)
	items := make(chan item, p.opts.BatchEvents)
	errc := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.read(rctx, cp+1, until, items, errc)
	}()
	defer func() {
		cancel()
		<-done
	}()

	var (
		pending unit   // events of the decision not complete yet
		batch   []unit // complete units
		n, size int
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		last, err := p.db.apply(ctx, batch, p.ident)
		if err != nil {
			return err
		}
		batch, n, size = nil, 0, 0
		if p.opts.OnCommit != nil {
			p.opts.OnCommit(last)
		}
		return nil
	}
	timer := time.NewTimer(p.opts.FlushInterval)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			if err := flush(); err != nil {
				return err
			}
			timer.Reset(p.opts.FlushInterval)
		case it, ok := <-items:
			if !ok {
				select {
				case err := <-errc:
					return err
				default:
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return flush()
			}
			complete := p.add(&pending, &batch, it)
			if complete {
				u := batch[len(batch)-1]
				n += len(u.items)
				size += u.bytes
				// A full batch goes at once; so does any batch when the
				// reader has nothing more at hand (the projector caught up
				// with the log): following live, a decision is visible as
				// soon as it is applied, not a flush interval later.
				if n >= p.opts.BatchEvents || size >= p.opts.BatchBytes || len(items) == 0 {
					if err := flush(); err != nil {
						return err
					}
				}
			}
			if len(pending.items) > maxUnitEvents {
				return fmt.Errorf("projector: decision %s has more than %d events before its decision.recorded",
					pending.items[0].rec.Meta.DecisionID, maxUnitEvents)
			}
		}
	}
}

// endsUnit reports whether an event of type typ is the last of its
// decision: decision.recorded, or the one event of an action on a
// proposal (proposal.decided is followed by its decision's events).
func endsUnit(typ string) bool {
	switch typ {
	case domain.EventDecisionRecorded, domain.EventProposalOpened, domain.EventProposalApproved, domain.EventProposalRejected,
		domain.EventProposalWithdrawn, domain.EventProposalRefused:
		return true
	}
	return false
}

// add puts it into the pending decision or, when it completes one, moves
// that to the batch; it reports whether a unit was completed.
func (p *Projector) add(pending *unit, batch *[]unit, it item) bool {
	completed := false
	if len(pending.items) > 0 && it.rejected == nil && it.rec.Meta.DecisionID != pending.items[0].rec.Meta.DecisionID {
		// The decision.recorded of the pending decision never came (it was
		// rejected): apply what there is of it on its own.
		*batch = append(*batch, *pending)
		*pending = unit{}
		completed = true
	}
	if it.rejected != nil && len(pending.items) == 0 {
		*batch = append(*batch, unit{items: []item{it}, bytes: len(it.rejected.Reason)})
		return true
	}
	pending.items = append(pending.items, it)
	pending.bytes += len(it.rec.Data) + len(it.rec.Meta.Reason) + 64
	if it.rejected == nil && endsUnit(it.rec.Type) {
		*batch = append(*batch, *pending)
		*pending = unit{}
		return true
	}
	return completed
}
