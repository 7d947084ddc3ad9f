package ledger

import (
	"context"
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
// on what they are now before it appends. The optimistic check of the log
// stays: another process, or a decision that decided before queueing, can
// still have moved an aggregate on, and that is a conflict retried as
// before, within MaxAttempts.
//
// Measured with koers bench's contention key (8 and 64 clients, half of the
// decisions on 5 people, 5 teams and one budget): purely optimistic, rivals
// re-read, re-decided and re-appended in turn and the slowest gave up after
// 10 attempts (p99 in seconds, see the README's figures); queued, each
// decision waits once, in arrival order (a Go channel serves its waiting
// senders first come, first served).

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
	maxQueued int
	wait      time.Duration
}

// slot is one aggregate's turn: a buffered channel of one, held while a
// token is in it; users counts the holder and the waiters, so that the
// slot is dropped when nobody needs it.
type slot struct {
	turn  chan struct{}
	users int
}

func newQueue(maxQueued int, wait time.Duration) *queue {
	return &queue{slots: map[domain.Ref]*slot{}, maxQueued: maxQueued, wait: wait}
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
func (q *queue) acquire(ctx context.Context, h *held, refs []domain.Ref) (waited bool, err error) {
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
			if _, err := q.acquire(ctx, h, refs); err != nil {
				return false, err
			}
			return true, nil
		}
		w, err := q.wait1(ctx, r, start)
		if err != nil {
			h.release()
			return false, err
		}
		waited = waited || w
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
func (q *queue) wait1(ctx context.Context, r domain.Ref, start time.Time) (bool, error) {
	s, err := q.join(r, start)
	if err != nil {
		return false, err
	}
	select {
	case s.turn <- struct{}{}:
		return false, nil
	default:
	}
	select {
	case s.turn <- struct{}{}:
		return true, nil
	case <-ctx.Done():
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
