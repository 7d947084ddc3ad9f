package eventstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"koers/domain"
)

// Append records the events of one decision, all or nothing. expected holds
// the version every touched aggregate must have (its last subject sequence;
// 0: it must not exist yet). A stale version anywhere is domain.ErrConflict
// and nothing is written.
//
// The decision id is the idempotency key: appending a decision that already
// landed (a retry after a lost acknowledgement, for instance) returns the
// first append's sequences with Duplicate set, within the server's duplicate
// window and after it.
//
// When the messages were sent and no answer came (ctx ended while they
// were on their way, a lost connection, a server that went away), the
// error is an [*OutcomeUnknownError]: the decision may still land, and
// appending it again with the same id and expected versions answers which.
// Every other error means that nothing was written.
func (s *Store) Append(ctx context.Context, meta domain.Meta, events []domain.Event, expected map[domain.Ref]uint64) (AppendResult, error) {
	if err := s.Halted(); err != nil {
		return AppendResult{}, fmt.Errorf("append decision %s: %w", meta.DecisionID, err)
	}
	ctx, cancel := withTimeout(ctx, s.cfg.Timeout)
	defer cancel()

	b, err := s.prepare(ctx, meta, events, expected)
	if errors.Is(err, domain.ErrConflict) {
		return s.earlier(ctx, meta.DecisionID, b.subjects, err)
	}
	if err != nil {
		return AppendResult{}, err
	}
	msgs := b.msgs
	res := AppendResult{DecisionID: meta.DecisionID}
	var pubErr error
	if len(msgs) == 1 {
		var ack *jetstream.PubAck
		ack, pubErr = s.js.PublishMsg(ctx, msgs[0])
		if pubErr == nil {
			res.Sequences = []uint64{ack.Sequence}
			res.Duplicate = ack.Duplicate
			if !res.Duplicate {
				s.remember(b, res.Sequences)
				s.wrote(res.Sequences)
			}
			return res, nil
		}
	} else {
		var seqs []uint64
		seqs, pubErr = s.publishGrouped(ctx, b)
		if pubErr == nil {
			res.Sequences = seqs
			s.remember(b, res.Sequences)
			s.wrote(res.Sequences)
			return res, nil
		}
	}
	if isConflict(pubErr) || isDuplicate(pubErr) {
		s.cache.forget(b.subjects...)
		return s.earlier(ctx, meta.DecisionID, b.subjects, conflictError(meta.DecisionID, pubErr))
	}
	err = serverError("append decision "+meta.DecisionID, pubErr)
	if sent(pubErr) {
		// The heads of its subjects are unknown too.
		s.cache.forget(b.subjects...)
		return AppendResult{}, &OutcomeUnknownError{DecisionID: meta.DecisionID, Err: err}
	}
	return AppendResult{}, err
}

// sent reports whether a publish that failed with err may have stored its
// messages all the same: anything but a refusal with an API error code (the
// server answered) or a decision taken out of the queue before it was sent.
func sent(err error) bool {
	return apiCode(err) == 0 && !errors.Is(err, errNotSent)
}

// earlier answers a stale version or a duplicate id: a retry of a decision
// that landed before meets its own earlier success that way, and gets that
// result back. Any other decision gets conflict.
func (s *Store) earlier(ctx context.Context, decisionID string, subjects []string, conflict error) (AppendResult, error) {
	orig, found, err := s.lookupDecision(ctx, decisionID, subjects)
	if err != nil {
		return AppendResult{}, fmt.Errorf("append decision %s: look up an earlier append: %w", decisionID, err)
	}
	if found {
		return orig, nil
	}
	return AppendResult{}, conflict
}

// batchSequences spreads a batch's last sequence over its messages: the
// server stores an atomic batch as consecutive messages.
func batchSequences(last uint64, n int) []uint64 {
	seqs := make([]uint64, n)
	for i := range seqs {
		seqs[i] = last - uint64(n-1-i)
	}
	return seqs
}

// batch is a decision's events as messages, ready to send.
type batch struct {
	msgs     []*nats.Msg
	subjects []string // subject of each message
	hashes   []string // event hash of each message
	// bases is each subject's head just before the batch: the version the
	// server is told to expect, and the hash the batch chains to.
	bases map[string]head
}

// prepare validates a decision's events and builds their messages: every
// check that can fail happens here, before anything is sent.
func (s *Store) prepare(ctx context.Context, meta domain.Meta, events []domain.Event, expected map[domain.Ref]uint64) (batch, error) {
	return s.prepareGroup(ctx, []domain.Decided{{Meta: meta, Events: events}}, expected)
}

