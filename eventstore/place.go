package eventstore

import (
	"context"
	"fmt"
	"strings"
)

// A sealed event counts only at its place: its prev names the hash of the
// last genuine event on its subject. A verbatim copy of a genuine message
// published again (a replay: no key needed, only the right to publish)
// carries a valid seal, but the prev of the original, which by then is no
// longer the last genuine hash on the subject. Load, Read and Verify apply
// this one rule, so that they agree on which messages are events: anything
// out of place is passed over like a forgery (Read yields a
// [*domain.RejectedError], Verify reports it, Load skips it) and the chain
// goes on from the last genuine event, so a foreign message never blocks
// the aggregate. It still takes a sequence on its subject, which is the
// version the next append expects.
//
// A message whose prev does chain could only have been written by a holder
// of the seal key. Since every event's id names its decision and its index,
// and a genuine decision's events chain to different predecessors, "its
// event id occurs once" follows from the chain for anyone without the key;
// Verify checks it over the whole log all the same.

// chains tracks, for the subjects a read has met, the hash of the last
// genuine event. A subject it has not met yet is asked of before: nil
// means the read started at the beginning of the log, so its chain is
// empty.
type chains struct {
	last   map[string]string
	before func(subject string) (string, error)
}

func newChains(before func(subject string) (string, error)) *chains {
	return &chains{last: make(map[string]string), before: before}
}

// place says why a sealed, well-formed event is not genuine at its place
// ("" when it is) and, when it is, moves the subject's chain on to it.
func (c *chains) place(subject string, env *envelope) (string, error) {
	last, ok := c.last[subject]
	if !ok && c.before != nil {
		var err error
		if last, err = c.before(subject); err != nil {
			return "", err
		}
	}
	if env.Prev != last {
		c.last[subject] = last
		return outOfPlace(env.Prev, last), nil
	}
	// A copy: the decoder's strings share the message's whole body, and a
	// read keeps one hash per subject to its end (a rebuild of 1M events
	// held a body per aggregate: 370 MiB).
	c.last[subject] = strings.Clone(env.Hash)
	return "", nil
}

// outOfPlace is the reason given for a sealed event whose prev is not the
// last genuine event on its subject.
func outOfPlace(prev, last string) string {
	if last == "" {
		return fmt.Sprintf("out of place (a replay?): prev is %s but the subject has no genuine event before it", short(prev))
	}
	return fmt.Sprintf("out of place (a replay?): prev is %q, the last genuine event on the subject has %q", short(prev), short(last))
}

// headBefore returns the subject's head as of sequence until: the last
// genuine event's hash up to there, walking the subject from the cached
// head when that lies before until, or else from the head before the
// append that moved it there when that does (with no request when until
// lies between the two). A reader that follows the
// live log meets subjects this process has just appended to, whose cached
// head lies after until: walking those from their first message made the
// projector's lag grow with the history (a person's whole history walked
// for each move, serially, on the read path: 4 s of each 5 s measured).
func (s *Store) headBefore(ctx context.Context, subject string, until uint64) (head, error) {
	start := head{}
	if h, ok := s.cache.get(subject); ok {
		switch {
		case h.seq <= until:
			start = h
		case h.before != nil && h.before.seq <= until && until < h.first:
			// Nothing on the subject between the two: no request at all.
			// Each one waits for the stream's lock behind the appends
			// being synced, and the read asks serially.
			return head{seq: h.before.seq, hash: h.before.hash}, nil
		case h.before != nil && h.before.seq <= until:
			start = *h.before
		}
	}
	return s.scan(ctx, subject, start, until, nil)
}
