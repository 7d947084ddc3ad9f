package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"koers/eventstore"
	"koers/projections"
)

// history fills the stream up to Events messages.
func (r *run) history(ctx context.Context, rep *Report) error {
	total := int64(r.cfg.Events)
	r.progress(Progress{Step: "history", Done: int64(r.gen.last), Total: total, Unit: "events"})
	err := r.gen.fill(ctx, uint64(r.cfg.Events), func(done uint64) {
		r.progress(Progress{Step: "history", Done: int64(done), Total: total, Unit: "events"})
	})
	if err != nil {
		return err
	}
	rep.Events, err = r.store.LastSequence(ctx)
	return err
}

// measureRebuild times a raw ordered read of the stream copied into one
// table, then the projector rebuilding every read model from sequence 1.
func (r *run) measureRebuild(ctx context.Context, rep *Report) error {
	last, err := r.store.LastSequence(ctx)
	if err != nil {
		return err
	}
	r.progress(Progress{Step: "rebuild: raw read and COPY", Total: int64(last), Unit: "events"})
	start := time.Now()
	copied, err := r.rawReadCopy(ctx, last)
	if err != nil {
		return err
	}
	raw := float64(copied) / time.Since(start).Seconds()

	// The rebuild's peak starts from what the process holds for good, not
	// from garbage the measurements before it left.
	runtime.GC()
	debug.FreeOSMemory()
	resetPeakRSS()
	r.progress(Progress{Step: "rebuild: koers", Total: int64(last), Unit: "events"})
	start = time.Now()
	err = r.db.Rebuild(ctx, r.store, r.cfg.Projector, func(p projections.Progress) {
		r.progress(Progress{Step: "rebuild: koers", Done: int64(p.Done), Total: int64(last), Unit: "events"})
	})
	if err != nil {
		return err
	}
	el := time.Since(start)
	rep.RebuildPeakRSSBytes = sincePeakRSS()
	cp, err := r.db.Checkpoint(ctx)
	if err != nil {
		return err
	}
	if cp < last {
		return fmt.Errorf("the rebuilt read models are at %d, the stream at %d", cp, last)
	}
	rep.Figures[KeyRebuild] = throughput(float64(last)/el.Seconds(), raw, "events/s", "", int64(last), el)
	return nil
}

// measureVerify times a raw ordered read of the stream, then a full verify.
func (r *run) measureVerify(ctx context.Context, rep *Report) error {
	last, err := r.store.LastSequence(ctx)
	if err != nil {
		return err
	}
	r.progress(Progress{Step: "verify: raw read", Total: int64(last), Unit: "events"})
	start := time.Now()
	n := 0
	err = r.rawRead(ctx, last, func(jetstream.Msg) error { n++; return nil })
	if err != nil {
		return err
	}
	raw := float64(n) / time.Since(start).Seconds()

	r.progress(Progress{Step: "verify: koers", Total: int64(last), Unit: "events"})
	start = time.Now()
	rp, err := r.store.Verify(ctx, eventstore.VerifyOptions{})
	if err != nil {
		return err
	}
	el := time.Since(start)
	if !rp.OK() {
		return fmt.Errorf("the generated log does not verify: %d problems, the first at %d: %s",
			len(rp.Problems)+rp.MoreProblems, rp.Problems[0].Sequence, rp.Problems[0].What)
	}
	rep.Figures[KeyVerify] = throughput(float64(rp.Checked)/el.Seconds(), raw, "events/s", "", int64(rp.Checked), el)
	return nil
}

// rawReadBuffer is how many messages the raw read holds ahead, as
// eventstore's Read does by default.
const rawReadBuffer = 1024