// prepareGroup builds the messages of several decisions, in order, as one
// batch: each aggregate's chain runs on from one decision to the next, and
// only the first message of each subject carries the expected version
// (the version before the whole group).
func (s *Store) prepareGroup(ctx context.Context, decisions []domain.Decided, expected map[domain.Ref]uint64) (batch, error) {
	if err := s.checkWriter(ctx); err != nil {
		return batch{}, fmt.Errorf("append decision %s: %w", decisions[0].Meta.DecisionID, err)
	}
	total := 0
	for _, d := range decisions {
		meta, events := d.Meta, d.Events
		if err := validToken("decision id", meta.DecisionID, false); err != nil {
			return batch{}, fmt.Errorf("append: %w", err)
		}
		if len(events) == 0 {
			return batch{}, fmt.Errorf("append decision %s: no events", meta.DecisionID)
		}
		if meta.Effective.IsZero() {
			return batch{}, fmt.Errorf("append decision %s: effective time is missing", meta.DecisionID)
		}
		total += len(events)
	}
	if total > s.cfg.MaxBatch {
		return batch{}, &BatchTooLargeError{Events: total, Max: s.cfg.MaxBatch}
	}
	first := decisions[0].Meta.DecisionID

	subjects := make([]string, 0, total)
	var distinct []string
	firstOf := make(map[string]domain.Ref, total)
	for _, d := range decisions {
		for i, ev := range d.Events {
			subj, err := s.Subject(ev.Aggregate)
			if err != nil {
				return batch{}, fmt.Errorf("append decision %s: event %d: %w", d.Meta.DecisionID, i, err)
			}
			if ev.Type == "" {
				return batch{}, fmt.Errorf("append decision %s: event %d: type is missing", d.Meta.DecisionID, i)
			}
			if _, ok := expected[ev.Aggregate]; !ok {
				return batch{}, fmt.Errorf("append decision %s: event %d: no expected version for %s", d.Meta.DecisionID, i, ev.Aggregate)
			}
			subjects = append(subjects, subj)
			if _, seen := firstOf[subj]; !seen {
				firstOf[subj] = ev.Aggregate
				distinct = append(distinct, subj)
			}
		}
	}

	if keysSubj, err := s.Subject(domain.LedgerKeysRef); err == nil && slices.Contains(distinct, keysSubj) {
		// A key rotation: the next append asks the log which key is in
		// force before it seals.
		s.keys.markStale()
	}

	// The chain needs the hash of the last genuine event on every subject,
	// and a subject whose last sequence already differs from the expected
	// version is a conflict we can report without sending anything.
	// A subject expected not to exist needs no look-up: its chain starts
	// empty, and the server refuses the append if it does exist after all.
	var existing []string
	for _, subj := range distinct {
		if expected[firstOf[subj]] != 0 {
			existing = append(existing, subj)
		}
	}
	heads, err := s.heads(ctx, existing)
	if err != nil {
		return batch{}, fmt.Errorf("append decision %s: %w", first, err)
	}
	// A cached head can be behind the server (another client wrote since):
	// a mismatch is only believed after asking the server once more.
	var stale []string
	for _, subj := range existing {
		if heads[subj].seq != expected[firstOf[subj]] {
			stale = append(stale, subj)
		}
	}
	if len(stale) > 0 {
		s.cache.forget(stale...)
		fresh, err := s.heads(ctx, stale)
		if err != nil {
			return batch{}, fmt.Errorf("append decision %s: %w", first, err)
		}
		maps.Copy(heads, fresh)
	}
	prev := make(map[string]string, len(distinct))
	for _, subj := range distinct {
		want := expected[firstOf[subj]]
		if want == 0 {
			continue
		}
		if h := heads[subj]; h.seq != want {
			return batch{subjects: distinct}, fmt.Errorf("append decision %s: %w (%s is at version %d, expected %d)",
				first, domain.ErrConflict, firstOf[subj], h.seq, want)
		}
		prev[subj] = heads[subj].hash
	}
	bases := make(map[string]head, len(distinct))
	for _, subj := range distinct {
		bases[subj] = head{seq: expected[firstOf[subj]], hash: prev[subj]}
	}

	msgs := make([]*nats.Msg, 0, total)
	hashes := make([]string, 0, total)
	for _, d := range decisions {
		dm, dh, err := s.encode(d.Meta, d.Events, subjects[len(msgs):len(msgs)+len(d.Events)], prev)
		if err != nil {
			return batch{}, err
		}
		// The decision id on its first message: the server's duplicate
		// window refuses the whole batch if it has seen it.
		dm[0].Header.Set(jetstream.MsgIDHeader, d.Meta.DecisionID)
		dm[0].Header.Set(jetstream.ExpectedStreamHeader, s.cfg.Stream)
		msgs = append(msgs, dm...)
		hashes = append(hashes, dh...)
	}
	// Expected versions go on the first event of each subject only: the
	// server refuses an expectation on a subject the batch already wrote.
	seen := make(map[string]bool, len(distinct))
	for i, msg := range msgs {
		if subj := subjects[i]; !seen[subj] {
			seen[subj] = true
			msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(expected[firstOf[subj]], 10))
		}
	}
	return batch{msgs: msgs, subjects: subjects, hashes: hashes, bases: bases}, nil
}

