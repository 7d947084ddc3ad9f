package feed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/jackc/pgx/v5/pgxpool"

	"koers/domain"
	"koers/eventstore"
)

// Log is what a feed reads: the ledger's stream, in order. *eventstore.Store
// is one.
type Log interface {
	Read(ctx context.Context, from uint64, opts eventstore.ReadOptions) iter.Seq2[domain.Recorded, error]
	LastSequence(ctx context.Context) (uint64, error)
}

// Feed sends the ledger's events to one target, from its checkpoint on.
// Open it, Run it until its context ends, Close it.
type Feed struct {
	cfg    Config
	log    Log
	pool   *pgxpool.Pool
	lease  *lease
	target *target
	source string
	m      feedMetrics

	delivered atomic.Uint64 // the checkpoint
	lastSeq   atomic.Uint64 // the stream's last sequence, as last seen

	pub    message.Publisher   // nil: not connected
	poison message.Publisher   // the poison queue in PostgreSQL
	chain  message.HandlerFunc // PoisonQueue(Retry(publishChunk))
	cur    *round
}

// Open registers the feed named cfg.Name in the PostgreSQL database at
// databaseURL (schema koers_feed), takes its lease and reads its
// checkpoint. It does not connect to the target yet: Run does, and waits
// for it.
func Open(ctx context.Context, log Log, databaseURL string, cfg Config) (*Feed, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	t, err := parseTarget(cfg.Target)
	if err != nil {
		return nil, fmt.Errorf("feed %s: %w", cfg.Name, err)
	}
	pool, err := openPool(ctx, databaseURL)
	if err != nil {
		return nil, err
	}
	f := &Feed{cfg: cfg, log: log, pool: pool, target: t, source: "/koers/" + cfg.Ledger, m: cfg.Metrics.of(cfg.Name)}
	if f.lease, err = takeLease(ctx, pool, cfg.Name); err != nil {
		pool.Close()
		return nil, err
	}
	seq, err := claim(ctx, pool, cfg.Name, t.redacted, f.source, cfg.FromSeq)
	if err != nil {
		f.Close()
		return nil, err
	}
	f.delivered.Store(seq)
	f.m.checkpoint.Set(float64(seq))
	if f.poison, err = wsql.NewPublisher(wsql.BeginnerFromPgx(pool), wsql.PublisherConfig{
		SchemaAdapter: wsql.DefaultPostgreSQLSchema{GenerateMessagesTableName: func(string) string { return `"koers_feed"."poison"` }},
	}, watermill.NopLogger{}); err != nil {
		f.Close()
		return nil, fmt.Errorf("feed %s: poison queue: %w", cfg.Name, err)
	}
	poisonQueue, err := middleware.PoisonQueueWithFilter(f.poison, "poison", permanent)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("feed %s: poison queue: %w", cfg.Name, err)
	}
	retry := middleware.Retry{
		MaxRetries:          cfg.Retries,
		InitialInterval:     cfg.RetryInitial,
		MaxInterval:         cfg.RetryMax,
		Multiplier:          2,
		RandomizationFactor: 0.2,
		ResetContextOnRetry: true,
		ShouldRetry: func(p middleware.RetryParams) bool {
			return !permanent(p.Err) && !errors.Is(p.Err, errSplit)
		},
	}
	f.chain = poisonQueue(retry.Middleware(f.publishChunk))
	return f, nil
}

// Name is the feed's name.
func (f *Feed) Name() string { return f.cfg.Name }

// Target is the feed's target URL with its credential-like parts masked
// (see the package documentation): what may be shown and logged.
func (f *Feed) Target() string { return f.target.redacted }

// Checkpoint is the last stream sequence the target confirmed.
func (f *Feed) Checkpoint() uint64 { return f.delivered.Load() }

// Close disconnects from the target, gives up the lease and closes the
// database connections. Call it after Run returned.
func (f *Feed) Close() error {
	var errs []error
	if f.pub != nil {
		errs = append(errs, f.pub.Close())
		f.pub = nil
	}
	if f.poison != nil {
		errs = append(errs, f.poison.Close())
	}
	if f.lease != nil {
		f.lease.release()
		f.lease = nil
	}
	f.pool.Close()
	return errors.Join(errs...)
}

// Run delivers events until ctx ends, then returns nil. A target that is
// down or refuses connections is waited for with capped back-off, counted
// in the retries metric; nothing is skipped. A read error from the log
// restarts the read from the checkpoint after the same back-off. An event
// of a schema version this build cannot upcast stops it with an
// [*UnreadableEventError], after what comes before it was delivered.
func (f *Feed) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); f.watchLag(ctx) }()
	defer wg.Wait()
	defer cancel() // before the wait: the lag watcher ends with ctx
	for round := 0; ; round++ {
		before := f.delivered.Load()
		err := f.runFrom(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var unreadable *UnreadableEventError
		if errors.As(err, &unreadable) {
			return err // reading again cannot help: a build that knows the version can
		}
		if f.delivered.Load() > before {
			round = 0 // it got somewhere: start the back-off over
		}
		f.m.retries.Inc()
		wait := f.cfg.backoff(round)
		f.cfg.Logger.Warn("feed read interrupted", "feed", f.cfg.Name, "checkpoint", f.delivered.Load(), "err", err, "retry_in", wait)
		if !sleep(ctx, wait) {
			return nil
		}
	}
}

