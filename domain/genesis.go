package domain

import (
	"fmt"
	"time"
)

// RootMandate is the id of the mandate a new ledger starts with, and
// GenesisDecision the id of the decision that grants it.
const (
	RootMandate     = "root"
	GenesisDecision = "genesis"
)

// Genesis is the first decision of a new ledger: it grants the root mandate
// (every kind, whole organisation, no limit) to rootActor. It is the only
// decision taken without prior authority; append its events with expected
// version 0 (the ledger must be empty).
func Genesis(rootActor string, effective time.Time) (Decision, []Event, error) {
	if err := ValidID(rootActor); err != nil {
		return Decision{}, nil, &FieldError{Field: "root actor", Err: err}
	}
	if effective.IsZero() {
		return Decision{}, nil, fmt.Errorf("genesis: effective time is required: %w", ErrInvalid)
	}
	d := Decision{ID: GenesisDecision, By: rootActor, Authority: RootMandate, Reason: "ledger created",
		Effective: effective.UTC(),
		Changes:   []Change{{Kind: ChangeMandateGrant, ID: RootMandate, Holder: rootActor, Kinds: []string{"*"}, Scope: "*"}}}
	w := World{ref(KindDecision, GenesisDecision): {}, ref(KindMandate, RootMandate): {}}
	k := &work{base: w, cur: map[Ref]Aggregate{}, d: d, meta: d.Meta()}
	if err := k.emit(ref(KindMandate, RootMandate), EventMandateGranted, MandateGranted{ID: RootMandate, Holder: rootActor,
		Kinds: []string{"*"}, Scope: "*"}); err != nil {
		return Decision{}, nil, err
	}
	rec := DecisionRecorded{ID: d.ID, By: d.By, Authority: d.Authority, Reason: d.Reason, Effective: d.Effective,
		Changes: d.Changes, Effects: k.effects}
	if err := k.emit(ref(KindDecision, GenesisDecision), EventDecisionRecorded, rec); err != nil {
		return Decision{}, nil, err
	}
	return d, k.events, nil
}
