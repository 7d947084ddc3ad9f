package domain

import (
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"time"
)

// Plan lists the aggregates Decide needs first for d: the decision's own
// record, its mandate, the actor (who must hold it), and every aggregate a
// change names (including the owners of funding accounts and a grant's
// holder). Decide may ask for more with a *NeedError (the mandate's grant
// chain and its holders, a person's current team, a product's value
// stream, what a retracted decision touched).
func Plan(d Decision) []Ref {
	var refs []Ref
	seen := map[Ref]bool{}
	add := func(k AggregateKind, id string) {
		r := Ref{Kind: k, ID: id}
		if id == "" || seen[r] {
			return
		}
		seen[r] = true
		refs = append(refs, r)
	}
	addAccount := func(a string) {
		if r, ok := Account(a).Ref(); ok {
			add(r.Kind, r.ID)
		}
	}
	add(KindDecision, d.ID)
	add(KindProposal, d.ID)
	add(KindMandate, d.Authority)
	// The ledger's policy says whether the decision must be signed, the
	// actor's keys whether its signature holds.
	add(KindLedger, LedgerPolicy)
	if len(d.Signature) > 0 {
		add(KindActor, d.By)
	}
	// The actor must hold the mandate, so the actor is the holder whose
	// standing decides whether it is in force.
	if r, ok := holderRef(d.By); ok {
		add(r.Kind, r.ID)
	}
	for _, c := range d.Changes {
		switch c.Kind {
		case ChangeValueStreamDefine:
			add(KindValueStream, c.ID)
		case ChangeProductLaunch:
			add(KindProduct, c.ID)
		case ChangeTeamForm:
			add(KindTeam, c.ID)
		case ChangePersonJoin:
			add(KindPerson, c.ID)
		case ChangeProjectStart:
			add(KindProject, c.ID)
		case ChangeMandateGrant:
			add(KindMandate, c.ID)
			if r, ok := holderRef(c.Holder); ok {
				add(r.Kind, r.ID)
			}
		case ChangeActorRegisterKey, ChangeActorRevokeKey:
			add(KindActor, c.Actor)
		case ChangeLedgerRotateKey:
			add(KindLedger, LedgerKeys)
		case ChangeBoardForm:
			add(KindBoard, c.ID)
			for _, m := range c.Members {
				add(KindPerson, m)
			}
		case ChangePersonMove:
			add(KindTeam, c.To)
		case ChangeFundingAllocate, ChangeFundingShift, ChangeFundingRelease:
			addAccount(c.From)
			addAccount(c.To)
		}
		add(KindValueStream, c.ValueStream)
		add(KindProduct, c.Product)
		add(KindPerson, c.Owner)
		add(KindTeam, c.Team)
		add(KindPerson, c.Person)
		add(KindProject, c.Project)
		add(KindBudget, c.Period)
		add(KindMandate, c.Mandate)
		add(KindDecision, c.Decision)
		add(KindBoard, c.Board)
	}
	return refs
}

// Decide checks d against the loaded world and returns the events it
// produces, the decision.recorded event last. now is when the decision is
// recorded (the command handler's clock): authority is judged then, against
// the mandates in force at that moment, whatever d's effective time. It is
// pure: the world is not modified, the result depends only on w, d and now. Events are only on
// aggregates present in w; the caller appends each aggregate's events with
// expected version w[ref].Version (0: must not exist yet). One aggregate
// may receive several events from one decision (a person moved twice, a
// budget with several movements); they are in order, and only the first of
// them carries the expected-version check, the rest follow it in the same
// atomic batch.
//
// A decision under a board's mandate is taken only with the approvals of
// the board's quorum (d.Approvers, set from its proposal by Act; the actor,
// a member, counts as one): without them Decide returns an
// *ApprovalsNeededError and the command handler calls Propose instead.
//
// Errors: *NeedError (load these and call again), *DuplicateDecisionError
// (d.ID is recorded already), *DuplicateProposalError (d.ID is a proposal),
// *ApprovalsNeededError, *AuthorityError, *NotInForceError,
// *LimitError, *PeriodLimitError, *EscalationError (wrap ErrUnauthorized),
// or a *ChangeError wrapping the invariant's typed error (all wrap
// ErrRefused or ErrInvalid).
func Decide(w World, d Decision, now time.Time) ([]Event, error) {
	_, evs, err := decide(w, d, now, modeDirect)
	return evs, err
}

