package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"koers/domain"
)

// Appending queued decisions together. A decision that holds an aggregate
// in the queue does not leave the decisions waiting for it to append one
// after another: it decides them too, each on the state the ones before
// it make, and appends them all in one atomic batch (the log chains
// their events and expects only the versions before the group). Every
// atomic batch costs the server a sync to disk, so one decision per batch
// on a hot aggregate was its ceiling: koers bench's contention at 64
// clients, a quarter of them shifting funds in one budget, answered in a
// p99 of 3.5 s with queueing alone, most of it waiting in that budget's
// line. A decision it cannot take along (its decision fails on that state,
// it writes what the holder cannot take at once, the group would be too
// large) decides on its own, as before. If the batch fails, every
// decision in it decides on its own again: none of them was recorded.

// maxGroup bounds the decisions one holder takes into its append.
const maxGroup = 64

// member is a claimed waiter and the events decided for it.
type member struct {
	w      *waiter
	events []domain.Event
}

// gather claims the decisions waiting for what hold holds and decides
// them on world after d's events, in order. world is changed: it holds the
// state after the group, with every aggregate still at the version it was
// loaded at (what the group expects). Those it cannot take along are told
// to decide again on their own.
func (h *Handler) gather(ctx context.Context, world domain.World, d domain.Decision, events []domain.Event, hold *held) []member {
	claimed := h.queue.claim(hold, maxGroup)
	if len(claimed) == 0 {
		return nil
	}
	now := h.opts.Now()
	if err := evolve(world, d, events, now); err != nil {
		for _, w := range claimed {
			w.answer <- groupAnswer{again: true}
		}
		return nil
	}
	// What they ask for first is loaded at once, not one decision after
	// the other while everything they wait for is held. (Aggregates in
	// world already are kept: they hold the group's state.)
	var refs []domain.Ref
	for _, w := range claimed {
		refs = append(refs, domain.Plan(w.d)...)
	}
	if err := h.load(ctx, world, slices.Compact(slices.SortedFunc(slices.Values(refs), compareRef))); err != nil {
		for _, w := range claimed {
			w.answer <- groupAnswer{again: true}
		}
		return nil
	}
	total := len(events)
	var members []member
	for _, w := range claimed {
		evs, err := h.decideOn(ctx, world, w.d, domain.Plan(w.d))
		ok := err == nil && total+len(evs) <= domain.MaxEvents &&
			h.queue.cover(hold, w.hold, writes(w.d.ID, evs)) && evolve(world, w.d, evs, now) == nil
		if !ok {
			w.answer <- groupAnswer{again: true}
			continue
		}
		members = append(members, member{w: w, events: evs})
		total += len(evs)
	}
	return members
}

// evolve folds d's events into world as if they were recorded, keeping
// each aggregate's version.
func evolve(world domain.World, d domain.Decision, events []domain.Event, now time.Time) error {
	meta := d.Meta()
	next := domain.World{}
	for i, e := range events {
		a, ok := next[e.Aggregate]
		if !ok {
			a = world[e.Aggregate]
		}
		a, err := domain.Evolve(a, domain.Recorded{Event: e, Meta: meta, EventID: d.ID + "/" + strconv.Itoa(i),
			Sequence: world[e.Aggregate].Version, RecordedAt: now})
		if err != nil {
			return fmt.Errorf("decision %s: fold %s: %w", d.ID, e.Aggregate, err)
		}
		a.Ref = e.Aggregate
		next[e.Aggregate] = a
	}
	for ref, a := range next {
		world[ref] = a
	}
	return nil
}

