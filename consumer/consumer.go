package consumer

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"koers/domain"
)

// Log is what the consumer reads; [domain.LogReader] is one.
type Log interface {
	Read(ctx context.Context, from uint64, opts domain.ReadOptions) iter.Seq2[domain.Recorded, error]
	LastSequence(ctx context.Context) (uint64, error)
}

// Limits of a [Config].
const (
	// MaxBatchMessages bounds Config.MaxEvents.
	MaxBatchMessages = 100_000
	// MaxBatchBytes bounds Config.MaxBytes.
	MaxBatchBytes = 256 << 20
)

// Config configures a [Consumer]. Checkpoint and Handle are required;
// other zero fields take the default in their doc.
type Config struct {
	// Checkpoint returns the last stream sequence the handler committed (0:
	// none). The consumer reads from the one after it each time a pass
	// starts. An error from it fails the pass.
	Checkpoint func(ctx context.Context) (uint64, error)
	// Handle commits a batch together with its checkpoint, [Batch.Last],
	// before it returns nil: the consumer goes on after the batch. An error
	// ends the pass; whatever the handler did not commit is read again. It
	// runs on the goroutine that called Run or CatchUp, one batch at a time.
	Handle func(ctx context.Context, b Batch) error
	// MaxEvents bounds the messages of a batch; a unit is never split, so
	// a batch holds at least one whole unit even when that is more.
	// Default 1000, at most [MaxBatchMessages]. It also bounds how many
	// messages are read ahead of the batch being built.
	MaxEvents int
	// MaxBytes bounds the payload bytes of a batch, with the same
	// exception. Default 4 MiB, at most [MaxBatchBytes].
	MaxBytes int
	// MaxWait is the longest complete units wait for more before they are
	// handed on. Default 100ms, 1ms to 1m.
	MaxWait time.Duration
	// Backoff is the wait between a failed pass and the next, and how many
	// may fail in a row. Defaults in its doc.
	Backoff Backoff
	// Retry reports whether a pass that failed with err is started again
	// (after a wait) rather than ending Run or CatchUp with err. Default:
	// errors.Is(err, domain.ErrLogUnavailable).
	Retry func(err error) bool
	// OnRetry, if set, is told of each failed pass that will be started
	// again: its error, the attempt that failed (0: the first in a row)
	// and the wait before the next.
	OnRetry func(err error, attempt int, wait time.Duration)
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.MaxEvents == 0 {
		c.MaxEvents = 1000
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = 4 << 20
	}
	if c.MaxWait == 0 {
		c.MaxWait = 100 * time.Millisecond
	}
	c.Backoff = c.Backoff.WithDefaults()
	if c.Retry == nil {
		c.Retry = func(err error) bool { return errors.Is(err, domain.ErrLogUnavailable) }
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Checkpoint == nil || c.Handle == nil:
		return errors.New("consumer: a checkpoint and a handler are required")
	case c.MaxEvents < 1 || c.MaxEvents > MaxBatchMessages:
		return fmt.Errorf("consumer: batch events %d: want 1 to %d", c.MaxEvents, MaxBatchMessages)
	case c.MaxBytes < 1 || c.MaxBytes > MaxBatchBytes:
		return fmt.Errorf("consumer: batch bytes %d: want 1 to %d", c.MaxBytes, MaxBatchBytes)
	case c.MaxWait < time.Millisecond || c.MaxWait > time.Minute:
		return fmt.Errorf("consumer: batch wait %s: want 1ms to 1m", c.MaxWait)
	}
	if err := c.Backoff.validate(); err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	return nil
}

// Consumer reads a log from a checkpoint and hands it to a handler in
// batches. See the package doc.
type Consumer struct {
	log Log
	cfg Config
}

// New returns a consumer of log. It reads nothing until Run or CatchUp.
func New(log Log, cfg Config) (*Consumer, error) {
	if log == nil {
		return nil, errors.New("consumer: a log is required")
	}
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Consumer{log: log, cfg: cfg}, nil
}

// ErrReadEnded is returned (wrapped, and wrapping
// [domain.ErrLogUnavailable], so retried by default) when a read of the
// live log stopped yielding although nobody asked it to.
var ErrReadEnded = fmt.Errorf("the log's read ended: %w", domain.ErrLogUnavailable)

// GaveUpError is returned when passes failed Attempts times in a row
// without the checkpoint moving. It wraps the last pass's error.
type GaveUpError struct {
	Attempts   int
	Checkpoint uint64
	Err        error
}

func (e *GaveUpError) Error() string {
	return fmt.Sprintf("gave up after %d attempts at checkpoint %d: %v", e.Attempts, e.Checkpoint, e.Err)
}

func (e *GaveUpError) Unwrap() error { return e.Err }

