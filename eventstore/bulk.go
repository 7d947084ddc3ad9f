package eventstore

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"koers/domain"
)

// multiLastSubjects is how many subjects one multi-last direct get asks
// for: the server answers at most 1,024 messages per request.
const multiLastSubjects = 256

// loadManyConcurrency bounds the subjects walked at once by LoadMany.
const loadManyConcurrency = 8

// LoadMany returns the history of every ref, in order. It first asks the
// server for the last message of all their subjects in a few requests, so
// that an aggregate that does not exist yet (most of them in an import of
// new decisions: every decision's own record) costs no request of its own;
// only subjects that hold messages are walked, a bounded number at once.
// The answer comes from the server, never from the head cache: a bulk
// append re-decides on LoadMany after a conflict.
//
// Config.Timeout bounds each request, not the whole call: a window of 256
// moves of people loaded at once took more than 5 s on this busy machine.
func (s *Store) LoadMany(ctx context.Context, refs []domain.Ref) ([]History, error) {
	subjects := make([]string, len(refs))
	index := make(map[string]int, len(refs))
	for i, r := range refs {
		subj, err := s.Subject(r)
		if err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
		subjects[i] = subj
		index[subj] = i
	}
	exists := make([]bool, len(refs))
	for start := 0; start < len(subjects); start += multiLastSubjects {
		chunk := subjects[start:min(start+multiLastSubjects, len(subjects))]
		cctx, cancel := withTimeout(ctx, s.cfg.Timeout)
		err := s.lastMessages(cctx, chunk, func(m *jetstream.RawStreamMsg) bool {
			if i, ok := index[m.Subject]; ok {
				exists[i] = true
			}
			return true
		})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("load %d aggregates: %w", len(refs), err)
		}
	}
	out := make([]History, len(refs))
	errs := make([]error, len(refs))
	sem := make(chan struct{}, loadManyConcurrency)
	var wg sync.WaitGroup
	for i, r := range refs {
		if !exists[i] {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			lctx, cancel := withTimeout(ctx, s.cfg.Timeout)
			defer cancel()
			out[i], errs[i] = s.loadFrom(lctx, r, subjects[i], head{})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// sealAll seals every decision's envelopes, on at most GOMAXPROCS
// goroutines, and returns each decision's messages.
func (s *Store) sealAll(decisions []domain.Decided, envs [][]*envelope) ([][]*nats.Msg, error) {
	out := make([][]*nats.Msg, len(decisions))
	errs := make([]error, len(decisions))
	workers := min(runtime.GOMAXPROCS(0), len(decisions))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each decision is taken once.
			for di := int(next.Add(1) - 1); di < len(decisions); di = int(next.Add(1) - 1) {
				out[di], errs[di] = s.sealed(decisions[di].Meta, envs[di])
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// AppendMany appends several decisions in one atomic batch: all of them or
// none. expected holds the version of every aggregate the batch touches as
// the first of its decisions to touch it saw it; later decisions in the
// batch follow on from the earlier ones' events on the same subject, whose
// sequences nobody knows before the server has stored them. A stale
// version is domain.ErrConflict and nothing is written; so is a decision id
// the server has seen within its duplicate window. At most Config.MaxBatch
// messages in all.
//
// The batch goes to the server as it is, not through group commit: a bulk
// appender fills its batches itself.
func (s *Store) AppendMany(ctx context.Context, decisions []domain.Decided, expected map[domain.Ref]uint64) ([]AppendResult, error) {
	if err := s.Halted(); err != nil {
		return nil, fmt.Errorf("append %d decisions: %w", len(decisions), err)
	}
	ctx, cancel := withTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	total := 0
	for _, d := range decisions {
		total += len(d.Events)
	}
	switch {
	case len(decisions) == 0:
		return nil, nil
	case total > s.cfg.MaxBatch:
		return nil, &BatchTooLargeError{Events: total, Max: s.cfg.MaxBatch}
	}
	// Sealed like a single append: only with the ledger's key in force.
	if err := s.checkWriter(ctx); err != nil {
		return nil, fmt.Errorf("append %d decisions: %w", len(decisions), err)
	}
	keysSubj, _ := s.Subject(domain.LedgerKeysRef)

	// The subjects touched, in the order first touched, with the version
	// expected of each.
	var distinct []string
	want := map[string]uint64{}
	subjectsOf := make([][]string, len(decisions))
	for di, d := range decisions {
		if err := validToken("decision id", d.Meta.DecisionID, false); err != nil {
			return nil, fmt.Errorf("append: %w", err)
		}
		if len(d.Events) == 0 {
			return nil, fmt.Errorf("append decision %s: no events", d.Meta.DecisionID)
		}
		if d.Meta.Effective.IsZero() {
			return nil, fmt.Errorf("append decision %s: effective time is missing", d.Meta.DecisionID)
		}
		subjectsOf[di] = make([]string, len(d.Events))
		for i, ev := range d.Events {
			subj, err := s.Subject(ev.Aggregate)
			if err != nil {
				return nil, fmt.Errorf("append decision %s: event %d: %w", d.Meta.DecisionID, i, err)
			}
			if ev.Type == "" {
				return nil, fmt.Errorf("append decision %s: event %d: type is missing", d.Meta.DecisionID, i)
			}
			subjectsOf[di][i] = subj
			if subj == keysSubj {
				// A key rotation: the decisions after it must be sealed
				// with the new key, which this writer does not hold, so
				// it ends its batch; the next append asks the log which
				// key is in force.
				if di != len(decisions)-1 {
					return nil, fmt.Errorf("append decision %s: a ledger key rotation must be the last decision of its batch", d.Meta.DecisionID)
				}
				s.keys.markStale()
			}
			if _, seen := want[subj]; seen {
				continue
			}
			v, ok := expected[ev.Aggregate]
			if !ok {
				return nil, fmt.Errorf("append decision %s: event %d: no expected version for %s", d.Meta.DecisionID, i, ev.Aggregate)
			}
			want[subj] = v
			distinct = append(distinct, subj)
		}
	}

	// The chains go on from each subject's last genuine event. A cached
	// head that differs from the expected version is asked for again; a
	// real difference is a conflict, found before anything is sent.
	var existing []string
	for _, subj := range distinct {
		if want[subj] != 0 {
			existing = append(existing, subj)
		}
	}
	heads, err := s.heads(ctx, existing)
	if err != nil {
		return nil, fmt.Errorf("append %d decisions: %w", len(decisions), err)
	}
	var stale []string
	for _, subj := range existing {
		if heads[subj].seq != want[subj] {
			stale = append(stale, subj)
		}
	}
	if len(stale) > 0 {
		s.cache.forget(stale...)
		fresh, err := s.heads(ctx, stale)
		if err != nil {
			return nil, fmt.Errorf("append %d decisions: %w", len(decisions), err)
		}
		for _, subj := range stale {
			if fresh[subj].seq != want[subj] {
				return nil, fmt.Errorf("append %d decisions: %w (%s is at version %d, expected %d)",
					len(decisions), domain.ErrConflict, subj, fresh[subj].seq, want[subj])
			}
			heads[subj] = fresh[subj]
		}
	}
	prev := make(map[string]string, len(distinct))
	for _, subj := range existing {
		prev[subj] = heads[subj].hash
	}
	bases := make(map[string]head, len(distinct))
	for _, subj := range distinct {
		bases[subj] = head{seq: want[subj], hash: prev[subj]}
	}

	all := batch{subjects: make([]string, 0, total), hashes: make([]string, 0, total), bases: bases}
	envs := make([][]*envelope, len(decisions))
	for di, d := range decisions {
		var hashes []string
		if envs[di], hashes, err = chain(d.Meta, d.Events, subjectsOf[di], prev); err != nil {
			return nil, err
		}
		all.subjects = append(all.subjects, subjectsOf[di]...)
		all.hashes = append(all.hashes, hashes...)
	}
	// Every decision is sealed on its own: its own Merkle root over its
	// events' hashes and its own signature, as a single append seals it.
	// The signatures (about 76 µs each) are made on every core: chaining
	// needs the order, sealing does not.
	sealedMsgs, err := s.sealAll(decisions, envs)
	if err != nil {
		return nil, err
	}
	msgs := make([]*nats.Msg, 0, total)
	for di, dm := range sealedMsgs {
		// The decision id on its first message: the server's duplicate
		// window refuses the whole batch if it has seen it.
		dm[0].Header.Set(jetstream.MsgIDHeader, decisions[di].Meta.DecisionID)
		msgs = append(msgs, dm...)
	}
	// Expected versions on the first message of each subject only: the
	// server refuses an expectation on a subject the batch already wrote.
	seen := make(map[string]bool, len(distinct))
	for i, m := range msgs {
		if subj := all.subjects[i]; !seen[subj] {
			seen[subj] = true
			m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, fmt.Sprint(want[subj]))
		}
	}
	msgs[0].Header.Set(jetstream.ExpectedStreamHeader, s.cfg.Stream)
	all.msgs = msgs

	ack, err := jetstreamext.PublishMsgBatch(ctx, s.js, msgs)
	if err != nil {
		s.cache.forget(distinct...)
		if isConflict(err) || isDuplicate(err) {
			return nil, fmt.Errorf("append %d decisions: %w (the server said: %s)", len(decisions), domain.ErrConflict, driverMessage(err))
		}
		serr := serverError(fmt.Sprintf("append %d decisions", len(decisions)), err)
		if sent(err) {
			return nil, &OutcomeUnknownError{DecisionID: decisions[0].Meta.DecisionID, Err: serr}
		}
		return nil, serr
	}
	seqs := batchSequences(ack.Sequence, len(msgs))
	s.remember(all, seqs)
	s.wrote(seqs)
	out := make([]AppendResult, len(decisions))
	for di, d := range decisions {
		n := len(d.Events)
		out[di] = AppendResult{DecisionID: d.Meta.DecisionID, Sequences: seqs[:n:n]}
		seqs = seqs[n:]
	}
	return out, nil
}
