package domain

import (
	"context"
	"errors"
	"fmt"
	"iter"
)

// This file is the log's contract in the domain's terms: what the packages
// that read or write the log (the command handler, the projector, the
// feeds, the API, the consumer they share) may ask of it and what they get
// back. The event store implements it; no package but the one that wires
// the program names the store's own types.

// LogReader is the ledger's log as its readers see it: every stored
// message in stream order.
type LogReader interface {
	// Read yields the log's events in order from sequence from (1 = the
	// beginning). A stored message that is not a genuine event is yielded
	// as a *RejectedError with a zero event; the caller may go on past it.
	// Any other error ends the read and wraps ErrLogUnavailable or the
	// context's error. A read that follows the live log (opts.Until 0) ends
	// without error when ctx ends; a bounded read that ctx cuts short yields
	// ctx's error.
	Read(ctx context.Context, from uint64, opts ReadOptions) iter.Seq2[Recorded, error]
	// LastSequence is the sequence of the last stored message, 0 when the
	// log is empty.
	LastSequence(ctx context.Context) (uint64, error)
	// Ledger names the ledger the log holds (the stream's name). It is
	// informative: the ledger's identity is its first message.
	Ledger() string
}

// ReadOptions bound a [LogReader.Read].
type ReadOptions struct {
	// Until stops the read after this sequence. 0: follow the live log until
	// the context ends.
	Until uint64
	// Buffer is how many messages the log's client holds ahead of the
	// reader. Default (0) 1024, at most 100,000.
	Buffer int
}

// ErrRejected is wrapped by every [*RejectedError]: a stored message that
// is not a genuine event. Readers record it and go on; it never stops a
// read.
var ErrRejected = errors.New("rejected")

// ErrLogUnavailable is wrapped by the errors of a log that could not be
// asked (its server is down or unreachable, it refused a read, a read ended
// although nobody asked it to). Nothing was read or written past what the
// caller already has: reading again from the last position is safe.
var ErrLogUnavailable = errors.New("the log is unavailable")

// RejectedError describes a stored message that is not a genuine event:
// malformed, with a hash that does not match its content, with a missing or
// wrong seal (a forgery), or on a subject other than the one it names.
// [LogReader.Read] yields it for such a message and goes on if the caller
// does. It wraps [ErrRejected].
type RejectedError struct {
	Sequence uint64
	Subject  string
	Reason   string
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("message %d on %s rejected: %s", e.Sequence, e.Subject, e.Reason)
}

func (e *RejectedError) Unwrap() error { return ErrRejected }

// LogError is a call to the log that failed for a reason of the log's own
// (not the caller's context, not a rejected message). It wraps
// [ErrLogUnavailable] and keeps what the log's client said as text only,
// so that no driver type travels beyond the store.
type LogError struct {
	// Op is what was asked: "read from 12", "last sequence".
	Op string
	// Cause is what the log's client or server answered.
	Cause string
}

func (e *LogError) Error() string { return e.Op + ": " + e.Cause }

// Unwrap makes a LogError both [ErrLogUnavailable] (the log in particular)
// and [ErrUnavailable] (any store), so that the API answers it 503.
func (e *LogError) Unwrap() []error { return []error{ErrLogUnavailable, ErrUnavailable} }

// History is one aggregate as the log holds it.
type History struct {
	Events []Recorded
	// Version is the sequence of the last message on the aggregate's
	// subject (0: none), the version to expect when appending to it.
	Version uint64
	// Cursor marks how far this history goes: loading after it returns
	// only what came later.
	Cursor Cursor
}

// Cursor is a position on one aggregate's subject: the last sequence read
// and the hash of the last genuine event up to it, so that reading on
// keeps checking the chain. Only the log that made a cursor reads its
// fields; others pass it back as it is.
type Cursor struct {
	Seq  uint64
	Hash string
}

// Version is the sequence the cursor stands at.
func (c Cursor) Version() uint64 { return c.Seq }

// AppendResult says where the events of one decision landed.
type AppendResult struct {
	DecisionID string
	// Sequences holds the stream sequence of each event, in the order given.
	Sequences []uint64
	// Duplicate is true when the decision had already been appended (a retry):
	// nothing new was written and Sequences are those of the first append.
	Duplicate bool
}

// Anchor is a position in the log and the digest of everything up to it:
// an auditor who keeps one can later prove that no message up to there was
// changed, removed or inserted. The log defines the digest.
type Anchor struct {
	// Sequence is the last message the digest covers (0: none).
	Sequence uint64 `json:"seq"`
	// Digest is the log's digest up to and including Sequence.
	Digest string `json:"digest"`
	// Prev is the digest up to Sequence-1, so that a check of the message
	// at Sequence alone needs nothing else.
	Prev string `json:"prev"`
}

// Anchorer is a log that computes anchors: Anchor extends from (the zero
// Anchor: the beginning) with the messages after it up to sequence to.
type Anchorer interface {
	Anchor(ctx context.Context, from Anchor, to uint64) (Anchor, error)
}

// ErrIntegrity is wrapped by the errors of a log that lost history or
// protection behind its writers' back (removed, shortened, an anchored
// message gone or changed, a setting weakened). Nothing more is written to
// it, and read models stop following it, until an operator has looked.
var ErrIntegrity = errors.New("ledger integrity")

// IntegrityChecker is a log that checks its own extent and settings.
type IntegrityChecker interface {
	// CheckIntegrity checks the log now, and against anchors kept
	// earlier; an error wrapping ErrIntegrity is a problem found (and
	// stops the log's writes), any other a check that could not be made.
	CheckIntegrity(ctx context.Context, anchors ...Anchor) error
	// Halted is the integrity problem found so far, nil while none was.
	Halted() error
}