// decideMode says how a decision under a board's mandate is taken.
type decideMode int

const (
	modeDirect       decideMode = iota // submitted: a board's quorum is needed
	modePropose                        // checked to be recorded as a proposal: the quorum is not needed yet
	modeFromProposal                   // the last approval of a proposal: d.Approvers must make the quorum
)

func decide(w World, d Decision, now time.Time, mode decideMode) (*work, []Event, error) {
	k := &work{base: w, cur: map[Ref]Aggregate{}, d: d, meta: d.Meta(), now: now, mode: mode}
	evs, err := k.decide()
	return k, evs, err
}

func (k *work) decide() ([]Event, error) {
	d, now := k.d, k.now
	if len(d.Changes) == 0 {
		return nil, &FieldError{Field: "changes", Err: errors.New("a decision needs at least one change")}
	}
	if len(d.Changes) > MaxChanges {
		return nil, &FieldError{Field: "changes", Err: fmt.Errorf("%d changes, at most %d", len(d.Changes), MaxChanges)}
	}
	if err := ValidID(d.ID); err != nil {
		return nil, &FieldError{Field: "id", Err: err}
	}
	if d.Effective.IsZero() {
		return nil, &FieldError{Field: "effective", Err: errors.New("is required")}
	}
	if now.IsZero() {
		return nil, errors.New("decide: the recording time (now) is required")
	}
	if err := k.load(Plan(d)...); err != nil {
		return nil, err
	}
	recRef := Ref{Kind: KindDecision, ID: d.ID}
	if rec, _ := k.get(recRef); rec.Exists() {
		first, err := rec.Decision.Record.DecisionOf()
		if err != nil || !SameContent(first, d) {
			return nil, &DecisionReusedError{ID: d.ID, Sequence: rec.Decision.Sequence, RecordedAt: rec.Decision.RecordedAt}
		}
		return nil, &DuplicateDecisionError{ID: d.ID}
	}
	if p, _ := k.get(ref(KindProposal, d.ID)); p.Exists() && k.mode != modeFromProposal {
		if !SameContent(p.Proposal.Decision, d) {
			return nil, &DecisionReusedError{ID: d.ID, Sequence: p.Proposal.OpenedSeq, RecordedAt: p.Proposal.ProposedAt, Proposal: true}
		}
		return nil, &DuplicateProposalError{ID: d.ID}
	}
	if err := k.checkSignature(); err != nil {
		return nil, err
	}
	// A change that needs an aggregate not loaded does not end the pass:
	// the later changes are still tried, so that one NeedError names what
	// all of them need (a reorganisation moving people out of twenty teams
	// asks once, not twenty times). After the first need the state may be
	// incomplete, so other refusals are left for the next pass to find.
	// The mandate's grant chain is asked for in the same round.
	var needs []Ref
	addNeeds := func(ne *NeedError) {
		for _, r := range ne.Refs {
			if !containsRef(needs, r) {
				needs = append(needs, r)
			}
		}
	}
	auth, err := k.authority()
	var ne *NeedError
	switch {
	case errors.As(err, &ne):
		addNeeds(ne)
	case err != nil:
		return nil, err
	}
	for i, c := range d.Changes {
		var err error
		if auth != nil {
			err = k.authorize(auth.mandate(), c, 0)
		}
		if err == nil {
			err = k.apply(c)
		}
		var ne *NeedError
		switch {
		case err == nil:
		case errors.As(err, &ne):
			addNeeds(ne)
		case len(needs) == 0:
			return nil, wrapChange(i, c, err)
		}
	}
	if len(needs) > 0 {
		return nil, &NeedError{Refs: needs}
	}
	if err := k.checkLimits(auth); err != nil {
		return nil, err
	}
	if err := k.finalChecks(); err != nil {
		return nil, err
	}
	rec := DecisionRecorded{ID: d.ID, By: d.By, Authority: d.Authority, Reason: d.Reason, Refs: d.Refs,
		Effective: d.Effective, Changes: d.Changes, Effects: k.effects, Retracts: k.retracts,
		AuthorityChain: auth.record(), Approvers: k.approvers, SignedWith: k.signedWith, EffectiveOmitted: !d.EffectiveGiven}
	if k.signedWith != "" {
		rec.Signature = hex.EncodeToString(d.Signature)
	}
	if err := k.emit(recRef, EventDecisionRecorded, rec); err != nil {
		return nil, err
	}
	if len(k.events) > MaxEvents {
		return nil, &TooManyEventsError{Events: len(k.events), Max: MaxEvents}
	}
	return k.events, nil
}

