package projections

import (
	"context"
	"errors"
	"fmt"
	"time"

	"koers/consumer"
	"koers/domain"
)

// Source is what the projector needs of the log: the domain's log
// contract, which the event store implements.
type Source = domain.LogReader

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
	// AnchorEvery and AnchorInterval: the projector records an anchor of
	// the log in the read models when this many events or this much time
	// passed since the last one (see anchors.go). Defaults 10,000 events
	// (1 to 10,000,000) and 1 minute (1s to 1h).
	AnchorEvery    uint64
	AnchorInterval time.Duration
	// Names opens the sealed names of people for the read models and
	// destroys the key of a person whose erasure it applies (a
	// *keyring.Keyring; see personal.go). Default nil: names are written
	// as the log holds them — only for ledgers without sealed names.
	Names Names
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
	if o.AnchorEvery == 0 {
		o.AnchorEvery = 10_000
	}
	if o.AnchorInterval == 0 {
		o.AnchorInterval = time.Minute
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
	case o.AnchorEvery < 1 || o.AnchorEvery > 10_000_000:
		return fmt.Errorf("projector: anchor every %d events: want 1 to 10000000", o.AnchorEvery)
	case o.AnchorInterval < time.Second || o.AnchorInterval > time.Hour:
		return fmt.Errorf("projector: anchor interval %s: want 1s to 1h", o.AnchorInterval)
	}
	return nil
}

// Projector keeps the read models of a [DB] up to date with a [Source]. It
// reads through the shared [consumer.Consumer]: its checkpoint is the read
// models' and its handler applies a batch and moves the checkpoint in one
// transaction.
type Projector struct {
	db   *DB
	src  Source
	opts ProjectorOptions
	cons *consumer.Consumer
	// ident is the source's ledger identity, once known.
	ident LedgerIdentity
	// anchor is the last anchor recorded, once loaded.
	anchor anchoring
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
	p := &Projector{db: db, src: src, opts: opts}
	var err error
	p.cons, err = consumer.New(src, consumer.Config{
		Checkpoint: p.checkpoint,
		Handle:     p.handle,
		MaxEvents:  opts.BatchEvents,
		MaxBytes:   opts.BatchBytes,
		MaxWait:    opts.FlushInterval,
		Backoff:    consumer.Backoff{Attempts: maxRestarts},
		Retry:      retryable,
	})
	if err != nil {
		return nil, fmt.Errorf("projector: %w", err)
	}
	return p, nil
}

// maxRestarts bounds how often one Run or CatchUp reads again from the
// checkpoint, in a row without progress, before it gives up (and its
// caller starts it again).
const maxRestarts = 10

// retryable says which failures the projector reads again from the
// checkpoint after a pause: the checkpoint moved under it (another
// projector, a rebuild switched in), or the log could not be read. Read
// models that refuse a batch, or another ledger, are for its caller.
func retryable(err error) bool {
	var gap *GapError
	return errors.As(err, &gap) || errors.Is(err, domain.ErrLogUnavailable)
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
// committed and is read again by the next run. A checkpoint that moved
// under it ([*GapError]) or a log that could not be read is read again from
// the checkpoint after the consumer's back-off, at most maxRestarts times
// in a row without progress; any other error is returned.
func (p *Projector) Run(ctx context.Context) error {
	return p.cons.Run(ctx)
}

// CatchUp applies the log from the checkpoint up to the stream's last
// sequence when it is called, and returns.
//
// It ends with an anchor at the checkpoint (when the checkpoint moved
// since the last one), so that read models brought up to date by a
// command remember the log as they saw it.
func (p *Projector) CatchUp(ctx context.Context) error {
	if err := p.cons.CatchUp(ctx); err != nil {
		return err
	}
	cp, err := p.db.Checkpoint(ctx)
	if err != nil {
		return err
	}
	return p.anchorAt(ctx, cp, true)
}

// checkpoint is where the consumer starts a pass: the read models'
// checkpoint, once the source is known to be their ledger.
func (p *Projector) checkpoint(ctx context.Context) (uint64, error) {
	cp, err := p.db.Checkpoint(ctx)
	if err != nil {
		return 0, err
	}
	if p.ident.IsZero() {
		if p.ident, err = IdentityOf(ctx, p.src); err != nil {
			// A genesis that cannot be read may be history removed.
			if ierr := p.checkIntegrity(ctx); ierr != nil {
				return 0, ierr
			}
			return 0, fmt.Errorf("projector: %w", err)
		}
	}
	// Refuse another ledger before reading it; apply checks again under
	// the checkpoint's lock.
	if have, err := p.db.LedgerIdentity(ctx); err != nil {
		return 0, err
	} else if !have.IsZero() && !p.ident.IsZero() && !have.Same(p.ident) {
		return 0, fmt.Errorf("projector: %w", &LedgerMismatchError{Have: have, Want: p.ident})
	}
	// A log that lost history, or no longer matches what these read
	// models saw of it, is never read on: they keep the evidence.
	if err := p.checkIntegrity(ctx); err != nil {
		return 0, err
	}
	return cp, nil
}

// handle applies one batch and moves the checkpoint with it.
func (p *Projector) handle(ctx context.Context, b consumer.Batch) error {
	if err := p.halted(); err != nil {
		return err
	}
	last, err := p.db.apply(ctx, b.Units, p.ident, p.opts.Names)
	if err != nil {
		return err
	}
	if err := p.anchorAt(ctx, last, false); err != nil {
		return err
	}
	if p.opts.OnCommit != nil {
		p.opts.OnCommit(last)
	}
	return nil
}
