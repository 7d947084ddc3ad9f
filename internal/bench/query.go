package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"koers/projections"
)

// percentile returns the p-th percentile (0..100) of sorted durations, in
// milliseconds, by the nearest rank.
func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	i = min(max(i, 0), len(sorted)-1)
	return float64(sorted[i]) / float64(time.Millisecond)
}

// measureAsOf times the organisation at random valid and recorded times
// over the whole history.
func (r *run) measureAsOf(ctx context.Context, rep *Report) error {
	from, to := r.gen.genesis, r.gen.effective
	knownFrom, knownTo := r.gen.firstAt, r.gen.lastAt
	lat := make([]time.Duration, 0, r.cfg.Queries)
	start := time.Now()
	for i := range r.cfg.Queries {
		if i%10 == 0 {
			r.progress(Progress{Step: "as_of", Done: int64(i), Total: int64(r.cfg.Queries), Unit: "queries"})
		}
		at := projections.At{
			AsOf:    from.Add(time.Duration(r.gen.rng.Int64N(int64(to.Sub(from)) + 1))),
			KnownAt: knownFrom.Add(time.Duration(r.gen.rng.Int64N(int64(knownTo.Sub(knownFrom)) + 1))),
		}
		t := time.Now()
		if _, err := r.db.Organisation(ctx, at, projections.Page{}); err != nil {
			return err
		}
		lat = append(lat, time.Since(t))
	}
	el := time.Since(start)
	slices.Sort(lat)
	rep.Figures[KeyAsOf] = Figure{Koers: percentile(lat, 95), Unit: "ms (p95)",
		P50: percentile(lat, 50), P95: percentile(lat, 95), P99: percentile(lat, 99),
		Count: int64(len(lat)), Seconds: el.Seconds()}
	return nil
}

// visibility measures, for each appended decision, the time from its
// acknowledgement to the projector's checkpoint reaching it.
type visibility struct {
	mu      sync.Mutex
	cp      uint64
	pending []ack
	lat     []time.Duration
}

type ack struct {
	seq uint64
	at  time.Time
}

// acked records an acknowledged decision whose last message is seq.
func (v *visibility) acked(seq uint64, at time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if seq <= v.cp {
		v.lat = append(v.lat, 0) // visible before the acknowledgement was seen
		return
	}
	v.pending = append(v.pending, ack{seq, at})
}

// committed is the projector's OnCommit.
func (v *visibility) committed(cp uint64) {
	now := time.Now()
	v.mu.Lock()
	defer v.mu.Unlock()
	v.cp = max(v.cp, cp)
	kept := v.pending[:0]
	for _, a := range v.pending {
		if a.seq <= v.cp {
			v.lat = append(v.lat, now.Sub(a.at))
		} else {
			kept = append(kept, a)
		}
	}
	v.pending = kept
}

func (v *visibility) waiting() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.pending)
}

// lagSettle bounds the wait for the projector to show the last decisions
// after the appends stop.
const lagSettle = 30 * time.Second

// measureLag appends single-move decisions at LagRate per second from
// Writers writers for LagDuration with a projector following, and times
// each from its acknowledgement to its visibility in the read models.
func (r *run) measureLag(ctx context.Context, rep *Report) error {
	var v visibility
	opts := r.cfg.Projector
	onCommit := opts.OnCommit
	opts.OnCommit = func(cp uint64) {
		v.committed(cp)
		if onCommit != nil {
			onCommit(cp)
		}
	}
	proj, err := projections.NewProjector(r.db, r.store, opts)
	if err != nil {
		return err
	}
	if err := proj.CatchUp(ctx); err != nil {
		return err
	}
	cp, err := r.db.Checkpoint(ctx)
	if err != nil {
		return err
	}
	v.committed(cp)
	pctx, stopProjector := context.WithCancel(ctx)
	projDone := make(chan error, 1)
	go func() { projDone <- proj.Run(pctx) }()
	defer func() {
		stopProjector()
		<-projDone
	}()

	// A ticker hands out the decisions; a writer that is busy leaves its
	// tick to another, and ticks no writer takes are dropped, so the rate
	// achieved says whether the writers kept up.
	r.progress(Progress{Step: fmt.Sprintf("lag: %d decisions/s for %s", r.cfg.LagRate, r.cfg.LagDuration)})
	ticks := make(chan struct{}, r.cfg.Writers)
	errs := make([]error, r.cfg.Writers)
	var done atomic.Int64
	wctx, stopWriters := context.WithCancel(ctx)
	defer stopWriters()
	var wg sync.WaitGroup
	for w := range r.cfg.Writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			set := r.sets[1+w]
			for range ticks {
				res, err := r.handler.Submit(wctx, set.next())
				if err != nil {
					errs[w] = err
					stopWriters()
					return
				}
				v.acked(res.Sequences[len(res.Sequences)-1], time.Now())
				done.Add(1)
			}
		}()
	}
	interval := time.Second / time.Duration(r.cfg.LagRate)
	ticker := time.NewTicker(interval)
	start := time.Now()
	deadline := time.NewTimer(r.cfg.LagDuration)
	var projErr error
loop:
	for {
		select {
		case <-ticker.C:
			select {
			case ticks <- struct{}{}:
			default:
			}
		case <-deadline.C:
			break loop
		case <-wctx.Done():
			break loop
		case projErr = <-projDone:
			projDone <- projErr // for the deferred stop
			break loop
		}
	}
	ticker.Stop()
	close(ticks)
	wg.Wait()
	el := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if projErr != nil {
		return fmt.Errorf("projector: %w", projErr)
	}
	// Bounded by lagSettle.
	settle := time.Now().Add(lagSettle)
	for v.waiting() > 0 && time.Now().Before(settle) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	if n := v.waiting(); n > 0 {
		return fmt.Errorf("%d decisions still not visible %s after the last append", n, lagSettle)
	}
	v.mu.Lock()
	lat := slices.Clone(v.lat)
	v.mu.Unlock()
	slices.Sort(lat)
	rep.Figures[KeyLag] = Figure{Koers: percentile(lat, 99), Unit: "ms (p99)",
		P50: percentile(lat, 50), P95: percentile(lat, 95), P99: percentile(lat, 99),
		Rate: float64(done.Load()) / el.Seconds(), Count: int64(len(lat)), Seconds: el.Seconds()}
	return nil
}