func wrapChange(i int, c Change, err error) error {
	var ne *NeedError
	if errors.As(err, &ne) {
		return ne
	}
	return &ChangeError{Index: i, Kind: c.Kind, Err: err}
}

// work is one Decide call: the loaded world plus what the decision changed
// so far, so later changes see earlier ones.
type work struct {
	base     World
	cur      map[Ref]Aggregate
	d        Decision
	meta     Meta
	now      time.Time // when the decision is recorded: authority is judged then
	events   []Event
	effects  []Effect
	retracts string
	// moved sums, per currency, the amounts of the changes the decision's
	// mandate covers (its limit is per decision).
	moved map[Currency]Amount
	// charged are the mandates with a period limit that the decision's
	// movements count against (written into the budget events).
	charged []string
	// auth is the decision's mandate and its chain, once loaded.
	auth *authority
	mode decideMode
	// boardHolder is the board holding the decision's mandate, if a board
	// does; approvers the members whose approvals count (the actor first).
	boardHolder *Aggregate
	approvers   []string
	// signedWith is the actor's key that verified the decision's signature.
	signedWith string
}

func (k *work) eff() time.Time { return k.d.Effective }

// load returns a *NeedError listing every ref not in the world.
func (k *work) load(refs ...Ref) error {
	var missing []Ref
	for _, r := range refs {
		if _, ok := k.cur[r]; ok {
			continue
		}
		if _, ok := k.base[r]; !ok && !containsRef(missing, r) {
			missing = append(missing, r)
		}
	}
	if len(missing) > 0 {
		return &NeedError{Refs: missing}
	}
	return nil
}

func containsRef(rs []Ref, r Ref) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

func (k *work) get(r Ref) (Aggregate, error) {
	if a, ok := k.cur[r]; ok {
		return a, nil
	}
	if a, ok := k.base[r]; ok {
		if a.Ref == (Ref{}) {
			a.Ref = r
		}
		return a, nil
	}
	return Aggregate{}, &NeedError{Refs: []Ref{r}}
}

// existing is r, which must exist since no later than the decision's effective time.
func (k *work) existing(r Ref) (Aggregate, error) {
	a, err := k.get(r)
	if err != nil {
		return a, err
	}
	if !a.Exists() {
		return a, &NotFoundError{Ref: r}
	}
	if k.eff().Before(a.Since) {
		return a, &TooEarlyError{Ref: r, Since: a.Since, Effective: k.eff()}
	}
	return a, nil
}

// active is existing and not ended.
func (k *work) active(r Ref) (Aggregate, error) {
	a, err := k.existing(r)
	if err != nil {
		return a, err
	}
	if !a.Active() {
		return a, &InactiveError{Ref: r, Status: a.Status()}
	}
	return a, nil
}

// absent is r, whose id must still be free.
func (k *work) absent(r Ref) error {
	a, err := k.get(r)
	if err != nil {
		return err
	}
	if a.Exists() {
		return &ExistsError{Ref: r}
	}
	return nil
}

func (k *work) emit(r Ref, typ string, payload any) error {
	base, ok := k.base[r]
	if !ok {
		return &NeedError{Refs: []Ref{r}}
	}
	ev, err := newEvent(r, typ, payload)
	if err != nil {
		return err
	}
	a, _ := k.get(r)
	a, err = Evolve(a, Recorded{Event: ev, Meta: k.meta, Sequence: base.Version, RecordedAt: k.now})
	if err != nil {
		return fmt.Errorf("apply %s: %w", typ, err)
	}
	k.cur[r] = a
	k.events = append(k.events, ev)
	if typ != EventDecisionRecorded {
		e := Effect{Aggregate: r.String(), Type: typ, Data: ev.Data}
		if ev.SchemaVersion != 1 {
			e.SchemaVersion = ev.SchemaVersion // version 1 stays implicit, as in records before versions
		}
		k.effects = append(k.effects, e)
	}
	return nil
}

