package eventstore

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"koers/domain"
)

// Load returns the genuine events and the version of one aggregate, each
// at its type's current schema version (domain.Upcast; an event no
// upcaster can bring there is an error wrapping domain.ErrSchemaVersion). It asks
// the server for the subject's messages directly, in batches, without
// creating a consumer. Messages that are not genuine events (forgeries, and
// sealed events out of place such as replays: see place.go) are skipped and
// the chain goes on from the last genuine event; they still count for the
// version, which is the subject's last sequence, so that appends succeed.
func (s *Store) Load(ctx context.Context, ref domain.Ref) (History, error) {
	ctx, cancel := withTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	subj, err := s.Subject(ref)
	if err != nil {
		return History{}, fmt.Errorf("load: %w", err)
	}
	return s.loadFrom(ctx, ref, subj, head{})
}

// LoadAfter returns the genuine events of one aggregate after cursor c (from
// an earlier History of the same aggregate), its version and a new cursor.
// With nothing new it costs one direct get.
func (s *Store) LoadAfter(ctx context.Context, ref domain.Ref, c Cursor) (History, error) {
	ctx, cancel := withTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	subj, err := s.Subject(ref)
	if err != nil {
		return History{}, fmt.Errorf("load: %w", err)
	}
	return s.loadFrom(ctx, ref, subj, head{seq: c.Seq, hash: c.Hash})
}

func (s *Store) loadFrom(ctx context.Context, ref domain.Ref, subj string, from head) (History, error) {
	var h History
	hd, err := s.scan(ctx, subj, from, 0, func(env *envelope, m *jetstream.RawStreamMsg) {
		h.Events = append(h.Events, env.recorded(ref, m.Sequence, m.Time))
	})
	if err != nil {
		return History{}, fmt.Errorf("load %s: %w", ref, err)
	}
	// Checked as written (above), returned at the current schema versions:
	// whoever decides on a history reads every payload in today's shape.
	for i := range h.Events {
		if h.Events[i].Event, err = domain.Upcast(h.Events[i].Event); err != nil {
			return History{}, fmt.Errorf("load %s: sequence %d: %w", ref, h.Events[i].Sequence, err)
		}
	}
	h.Version, h.Cursor = hd.seq, Cursor{Seq: hd.seq, Hash: hd.hash}
	return h, nil
}

// probeMessages is how many messages scan reads with single direct gets
// before it asks for a batch: most loads find none or a few new messages,
// and a single get needs no subscription of its own.
const probeMessages = 4