// errReadEnded: the log stopped yielding although ctx is live.
var errReadEnded = errors.New("the log's read ended")

// item is one message of the log: an event, or a sequence to pass over.
type item struct {
	rec  domain.Recorded
	seq  uint64
	skip bool
	err  error
}

// runFrom reads the log from the checkpoint and delivers it in batches
// until ctx ends or the read fails.
func (f *Feed) runFrom(ctx context.Context) error {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	items := make(chan item, f.cfg.BatchSize)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(items)
		for rec, err := range f.log.Read(rctx, f.delivered.Load()+1, eventstore.ReadOptions{}) {
			if err == nil {
				// Published at the current schema version of its type.
				if rec.Event, err = domain.Upcast(rec.Event); err != nil {
					err = &UnreadableEventError{Feed: f.cfg.Name, Sequence: rec.Sequence, Err: err}
				}
			}
			it := item{rec: rec, seq: rec.Sequence, err: err}
			var rej *eventstore.RejectedError
			if errors.As(err, &rej) {
				it = item{seq: rej.Sequence, skip: true}
			}
			select {
			case items <- it:
			case <-rctx.Done():
				return
			}
			if it.err != nil {
				return
			}
		}
	}()
	defer wg.Wait()
	defer cancel()
	batch := make([]*message.Message, 0, f.cfg.BatchSize)
	for {
		batch = batch[:0]
		var through uint64
		var rejectedSeqs []uint64
		var readErr error
		// Wait for one message, then take what is there, up to a batch.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case it, ok := <-items:
			if !ok {
				return errReadEnded
			}
			if it.err != nil {
				return it.err
			}
			through, batch = f.add(it, through, &rejectedSeqs, batch)
		}
	fill:
		for len(batch) < f.cfg.BatchSize {
			select {
			case it, ok := <-items:
				if !ok {
					readErr = errReadEnded
					break fill
				}
				if it.err != nil {
					readErr = it.err // after delivering what is in hand
					break fill
				}
				through, batch = f.add(it, through, &rejectedSeqs, batch)
			default:
				break fill
			}
		}
		done, poisoned, err := f.deliver(ctx, batch)
		if err != nil {
			// Keep what the target confirmed before ctx ended, so that a
			// stop re-sends as little as possible.
			if done > 0 {
				through, _ := strconv.ParseUint(batch[done-1].Metadata.Get(seqKey), 10, 64)
				if serr := f.commit(ctx, through, done-poisoned, poisoned, countUpTo(rejectedSeqs, through)); serr != nil {
					return errors.Join(err, serr)
				}
			}
			return err
		}
		if err := f.commit(ctx, through, len(batch)-poisoned, poisoned, len(rejectedSeqs)); err != nil {
			return err
		}
		if readErr != nil {
			return readErr
		}
	}
}

