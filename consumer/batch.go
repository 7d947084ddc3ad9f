package consumer

import (
	"fmt"

	"koers/domain"
)

// Message is one stored message as the consumer judged it: a genuine event,
// or a message the log rejected.
type Message struct {
	// Event is the genuine event; the zero value when Rejected is set.
	Event domain.Recorded
	// Rejected is set for a message that is not a genuine event.
	Rejected *domain.RejectedError
}

// Seq is the message's stream sequence.
func (m Message) Seq() uint64 {
	if m.Rejected != nil {
		return m.Rejected.Sequence
	}
	return m.Event.Sequence
}

// size is what the message counts towards a batch's MaxBytes: its payload
// and reason, and a rough 64 bytes for the rest of it.
func (m Message) size() int {
	if m.Rejected != nil {
		return len(m.Rejected.Reason) + 64
	}
	return len(m.Event.Data) + len(m.Event.Meta.Reason) + 64
}

// MaxUnitMessages bounds the messages of one unit: the domain never writes
// a decision of more events (its decision.recorded included).
const MaxUnitMessages = domain.MaxEvents + 1

// Unit is what a handler gets whole, never split across batches: the
// messages of one decision (in stream order, normally ending with its
// decision.recorded; a rejected message in their midst stays with them), or
// one rejected message on its own.
type Unit struct {
	Messages []Message
	// Bytes is the unit's size as MaxBytes counts it: payloads, reasons
	// and a rough 64 bytes a message for the rest.
	Bytes int
}

// First is the unit's first stream sequence.
func (u Unit) First() uint64 { return u.Messages[0].Seq() }

// Last is the unit's last stream sequence.
func (u Unit) Last() uint64 { return u.Messages[len(u.Messages)-1].Seq() }

// Batch is what the handler commits at once, with its checkpoint
// [Batch.Last]: whole units in stream order, without holes between them.
type Batch struct {
	Units []Unit
	// Messages counts the messages of all units.
	Messages int
	// Bytes is the batch's size as MaxBytes counts it.
	Bytes int
}

// First is the batch's first stream sequence.
func (b Batch) First() uint64 { return b.Units[0].First() }

// Last is the batch's last stream sequence: the checkpoint to commit with it.
func (b Batch) Last() uint64 { return b.Units[len(b.Units)-1].Last() }

func (b *Batch) add(u Unit) {
	b.Units = append(b.Units, u)
	b.Messages += len(u.Messages)
	b.Bytes += u.Bytes
}

// UnitTooLargeError is returned when a decision has more messages before
// its decision.recorded than a decision can have: the log holds something
// this build cannot group, and reading on would hold it all in memory.
type UnitTooLargeError struct {
	DecisionID string
	First      uint64 // the decision's first sequence
	Max        int
}

func (e *UnitTooLargeError) Error() string {
	return fmt.Sprintf("decision %s (from sequence %d) has more than %d messages before its decision.recorded", e.DecisionID, e.First, e.Max)
}

// grouper gathers messages into units.
type grouper struct {
	pending Unit // messages of the decision not complete yet
}

// add takes the next message and returns the units it completed, in stream
// order: none, one, or two (the pending decision cut short, and m itself).
func (g *grouper) add(m Message) ([]Unit, error) {
	var done []Unit
	if len(g.pending.Messages) > 0 && m.Rejected == nil &&
		m.Event.Meta.DecisionID != g.pending.Messages[0].Event.Meta.DecisionID {
		// The pending decision's decision.recorded never came (it was
		// rejected): it ends here, on its own.
		done = append(done, g.pending)
		g.pending = Unit{}
	}
	if m.Rejected != nil && len(g.pending.Messages) == 0 {
		return append(done, Unit{Messages: []Message{m}, Bytes: m.size()}), nil
	}
	// A rejected message amid a decision's events stays with them: units
	// must follow one another without holes, and the decision's rest is
	// still to come.
	g.pending.Messages = append(g.pending.Messages, m)
	g.pending.Bytes += m.size()
	if m.Rejected == nil && domain.EndsAppend(m.Event.Type) {
		done = append(done, g.pending)
		g.pending = Unit{}
		return done, nil
	}
	if len(g.pending.Messages) > MaxUnitMessages {
		first := g.pending.Messages[0]
		return nil, &UnitTooLargeError{DecisionID: first.Event.Meta.DecisionID, First: first.Seq(), Max: MaxUnitMessages}
	}
	return done, nil
}
