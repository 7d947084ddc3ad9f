package eventstore

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"koers/domain"
)

// Read yields the stream's events in order from sequence from (1 = the
// beginning), through an ordered consumer that the server drops when the
// read ends; it is the store's side of [domain.LogReader]. A message that
// is not a genuine event (a forgery, or a sealed event out of place such as
// a replay: see place.go) is yielded as a [*domain.RejectedError] (with a
// zero event); the caller may go on past it. A read that starts after the
// beginning learns where each subject's chain stands when it first meets
// the subject, with a walk of the subject's earlier messages; it keeps one
// hash per subject met. Any other error ends the read:
// ctx's error, or a [*domain.LogError] (wrapping
// [domain.ErrLogUnavailable]) for whatever the NATS client said. A read
// that follows the live stream ends without error when ctx is done; a
// bounded read (Until > 0) that ctx cuts short yields ctx's error.
func (s *Store) Read(ctx context.Context, from uint64, opts domain.ReadOptions) iter.Seq2[domain.Recorded, error] {
	return func(yield func(domain.Recorded, error) bool) {
		ch := s.readChains(ctx, from)
		err := s.readChecked(ctx, from, opts, func(m *checkedMsg) error {
			env, reason := m.env, m.reason
			if reason == "" {
				var err error
				if reason, err = ch.place(m.subject, env); err != nil {
					return err
				}
			}
			if reason != "" {
				if !yield(domain.Recorded{}, &domain.RejectedError{Sequence: m.seq, Subject: m.subject, Reason: reason}) {
					return errStop
				}
				return nil
			}
			ref, ok := s.refOf(m.subject)
			if !ok {
				if !yield(domain.Recorded{}, &domain.RejectedError{Sequence: m.seq, Subject: m.subject, Reason: "subject is not <prefix>.<kind>.<id>"}) {
					return errStop
				}
				return nil
			}
			if !yield(env.recorded(ref, m.seq, m.at), nil) {
				return errStop
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			yield(domain.Recorded{}, err)
		}
	}
}

// readChains is the chain state of a read from sequence from.
func (s *Store) readChains(ctx context.Context, from uint64) *chains {
	if from <= 1 {
		return newChains(nil)
	}
	return newChains(func(subject string) (string, error) {
		cctx, cancel := withTimeout(ctx, s.cfg.Timeout)
		defer cancel()
		h, err := s.headBefore(cctx, subject, from-1)
		if err != nil {
			op := fmt.Sprintf("chain of %s before %d", subject, from)
			if ctx.Err() != nil {
				return "", fmt.Errorf("%s: %w", op, ctx.Err())
			}
			return "", &domain.LogError{Op: op, Cause: err.Error()}
		}
		return h.hash, nil
	})
}

// errStop ends a raw read because the reader asked to.
var errStop = errors.New("stop")

type rawMsg struct {
	seq     uint64
	at      time.Time
	subject string
	body    []byte
}

// readRaw calls fn for each stored message from sequence from, in order.
func (s *Store) readRaw(ctx context.Context, from uint64, opts domain.ReadOptions, fn func(rawMsg) error) error {
	if from == 0 {
		from = 1
	}
	if opts.Until > 0 && opts.Until < from {
		return nil
	}
	if opts.Buffer == 0 {
		opts.Buffer = 1024
	}
	if opts.Buffer < 1 || opts.Buffer > 100_000 {
		return fmt.Errorf("read: buffer %d: want 1 to 100000: %w", opts.Buffer, domain.ErrInvalid)
	}
	cctx, cancel := withTimeout(ctx, s.cfg.Timeout)
	cons, err := s.stream.OrderedConsumer(cctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   from,
	})
	cancel()
	op := fmt.Sprintf("read from %d", from)
	if err != nil {
		return logError(ctx, op+": create ordered consumer", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(opts.Buffer))
	if err != nil {
		return logError(ctx, op, err)
	}
	defer it.Stop()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				if opts.Until > 0 {
					return fmt.Errorf("read from %d: %w", from, ctx.Err())
				}
				return nil
			}
			return logError(ctx, op, err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return logError(ctx, op+": message metadata", err)
		}
		seq := md.Sequence.Stream
		if opts.Until > 0 && seq > opts.Until {
			return nil
		}
		if err := fn(rawMsg{seq: seq, at: md.Timestamp, subject: msg.Subject(), body: msg.Data()}); err != nil {
			return err
		}
		// A bounded read also ends at the last message stored: messages
		// removed from the end of a damaged stream are never waited for.
		if opts.Until > 0 && seq >= opts.Until {
			return nil
		}
		if opts.Until > 0 && md.NumPending == 0 {
			// A consumer's count of what is pending can lag behind the
			// stream on a cluster (a replica catching up after a leader
			// change): whether a message is stored after seq decides.
			cctx, cancel := withTimeout(ctx, s.cfg.Timeout)
			_, err := s.stream.GetMsg(cctx, seq+1, jetstream.WithGetMsgSubject(s.cfg.Prefix+".>"))
			cancel()
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				return nil
			}
			if err != nil {
				return logError(ctx, op+": next message", err)
			}
		}
	}
}

// refOf parses <prefix>.<kind>.<id> back into an aggregate.
func (s *Store) refOf(subject string) (domain.Ref, bool) {
	rest, ok := strings.CutPrefix(subject, s.cfg.Prefix+".")
	if !ok {
		return domain.Ref{}, false
	}
	kind, id, ok := strings.Cut(rest, ".")
	if !ok || kind == "" || id == "" || strings.Contains(id, ".") {
		return domain.Ref{}, false
	}
	return domain.Ref{Kind: domain.AggregateKind(kind), ID: id}, true
}

// logError translates an error of the NATS client into the domain's terms:
// ctx's error when the caller's context ended the call, else a
// [*domain.LogError] that keeps the client's words but not its types.
func logError(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", op, ctx.Err())
	}
	return &domain.LogError{Op: op, Cause: driverMessage(err)}
}