// encode builds the messages of one decision's events, sealed and chained:
// prev holds the hash of the last genuine event on each subject (absent: the
// subject's chain starts empty) and is moved on past every event encoded.
// Shared by single and bulk appends, so that both seal and chain alike.
func (s *Store) encode(meta domain.Meta, events []domain.Event, subjects []string, prev map[string]string) ([]*nats.Msg, []string, error) {
	envs, hashes, err := chain(meta, events, subjects, prev)
	if err != nil {
		return nil, nil, err
	}
	msgs, err := s.sealed(meta, envs)
	if err != nil {
		return nil, nil, err
	}
	return msgs, hashes, nil
}

// chain builds the envelopes of one decision's events and their hashes,
// each chained to the one before it on its subject (prev, moved on).
// Chaining is in order; sealing (sealed) is not, so a bulk append seals
// its decisions on every core.
func chain(meta domain.Meta, events []domain.Event, subjects []string, prev map[string]string) ([]*envelope, []string, error) {
	dm := decisionMeta{
		ID: meta.DecisionID, By: meta.By, Authority: meta.Authority, Reason: meta.Reason,
		Refs: meta.Refs, Effective: meta.Effective.UTC(),
	}
	envs := make([]*envelope, len(events))
	hashes := make([]string, len(events))
	for i, ev := range events {
		data, err := compactData(ev.Data)
		if err != nil {
			return nil, nil, fmt.Errorf("append decision %s: event %d: %w", meta.DecisionID, i, err)
		}
		sv := ev.SchemaVersion
		if sv == 0 {
			sv = 1
		}
		env := &envelope{
			V: envelopeVersion, ID: meta.DecisionID + "/" + strconv.Itoa(i),
			Type: ev.Type, SchemaVersion: sv, Subject: subjects[i], Decision: dm,
			Index: i, Count: len(events), Data: data, Prev: prev[subjects[i]],
		}
		env.finish()
		prev[subjects[i]] = env.Hash
		hashes[i] = env.Hash
		envs[i] = env
	}
	return envs, hashes, nil
}

// sealed seals one decision's envelopes (one signature over the Merkle
// root of their hashes) and encodes them as messages.
func (s *Store) sealed(meta domain.Meta, envs []*envelope) ([]*nats.Msg, error) {
	if err := seal(s.priv, envs); err != nil {
		return nil, fmt.Errorf("append decision %s: %w", meta.DecisionID, err)
	}
	msgs := make([]*nats.Msg, len(envs))
	for i, env := range envs {
		body, err := env.marshal()
		if err != nil {
			return nil, fmt.Errorf("append decision %s: event %d: encode: %w", meta.DecisionID, i, err)
		}
		msg := nats.NewMsg(env.Subject)
		msg.Data = body
		msgs[i] = msg
	}
	return msgs, nil
}

// AppendGroup records the events of several decisions in one atomic
// append, in order, all or nothing: a later decision's events on an
// aggregate follow an earlier one's (it was decided on the state they
// make). expected holds the version of every touched aggregate before the
// group. It answers one result per decision.
//
// A stale version anywhere is domain.ErrConflict and nothing is written;
// unlike [Store.Append] it does not look for an earlier append of any of
// the decisions (one of them may have landed before on its own: the
// caller looks them up). An append that went unanswered is an
// [*OutcomeUnknownError] naming the first decision: the group landed
// whole or not at all, so finding that one tells.
func (s *Store) AppendGroup(ctx context.Context, decisions []domain.Decided, expected map[domain.Ref]uint64) ([]AppendResult, error) {
	if len(decisions) == 0 {
		return nil, errors.New("append group: no decisions")
	}
	ctx, cancel := withTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	first := decisions[0].Meta.DecisionID
	b, err := s.prepareGroup(ctx, decisions, expected)
	if err != nil {
		return nil, err
	}
	seqs, pubErr := s.publishGrouped(ctx, b)
	if pubErr == nil {
		s.remember(b, seqs)
		out := make([]AppendResult, len(decisions))
		for i, d := range decisions {
			out[i] = AppendResult{DecisionID: d.Meta.DecisionID, Sequences: seqs[:len(d.Events)]}
			seqs = seqs[len(d.Events):]
		}
		return out, nil
	}
	s.cache.forget(b.subjects...)
	if isConflict(pubErr) || isDuplicate(pubErr) {
		return nil, conflictError(first, pubErr)
	}
	err = serverError("append decision "+first, pubErr)
	if sent(pubErr) {
		return nil, &OutcomeUnknownError{DecisionID: first, Err: err}
	}
	return nil, err
}

