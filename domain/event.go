package domain

import (
	"encoding/json"
	"time"
)

// AggregateKind names a consistency boundary. It is also the second token of
// the aggregate's subject in the log (koers.<kind>.<id>).
type AggregateKind string

// The aggregates of the ledger.
const (
	KindValueStream AggregateKind = "valuestream"
	KindProduct     AggregateKind = "product"
	KindTeam        AggregateKind = "team"
	KindPerson      AggregateKind = "person"
	KindProject     AggregateKind = "project"
	KindBudget      AggregateKind = "budget"
	KindMandate     AggregateKind = "mandate"
	// KindDecision holds one record per decision: it makes a decision id
	// unique in the log and keeps what a retraction needs to undo.
	KindDecision AggregateKind = "decision"
	// KindBoard is a group of people that holds mandates with a quorum.
	KindBoard AggregateKind = "board"
	// KindProposal is a decision under a board's mandate waiting for its
	// approvals; its id is the decision's.
	KindProposal AggregateKind = "proposal"
)

// Ref names one aggregate instance.
type Ref struct {
	Kind AggregateKind
	ID   string
}

func (r Ref) String() string { return string(r.Kind) + ":" + r.ID }

// Event is a fact a decision produced, before the log has recorded it.
type Event struct {
	Aggregate Ref
	// Type names the fact, past tense: "product.launched".
	Type string
	// SchemaVersion of Data; starts at 1 and grows when Data's shape changes.
	SchemaVersion int
	// Data is the JSON payload of the fact.
	Data json.RawMessage
}

// Meta is what every event of one decision carries about that decision.
type Meta struct {
	DecisionID string
	By         string // the actor
	Authority  string // the mandate the decision was taken under
	Reason     string
	Refs       []string
	// Effective is the valid time: when the decision takes effect.
	Effective time.Time
}

// Recorded is an event as the log holds it. Sequence and RecordedAt come
// from the log (the JetStream server), never from the client.
type Recorded struct {
	Event
	Meta       Meta
	EventID    string
	Sequence   uint64
	RecordedAt time.Time
}
