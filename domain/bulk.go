package domain

import "time"

// Decided is one decision with the events it produced, ready to append.
type Decided struct {
	Meta   Meta
	Events []Event
}

// DecideState is [Decide] that also returns the state every aggregate it
// produced events for is left in, for a caller that decides many decisions
// in a row against one world in memory (a bulk apply): each next decision
// sees the effects of the ones before without reading the log again. The
// returned aggregates keep w's versions; the caller moves them on once the
// log has recorded the events. w is not modified.
func DecideState(w World, d Decision, now time.Time) ([]Event, map[Ref]Aggregate, error) {
	k, evs, err := decide(w, d, now, modeDirect)
	if err != nil {
		return nil, nil, err
	}
	return evs, k.cur, nil
}