// scan walks the messages on one subject in order after from, up to
// sequence until (0: to the end), calls fn for each genuine event and
// returns the subject's head there. A message that is not a genuine event
// at its place is passed over: never returned, Verify reports it.
func (s *Store) scan(ctx context.Context, subj string, from head, until uint64, fn func(*envelope, *jetstream.RawStreamMsg)) (head, error) {
	hd := head{seq: from.seq, hash: from.hash} // before is about from, not what the walk finds
	next := from.seq + 1
	// accept takes the next message and says whether the walk goes on.
	accept := func(m *jetstream.RawStreamMsg) bool {
		if until > 0 && m.Sequence > until {
			return false
		}
		next = m.Sequence + 1
		hd.seq = m.Sequence
		env, reason := s.check(m.Subject, m.Data, m.Sequence)
		if reason != "" || env.Prev != hd.hash {
			return true
		}
		hd.hash = env.Hash
		if fn != nil {
			fn(env, m)
		}
		return true
	}
	for range probeMessages {
		m, err := s.stream.GetMsg(ctx, next, jetstream.WithGetMsgSubject(subj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			s.cache.put(subj, hd)
			return hd, nil
		}
		if err != nil {
			return head{}, serverError("get next message", err)
		}
		if !accept(m) {
			s.cache.put(subj, hd)
			return hd, nil
		}
	}
	// Bounded by the subject's length: every round moves next past the
	// messages it returned and stops when a round comes back short.
	for {
		msgs, err := jetstreamext.GetBatch(ctx, s.js, s.cfg.Stream, s.cfg.LoadBatch,
			jetstreamext.GetBatchSeq(next), jetstreamext.GetBatchSubject(subj))
		if err != nil {
			return head{}, serverError("get batch", err)
		}
		n, more := 0, true
		for m, err := range msgs {
			if errors.Is(err, jetstreamext.ErrNoMessages) {
				break
			}
			if err != nil {
				return head{}, serverError("get batch", err)
			}
			n++
			if more = accept(m); !more {
				break
			}
		}
		if !more || n < s.cfg.LoadBatch {
			break
		}
	}
	s.cache.put(subj, hd)
	return hd, nil
}

// check decodes a stored message and says why it is not a genuine event
// ("" when it is).
func (s *Store) check(subject string, body []byte, seq uint64) (*envelope, string) {
	env, err := decodeEnvelope(body)
	if err != nil {
		return nil, err.Error()
	}
	if env.Subject != subject {
		return nil, fmt.Sprintf("envelope names subject %s", env.Subject)
	}
	if reason := s.sealReason(env, seq); reason != "" {
		return nil, reason
	}
	return env, ""
}

// head is what an append needs of a subject: its last sequence and the hash
// of its last genuine event.
type head struct {
	seq  uint64
	hash string
	// before, when known, is the head before the append that moved the
	// subject here, and first that append's first sequence on the subject
	// (see Store.remember).
	before *head
	first  uint64
}

// heads returns the head of every subject, from the cache where it can and
// with one direct-get request for the others.
func (s *Store) heads(ctx context.Context, subjects []string) (map[string]head, error) {
	out := make(map[string]head, len(subjects))
	var misses []string
	for _, subj := range subjects {
		if h, ok := s.cache.get(subj); ok {
			out[subj] = h
		} else {
			out[subj] = head{}
			misses = append(misses, subj)
		}
	}
	if len(misses) == 0 {
		return out, nil
	}
	// The last message on a subject may be sealed and still not genuine
	// (a replay of an earlier event): only a walk of the subject finds the
	// last genuine event. The ledger loads what it appends to, which fills
	// the cache, so a miss is rare: a subject new to this process.
	for _, subj := range misses {
		h, err := s.scan(ctx, subj, head{}, 0, nil)
		if err != nil {
			return nil, fmt.Errorf("subject %s: %w", subj, err)
		}
		out[subj] = h
	}
	for _, subj := range misses {
		s.cache.put(subj, out[subj])
	}
	return out, nil
}

// headCache remembers subject heads so that an append right after a load
// needs no extra round trip. It can only be stale in one direction (behind
// the server), and the server's expected-sequence check catches that.
//
// It keeps the heads used recently, in two generations: an entry read or
// written goes into the current one; when that holds half the bound, the
// previous generation (what nobody used since) is dropped and the current
// one takes its place. Evicting an arbitrary entry instead dropped the hot
// subjects too: a bulk apply of 100,000 decisions writes a new subject per
// decision (its record), and once those filled the cache the teams every
// batch appends to were evicted and their heads found by walking their
// whole history, a cost that grew with the run (1.2 s of every 20 batches
// after 65,000 decisions, measured with koers bench apply_bulk).
type headCache struct {
	mu       sync.Mutex
	max      int
	cur, old map[string]head
}

func newHeadCache(max int) *headCache {
	return &headCache{max: max, cur: map[string]head{}, old: map[string]head{}}
}

func (c *headCache) get(subj string) (head, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h, ok := c.cur[subj]; ok {
		return h, true
	}
	h, ok := c.old[subj]
	if ok {
		delete(c.old, subj)
		c.insert(subj, h)
	}
	return h, ok
}

func (c *headCache) put(subj string, h head) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old, ok := c.cur[subj]
	if !ok {
		old, ok = c.old[subj]
	}
	if ok && old.seq > h.seq {
		return // never move a head backwards
	}
	delete(c.old, subj)
	c.insert(subj, h)
}

// insert puts subj in the current generation, keeping both together
// within max. c.mu is held.
func (c *headCache) insert(subj string, h head) {
	if _, ok := c.cur[subj]; !ok {
		if len(c.cur) >= max(1, c.max/2) {
			c.old, c.cur = c.cur, make(map[string]head, max(1, c.max/2))
		}
		for k := range c.old { // bounded by one deletion per insertion
			if len(c.cur)+len(c.old) < c.max {
				break
			}
			delete(c.old, k)
		}
	}
	c.cur[subj] = h
}

func (c *headCache) forget(subjects ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range subjects {
		delete(c.cur, s)
		delete(c.old, s)
	}
}