// appendGroup appends d and its members in one atomic batch and answers
// the members. It returns d's result, or an error wrapping
// domain.ErrConflict when none of them was recorded and d may try again.
func (h *Handler) appendGroup(ctx context.Context, d domain.Decision, events []domain.Event, members []member, expected map[domain.Ref]uint64) (domain.AppendResult, error) {
	group := make([]domain.Decided, 0, 1+len(members))
	group = append(group, domain.Decided{Meta: d.Meta(), Events: events})
	for _, m := range members {
		group = append(group, domain.Decided{Meta: m.w.d.Meta(), Events: m.events})
	}
	results, err := h.store.AppendGroup(ctx, group, expected)
	if errors.Is(err, domain.ErrOutcomeUnknown) {
		results, err = h.resolveGroup(ctx, group, expected, err)
	}
	var unresolved *UnresolvedError
	for i, m := range members {
		switch {
		case err == nil:
			m.w.answer <- groupAnswer{res: toResult(results[i+1])}
		case errors.As(err, &unresolved):
			// In the batch with d: as unknown as d's.
			u := *unresolved
			u.DecisionID = m.w.d.ID
			m.w.answer <- groupAnswer{err: &u}
		default:
			// Nothing was recorded: it decides again on its own.
			m.w.answer <- groupAnswer{again: true}
		}
	}
	if err != nil {
		return domain.AppendResult{}, err
	}
	return results[0], nil
}

// resolveGroup is resolve for a group, which lands whole or not at all:
// its first decision's record tells.
func (h *Handler) resolveGroup(ctx context.Context, group []domain.Decided, expected map[domain.Ref]uint64, cause error) ([]domain.AppendResult, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.opts.ResolveFor)
	defer cancel()
	first := group[0].Meta.DecisionID
	pause := resolvePause
	for try := 0; try < maxResolveTries; try++ {
		if try > 0 {
			t := time.NewTimer(pause)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, &UnresolvedError{DecisionID: first, Tries: try, Waited: time.Since(start), Err: cause}
			case <-t.C:
			}
			pause = min(2*pause, resolvePauseMax)
		}
		callCtx, callCancel := context.WithTimeout(ctx, resolveCallTimeout)
		results, err := h.lookupGroup(callCtx, group)
		if err == nil && results == nil {
			results, err = h.store.AppendGroup(callCtx, group, expected)
			if errors.Is(err, domain.ErrConflict) {
				// Perhaps because the first append landed after the
				// look-up: look again. Not there: it never will be.
				var again []domain.AppendResult
				again, lerr := h.lookupGroup(callCtx, group)
				switch {
				case lerr != nil:
					err = lerr
				case again != nil:
					results, err = again, nil
				}
			}
		}
		callCancel()
		switch {
		case err == nil:
			for i := range results {
				results[i].Duplicate = false
			}
			return results, nil
		case errors.Is(err, domain.ErrConflict):
			return nil, err
		case errors.Is(err, domain.ErrOutcomeUnknown), errors.Is(err, domain.ErrUnavailable),
			errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
			cause = err
		default:
			return nil, err
		}
	}
	return nil, &UnresolvedError{DecisionID: first, Tries: maxResolveTries, Waited: time.Since(start), Err: cause}
}

// lookupGroup returns the results of a group that landed, nil if it did
// not.
func (h *Handler) lookupGroup(ctx context.Context, group []domain.Decided) ([]domain.AppendResult, error) {
	out := make([]domain.AppendResult, len(group))
	for i, g := range group {
		res, found, err := h.store.Lookup(ctx, g.Meta.DecisionID)
		if err != nil {
			return nil, err
		}
		if !found {
			if i == 0 {
				return nil, nil
			}
			// An atomic append lands whole: a replica behind answered
			// (see sameDecision), and what landed is not known yet.
			return nil, fmt.Errorf("decision %s is not recorded, while %s of the same atomic append is: %w",
				g.Meta.DecisionID, group[0].Meta.DecisionID, domain.ErrOutcomeUnknown)
		}
		if err := h.sameDecision(ctx, g.Meta.DecisionID, g.Events); err != nil {
			return nil, err
		}
		out[i] = res
	}
	return out, nil
}