func ref(k AggregateKind, id string) Ref { return Ref{Kind: k, ID: id} }

func (k *work) apply(c Change) error {
	switch c.Kind {
	case ChangeValueStreamDefine:
		if err := k.absent(ref(KindValueStream, c.ID)); err != nil {
			return err
		}
		return k.emit(ref(KindValueStream, c.ID), EventValueStreamDefined, ValueStreamDefined{ID: c.ID, Name: c.Name})
	case ChangeValueStreamRetire:
		vs, err := k.active(ref(KindValueStream, c.ValueStream))
		if err != nil {
			return err
		}
		if len(vs.ValueStream.Products) > 0 {
			return &ValueStreamHasProductsError{ValueStream: c.ValueStream, Products: vs.ValueStream.Products}
		}
		return k.emit(ref(KindValueStream, c.ValueStream), EventValueStreamRetired, Lifecycle{ID: c.ValueStream})
	case ChangeProductLaunch:
		return k.launch(c.ID, c.Name, c.ValueStream, c.Owner, "")
	case ChangeProductMove:
		p, err := k.active(ref(KindProduct, c.Product))
		if err != nil {
			return err
		}
		if _, err := k.active(ref(KindValueStream, c.ValueStream)); err != nil {
			return err
		}
		if p.Product.ValueStream == c.ValueStream {
			return &StateError{Ref: p.Ref, Problem: fmt.Sprintf("is already in value stream %q", c.ValueStream)}
		}
		from := p.Product.ValueStream
		if err := k.emit(p.Ref, EventProductMoved, ProductMoved{ID: c.Product, From: from, To: c.ValueStream}); err != nil {
			return err
		}
		if err := k.leaveValueStream(from, c.Product); err != nil {
			return err
		}
		return k.emit(ref(KindValueStream, c.ValueStream), EventValueStreamProductAdded, ValueStreamProduct{ValueStream: c.ValueStream, Product: c.Product})
	case ChangeProductOwner:
		return k.assignOwner(c.Product, c.Owner)
	case ChangeProductRetire:
		return k.retireProduct(c.Product)
	case ChangeTeamForm:
		if err := k.absent(ref(KindTeam, c.ID)); err != nil {
			return err
		}
		return k.emit(ref(KindTeam, c.ID), EventTeamFormed, TeamFormed{ID: c.ID, Name: c.Name, Type: c.Type})
	case ChangeTeamAssign:
		t, err := k.active(ref(KindTeam, c.Team))
		if err != nil {
			return err
		}
		if _, err := k.active(ref(KindProduct, c.Product)); err != nil {
			return err
		}
		if contains(t.Team.Products, c.Product) {
			return &StateError{Ref: t.Ref, Problem: fmt.Sprintf("already serves product %q", c.Product)}
		}
		if err := k.emit(t.Ref, EventTeamProductAssigned, TeamProduct{Team: c.Team, Product: c.Product}); err != nil {
			return err
		}
		return k.emit(ref(KindProduct, c.Product), EventProductTeamAdded, TeamProduct{Team: c.Team, Product: c.Product})
	case ChangeTeamUnassign:
		t, err := k.active(ref(KindTeam, c.Team))
		if err != nil {
			return err
		}
		p, err := k.existing(ref(KindProduct, c.Product))
		if err != nil {
			return err
		}
		if !contains(t.Team.Products, c.Product) {
			return &StateError{Ref: t.Ref, Problem: fmt.Sprintf("does not serve product %q", c.Product)}
		}
		if err := k.emit(t.Ref, EventTeamProductUnassigned, TeamProduct{Team: c.Team, Product: c.Product}); err != nil {
			return err
		}
		if !contains(p.Product.Teams, c.Team) {
			return nil // assigned before products kept their teams
		}
		return k.emit(p.Ref, EventProductTeamRemoved, TeamProduct{Team: c.Team, Product: c.Product})
	case ChangeTeamDisband:
		return k.disband(c.Team)
	case ChangePersonJoin:
		if err := k.absent(ref(KindPerson, c.ID)); err != nil {
			return err
		}
		if _, err := k.active(ref(KindTeam, c.Team)); err != nil {
			return err
		}
		if err := k.emit(ref(KindPerson, c.ID), EventPersonJoined, PersonJoined{ID: c.ID, Name: c.Name, Team: c.Team, Role: c.Role}); err != nil {
			return err
		}
		return k.emit(ref(KindTeam, c.Team), EventTeamMemberAdded, TeamMember{Team: c.Team, Person: c.ID})
	case ChangePersonMove:
		p, err := k.active(ref(KindPerson, c.Person))
		if err != nil {
			return err
		}
		return k.movePerson(p, p.Person.Team, c.To)
	case ChangePersonLeave:
		p, err := k.active(ref(KindPerson, c.Person))
		if err != nil {
			return err
		}
		if err := k.emit(p.Ref, EventPersonLeft, PersonTeam{ID: c.Person, Team: p.Person.Team}); err != nil {
			return err
		}
		return k.emit(ref(KindTeam, p.Person.Team), EventTeamMemberRemoved, TeamMember{Team: p.Person.Team, Person: c.Person})
	case ChangePersonErase:
		p, err := k.existing(ref(KindPerson, c.Person))
		if err != nil {
			return err
		}
		if p.Person.Erased {
			return &StateError{Ref: p.Ref, Problem: "is erased already"}
		}
		return k.emit(p.Ref, EventPersonErased, PersonErased{ID: c.Person})
	case ChangeProjectStart:
		if err := k.absent(ref(KindProject, c.ID)); err != nil {
			return err
		}
		if c.ValueStream != "" {
			if _, err := k.active(ref(KindValueStream, c.ValueStream)); err != nil {
				return err
			}
		}
		return k.emit(ref(KindProject, c.ID), EventProjectStarted, ProjectStarted{ID: c.ID, Name: c.Name, ValueStream: c.ValueStream})
	case ChangeProjectClose:
		return k.closeProject(c.Project)
	case ChangeProjectConvert:
		return k.convert(c)
	case ChangeBudgetOpen:
		r := ref(KindBudget, c.Period)
		if err := k.absent(r); err != nil {
			return err
		}
		amt, err := c.Amount.Exact(c.Currency)
		if err != nil {
			return &FieldError{Field: "amount", Err: err}
		}
		if amt > MaxTotal {
			return &StateError{Ref: r, Problem: fmt.Sprintf("total would exceed %s", MaxTotal.Format(c.Currency))}
		}
		return k.emit(r, EventBudgetOpened, BudgetAmount{Period: c.Period, Currency: c.Currency, Amount: *c.Amount, Charged: k.charged})
	case ChangeBudgetAdjust:
		b, amt, err := k.budgetAmount(c.Period, *c.Amount)
		if err != nil {
			return err
		}
		return k.adjust(b, amt, k.charged)
	case ChangeFundingAllocate:
		return k.fund(c.Period, Pool, Account(c.To), *c.Amount, EventFundingAllocated)
	case ChangeFundingShift:
		return k.fund(c.Period, Account(c.From), Account(c.To), *c.Amount, EventFundingShifted)
	case ChangeFundingRelease:
		return k.fund(c.Period, Account(c.From), Pool, *c.Amount, EventFundingReleased)
	case ChangeMandateGrant:
		return k.grant(c)
	case ChangeMandateRevoke:
		m, err := k.active(ref(KindMandate, c.Mandate))
		if err != nil {
			return err
		}
		if m.Mandate.IsRoot() {
			// Everything descends from it: revoking it would leave nobody
			// able to decide anything, ever.
			return &StateError{Ref: m.Ref, Problem: "the root mandate cannot be revoked (revoke the mandates granted under it)"}
		}
		return k.emit(ref(KindMandate, c.Mandate), EventMandateRevoked, Lifecycle{ID: c.Mandate})
	case ChangeKPIDefine:
		return k.defineKPI(c)
	case ChangeKPIRecord:
		return k.recordKPI(c)
	case ChangeKPITarget:
		return k.setKPITarget(c)
	case ChangeDecisionRetract:
		return k.retract(c.Decision)
	case ChangeBoardForm, ChangeBoardAddMember, ChangeBoardRemoveMember, ChangeBoardDisband:
		return k.board(c)
	case ChangeActorRegisterKey, ChangeActorRevokeKey, ChangeLedgerRotateKey, ChangeLedgerRequireSigs:
		return k.trust(c)
	}
	return fmt.Errorf("change kind %q: %w", c.Kind, ErrInvalid)
}