// Run hands the log on from the checkpoint and then follows it live until
// ctx ends, when it returns nil. A batch in the handler's hands then is
// the handler's to commit or drop. A read of the live log waits for a NATS
// server that went away to come back (the client reconnects); what fails
// outright is retried as Config.Retry and Config.Backoff say.
func (c *Consumer) Run(ctx context.Context) error {
	err := c.passes(ctx, false)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// CatchUp hands the log on from the checkpoint up to the log's last
// sequence when it is called, and returns. A decision that lies only
// partly before that sequence is left for the next read.
func (c *Consumer) CatchUp(ctx context.Context) error {
	if err := c.passes(ctx, true); err != nil {
		return fmt.Errorf("catch up: %w", err)
	}
	return nil
}

// passes runs passes until one ends well, one fails with an error not to
// retry, or Backoff.Attempts failed in a row without the checkpoint
// moving. bounded: read up to the log's last sequence, asked once;
// otherwise follow the live log.
func (c *Consumer) passes(ctx context.Context, bounded bool) error {
	var (
		until    uint64 // the last sequence to read; 0: not known yet, or live
		from     uint64 // the checkpoint after the last failure
		known    bool   // whether from is known
		failures int    // in a row, without progress
	)
	for {
		cp, err := c.pass(ctx, bounded, &until)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !c.cfg.Retry(err) {
			return err
		}
		// A pass that moved the checkpoint before it failed got
		// somewhere: the count of failures starts again.
		if now, cerr := c.cfg.Checkpoint(ctx); cerr == nil {
			cp = now
		}
		if known && cp > from {
			failures = 0
		}
		from, known = cp, true
		if failures+1 >= c.cfg.Backoff.Attempts {
			return &GaveUpError{Attempts: failures + 1, Checkpoint: from, Err: err}
		}
		wait := c.cfg.Backoff.Wait(failures)
		if c.cfg.OnRetry != nil {
			c.cfg.OnRetry(err, failures, wait)
		}
		failures++
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// pass learns where a bounded read stops (once: *until), reads the
// checkpoint and hands the log on from the sequence after it. It returns
// the checkpoint it started from.
func (c *Consumer) pass(ctx context.Context, bounded bool, until *uint64) (uint64, error) {
	if bounded && *until == 0 {
		last, err := c.log.LastSequence(ctx)
		if err != nil {
			return 0, err
		}
		if last == 0 {
			return 0, nil // an empty log: nothing to catch up with
		}
		*until = last
	}
	cp, err := c.cfg.Checkpoint(ctx)
	if err != nil {
		return 0, err
	}
	if bounded && cp >= *until {
		return cp, nil
	}
	return cp, c.batches(ctx, cp, *until)
}

// read is what the reader goroutine sends: a judged message, or the error
// that ended the read.
type read struct {
	msg Message
	err error
}

// batches reads from the sequence after cp and hands batches to the
// handler until ctx ends (it returns ctx's error), the read ends (nil when
// it reached until > 0), or something fails.
func (c *Consumer) batches(ctx context.Context, cp, until uint64) error {
	rctx, cancel := context.WithCancel(ctx)
	reads := make(chan read, c.cfg.MaxEvents)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(reads)
		c.read(rctx, cp+1, until, reads)
	}()
	defer func() {
		cancel()
		<-done
	}()

	var (
		g     grouper
		batch Batch
	)
	// The wait of complete units runs from the first unit of a batch.
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	flush := func() error {
		timer.Stop()
		if len(batch.Units) == 0 {
			return nil
		}
		b := batch
		batch = Batch{}
		return c.cfg.Handle(ctx, b)
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			if err := flush(); err != nil {
				return err
			}
		case r, ok := <-reads:
			switch {
			case !ok && ctx.Err() != nil:
				return ctx.Err()
			case !ok && until > 0:
				return flush()
			case !ok:
				return flushThen(flush, ErrReadEnded)
			case r.err != nil:
				if ctx.Err() != nil {
					return r.err
				}
				return flushThen(flush, r.err)
			}
			units, err := g.add(r.msg)
			if err != nil {
				return flushThen(flush, err)
			}
			for _, u := range units {
				if len(batch.Units) == 0 {
					timer.Reset(c.cfg.MaxWait)
				}
				batch.add(u)
			}
			// A full batch goes at once; so does any batch when the reader
			// has nothing more at hand: following the live log, a decision
			// is handed on as soon as it lands, not MaxWait later.
			if len(batch.Units) > 0 && (batch.Messages >= c.cfg.MaxEvents || batch.Bytes >= c.cfg.MaxBytes || len(reads) == 0) {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
}

// flushThen hands on the complete units in hand before a pass ends with
// err: they were read well, and the next pass starts after them. A
// handler's error comes first: whether to retry is decided on it.
func flushThen(flush func() error, err error) error {
	if ferr := flush(); ferr != nil {
		return ferr
	}
	return err
}

// read pumps the log from sequence from into out, judging each message,
// until the read ends, fails (the error is sent last) or ctx ends.
func (c *Consumer) read(ctx context.Context, from, until uint64, out chan<- read) {
	for rec, err := range c.log.Read(ctx, from, domain.ReadOptions{Until: until}) {
		msg, err := c.judge(rec, err)
		select {
		case out <- read{msg: msg, err: err}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

// judge is the one place where a message read from the log is judged: a
// genuine event, a message the log rejected (passed on, so that handlers
// record or skip it), or the end of the read (any other error). A message's
// place in its aggregate's chain is the log's to check, since only the log
// knows the hashes that chain its events: a replayed or otherwise
// misplaced message comes here already rejected, like a forgery.
func (c *Consumer) judge(rec domain.Recorded, err error) (Message, error) {
	if err == nil {
		return Message{Event: rec}, nil
	}
	var rej *domain.RejectedError
	if errors.As(err, &rej) {
		return Message{Rejected: rej}, nil
	}
	return Message{}, err
}
