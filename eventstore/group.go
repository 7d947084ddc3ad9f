package eventstore

import (
	"context"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// Group commit. The server makes each atomic batch durable on its own,
// which costs about as much for one decision as for many, so decisions
// appended at the same time from several goroutines go out together: while
// one batch is on its way, the decisions that arrive queue up, and the next
// batch carries as many of them as fit (at most MaxBatch messages, never
// two decisions on the same aggregate, since a decision's expected version
// cannot name a sequence that the same batch only creates). A single
// writer waits for nothing: its decision goes out at once.
//
// If the combined batch is refused (a stale version or a known decision
// id in one of the decisions), each decision is sent again on its own, so
// that every caller gets its own answer and no decision fails for another's
// conflict.

// maxQueued bounds the decisions waiting for a batch.
const maxQueued = 4096

type groupReq struct {
	b   batch
	out chan groupOut // buffered: the leader never blocks on a caller
}

type groupOut struct {
	seqs []uint64
	err  error
}

type grouper struct {
	mu      sync.Mutex
	pending []*groupReq
	leading bool
	slots   chan struct{}
}

func newGrouper() *grouper { return &grouper{slots: make(chan struct{}, maxQueued)} }

// publishGrouped sends a decision's batch, alone or with others, and
// returns its sequences. The publish error of its own batch is returned
// as the server gave it, so that Append can tell conflicts apart.
func (s *Store) publishGrouped(ctx context.Context, b batch) ([]uint64, error) {
	g := s.group
	select {
	case g.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	r := &groupReq{b: b, out: make(chan groupOut, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, r)
	lead := !g.leading
	g.leading = true
	g.mu.Unlock()
	if lead {
		s.lead()
	}
	select {
	case o := <-r.out:
		return o.seqs, o.err
	case <-ctx.Done():
		// The batch may still land: a retry of the decision finds it.
		return nil, ctx.Err()
	}
}

// lead sends batches until nothing is queued. Bounded: every round answers
// at least one queued decision, and at most maxQueued can be queued.
func (s *Store) lead() {
	g := s.group
	for {
		g.mu.Lock()
		if len(g.pending) == 0 {
			g.leading = false
			g.mu.Unlock()
			return
		}
		var take []*groupReq
		g.pending, take = pick(g.pending, s.cfg.MaxBatch)
		g.mu.Unlock()
		s.flush(take)
		for range take {
			<-g.slots
		}
	}
}

// pick takes, in order, the queued decisions that fit one batch together:
// the first always, then any that touch none of the subjects taken so far.
func pick(pending []*groupReq, maxMsgs int) (rest, take []*groupReq) {
	used := map[string]bool{}
	msgs := 0
	for _, r := range pending {
		fits := len(take) == 0 || msgs+len(r.b.msgs) <= maxMsgs
		for _, subj := range r.b.subjects {
			if used[subj] {
				fits = false
			}
		}
		if !fits {
			rest = append(rest, r)
			continue
		}
		take = append(take, r)
		msgs += len(r.b.msgs)
		for _, subj := range r.b.subjects {
			used[subj] = true
		}
	}
	return rest, take
}

// flush sends the decisions of take as one atomic batch, or one by one
// when together they are refused.
func (s *Store) flush(take []*groupReq) {
	if len(take) == 1 {
		seqs, err := s.publishBatch(take[0].b.msgs)
		take[0].out <- groupOut{seqs, err}
		return
	}
	var all []*nats.Msg
	for _, r := range take {
		all = append(all, r.b.msgs...)
	}
	seqs, err := s.publishBatch(all)
	if err == nil {
		for _, r := range take {
			r.out <- groupOut{seqs: seqs[:len(r.b.msgs)]}
			seqs = seqs[len(r.b.msgs):]
		}
		return
	}
	if isConflict(err) || isDuplicate(err) {
		for _, r := range take {
			seqs, err := s.publishBatch(r.b.msgs)
			r.out <- groupOut{seqs, err}
		}
		return
	}
	for _, r := range take {
		r.out <- groupOut{err: fmt.Errorf("in a batch of %d decisions: %w", len(take), err)}
	}
}

// publishBatch sends msgs as one atomic batch, on a deadline of the
// store's own: the batch serves several callers, none of whose contexts
// may cut it short for the others.
func (s *Store) publishBatch(msgs []*nats.Msg) ([]uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
	defer cancel()
	for _, m := range msgs {
		m.Reply = "" // left by an earlier attempt's flow control
	}
	ack, err := jetstreamext.PublishMsgBatch(ctx, s.js, msgs)
	if err != nil {
		return nil, err
	}
	return batchSequences(ack.Sequence, len(msgs)), nil
}