func (k *work) launch(id, name, vs, owner, project string) error {
	r := ref(KindProduct, id)
	if err := k.absent(r); err != nil {
		return err
	}
	if _, err := k.active(ref(KindValueStream, vs)); err != nil {
		return err
	}
	if err := k.emit(r, EventProductLaunched, ProductLaunched{ID: id, Name: name, ValueStream: vs, Project: project}); err != nil {
		return err
	}
	if err := k.emit(ref(KindValueStream, vs), EventValueStreamProductAdded, ValueStreamProduct{ValueStream: vs, Product: id}); err != nil {
		return err
	}
	if owner != "" {
		return k.assignOwner(id, owner)
	}
	return nil
}

func (k *work) assignOwner(product, owner string) error {
	p, err := k.active(ref(KindProduct, product))
	if err != nil {
		return err
	}
	if _, err := k.active(ref(KindPerson, owner)); err != nil {
		return fmt.Errorf("owner must be a person in the organisation: %w", err)
	}
	prev := p.Product.Owner
	if prev == owner {
		return &StateError{Ref: p.Ref, Problem: fmt.Sprintf("is already owned by %q", owner)}
	}
	if prev != "" {
		if err := k.load(ref(KindPerson, prev)); err != nil {
			return err
		}
	}
	if err := k.emit(p.Ref, EventProductOwnerAssigned, ProductOwner{ID: product, Owner: owner, Previous: prev}); err != nil {
		return err
	}
	if prev != "" {
		if err := k.emit(ref(KindPerson, prev), EventPersonOwnershipReleased, PersonOwnership{Person: prev, Product: product}); err != nil {
			return err
		}
	}
	return k.emit(ref(KindPerson, owner), EventPersonOwnershipTaken, PersonOwnership{Person: owner, Product: product})
}

