package eventstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"koers/domain"
)

// ErrIntegrity is wrapped by every [*IntegrityError]; it is
// domain.ErrIntegrity.
var ErrIntegrity = domain.ErrIntegrity

// IntegrityError says that the ledger's stream lost history or protection
// behind Koers' back: it was removed, shortened or trimmed, a message
// anchored earlier is gone or changed, or a setting that keeps history
// immutable was weakened. A store that found one refuses to append (see
// [Store.Check]): writing on would bury the evidence. It wraps
// [ErrIntegrity] and domain.ErrUnavailable (the API answers 503).
type IntegrityError struct {
	Stream   string
	Problems []string
}

func (e *IntegrityError) Error() string {
	return fmt.Sprintf("ledger %s lost integrity, writes stopped: %s", e.Stream, strings.Join(e.Problems, "; "))
}

func (e *IntegrityError) Unwrap() []error { return []error{ErrIntegrity, domain.ErrUnavailable} }

// watchState is what the store has seen of its stream: the highest last
// sequence, and the integrity problem that stopped its writes, if any.
type watchState struct {
	mu      sync.Mutex
	maxLast uint64
	halted  *IntegrityError
}

// Halted returns the [*IntegrityError] that stopped the store's writes,
// nil while none did.
func (s *Store) Halted() error {
	s.watch.mu.Lock()
	defer s.watch.mu.Unlock()
	if s.watch.halted == nil {
		return nil
	}
	return s.watch.halted
}

func (s *Store) halt(problems []string) *IntegrityError {
	s.watch.mu.Lock()
	defer s.watch.mu.Unlock()
	if s.watch.halted == nil {
		s.watch.halted = &IntegrityError{Stream: s.cfg.Stream, Problems: problems}
	} else {
		// Sticky: a stream that lost history stays suspect until an
		// operator has looked and started the process again.
		for _, p := range problems {
			if !containsString(s.watch.halted.Problems, p) && len(s.watch.halted.Problems) < 100 {
				s.watch.halted.Problems = append(s.watch.halted.Problems, p)
			}
		}
	}
	return s.watch.halted
}

func containsString(xs []string, x string) bool {
	for _, s := range xs {
		if s == x {
			return true
		}
	}
	return false
}

// StreamState is the stream's extent when it was checked.
type StreamState struct {
	First, Last uint64
	Messages    uint64
}

// Check asks the server for the stream's settings and state and compares
// them with what the ledger needs, with the highest last sequence this
// store has seen, and with anchors kept earlier (the read models' last):
// the stream must exist, keep every setting [Open] requires, start at
// sequence 1, hold every message from first to last, and reach and match
// each anchor (its last message checked against its digest; [Store.Verify]
// checks everything before it). A problem stops the store's writes for
// good and is returned as an [*IntegrityError]; a server that cannot be
// asked is a [*ServerError] and stops nothing.
func (s *Store) Check(ctx context.Context, anchors ...domain.Anchor) (StreamState, error) {
	ctx, cancel := withTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	// What the store had seen before it asked: an append acknowledged
	// while the request is in flight may be missing from the answer
	// without anything having been removed.
	seen := s.seenLast()
	info, err := s.js.Stream(ctx, s.cfg.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return StreamState{}, s.halt([]string{"the stream was removed"})
	}
	if err != nil {
		return StreamState{}, serverError("check stream "+s.cfg.Stream, err)
	}
	si := info.CachedInfo()
	st := StreamState{First: si.State.FirstSeq, Last: si.State.LastSeq, Messages: si.State.Msgs}
	var problems []string
	if err := checkStream(si.Config, s.want()); err != nil {
		for _, e := range unjoin(err) {
			problems = append(problems, "setting weakened: "+e.Error())
		}
	}
	problems = append(problems, s.stateProblems(si.State, seen)...)
	for _, a := range anchors {
		if a.Sequence > st.Last {
			problems = append(problems, fmt.Sprintf("the stream ends at %d, before the anchor at %d: history was removed", st.Last, a.Sequence))
			continue
		}
		p, err := s.checkAnchorMessage(ctx, a)
		if err != nil {
			return st, err
		}
		if p != "" {
			problems = append(problems, p)
		}
	}
	if len(problems) > 0 {
		return st, s.halt(problems)
	}
	return st, nil
}

