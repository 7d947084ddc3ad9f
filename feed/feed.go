package feed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/jackc/pgx/v5/pgxpool"

	"koers/consumer"
	"koers/domain"
)

// Log is what a feed reads: the ledger's log, in order, in the domain's
// terms ([domain.LogReader] is one). A feed reads it through the shared
// [consumer.Consumer].
type Log = consumer.Log

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
	cons   *consumer.Consumer

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
	f.cons, err = consumer.New(log, consumer.Config{
		Checkpoint: func(context.Context) (uint64, error) { return f.delivered.Load(), nil },
		Handle:     f.handle,
		MaxEvents:  cfg.BatchSize,
		Backoff:    consumer.Backoff{Initial: cfg.RetryInitial, Max: cfg.BackoffMax, Attempts: cfg.Attempts},
		// A feed waits out whatever stops it (the target, its database,
		// the log), within the back-off's attempts: nothing it could skip.
		// Reading again cannot help with an event of an unknown schema
		// version: a build that knows it can.
		Retry: func(err error) bool {
			var unreadable *UnreadableEventError
			return !errors.As(err, &unreadable)
		},
		OnRetry: func(err error, attempt int, wait time.Duration) {
			f.m.retries.Inc()
			f.cfg.Logger.Warn("feed interrupted: reading again from the checkpoint", "feed", f.cfg.Name, "target", f.target.redacted,
				"checkpoint", f.delivered.Load(), "err", f.target.scrub(err), "attempt", attempt+1, "retry_in", wait)
		},
	})
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("feed %s: %w", cfg.Name, err)
	}
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

// Run delivers events until ctx ends, then returns nil. Whatever
// interrupts it (a target that is down or refuses connections, the
// feed's database, the log) is waited out with the shared consumer's
// capped back-off, counted in the retries metric, and the log read again
// from the checkpoint; nothing is skipped. After Config.Attempts
// interruptions in a row without progress it returns a
// [*consumer.GaveUpError]. An event of a schema version this build cannot
// upcast stops it at once with an [*UnreadableEventError], after what
// comes before it was delivered.
func (f *Feed) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); f.watchLag(ctx) }()
	defer wg.Wait()
	defer cancel() // before the wait: the lag watcher ends with ctx
	if err := f.cons.Run(ctx); err != nil {
		return fmt.Errorf("feed %s: %w", f.cfg.Name, err)
	}
	return nil
}

// handle delivers one batch of the consumer and moves the checkpoint past
// it once the target confirmed it; messages the log rejected are skipped
// and counted. When delivery stops short, the checkpoint moves past what
// the target did confirm, so that a restart re-sends as little as possible.
func (f *Feed) handle(ctx context.Context, b consumer.Batch) error {
	msgs := make([]*message.Message, 0, b.Messages)
	var rejected []uint64
	var unreadable error // an event this build cannot upcast: delivered up to it, then stop
units:
	for _, u := range b.Units {
		for _, m := range u.Messages {
			if m.Rejected != nil {
				f.cfg.Logger.Warn("feed skips a message that is not a genuine event", "feed", f.cfg.Name, "seq", m.Rejected.Sequence)
				rejected = append(rejected, m.Rejected.Sequence)
				continue
			}
			// Published at the current schema version of its type.
			ev, err := domain.Upcast(m.Event.Event)
			if err != nil {
				unreadable = &UnreadableEventError{Feed: f.cfg.Name, Sequence: m.Event.Sequence, Err: err}
				rejected = keepBefore(rejected, m.Event.Sequence)
				break units
			}
			rec := m.Event
			rec.Event = ev
			if rec, err = openNames(ctx, f.cfg.Names, rec); err != nil {
				// A key that is missing (not erased) stops the feed
				// rather than deliver garbage or skip the event.
				unreadable = &UnreadableEventError{Feed: f.cfg.Name, Sequence: m.Event.Sequence, Err: err}
				rejected = keepBefore(rejected, m.Event.Sequence)
				break units
			}
			msgs = append(msgs, f.message(rec))
		}
	}
	if unreadable != nil {
		done, poisoned, err := f.deliver(ctx, msgs)
		if done > 0 {
			through, _ := strconv.ParseUint(msgs[done-1].Metadata.Get(seqKey), 10, 64)
			if serr := f.commit(ctx, through, done-poisoned, poisoned, countUpTo(rejected, through)); serr != nil {
				return errors.Join(err, serr)
			}
		}
		if err != nil {
			return err
		}
		return unreadable
	}
	done, poisoned, err := f.deliver(ctx, msgs)
	if err != nil {
		if done > 0 {
			through, _ := strconv.ParseUint(msgs[done-1].Metadata.Get(seqKey), 10, 64)
			if serr := f.commit(ctx, through, done-poisoned, poisoned, countUpTo(rejected, through)); serr != nil {
				return errors.Join(err, serr)
			}
		}
		return err
	}
	return f.commit(ctx, b.Last(), len(msgs)-poisoned, poisoned, len(rejected))
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

// keepBefore keeps the sequences before seq.
func keepBefore(seqs []uint64, seq uint64) []uint64 {
	out := seqs[:0]
	for _, s := range seqs {
		if s < seq {
			out = append(out, s)
		}
	}
	return out
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
// all of it, failed, or ctx ended. It returns how many messages from the
// start of batch are done and how many of those went to the poison queue.
// A target that cannot be reached, or that still fails after the Retry
// middleware's attempts, is an error: the consumer waits (its one back-off)
// and the batch is read and sent again from the checkpoint.
func (f *Feed) deliver(ctx context.Context, batch []*message.Message) (done, poisoned int, err error) {
	if len(batch) == 0 {
		return 0, 0, nil
	}
	r := &round{ctx: ctx, batch: batch}
	f.cur = r
	defer func() { f.cur = nil }()
	if f.pub == nil {
		octx, cancel := context.WithTimeout(ctx, f.cfg.PublishTimeout)
		pub, err := f.target.open(octx, f.cfg.Name)
		cancel()
		if err != nil {
			return 0, 0, f.target.scrub(fmt.Errorf("connect to %s: %w", f.target.redacted, err))
		}
		f.pub = pub
	}
	// Every round of the loop confirms or poisons a message (or, once,
	// switches an atomic target to one by one), or returns.
	for r.next < len(batch) {
		msg, before := batch[r.next], r.next
		msg.SetContext(ctx)
		_, err := f.chain(msg)
		if errors.Is(err, errSplit) {
			continue
		}
		if err != nil {
			if ctx.Err() == nil {
				// The Retry middleware gave up: connect afresh next
				// time. (A feed being stopped keeps its publisher for
				// Close.)
				_ = f.pub.Close()
				f.pub = nil
			}
			return r.next, poisoned, f.target.scrub(fmt.Errorf("publish event %s to %s: %w", msg.UUID, f.target.redacted, err))
		}
		if r.poisoned {
			f.cfg.Logger.Error("feed target refused an event: moved to the poison queue", "feed", f.cfg.Name, "event", msg.UUID, "seq", msg.Metadata.Get(seqKey))
			r.poisoned = false
			r.next++
			poisoned++
			f.m.poisoned.Inc()
		}
		if r.next == before {
			return r.next, poisoned, fmt.Errorf("publish event %s to %s: neither confirmed nor refused", msg.UUID, f.target.redacted)
		}
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

// Run opens the feed, runs it until ctx ends and closes it.
func Run(ctx context.Context, log Log, databaseURL string, cfg Config) error {
	f, err := Open(ctx, log, databaseURL, cfg)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Run(ctx)
}