// retireProduct retires an active product: it leaves its teams' lists
// and its value stream's, and its owner is released. The teams go first,
// so that a retraction, which undoes the last effect first, reactivates
// the product before it assigns the teams again.
func (k *work) retireProduct(product string) error {
	p, err := k.active(ref(KindProduct, product))
	if err != nil {
		return err
	}
	owner := p.Product.Owner
	need := []Ref{ref(KindValueStream, p.Product.ValueStream)}
	if owner != "" {
		need = append(need, ref(KindPerson, owner))
	}
	for _, t := range p.Product.Teams {
		need = append(need, ref(KindTeam, t))
	}
	if err := k.load(need...); err != nil {
		return err
	}
	for _, t := range p.Product.Teams {
		tm, err := k.get(ref(KindTeam, t))
		if err != nil {
			return err
		}
		if tm.Team != nil && contains(tm.Team.Products, product) {
			if err := k.emit(tm.Ref, EventTeamProductUnassigned, TeamProduct{Team: t, Product: product}); err != nil {
				return err
			}
		}
		if err := k.emit(p.Ref, EventProductTeamRemoved, TeamProduct{Team: t, Product: product}); err != nil {
			return err
		}
	}
	if err := k.emit(p.Ref, EventProductRetired, ProductLifecycle{ID: product, Owner: owner}); err != nil {
		return err
	}
	if err := k.leaveValueStream(p.Product.ValueStream, product); err != nil {
		return err
	}
	if owner != "" {
		return k.emit(ref(KindPerson, owner), EventPersonOwnershipReleased, PersonOwnership{Person: owner, Product: product})
	}
	return nil
}

