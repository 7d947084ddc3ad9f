package feed

import (
	"context"
	"encoding/json"
	"fmt"

	"koers/domain"
)

// Names opens the sealed names of people (a *keyring.Keyring). Feeds
// deliver names in clear to the systems they feed: a person's name is
// opened when the event is published, so that once the person is erased
// (their key destroyed) no replay ever delivers it again; the erasure
// itself is published as koers.person.erased, which consumers must honour
// by removing the name from what they keep.
type Names interface {
	Open(ctx context.Context, person, name string) (string, error)
}

// openNames returns r with the names of people in its data opened:
// person.joined, decision.recorded (its changes and its person.joined
// effects) and proposal.opened (its decision's changes).
func openNames(ctx context.Context, names Names, r domain.Recorded) (domain.Recorded, error) {
	if names == nil {
		return r, nil
	}
	open := func(p domain.PersonalName) (string, error) { return names.Open(ctx, p.Person, p.Name) }
	var out any
	switch r.Type {
	case domain.EventPersonJoined:
		var p domain.PersonJoined
		if err := json.Unmarshal(r.Data, &p); err != nil {
			return r, err
		}
		n, err := names.Open(ctx, p.ID, p.Name)
		if err != nil {
			return r, err
		}
		p.Name = n
		out = p
	case domain.EventDecisionRecorded:
		v, err := domain.DecodeEventData(r)
		if err != nil {
			return r, err
		}
		p := *v.(*domain.DecisionRecorded)
		if p.Changes, err = domain.WithNames(p.Changes, open); err != nil {
			return r, err
		}
		if p.Effects, err = domain.EffectsWithNames(p.Effects, func(person, name string) (string, error) {
			return names.Open(ctx, person, name)
		}); err != nil {
			return r, err
		}
		out = p
	case domain.EventProposalOpened:
		v, err := domain.DecodeEventData(r)
		if err != nil {
			return r, err
		}
		p := *v.(*domain.ProposalOpened)
		if p.Decision.Changes, err = domain.WithNames(p.Decision.Changes, open); err != nil {
			return r, err
		}
		out = p
	default:
		return r, nil
	}
	data, err := json.Marshal(out)
	if err != nil {
		return r, fmt.Errorf("event %s: %w", r.EventID, err)
	}
	r.Data = data
	return r, nil
}
