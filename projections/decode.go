package projections

import (
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	gojson "github.com/goccy/go-json"

	"koers/consumer"
	"koers/domain"
)

// recordedDecision is what the decision log keeps of a decision.recorded.
// Its changes and effects go into jsonb columns as they were recorded:
// decoding every change into a [domain.Change] (through a map of its
// fields) and encoding it again, as [domain.DecodeEventData] and the
// decision log once did, was a third of a rebuild's decoding time and most
// of its allocations, for the same JSON (TestDecisionLogKeepsChangesAsDecoded).
type recordedDecision struct {
	ID             string             `json:"id"`
	By             string             `json:"by"`
	Authority      string             `json:"authority"`
	Reason         string             `json:"reason"`
	Refs           []string           `json:"refs"`
	Effective      time.Time          `json:"effective"`
	Changes        json.RawMessage    `json:"changes"`
	Effects        json.RawMessage    `json:"effects"`
	Retracts       string             `json:"retracts"`
	AuthorityChain []domain.ChainLink `json:"authority_chain"`
	Approvers      []string           `json:"approvers"`

	// kinds are the kinds of the changes, each once, in order of first
	// appearance; aggregates the decision's own aggregate and then those
	// its effects touched, each once.
	kinds, aggregates []string
}

// changeKinds are the kinds of change this build knows: a decision with
// another is unreadable, as its domain decoding would say.
var changeKinds = domain.ChangeKinds()

// decodeDecision decodes the decision.recorded r for the decision log:
// the one place the projector reads that payload. It decodes with
// goccy/go-json, as the event store decodes envelopes: the payload holds
// every change and effect of the decision, the largest JSON a projector
// reads (BenchmarkProjectorDecode).
func decodeDecision(r domain.Recorded) (*recordedDecision, error) {
	if r.Type != domain.EventDecisionRecorded || r.Aggregate.Kind != domain.KindDecision {
		return nil, &domain.UnknownEventError{Type: r.Type, Aggregate: r.Aggregate}
	}
	e, err := domain.Upcast(r.Event)
	if err != nil {
		return nil, err
	}
	var d recordedDecision
	if err := gojson.Unmarshal(e.Data, &d); err != nil {
		return nil, fmt.Errorf("event %s on %s: decode payload: %w", e.Type, e.Aggregate, err)
	}
	var changes []struct {
		Kind *string `json:"kind"`
	}
	if len(d.Changes) > 0 {
		if err := gojson.Unmarshal(d.Changes, &changes); err != nil {
			return nil, fmt.Errorf("decision %s: changes: %w", d.ID, err)
		}
	}
	d.kinds = []string{}
	for i, c := range changes {
		if c.Kind == nil {
			return nil, fmt.Errorf("decision %s: change %d has no kind", d.ID, i)
		}
		if _, known := slices.BinarySearch(changeKinds, *c.Kind); !known {
			return nil, fmt.Errorf("decision %s: change %d: unknown kind %q", d.ID, i, *c.Kind)
		}
		if !contains(d.kinds, *c.Kind) {
			d.kinds = append(d.kinds, *c.Kind)
		}
	}
	var effects []struct {
		Aggregate string `json:"aggregate"`
	}
	if len(d.Effects) > 0 {
		if err := gojson.Unmarshal(d.Effects, &effects); err != nil {
			return nil, fmt.Errorf("decision %s: effects: %w", d.ID, err)
		}
	}
	d.aggregates = []string{domain.Ref{Kind: domain.KindDecision, ID: d.ID}.String()}
	for _, e := range effects {
		if !contains(d.aggregates, e.Aggregate) {
			d.aggregates = append(d.aggregates, e.Aggregate)
		}
	}
	return &d, nil
}

// jsonOrNull is raw, or JSON null for a field that was absent, as
// encoding a nil slice gives.
func jsonOrNull(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "null"
	}
	return string(raw)
}

// decodePayload decodes the payload of r as the projector applies it: the
// one function every event's payload goes through on its way into the
// read models, live or rebuilt (a decision.recorded by decodeDecision,
// any other event into its domain payload).
func decodePayload(r domain.Recorded) (any, error) {
	if r.Type == domain.EventDecisionRecorded {
		return decodeDecision(r)
	}
	return domain.DecodeEventData(r)
}

// decoded is a message's payload decoded ahead of applying it, or why it
// could not be (reported when the message is applied, as if decoded then).
type decoded struct {
	v   any
	err error
}

// Bounds of decodeBatch.
const (
	// parallelDecodeEvents: a batch of fewer events is decoded on the
	// projector's goroutine; starting workers costs more than it saves.
	parallelDecodeEvents = 1000
	// maxDecodeWorkers bounds the goroutines that decode one batch.
	maxDecodeWorkers = 8
)

// decodeBatch decodes the payloads of a batch's events before it is
// applied: out[i][j] is units[i].Messages[j]'s (zero for a rejected
// message). A large batch is decoded by up to GOMAXPROCS workers
// (at most maxDecodeWorkers), each taking the next unit; applying stays in
// stream order on one goroutine.
func decodeBatch(units []consumer.Unit) [][]decoded {
	out := make([][]decoded, len(units))
	events := 0
	for _, u := range units {
		events += len(u.Messages)
	}
	decodeUnit := func(i int) {
		msgs := units[i].Messages
		ds := make([]decoded, len(msgs))
		for j, m := range msgs {
			if m.Rejected == nil {
				ds[j].v, ds[j].err = decodePayload(m.Event)
			}
		}
		out[i] = ds
	}
	workers := min(runtime.GOMAXPROCS(0), maxDecodeWorkers, len(units))
	if events < parallelDecodeEvents || workers < 2 {
		for i := range units {
			decodeUnit(i)
		}
		return out
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Bounded by the units: each round takes one.
			for {
				i := int(next.Add(1)) - 1
				if i >= len(units) {
					return
				}
				decodeUnit(i)
			}
		}()
	}
	wg.Wait()
	return out
}