// leaveValueStream takes product off value stream vs's list, when it is
// on it (products launched before value streams kept their lists are not).
func (k *work) leaveValueStream(vs, product string) error {
	v, err := k.get(ref(KindValueStream, vs))
	if err != nil {
		return err
	}
	if v.ValueStream == nil || !contains(v.ValueStream.Products, product) {
		return nil
	}
	return k.emit(v.Ref, EventValueStreamProductRemoved, ValueStreamProduct{ValueStream: vs, Product: product})
}

// closeProject closes an active project and releases what it still holds
// in every budget period to the pool, in the same decision: money never
// stays behind on a closed project (the essay's relapse: budgets that
// outlive the work). A conversion moves it to the product instead.
func (k *work) closeProject(id string) error {
	pj, err := k.activeProject(id)
	if err != nil {
		return err
	}
	var budgets []Ref
	for _, period := range pj.Project.Periods {
		budgets = append(budgets, ref(KindBudget, period))
	}
	if err := k.load(budgets...); err != nil {
		return err
	}
	if err := k.emit(pj.Ref, EventProjectClosed, Lifecycle{ID: id}); err != nil {
		return err
	}
	from := AccountOf(pj.Ref)
	for _, r := range budgets {
		b, err := k.get(r)
		if err != nil {
			return err
		}
		if b.Budget == nil {
			continue
		}
		bal := b.Budget.Balance(from)
		if bal <= 0 {
			continue
		}
		if err := k.emit(r, EventFundingReleased, FundingMoved{Period: r.ID, Currency: b.Budget.Currency,
			From: from, To: Pool, Amount: bal.Decimal(b.Budget.Currency)}); err != nil {
			return err
		}
	}
	return nil
}

func (k *work) disband(team string) error {
	t, err := k.active(ref(KindTeam, team))
	if err != nil {
		return err
	}
	if len(t.Team.Members) > 0 {
		return &TeamHasMembersError{Team: team, Members: t.Team.Members}
	}
	return k.emit(t.Ref, EventTeamDisbanded, Lifecycle{ID: team})
}

func (k *work) movePerson(p Aggregate, from, to string) error {
	if from == to {
		return &StateError{Ref: p.Ref, Problem: fmt.Sprintf("is already in team %q", to)}
	}
	if _, err := k.active(ref(KindTeam, to)); err != nil {
		return err
	}
	if err := k.load(ref(KindTeam, from)); err != nil {
		return err
	}
	if err := k.emit(p.Ref, EventPersonMoved, PersonMoved{ID: p.Ref.ID, From: from, To: to}); err != nil {
		return err
	}
	if err := k.emit(ref(KindTeam, from), EventTeamMemberRemoved, TeamMember{Team: from, Person: p.Ref.ID}); err != nil {
		return err
	}
	return k.emit(ref(KindTeam, to), EventTeamMemberAdded, TeamMember{Team: to, Person: p.Ref.ID})
}

func (k *work) activeProject(id string) (Aggregate, error) {
	p, err := k.existing(ref(KindProject, id))
	if err != nil {
		return p, err
	}
	if p.Project.ConvertedTo != "" {
		return p, &AlreadyConvertedError{Project: id, Product: p.Project.ConvertedTo}
	}
	if !p.Active() {
		return p, &InactiveError{Ref: p.Ref, Status: p.Status()}
	}
	return p, nil
}

func (k *work) convert(c Change) error {
	pj, err := k.activeProject(c.Project)
	if err != nil {
		return err
	}
	var budgets []Ref
	for _, period := range pj.Project.Periods {
		budgets = append(budgets, ref(KindBudget, period))
	}
	if err := k.load(budgets...); err != nil {
		return err
	}
	if err := k.emit(pj.Ref, EventProjectConverted, ProjectConverted{ID: c.Project, Product: c.Product}); err != nil {
		return err
	}
	if err := k.launch(c.Product, c.Name, c.ValueStream, c.Owner, c.Project); err != nil {
		return err
	}
	from, to := AccountOf(pj.Ref), AccountOf(ref(KindProduct, c.Product))
	for _, r := range budgets {
		b, err := k.get(r)
		if err != nil {
			return err
		}
		bal := b.Budget.Balance(from)
		if bal <= 0 {
			continue
		}
		if err := k.emit(r, EventFundingShifted, FundingMoved{Period: r.ID, Currency: b.Budget.Currency,
			From: from, To: to, Amount: bal.Decimal(b.Budget.Currency)}); err != nil {
			return err
		}
	}
	return nil
}