// rawRead calls fn with every message of the bench's stream up to last, in
// order, through an ordered consumer and nothing else.
func (r *run) rawRead(ctx context.Context, last uint64, fn func(jetstream.Msg) error) error {
	st, err := r.cfg.JS.Stream(ctx, r.stream)
	if err != nil {
		return fmt.Errorf("raw read: stream %s: %w", r.stream, err)
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return fmt.Errorf("raw read: ordered consumer: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(rawReadBuffer))
	if err != nil {
		return fmt.Errorf("raw read: %w", err)
	}
	defer it.Stop()
	// Bounded by last: every message has a higher sequence than the one before.
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return fmt.Errorf("raw read: %w", err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("raw read: metadata: %w", err)
		}
		if md.Sequence.Stream > last {
			return nil
		}
		if err := fn(msg); err != nil {
			return err
		}
		if md.Sequence.Stream == last {
			return nil
		}
	}
}

// errCopyDone ends the raw read feeding a COPY.
var errCopyDone = errors.New("copy done")

// rawReadCopy reads the stream up to last and copies one row per message
// (sequence, subject, body) into one table, streaming, and returns how
// many rows it copied.
func (r *run) rawReadCopy(ctx context.Context, last uint64) (int64, error) {
	conn, err := pgx.Connect(ctx, r.cfg.DatabaseURL)
	if err != nil {
		return 0, fmt.Errorf("raw copy: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	schema := pgx.Identifier{r.schema + "_raw"}.Sanitize()
	for _, sql := range []string{`CREATE SCHEMA ` + schema, `CREATE TABLE ` + schema + `.events (seq bigint, subject text, body bytea)`} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return 0, fmt.Errorf("raw copy: create table: %w", err)
		}
	}
	rows := make(chan []any, rawReadBuffer)
	readErr := make(chan error, 1)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(rows)
		readErr <- r.rawRead(rctx, last, func(m jetstream.Msg) error {
			md, err := m.Metadata()
			if err != nil {
				return err
			}
			select {
			case rows <- []any{int64(md.Sequence.Stream), m.Subject(), m.Data()}:
				return nil
			case <-rctx.Done():
				return errCopyDone
			}
		})
	}()
	n, err := conn.CopyFrom(ctx, pgx.Identifier{r.schema + "_raw", "events"}, []string{"seq", "subject", "body"},
		pgx.CopyFromFunc(func() ([]any, error) {
			row, ok := <-rows
			if !ok {
				return nil, nil
			}
			return row, nil
		}))
	cancel()
	for range rows { // let the reader end
	}
	if rerr := <-readErr; rerr != nil && !errors.Is(rerr, errCopyDone) {
		return 0, rerr
	}
	if err != nil {
		return 0, fmt.Errorf("raw copy: %w", err)
	}
	return n, nil
}

// measureRebuildRSS rebuilds the read models once more in a process of its
// own (Config.RebuildProcess) and takes that process's peak resident set
// size: the bench's own process holds the embedded NATS server and the
// generator's state, which a `koers rebuild` does not.
func (r *run) measureRebuildRSS(ctx context.Context, rep *Report) error {
	last, err := r.store.LastSequence(ctx)
	if err != nil {
		return err
	}
	if r.cfg.RebuildProcess == nil {
		rep.Figures[KeyRebuildRSS] = Figure{Koers: float64(rep.RebuildPeakRSSBytes) / (1 << 20), Unit: "MiB (in the bench's process)", Count: int64(last)}
		return nil
	}
	r.progress(Progress{Step: "rebuild: koers rebuild in a process of its own"})
	start := time.Now()
	peak, err := r.cfg.RebuildProcess(ctx, RebuildJob{Stream: r.stream, Prefix: r.prefix, SealKey: r.sealKey,
		DatabaseURL: r.cfg.DatabaseURL, Schema: r.schema, ReportingSchema: r.schema + "_reporting",
		NamesKey: r.namesKey, KeyBucket: r.keyBucket()})
	if err != nil {
		return fmt.Errorf("rebuild in a process of its own: %w", err)
	}
	rep.Figures[KeyRebuildRSS] = Figure{Koers: float64(peak) / (1 << 20), Unit: "MiB", Count: int64(last), Seconds: time.Since(start).Seconds()}
	return nil
}
