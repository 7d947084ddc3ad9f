package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"koers/domain"
)

// Per-aggregate queueing. Decisions that write the same aggregates in one
// process go one after another instead of racing each other optimistically:
// a decision decides once, queues for every aggregate its events write, and
// when it had to wait (someone before it was changing them) decides again
// on what they are now before it appends; the holder may take it into its
// own append instead (group.go). The optimistic check of the log stays:
// another process, or a decision that decided before queueing, can still
// have moved an aggregate on, and that is a conflict retried as before,
// within MaxAttempts.
//
// Measured with koers bench's contention keys (half of the decisions on 5
// people and one budget): purely optimistic, rivals re-read, re-decided
// and re-appended in turn: p99 1.7–4.0 s with 8 clients and 10.8–16.3 s
// with 64, of whom 24–36 gave up after 10 attempts in 5 s. Queued, each
// decision waits in arrival order (a Go channel serves its waiting senders
// first come, first served); with the holder's grouping, p99 0.15–0.3 s
// and 0.47–0.9 s, nobody giving up (the README's figures).

// BusyError is returned when a decision waited longer than
// [Options].QueueWait for an aggregate that other decisions of this process
// were changing, or found more than [Options].MaxQueued waiting for it. It
// wraps domain.ErrUnavailable: nothing was written, try again.
type BusyError struct {
	Ref     domain.Ref
	Waiting int           // decisions queued for it when this one gave up
	Waited  time.Duration // how long this one waited
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("%s is busy: %d decisions queued for it, waited %s", e.Ref, e.Waiting, e.Waited.Round(time.Millisecond))
}

func (e *BusyError) Unwrap() error { return domain.ErrUnavailable }

// queue hands out each aggregate to one decision at a time.
type queue struct {
	mu        sync.Mutex
	slots     map[domain.Ref]*slot
	waiters   map[domain.Ref][]*waiter // decisions a holder may claim, by what they wait for, in order
	maxQueued int
	wait      time.Duration
}

// waiter is a decision waiting in the queue, which the holder of the
// aggregate it waits for may take into its own append (group.go).
type waiter struct {
	d      domain.Decision
	writes []domain.Ref // what its last decision wrote
	hold   *held        // what it holds meanwhile
	answer chan groupAnswer

	// Guarded by queue.mu.
	on      domain.Ref    // what it waits for
	listed  bool          // in queue.waiters
	claimed chan struct{} // closed when a holder claims it
}

// groupAnswer is what a holder answers a claimed waiter: its result, a
// final error, or again: decide on your own.
type groupAnswer struct {
	res   Result
	err   error
	again bool
}

// errClaimed says that a holder took the decision into its append.
var errClaimed = errors.New("claimed by the holder")

// slot is one aggregate's turn: a buffered channel of one, held while a
// token is in it; users counts the holder and the waiters, so that the
// slot is dropped when nobody needs it.
type slot struct {
	turn  chan struct{}
	users int
}

func newQueue(maxQueued int, wait time.Duration) *queue {
	return &queue{slots: map[domain.Ref]*slot{}, waiters: map[domain.Ref][]*waiter{}, maxQueued: maxQueued, wait: wait}
}

// held is the aggregates one decision holds in the queue.
type held struct {
	q    *queue
	refs []domain.Ref // sorted
}

// covers reports whether every ref is held.
func (h *held) covers(refs []domain.Ref) bool {
	for _, r := range refs {
		if _, ok := slices.BinarySearchFunc(h.refs, r, compareRef); !ok {
			return false
		}
	}
	return true
}

// release gives up every aggregate held.
func (h *held) release() {
	for _, r := range h.refs {
		h.q.leave(r, true)
	}
	h.refs = nil
}

// acquire makes h hold exactly refs and reports whether it had to wait.
// Two decisions must never wait for each other, so aggregates are waited
// for in one global order: what h holds already and still needs is kept,
// an aggregate ordered after everything kept is waited for, and one
// ordered before is taken only if it is free at once; otherwise h lets go
// of everything and queues for all of refs in order. Keeping its place
// matters: a person's move writes the team the person is in, which other
// moves change while the decision waits, and a decision that queued
// afresh each time was overtaken again and again (p99 4.5 s at 64 clients
// in koers bench's contention). On an error h holds nothing.
//
// A waiter w, if given, may be claimed by the holder of the aggregate it
// waits for (see group.go): acquire then returns errClaimed, with h still
// holding what it held, and the answer comes on w.answer.
func (q *queue) acquire(ctx context.Context, h *held, refs []domain.Ref, w *waiter) (waited bool, err error) {
	h.q = q
	refs = slices.Compact(slices.SortedFunc(slices.Values(refs), compareRef))
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, q.wait)
	defer cancel()
	// Let go of what is no longer needed.
	kept := h.refs[:0]
	for _, r := range h.refs {
		if _, ok := slices.BinarySearchFunc(refs, r, compareRef); ok {
			kept = append(kept, r)
		} else {
			q.leave(r, true)
		}
	}
	h.refs = kept
	for _, r := range refs {
		if _, ok := slices.BinarySearchFunc(h.refs, r, compareRef); ok {
			continue
		}
		if n := len(h.refs); n > 0 && compareRef(r, h.refs[n-1]) < 0 {
			if q.try(r) {
				h.refs = slices.Insert(h.refs, insertAt(h.refs, r), r)
				continue
			}
			// Out of order and taken: start again, in order.
			h.release()
			if _, err := q.acquire(ctx, h, refs, w); err != nil {
				return false, err
			}
			return true, nil
		}
		waitedFor, err := q.wait1(ctx, r, start, w)
		if errors.Is(err, errClaimed) {
			return false, err
		}
		if err != nil {
			h.release()
			return false, err
		}
		waited = waited || waitedFor
		h.refs = append(h.refs, r)
	}
	return waited, nil
}