func (k *work) budgetAmount(period string, d Decimal) (Aggregate, Amount, error) {
	b, err := k.active(ref(KindBudget, period))
	if err != nil {
		return b, 0, err
	}
	amt, err := d.Exact(b.Budget.Currency)
	if err != nil {
		return b, 0, &FieldError{Field: "amount", Err: err}
	}
	return b, amt, nil
}

// MaxTotal bounds a period's total (in minor units) so that no sum of
// accounts can overflow.
const MaxTotal Amount = 1e17

// adjust changes b's total and pool by amt; charged as in FundingMoved.
func (k *work) adjust(b Aggregate, amt Amount, charged []string) error {
	cur := b.Budget.Currency
	if b.Budget.Total+amt > MaxTotal {
		return &StateError{Ref: b.Ref, Problem: fmt.Sprintf("total would exceed %s", MaxTotal.Format(cur))}
	}
	if bal := b.Budget.Balance(Pool); bal+amt < 0 {
		return &InsufficientFundsError{Period: b.Ref.ID, Account: Pool, Balance: bal.Format(cur), Wanted: (-amt).Format(cur)}
	}
	return k.emit(b.Ref, EventBudgetAdjusted, BudgetAmount{Period: b.Ref.ID, Currency: cur, Amount: amt.Decimal(cur), Charged: charged})
}

func (k *work) fund(period string, from, to Account, d Decimal, typ string) error {
	b, amt, err := k.budgetAmount(period, d)
	if err != nil {
		return err
	}
	if amt <= 0 {
		return &FieldError{Field: "amount", Err: fmt.Errorf("%s must be positive", d)}
	}
	if from == to {
		return &StateError{Ref: b.Ref, Problem: fmt.Sprintf("cannot move funds from %s to itself", from)}
	}
	if r, ok := from.Ref(); ok {
		if _, err := k.existing(r); err != nil {
			return err
		}
	}
	var dest Aggregate
	if r, ok := to.Ref(); ok {
		if r.Kind == KindProject {
			dest, err = k.activeProject(r.ID)
		} else {
			dest, err = k.active(r)
		}
		if err != nil {
			return err
		}
	}
	return k.move(b, from, to, amt, typ, dest, k.charged)
}

// move moves amt from one account of budget b to another; dest is the
// destination's aggregate (zero for the pool); charged as in FundingMoved.
func (k *work) move(b Aggregate, from, to Account, amt Amount, typ string, dest Aggregate, charged []string) error {
	cur := b.Budget.Currency
	if bal := b.Budget.Balance(from); bal < amt {
		return &InsufficientFundsError{Period: b.Ref.ID, Account: from, Balance: bal.Format(cur), Wanted: amt.Format(cur)}
	}
	if err := k.emit(b.Ref, typ, FundingMoved{Period: b.Ref.ID, Currency: cur, From: from, To: to, Amount: amt.Decimal(cur), Charged: charged}); err != nil {
		return err
	}
	if dest.Project != nil && !contains(dest.Project.Periods, b.Ref.ID) {
		return k.emit(dest.Ref, EventProjectBudgetLinked, ProjectBudgetLinked{ID: dest.Ref.ID, Period: b.Ref.ID})
	}
	return nil
}

// finalChecks are the invariants that hold across the changes of one
// decision: a launch and its owner may come in separate changes.
func (k *work) finalChecks() error {
	refs := make([]Ref, 0, len(k.cur))
	for r := range k.cur {
		refs = append(refs, r)
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].String() < refs[j].String() })
	for _, r := range refs {
		a := k.cur[r]
		if a.Product != nil && !a.Product.Retired && a.Product.Owner == "" {
			return &NoOwnerError{Product: r.ID}
		}
		if a.Person != nil && a.Person.Left && len(a.Person.Owns) > 0 {
			return &StillOwnsError{Person: r.ID, Products: a.Person.Owns}
		}
	}
	return nil
}
