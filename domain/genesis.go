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
	return GenesisWith(rootActor, effective, GenesisOptions{})
}

// GenesisOptions are what a new ledger records besides its root mandate.
type GenesisOptions struct {
	// LedgerKey is the writer's Ed25519 public key (hex) that seals the
	// log; recorded on ledger:keys. Empty: none (a log without a recorded
	// key is sealed by its writer's key alone).
	LedgerKey string
	// RootKey is the root actor's public key (hex), registered so that the
	// root can sign from the start; required with RequireSignatures.
	RootKey string
	// RequireSignatures makes every later decision carry its actor's
	// signature.
	RequireSignatures bool
}

// GenesisWith is [Genesis] with the ledger's key, the root actor's key and
// the signature policy recorded in the same first decision.
func GenesisWith(rootActor string, effective time.Time, o GenesisOptions) (Decision, []Event, error) {
	if err := ValidID(rootActor); err != nil {
		return Decision{}, nil, &FieldError{Field: "root actor", Err: err}
	}
	if effective.IsZero() {
		return Decision{}, nil, fmt.Errorf("genesis: effective time is required: %w", ErrInvalid)
	}
	d := Decision{ID: GenesisDecision, By: rootActor, Authority: RootMandate, Reason: "ledger created",
		Effective: effective.UTC(),
		Changes:   []Change{{Kind: ChangeMandateGrant, ID: RootMandate, Holder: rootActor, Kinds: []string{"*"}, Scope: "*"}}}
	for _, key := range []string{o.LedgerKey, o.RootKey} {
		if _, err := ParsePublicKey(key); key != "" && err != nil {
			return Decision{}, nil, &FieldError{Field: "key", Err: err}
		}
	}
	if o.RequireSignatures && o.RootKey == "" {
		return Decision{}, nil, fmt.Errorf("genesis: requiring signatures needs the root actor's key, or nobody could sign: %w", ErrInvalid)
	}
	if o.LedgerKey != "" {
		d.Changes = append(d.Changes, Change{Kind: ChangeLedgerRotateKey, Key: o.LedgerKey})
	}
	if o.RootKey != "" {
		d.Changes = append(d.Changes, Change{Kind: ChangeActorRegisterKey, Actor: rootActor, Key: o.RootKey})
	}
	if o.RequireSignatures {
		d.Changes = append(d.Changes, Change{Kind: ChangeLedgerRequireSigs})
	}
	w := World{ref(KindDecision, GenesisDecision): {}, ref(KindMandate, RootMandate): {},
		LedgerKeysRef: {}, LedgerPolicyRef: {}, ref(KindActor, rootActor): {}}
	k := &work{base: w, cur: map[Ref]Aggregate{}, d: d, meta: d.Meta()}
	if err := k.emit(ref(KindMandate, RootMandate), EventMandateGranted, MandateGranted{ID: RootMandate, Holder: rootActor,
		Kinds: []string{"*"}, Scope: "*"}); err != nil {
		return Decision{}, nil, err
	}
	for _, c := range d.Changes[1:] {
		if err := k.trust(c); err != nil {
			return Decision{}, nil, err
		}
	}
	rec := DecisionRecorded{ID: d.ID, By: d.By, Authority: d.Authority, Reason: d.Reason, Effective: d.Effective,
		Changes: d.Changes, Effects: k.effects}
	if err := k.emit(ref(KindDecision, GenesisDecision), EventDecisionRecorded, rec); err != nil {
		return Decision{}, nil, err
	}
	return d, k.events, nil
}