// insertAt returns where r goes in the sorted refs.
func insertAt(refs []domain.Ref, r domain.Ref) int {
	i, _ := slices.BinarySearchFunc(refs, r, compareRef)
	return i
}

// try takes r's turn if it is free at once.
func (q *queue) try(r domain.Ref) bool {
	s, err := q.join(r, time.Now())
	if err != nil {
		return false
	}
	select {
	case s.turn <- struct{}{}:
		return true
	default:
		q.leave(r, false)
		return false
	}
}

// wait1 waits for r's turn, within ctx, and reports whether it waited.
// While it waits, w (if not nil) is listed for r's holder to claim.
func (q *queue) wait1(ctx context.Context, r domain.Ref, start time.Time, w *waiter) (bool, error) {
	s, err := q.join(r, start)
	if err != nil {
		return false, err
	}
	select {
	case s.turn <- struct{}{}:
		return false, nil
	default:
	}
	var claimed chan struct{}
	if w != nil {
		claimed = make(chan struct{})
		q.mu.Lock()
		w.on, w.claimed, w.listed = r, claimed, true
		q.waiters[r] = append(q.waiters[r], w)
		q.mu.Unlock()
	}
	// unlist takes w off the list unless a holder claimed it first.
	unlist := func() (wasClaimed bool) {
		if w == nil {
			return false
		}
		q.mu.Lock()
		defer q.mu.Unlock()
		if !w.listed {
			return true
		}
		q.unlist(w)
		return false
	}
	select {
	case s.turn <- struct{}{}:
		if unlist() {
			q.leave(r, true) // claimed meanwhile: the turn goes on
			return false, errClaimed
		}
		return true, nil
	case <-claimed:
		q.leave(r, false)
		return false, errClaimed
	case <-ctx.Done():
		if unlist() {
			q.leave(r, false)
			return false, errClaimed // its answer comes all the same
		}
		q.mu.Lock()
		waiting := s.users - 1
		q.mu.Unlock()
		q.leave(r, false)
		if context.Cause(ctx) == context.DeadlineExceeded && time.Since(start) >= q.wait {
			return false, &BusyError{Ref: r, Waiting: waiting, Waited: time.Since(start)}
		}
		return false, fmt.Errorf("wait for %s: %w", r, ctx.Err())
	}
}

// unlist takes w off the list of what it waits for. Call with q.mu held.
func (q *queue) unlist(w *waiter) {
	q.waiters[w.on] = slices.DeleteFunc(q.waiters[w.on], func(x *waiter) bool { return x == w })
	if len(q.waiters[w.on]) == 0 {
		delete(q.waiters, w.on)
	}
	w.listed = false
}

// claim takes, in the order they came, up to max decisions waiting for
// what h holds whose last decision wrote nothing outside what h or they
// hold, or what nobody holds (which the holder may still take: it is
// checked again once they are decided anew). A claimed waiter stops
// waiting and is answered by the holder.
func (q *queue) claim(h *held, max int) []*waiter {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []*waiter
	for _, r := range h.refs {
		for _, w := range slices.Clone(q.waiters[r]) {
			if len(out) == max {
				return out
			}
			ok := true
			for _, x := range w.writes {
				if !h.covers([]domain.Ref{x}) && !w.hold.covers([]domain.Ref{x}) && q.slots[x] != nil {
					ok = false
					break
				}
			}
			if !ok {
				continue
			}
			q.unlist(w)
			close(w.claimed)
			out = append(out, w)
		}
	}
	return out
}

// cover makes sure that what refs names is held by h or by other, taking
// what is free at once for h. It reports whether it could.
func (q *queue) cover(h, other *held, refs []domain.Ref) bool {
	for _, r := range refs {
		if h.covers([]domain.Ref{r}) || other.covers([]domain.Ref{r}) {
			continue
		}
		if !q.try(r) {
			return false
		}
		h.refs = slices.Insert(h.refs, insertAt(h.refs, r), r)
	}
	return true
}

// join counts a new user of r's slot, refusing one more than maxQueued
// waiting.
func (q *queue) join(r domain.Ref, start time.Time) (*slot, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.slots[r]
	if s == nil {
		s = &slot{turn: make(chan struct{}, 1)}
		q.slots[r] = s
	}
	if s.users > q.maxQueued { // the holder and maxQueued waiters
		return nil, &BusyError{Ref: r, Waiting: s.users - 1, Waited: time.Since(start)}
	}
	s.users++
	return s, nil
}

// leave ends a user of r's slot; holding: it had its turn, which is handed
// on.
func (q *queue) leave(r domain.Ref, holding bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.slots[r]
	if holding {
		<-s.turn
	}
	s.users--
	if s.users == 0 {
		delete(q.slots, r)
	}
}

func compareRef(a, b domain.Ref) int {
	if a.Kind != b.Kind {
		if a.Kind < b.Kind {
			return -1
		}
		return 1
	}
	switch {
	case a.ID < b.ID:
		return -1
	case a.ID > b.ID:
		return 1
	}
	return 0
}

// writes returns the aggregates events write, but for the decision's own
// record, which no other decision writes while it is being taken.
func writes(id string, events []domain.Event) []domain.Ref {
	own := domain.Ref{Kind: domain.KindDecision, ID: id}
	refs := make([]domain.Ref, 0, len(events))
	for _, e := range events {
		if e.Aggregate != own {
			refs = append(refs, e.Aggregate)
		}
	}
	return refs
}
