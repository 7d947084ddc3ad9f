package domain

import (
	"errors"
	"fmt"
	"maps"
	"slices"
)

// retract undoes the effects of decision id with compensating events, last
// effect first. Each compensation re-checks the invariants against the
// ledger as it is now, so a retraction whose effects were built upon (funds
// moved onward, a person moved again) is refused with the reason.
func (k *work) retract(id string) error {
	recRef := ref(KindDecision, id)
	a, err := k.get(recRef)
	if err != nil {
		return err
	}
	if !a.Exists() {
		return &NotFoundError{Ref: recRef}
	}
	rec := a.Decision.Record
	fail := func(problem string, err error) error { return &RetractError{Decision: id, Problem: problem, Err: err} }
	switch {
	case a.Decision.RetractedBy != "":
		return fail(fmt.Sprintf("it was already retracted by %q", a.Decision.RetractedBy), nil)
	case rec.Retracts != "":
		return fail(fmt.Sprintf("it is itself the retraction of %q (take a new decision instead)", rec.Retracts), nil)
	case id == GenesisDecision:
		return fail("the ledger's genesis cannot be retracted", nil)
	case k.retracts != "":
		return fail(fmt.Sprintf("this decision already retracts %q (one retraction per decision)", k.retracts), nil)
	case k.eff().Before(rec.Effective):
		return fail(fmt.Sprintf("the retraction is effective %s, before the decision (%s)",
			k.eff().Format("2006-01-02T15:04:05Z07:00"), rec.Effective.Format("2006-01-02T15:04:05Z07:00")), nil)
	}
	refs := make([]Ref, 0, len(rec.Effects))
	for _, e := range rec.Effects {
		r, err := ParseRef(e.Aggregate)
		if err != nil {
			return fail("its record is malformed", err)
		}
		refs = append(refs, r)
	}
	if err := k.load(refs...); err != nil {
		return err
	}
	k.retracts = id
	for i := len(rec.Effects) - 1; i >= 0; i-- {
		e := rec.Effects[i]
		if err := k.undo(refs[i], e); err != nil {
			var ne *NeedError
			if errors.As(err, &ne) {
				return ne
			}
			return fail(fmt.Sprintf("undo %s on %s", e.Type, e.Aggregate), err)
		}
	}
	return k.emit(recRef, EventDecisionRetracted, DecisionRetracted{ID: id, By: k.d.ID})
}

func stale(r Ref, format string, args ...any) error {
	return &StateError{Ref: r, Problem: "changed since: " + fmt.Sprintf(format, args...)}
}