// commit moves the checkpoint to through once the target confirmed what
// comes before it, even when ctx ended meanwhile.
func (f *Feed) commit(ctx context.Context, through uint64, delivered, poisoned, rejected int) error {
	if through <= f.delivered.Load() {
		return nil
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := save(sctx, f.pool, f.cfg.Name, through, delivered, poisoned, rejected); err != nil {
		return err
	}
	f.delivered.Store(through)
	f.m.checkpoint.Set(float64(through))
	f.m.rejected.Add(float64(rejected))
	f.updateLag()
	return nil
}

// seqKey is the metadata key of a message's stream sequence.
const seqKey = "koers_seq"

// add puts one log message into the batch being built.
func (f *Feed) add(it item, through uint64, rejected *[]uint64, batch []*message.Message) (uint64, []*message.Message) {
	through = max(through, it.seq)
	if it.skip {
		f.cfg.Logger.Warn("feed skips a message that is not a genuine event", "feed", f.cfg.Name, "seq", it.seq)
		*rejected = append(*rejected, it.seq)
		return through, batch
	}
	return through, append(batch, f.message(it.rec))
}

func countUpTo(seqs []uint64, through uint64) int {
	n := 0
	for _, s := range seqs {
		if s <= through {
			n++
		}
	}
	return n
}

// message is the Watermill message of one event: UUID = CloudEvents id.
func (f *Feed) message(r domain.Recorded) *message.Message {
	body, err := json.Marshal(NewCloudEvent(f.source, r))
	if err != nil {
		// Every field is a string, a time or JSON the log already checked.
		panic(fmt.Sprintf("feed: encode event %s: %v", r.EventID, err))
	}
	msg := message.NewMessage(r.EventID, body)
	msg.Metadata.Set(seqKey, strconv.FormatUint(r.Sequence, 10))
	return msg
}

// round is the state of delivering one batch.
type round struct {
	ctx      context.Context
	batch    []*message.Message
	next     int  // first message not yet confirmed
	oneByOne bool // an atomic target refused a chunk: find the message
	poisoned bool // the last chunk (one message) was refused outright
}

// errSplit asks the caller to go on one message at a time.
var errSplit = errors.New("the target refused a chunk: publishing one by one")

// deliver publishes batch in order and returns when the target confirmed
// all of it, or ctx ended. It returns how many messages from the start of
// batch are done and how many of those went to the poison queue. The
// target being down is waited for.
func (f *Feed) deliver(ctx context.Context, batch []*message.Message) (done, poisoned int, err error) {
	r := &round{ctx: ctx, batch: batch}
	f.cur = r
	defer func() { f.cur = nil }()
	for attempt := 0; r.next < len(batch); attempt++ {
		if ctx.Err() != nil {
			return r.next, poisoned, ctx.Err()
		}
		if f.pub == nil {
			octx, cancel := context.WithTimeout(ctx, f.cfg.PublishTimeout)
			pub, err := f.target.open(octx, f.cfg.Name)
			cancel()
			if err != nil {
				f.m.retries.Inc()
				wait := f.cfg.backoff(attempt)
				f.cfg.Logger.Warn("feed cannot connect", "feed", f.cfg.Name, "target", f.target.redacted, "err", f.target.scrub(err), "retry_in", wait)
				sleep(ctx, wait)
				continue
			}
			f.pub = pub
		}
		for r.next < len(batch) {
			msg := batch[r.next]
			msg.SetContext(ctx)
			_, err := f.chain(msg)
			if errors.Is(err, errSplit) {
				continue
			}
			if err != nil {
				r.poisoned = false
				break
			}
			if r.poisoned {
				f.cfg.Logger.Error("feed target refused an event: moved to the poison queue", "feed", f.cfg.Name, "event", msg.UUID, "seq", msg.Metadata.Get(seqKey))
				r.poisoned = false
				r.next++
				poisoned++
				f.m.poisoned.Inc()
			}
			attempt = 0
		}
		if r.next == len(batch) {
			break
		}
		if ctx.Err() != nil {
			return r.next, poisoned, ctx.Err()
		}
		// The Retry middleware gave up: reconnect after a capped back-off.
		_ = f.pub.Close()
		f.pub = nil
		wait := f.cfg.backoff(attempt)
		f.cfg.Logger.Warn("feed target unavailable", "feed", f.cfg.Name, "target", f.target.redacted, "checkpoint", f.delivered.Load(), "retry_in", wait)
		sleep(ctx, wait)
	}
	return r.next, poisoned, nil
}

// publishChunk is the handler behind the Retry and PoisonQueue
// middlewares. msg is always r.batch[r.next]: it publishes that message (or,
// to an atomic target, all from there on) and advances r.next past what the
// target confirmed.
func (f *Feed) publishChunk(msg *message.Message) ([]*message.Message, error) {
	r := f.cur
	r.poisoned = false
	n := 1
	if f.target.atomic && !r.oneByOne {
		n = len(r.batch) - r.next
	}
	chunk := r.batch[r.next : r.next+n]
	actx, cancel := context.WithTimeout(r.ctx, f.cfg.PublishTimeout)
	for _, m := range chunk {
		m.SetContext(actx)
	}
	err := f.pub.Publish(f.cfg.Name, chunk...)
	cancel()
	for _, m := range chunk {
		m.SetContext(r.ctx)
	}
	switch {
	case err == nil:
		r.next += n
		f.m.delivered.Add(float64(n))
		return nil, nil
	case permanent(err) && n > 1:
		r.oneByOne = true
		return nil, errSplit
	case permanent(err):
		r.poisoned = true
		msg.Metadata.Set("koers_feed", f.cfg.Name)
		msg.Metadata.Set("koers_target", f.target.redacted)
		// The poison queue stores the reason: in our words where the
		// driver quoted the URL.
		return nil, f.target.scrub(err)
	}
	if r.ctx.Err() == nil {
		f.m.retries.Inc()
	}
	return nil, err
}

// watchLag refreshes the lag gauge until ctx ends.
func (f *Feed) watchLag(ctx context.Context) {
	t := time.NewTicker(f.cfg.LagInterval)
	defer t.Stop()
	for {
		f.refreshLastSeq(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (f *Feed) refreshLastSeq(ctx context.Context) {
	last, err := f.log.LastSequence(ctx)
	if err != nil {
		return // the lag keeps its last value; the next tick tries again
	}
	f.lastSeq.Store(last)
	f.updateLag()
}

func (f *Feed) updateLag() {
	last, done := f.lastSeq.Load(), f.delivered.Load()
	if done > last {
		last = done
	}
	f.m.lag.Set(float64(last - done))
}

// sleep waits d or until ctx ends; false when ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Run opens the feed, runs it until ctx ends and closes it.
func Run(ctx context.Context, log Log, databaseURL string, cfg Config) error {
	f, err := Open(ctx, log, databaseURL, cfg)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Run(ctx)
}