// remember puts the new heads of the written subjects in the cache, each
// with the head it had before the batch: the server accepted the batch
// only at that version, so the subject holds nothing between the two but
// the batch's own messages, and a read that meets the subject later (the
// projector following the log) starts its walk there instead of at the
// subject's first message (headBefore).
func (s *Store) remember(b batch, seqs []uint64) {
	first := make(map[string]uint64, len(b.bases))
	last := make(map[string]int, len(b.bases))
	for i, subj := range b.subjects {
		if _, ok := last[subj]; !ok {
			first[subj] = seqs[i]
		}
		last[subj] = i
	}
	for subj, i := range last {
		h := head{seq: seqs[i], hash: b.hashes[i]}
		if base, ok := b.bases[subj]; ok {
			h.before, h.first = &base, first[subj]
		}
		s.cache.put(subj, h)
	}
}

// lookupDecision finds an earlier append of decisionID. A decision that
// writes its own record (an event on the decision aggregate, as every domain
// decision does) is found with one direct get of that record. Any other is
// looked for among the events of the subjects it writes, walking their
// histories: slower, but only on this retry path.
func (s *Store) lookupDecision(ctx context.Context, decisionID string, subjects []string) (AppendResult, bool, error) {
	recordSubj, err := s.Subject(domain.Ref{Kind: domain.KindDecision, ID: decisionID})
	if err != nil {
		return AppendResult{}, false, err
	}
	var found AppendResult
	ok := false
	match := func(env *envelope, seq uint64) {
		if ok || env.Decision.ID != decisionID {
			return
		}
		first := seq - uint64(env.Index)
		found = AppendResult{DecisionID: decisionID, Sequences: batchSequences(first+uint64(env.Count-1), env.Count), Duplicate: true}
		ok = true
	}
	if slices.Contains(subjects, recordSubj) {
		// The record's first event is the decision's own; a later one on the
		// same subject (its retraction) belongs to another decision.
		m, err := s.firstMessage(ctx, recordSubj)
		if err != nil || m == nil {
			return AppendResult{}, false, err
		}
		if env, reason := s.check(m.Subject, m.Data, m.Sequence); reason == "" && env.Prev == "" {
			match(env, m.Sequence)
		}
		return found, ok, nil
	}
	for _, subj := range slices.Compact(slices.Sorted(slices.Values(subjects))) {
		if _, err := s.scan(ctx, subj, head{}, 0, func(env *envelope, m *jetstream.RawStreamMsg) { match(env, m.Sequence) }); err != nil {
			return AppendResult{}, false, err
		}
		if ok {
			break
		}
	}
	return found, ok, nil
}

// Lookup returns the result of an earlier append of a decision that wrote
// its own record on the decision aggregate (found false when there is none).
func (s *Store) Lookup(ctx context.Context, decisionID string) (AppendResult, bool, error) {
	ctx, cancel := withTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	subj, err := s.Subject(domain.Ref{Kind: domain.KindDecision, ID: decisionID})
	if err != nil {
		return AppendResult{}, false, fmt.Errorf("look up decision: %w", err)
	}
	res, found, err := s.lookupDecision(ctx, decisionID, []string{subj})
	if err != nil {
		return AppendResult{}, false, fmt.Errorf("look up decision %s: %w", decisionID, err)
	}
	return res, found, nil
}

// firstMessage returns the first message on a subject, nil when it has none.
func (s *Store) firstMessage(ctx context.Context, subj string) (*jetstream.RawStreamMsg, error) {
	msgs, err := jetstreamext.GetBatch(ctx, s.js, s.cfg.Stream, 1, jetstreamext.GetBatchSubject(subj))
	if err != nil {
		return nil, serverError("get first message", err)
	}
	for m, err := range msgs {
		if errors.Is(err, jetstreamext.ErrNoMessages) {
			return nil, nil
		}
		if err != nil {
			return nil, serverError("get first message", err)
		}
		return m, nil
	}
	return nil, nil
}

// lastMessages calls fn with the last message of each subject that has
// one, until fn returns false.
func (s *Store) lastMessages(ctx context.Context, subjects []string, fn func(*jetstream.RawStreamMsg) bool) error {
	msgs, err := jetstreamext.GetLastMsgsFor(ctx, s.js, s.cfg.Stream, subjects)
	if err != nil {
		return serverError("get last messages", err)
	}
	for m, err := range msgs {
		if errors.Is(err, jetstreamext.ErrNoMessages) {
			return nil
		}
		if err != nil {
			return serverError("get last messages", err)
		}
		if !fn(m) {
			return nil
		}
	}
	return nil
}