// undo emits the compensation of one recorded effect.
func (k *work) undo(r Ref, e Effect) error {
	v, err := decodeData(Event{Aggregate: r, Type: e.Type, SchemaVersion: e.Version(), Data: e.Data})
	if err != nil {
		return err
	}
	a, err := k.existing(r)
	if err != nil {
		return err
	}
	switch p := v.(type) {
	case *ValueStreamDefined:
		if !a.Active() {
			return nil // ended since; nothing left to undo
		}
		return k.emit(r, EventValueStreamRetired, Lifecycle{ID: r.ID})
	case *ProductLaunched:
		if !a.Active() {
			return nil
		}
		return k.retireProduct(r.ID)
	case *TeamFormed:
		if !a.Active() {
			return nil
		}
		return k.disband(r.ID)
	case *ProjectStarted:
		if a.Project.ConvertedTo != "" {
			return &AlreadyConvertedError{Project: r.ID, Product: a.Project.ConvertedTo}
		}
		if !a.Active() {
			return nil
		}
		return k.emit(r, EventProjectClosed, Lifecycle{ID: r.ID})
	case *MandateGranted:
		if !a.Active() {
			return nil
		}
		return k.emit(r, EventMandateRevoked, Lifecycle{ID: r.ID})
	case *BoardFormed:
		if !a.Active() {
			return nil
		}
		return k.emit(r, EventBoardDisbanded, Lifecycle{ID: r.ID})
	case *BoardMember:
		return k.undoBoardMember(a, e.Type, p)
	case *Lifecycle:
		return k.undoLifecycle(a, e.Type)
	case *ProductMoved:
		if _, err := k.active(r); err != nil {
			return err
		}
		if a.Product.ValueStream != p.To {
			return stale(r, "it is in value stream %q now, not %q", a.Product.ValueStream, p.To)
		}
		if _, err := k.active(ref(KindValueStream, p.From)); err != nil {
			return err
		}
		return k.emit(r, EventProductMoved, ProductMoved{ID: r.ID, From: p.To, To: p.From})
	case *ProductOwner:
		if _, err := k.active(r); err != nil {
			return err
		}
		if e.Type == EventProductOwnerUnassigned {
			if a.Product.Owner != "" {
				return stale(r, "it is owned by %q now", a.Product.Owner)
			}
			return k.emit(r, EventProductOwnerAssigned, ProductOwner{ID: r.ID, Owner: p.Owner})
		}
		if a.Product.Owner != p.Owner {
			return stale(r, "it is owned by %q now, not %q", a.Product.Owner, p.Owner)
		}
		if p.Previous == "" {
			return k.emit(r, EventProductOwnerUnassigned, ProductOwner{ID: r.ID, Owner: p.Owner})
		}
		if _, err := k.active(ref(KindPerson, p.Previous)); err != nil {
			return fmt.Errorf("previous owner: %w", err)
		}
		return k.emit(r, EventProductOwnerAssigned, ProductOwner{ID: r.ID, Owner: p.Previous, Previous: p.Owner})
	case *ProductLifecycle:
		if e.Type == EventProductReactivated {
			return k.retireProduct(r.ID)
		}
		if !a.Product.Retired {
			return stale(r, "it is active")
		}
		if _, err := k.active(ref(KindValueStream, a.Product.ValueStream)); err != nil {
			return err
		}
		return k.emit(r, EventProductReactivated, ProductLifecycle{ID: r.ID, Owner: p.Owner})
	case *KPIDefinition, *KPIMeasurement, *KPITarget:
		return k.undoKPI(a, e.Type, v)
	case *ValueStreamProduct:
		on := contains(a.ValueStream.Products, p.Product)
		if e.Type == EventValueStreamProductAdded {
			if !on {
				return nil // it left since (a move or retirement undone separately)
			}
			return k.emit(r, EventValueStreamProductRemoved, *p)
		}
		if on {
			return nil
		}
		return k.emit(r, EventValueStreamProductAdded, *p)
	case *TeamProduct:
		if r.Kind == KindProduct {
			on := contains(a.Product.Teams, p.Team)
			if e.Type == EventProductTeamAdded {
				if !on {
					return nil
				}
				return k.emit(r, EventProductTeamRemoved, *p)
			}
			if on {
				return nil
			}
			return k.emit(r, EventProductTeamAdded, *p)
		}
		if _, err := k.active(r); err != nil {
			return err
		}
		if e.Type == EventTeamProductAssigned {
			if !contains(a.Team.Products, p.Product) {
				return stale(r, "it no longer serves %q", p.Product)
			}
			return k.emit(r, EventTeamProductUnassigned, *p)
		}
		if _, err := k.active(ref(KindProduct, p.Product)); err != nil {
			return err
		}
		if contains(a.Team.Products, p.Product) {
			return stale(r, "it serves %q again", p.Product)
		}
		return k.emit(r, EventTeamProductAssigned, *p)
	case *TeamMember:
		if e.Type == EventTeamMemberAdded {
			if !contains(a.Team.Members, p.Person) {
				return stale(r, "%q is no longer a member", p.Person)
			}
			return k.emit(r, EventTeamMemberRemoved, *p)
		}
		if _, err := k.active(r); err != nil {
			return err
		}
		if contains(a.Team.Members, p.Person) {
			return stale(r, "%q is a member again", p.Person)
		}
		return k.emit(r, EventTeamMemberAdded, *p)
	case *PersonErased:
		// The key is destroyed: nothing can bring the name back.
		return &StateError{Ref: r, Problem: "an erasure cannot be undone"}
	case *PersonJoined:
		if !a.Active() || a.Person.Team != p.Team {
			return stale(r, "the person is %s in team %q, not in %q", a.Status(), a.Person.Team, p.Team)
		}
		return k.emit(r, EventPersonLeft, PersonTeam{ID: r.ID, Team: p.Team})
	case *PersonMoved:
		if _, err := k.active(r); err != nil {
			return err
		}
		if a.Person.Team != p.To {
			return stale(r, "the person is in team %q now, not %q", a.Person.Team, p.To)
		}
		return k.emit(r, EventPersonMoved, PersonMoved{ID: r.ID, From: p.To, To: p.From})
	case *PersonTeam:
		if e.Type == EventPersonRejoined {
			if !a.Active() || a.Person.Team != p.Team {
				return stale(r, "the person is not in team %q", p.Team)
			}
			return k.emit(r, EventPersonLeft, *p)
		}
		if a.Active() {
			return stale(r, "the person is back in the organisation")
		}
		return k.emit(r, EventPersonRejoined, *p)
	case *PersonOwnership:
		if e.Type == EventPersonOwnershipTaken {
			if !contains(a.Person.Owns, p.Product) {
				return stale(r, "the person no longer owns %q", p.Product)
			}
			return k.emit(r, EventPersonOwnershipReleased, *p)
		}
		if _, err := k.active(r); err != nil {
			return fmt.Errorf("cannot give back ownership of %q: %w", p.Product, err)
		}
		return k.emit(r, EventPersonOwnershipTaken, *p)
	case *ProjectConverted:
		if a.Project.ConvertedTo != p.Product {
			return stale(r, "it is not converted into %q", p.Product)
		}
		return k.emit(r, EventProjectReopened, Lifecycle{ID: r.ID})
	case *ProjectBudgetLinked:
		return nil // the link only says where to look for funds
	case *BudgetAmount:
		if _, err := k.active(r); err != nil {
			return err
		}
		amt, err := p.Amount.Minor(a.Budget.Currency)
		if err != nil {
			return err
		}
		if e.Type == EventBudgetAdjusted {
			return k.adjust(a, -amt, nil) // a retraction gives no headroom back, nor takes more
		}
		for _, acc := range sortedAccounts(a.Budget.Accounts) {
			if acc != Pool && a.Budget.Accounts[acc] != 0 {
				return &StateError{Ref: r, Problem: fmt.Sprintf("%s still holds %s (release it first)", acc, a.Budget.Accounts[acc].Format(a.Budget.Currency))}
			}
		}
		return k.emit(r, EventBudgetClosed, BudgetLifecycle{Period: r.ID})
	case *BudgetLifecycle:
		if e.Type == EventBudgetClosed {
			return k.emit(r, EventBudgetReopened, *p)
		}
		return k.emit(r, EventBudgetClosed, *p)
	case *FundingMoved:
		if _, err := k.active(r); err != nil {
			return err
		}
		amt, err := p.Amount.Minor(a.Budget.Currency)
		if err != nil {
			return err
		}
		inverse := map[string]string{EventFundingAllocated: EventFundingReleased, EventFundingReleased: EventFundingAllocated,
			EventFundingShifted: EventFundingShifted}[e.Type]
		if err := k.move(a, p.To, p.From, amt, inverse, Aggregate{}, nil); err != nil {
			return fmt.Errorf("the funds were moved on: %w", err)
		}
		return nil
	}
	return &StateError{Ref: r, Problem: e.Type + " cannot be undone"}
}