// seenLast is the highest last sequence this store has seen so far.
func (s *Store) seenLast() uint64 {
	s.watch.mu.Lock()
	defer s.watch.mu.Unlock()
	return s.watch.maxLast
}

// stateProblems compares the stream's extent with what a ledger's must be
// and with seen, the most this store had seen before it asked for state
// (see [Store.seenLast]); it moves the most seen on to state's.
func (s *Store) stateProblems(state jetstream.StreamState, seen uint64) []string {
	var problems []string
	s.watch.mu.Lock()
	s.watch.maxLast = max(s.watch.maxLast, state.LastSeq)
	s.watch.mu.Unlock()
	if state.LastSeq < seen {
		problems = append(problems, fmt.Sprintf("the stream ends at %d, but reached %d before: history was removed", state.LastSeq, seen))
	}
	if state.Msgs > 0 && state.FirstSeq != 1 {
		problems = append(problems, fmt.Sprintf("the stream starts at %d, not 1: messages 1 to %d were removed", state.FirstSeq, state.FirstSeq-1))
	}
	if state.Msgs == 0 && state.LastSeq > 0 {
		problems = append(problems, fmt.Sprintf("the stream is empty but its last sequence is %d: every message was removed", state.LastSeq))
	}
	if state.Msgs > 0 && state.Msgs != state.LastSeq-state.FirstSeq+1 {
		problems = append(problems, fmt.Sprintf("the stream holds %d messages from %d to %d: %d were removed",
			state.Msgs, state.FirstSeq, state.LastSeq, state.LastSeq-state.FirstSeq+1-state.Msgs))
	}
	return problems
}

// wrote moves the highest last sequence seen on to what this store wrote.
func (s *Store) wrote(seqs []uint64) {
	if len(seqs) == 0 {
		return
	}
	s.watch.mu.Lock()
	s.watch.maxLast = max(s.watch.maxLast, seqs[len(seqs)-1])
	s.watch.mu.Unlock()
}

// CheckIntegrity is [Store.Check] in the domain's terms
// ([domain.IntegrityChecker]).
func (s *Store) CheckIntegrity(ctx context.Context, anchors ...domain.Anchor) error {
	_, err := s.Check(ctx, anchors...)
	return err
}

var _ domain.IntegrityChecker = (*Store)(nil)

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// WatchOptions configure [Store.Watch].
type WatchOptions struct {
	// Interval between checks. Default 10s, 100ms to 10m.
	Interval time.Duration
	// Anchors, if set, returns the anchors to check against each time
	// (the read models' last); an error from it is reported like a
	// server's and stops nothing.
	Anchors func(ctx context.Context) ([]domain.Anchor, error)
	// OnCheck is told of each check's integrity problem (nil: none
	// since the last call) or of a failed check; from Watch's goroutine.
	OnCheck func(err error)
}

// Watch checks the stream every interval until ctx ends (it returns nil).
// An integrity problem stops the store's writes ([Store.Check]); the watch
// goes on so that OnCheck keeps reporting it.
func (s *Store) Watch(ctx context.Context, o WatchOptions) error {
	if o.Interval == 0 {
		o.Interval = 10 * time.Second
	}
	if o.Interval < 100*time.Millisecond || o.Interval > 10*time.Minute {
		return fmt.Errorf("watch interval %s: want 100ms to 10m", o.Interval)
	}
	t := time.NewTicker(o.Interval)
	defer t.Stop()
	for {
		// Without the anchors (their database is down, say) the stream is
		// still checked; the anchors' error is reported when that passes.
		var anchors []domain.Anchor
		var aerr error
		if o.Anchors != nil {
			anchors, aerr = o.Anchors(ctx)
		}
		_, err := s.Check(ctx, anchors...)
		if err == nil {
			err = aerr
		}
		if ctx.Err() != nil {
			return nil
		}
		if o.OnCheck != nil {
			o.OnCheck(err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