func (k *work) undoLifecycle(a Aggregate, typ string) error {
	r := a.Ref
	inverse := map[string]string{
		EventValueStreamRetired: EventValueStreamReactivated, EventValueStreamReactivated: EventValueStreamRetired,
		EventTeamDisbanded: EventTeamReformed, EventTeamReformed: EventTeamDisbanded,
		EventProjectClosed: EventProjectReopened, EventProjectReopened: EventProjectClosed,
		EventMandateRevoked: EventMandateReinstated, EventMandateReinstated: EventMandateRevoked,
		EventBoardDisbanded: EventBoardReformed, EventBoardReformed: EventBoardDisbanded,
	}[typ]
	if inverse == "" {
		return &StateError{Ref: r, Problem: typ + " cannot be undone"}
	}
	switch inverse {
	case EventTeamDisbanded:
		return k.disband(r.ID)
	case EventProjectReopened:
		if a.Project.ConvertedTo != "" {
			return &AlreadyConvertedError{Project: r.ID, Product: a.Project.ConvertedTo}
		}
	}
	ending := inverse == EventValueStreamRetired || inverse == EventProjectClosed || inverse == EventMandateRevoked ||
		inverse == EventBoardDisbanded
	if ending != a.Active() {
		return stale(r, "it is %s", a.Status())
	}
	return k.emit(r, inverse, Lifecycle{ID: r.ID})
}

func sortedAccounts(m map[Account]Amount) []Account {
	return slices.Sorted(maps.Keys(m))
}
