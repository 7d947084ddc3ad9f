package domain

import (
	"fmt"
	"slices"
	"time"
)

// Aggregate is the folded state of one aggregate. Version is the log's
// sequence of its last event (the expected version for the next append); 0
// means it does not exist. Exactly one of the state pointers is set once it
// exists, matching Ref.Kind.
type Aggregate struct {
	Ref     Ref
	Version uint64
	// Since is the effective time of the event that created it.
	Since time.Time

	ValueStream *ValueStreamState
	Product     *ProductState
	Team        *TeamState
	Person      *PersonState
	Project     *ProjectState
	Budget      *BudgetState
	Mandate     *MandateState
	Decision    *DecisionState
	Board       *BoardState
	Proposal    *ProposalState
	Ledger      *LedgerState
	Actor       *ActorState
}

// World is what the command handler loaded for a decision. A Ref absent from
// the map is not loaded yet; a Ref present with Version 0 does not exist.
type World map[Ref]Aggregate

// Exists reports whether the aggregate has been created.
func (a Aggregate) Exists() bool {
	return a.ValueStream != nil || a.Product != nil || a.Team != nil || a.Person != nil ||
		a.Project != nil || a.Budget != nil || a.Mandate != nil || a.Decision != nil ||
		a.Board != nil || a.Proposal != nil || a.Ledger != nil || a.Actor != nil
}

// Status is "active" or what ended it (retired, disbanded, left, closed,
// converted, revoked, retracted); "absent" when it does not exist.
func (a Aggregate) Status() string {
	switch {
	case a.ValueStream != nil && a.ValueStream.Retired,
		a.Product != nil && a.Product.Retired:
		return "retired"
	case a.Team != nil && a.Team.Disbanded, a.Board != nil && a.Board.Disbanded:
		return "disbanded"
	case a.Person != nil && a.Person.Left:
		return "gone (left the organisation)"
	case a.Project != nil && a.Project.ConvertedTo != "":
		return "converted"
	case a.Project != nil && a.Project.Closed:
		return "closed"
	case a.Budget != nil && a.Budget.Closed:
		return "closed"
	case a.Mandate != nil && a.Mandate.Revoked:
		return "revoked"
	case a.Decision != nil && a.Decision.RetractedBy != "":
		return "retracted"
	case a.Proposal != nil && a.Proposal.State != ProposalPending:
		return a.Proposal.State
	case !a.Exists():
		return "absent"
	}
	return "active"
}

// Active reports whether the aggregate exists and has not ended.
func (a Aggregate) Active() bool { return a.Status() == "active" }

// ValueStreamState is a value stream. Products (sorted) are its active
// products, as far as the log says (see ValueStreamProduct).
type ValueStreamState struct {
	Name     string
	Retired  bool
	Products []string
	KPIs     map[string]KPIState
}

// ProductState is a product.
type ProductState struct {
	Name        string
	ValueStream string
	// Owner is the accountable owner (a person id); kept after retirement
	// as the last owner.
	Owner   string
	Retired bool
	Project string // the project it was converted from
	KPIs    map[string]KPIState
	// Teams (sorted) are the teams serving it, as far as the log says
	// (product.team-added/removed).
	Teams []string
}

// KPIState is one KPI of a product or value stream.
type KPIState struct {
	Unit      string
	Direction string // DirectionHigher or DirectionLower
	Category  string // one of KPICategories
	Target    *Decimal
	// Targets are the targets of single quarters (2026-Q2), over Target.
	Targets map[string]Decimal
	Last    *Decimal
}

// KPI directions: which way is better.
const (
	DirectionHigher = "higher"
	DirectionLower  = "lower"
)

// KPICategories are the families of KPI the essay asks organisations to
// govern on instead of scope, time and budget.
var KPICategories = []string{"value", "customer", "flow", "sustainability", "team"}

// TargetFor is the KPI's target in quarter q (2026-Q2): the quarter's own,
// else the default; nil when none.
func (k KPIState) TargetFor(q string) *Decimal {
	if t, ok := k.Targets[q]; ok {
		return &t
	}
	return k.Target
}

// kpis is the KPI map of a product or value stream, nil for other kinds.
func (a Aggregate) kpis() map[string]KPIState {
	switch {
	case a.Product != nil:
		return a.Product.KPIs
	case a.ValueStream != nil:
		return a.ValueStream.KPIs
	}
	return nil
}

// withKPIs returns a with a copy of its KPI map changed by fn.
func withKPIs(a Aggregate, fn func(map[string]KPIState)) Aggregate {
	m := make(map[string]KPIState, len(a.kpis())+1)
	for k, v := range a.kpis() {
		m[k] = v
	}
	fn(m)
	switch {
	case a.Product != nil:
		p := cloneProduct(a.Product)
		p.KPIs = m
		a.Product = p
	case a.ValueStream != nil:
		v := *a.ValueStream
		v.KPIs = m
		a.ValueStream = &v
	}
	return a
}

// TeamState is a team; Products and Members are sorted.
type TeamState struct {
	Name      string
	Type      string
	Disbanded bool
	Products  []string
	Members   []string
}

// PersonState is a person; Owns (sorted) are the active products they are
// accountable owner of.
type PersonState struct {
	Name string
	Team string // empty once left
	Left bool
	// LeftAt is the effective time of the departure: the person's mandates
	// are suspended from then on (see MandateState).
	LeftAt time.Time
	Owns   []string
	// Erased: the person's name was erased (person.erase); the person,
	// their membership and history stay.
	Erased bool
}

// ProjectState is a legacy project; Periods (sorted) are the budget periods
// it received funds in.
type ProjectState struct {
	Name        string
	ValueStream string
	Closed      bool
	ConvertedTo string
	Periods     []string
}

// BudgetState is one budget period: double-entry accounts in minor units of
// Currency. The sum of Accounts always equals Total.
type BudgetState struct {
	Period   string
	Currency Currency
	Total    Amount
	Accounts map[Account]Amount
	Closed   bool
	// Used is, per mandate with a period limit, how much was moved in this
	// period under it or under mandates granted beneath it.
	Used map[string]Amount
}

// Balance is the balance of an account (0 when never used).
func (b *BudgetState) Balance(a Account) Amount { return b.Accounts[a] }

// MandateState is a mandate. Whether it is in force at a given moment also
// depends on its holder and its grant chain; see the package documentation.
type MandateState struct {
	Holder      string
	Kinds       []string
	Scope       string
	Limit       *Decimal   // per decision, per currency; nil: none
	PeriodLimit *Decimal   // per budget period, across decisions; nil: none
	ValidUntil  *time.Time // the mandate lapses at this moment; nil: never
	Grantor     string     // empty only for the root mandate
	// Chain is root … Grantor; nil for the root and for grants recorded
	// before chains were written (Decide then walks Grantor).
	Chain   []string
	Revoked bool
	// RevokedAt is the effective time of the revocation: a revocation
	// effective in the future leaves the mandate in force until then.
	RevokedAt time.Time
}

// IsRoot reports whether m is the ledger's root mandate (granted by the
// genesis, under no other mandate).
func (m *MandateState) IsRoot() bool { return m.Grantor == "" }

// DecisionState is the record of one decision.
type DecisionState struct {
	Record      DecisionRecorded
	RetractedBy string
	// Sequence and RecordedAt are the decision record's, as the log holds it.
	Sequence   uint64
	RecordedAt time.Time
}

// Fold replays history (the events of one aggregate, in log order) into its state.
func Fold(ref Ref, history []Recorded) (Aggregate, error) {
	a := Aggregate{Ref: ref}
	for i, e := range history {
		var err error
		a, err = Evolve(a, e)
		if err != nil {
			return Aggregate{}, fmt.Errorf("fold %s at event %d: %w", ref, i, err)
		}
	}
	return a, nil
}

// Evolve applies one recorded event to a and returns the new state; a itself
// is not modified (slices and maps are copied before they change).
func Evolve(a Aggregate, e Recorded) (Aggregate, error) {
	if a.Ref == (Ref{}) {
		a.Ref = e.Aggregate
	}
	if e.Aggregate != a.Ref {
		return a, fmt.Errorf("event %s for %s applied to %s", e.Type, e.Aggregate, a.Ref)
	}
	v, err := decodeData(e.Event)
	if err != nil {
		return a, err
	}
	switch e.Type {
	case EventLedgerKeyRecorded, EventLedgerSignaturesRequired, EventActorKeyRegistered, EventActorKeyRevoked:
		if !a.Exists() {
			a.Since = e.Meta.Effective
		}
		if err := evolveTrust(&a, e, v); err != nil {
			return a, err
		}
		a.Version = e.Sequence
		return a, nil
	}
	creates := false
	switch e.Type {
	case EventValueStreamDefined, EventProductLaunched, EventTeamFormed, EventPersonJoined,
		EventProjectStarted, EventBudgetOpened, EventMandateGranted, EventDecisionRecorded,
		EventBoardFormed, EventProposalOpened:
		creates = true
	}
	if creates == a.Exists() {
		if creates {
			return a, fmt.Errorf("event %s: %s already exists", e.Type, a.Ref)
		}
		return a, fmt.Errorf("event %s: %s does not exist", e.Type, a.Ref)
	}
	if creates {
		a.Since = e.Meta.Effective
	}
	switch p := v.(type) {
	case *ValueStreamDefined:
		a.ValueStream = &ValueStreamState{Name: p.Name}
	case *ProductLaunched:
		a.Product = &ProductState{Name: p.Name, ValueStream: p.ValueStream, Project: p.Project}
	case *TeamFormed:
		a.Team = &TeamState{Name: p.Name, Type: p.Type}
	case *PersonJoined:
		a.Person = &PersonState{Name: p.Name, Team: p.Team}
	case *ProjectStarted:
		a.Project = &ProjectState{Name: p.Name, ValueStream: p.ValueStream}
	case *MandateGranted:
		a.Mandate = &MandateState{Holder: p.Holder, Kinds: p.Kinds, Scope: p.Scope, Limit: p.Limit,
			PeriodLimit: p.PeriodLimit, ValidUntil: p.ValidUntil, Grantor: p.Grantor, Chain: p.Chain}
	case *DecisionRecorded:
		a.Decision = &DecisionState{Record: *p, Sequence: e.Sequence, RecordedAt: e.RecordedAt}
	case *BoardFormed:
		a.Board = &BoardState{Name: p.Name, Members: sortedCopy(p.Members), Quorum: p.Quorum}
	case *BoardMember:
		b := *a.Board
		b.Members = setOp(b.Members, p.Person, e.Type == EventBoardMemberAdded)
		b.Quorum = p.Quorum
		a.Board = &b
	case *ProposalOpened:
		p.Decision.EffectiveGiven = !p.EffectiveOmitted
		a.Proposal = &ProposalState{Decision: p.Decision, Board: p.Board, Mandate: p.Mandate, Proposer: p.ProposedBy,
			ProposedAt: e.RecordedAt, Expires: p.Expires, Approvals: []Approval{{By: p.ProposedBy, At: e.RecordedAt}},
			State: ProposalPending, OpenedSeq: e.Sequence}
	case *ProposalVote:
		evolveVote(&a, e, p)
	case *ProposalOutcome:
		pr := cloneProposal(a.Proposal)
		pr.Approvals = append(pr.Approvals, Approval{By: p.By, Reason: p.ApprovalReason, At: e.RecordedAt})
		pr.State, pr.Reason, pr.ClosedAt = ProposalRefused, p.Reason, e.RecordedAt
		if e.Type == EventProposalDecided {
			pr.State, pr.Reason = ProposalDecided, ""
		}
		a.Proposal = pr
	case *DecisionRetracted:
		d := *a.Decision
		d.RetractedBy = p.By
		a.Decision = &d
	case *Lifecycle:
		evolveLifecycle(&a, e.Type, e.Meta.Effective)
	case *ProductMoved:
		pr := cloneProduct(a.Product)
		pr.ValueStream = p.To
		a.Product = pr
	case *ProductOwner:
		pr := cloneProduct(a.Product)
		if e.Type == EventProductOwnerAssigned {
			pr.Owner = p.Owner
		} else {
			pr.Owner = ""
		}
		a.Product = pr
	case *ProductLifecycle:
		pr := cloneProduct(a.Product)
		pr.Retired = e.Type == EventProductRetired
		if p.Owner != "" {
			pr.Owner = p.Owner
		}
		a.Product = pr
	case *KPIDefinition:
		a = withKPIs(a, func(m map[string]KPIState) {
			if e.Type == EventKPIDefined || e.Type == EventValueStreamKPIDefined {
				m[p.KPI] = KPIState{Unit: p.Unit, Target: p.Target, Direction: orDefault(p.Direction, DirectionHigher),
					Category: orDefault(p.Category, KPICategories[0])}
			} else {
				delete(m, p.KPI)
			}
		})
	case *KPIMeasurement:
		a = withKPIs(a, func(m map[string]KPIState) {
			k := m[p.KPI]
			if e.Type == EventKPIRecorded || e.Type == EventValueStreamKPIRecorded {
				val := p.Value
				k.Last = &val
			} else {
				k.Last = p.Previous
			}
			m[p.KPI] = k
		})
	case *KPITarget:
		a = withKPIs(a, func(m map[string]KPIState) {
			k := m[p.KPI]
			if p.Quarter == "" {
				k.Target = p.Target
			} else {
				ts := make(map[string]Decimal, len(k.Targets)+1)
				for q, t := range k.Targets {
					ts[q] = t
				}
				if p.Target != nil {
					ts[p.Quarter] = *p.Target
				} else {
					delete(ts, p.Quarter)
				}
				k.Targets = ts
			}
			m[p.KPI] = k
		})
	case *ValueStreamProduct:
		v := *a.ValueStream
		v.Products = setOp(v.Products, p.Product, e.Type == EventValueStreamProductAdded)
		a.ValueStream = &v
	case *TeamProduct:
		if a.Product != nil {
			pr := cloneProduct(a.Product)
			pr.Teams = setOp(pr.Teams, p.Team, e.Type == EventProductTeamAdded)
			a.Product = pr
			break
		}
		t := cloneTeam(a.Team)
		t.Products = setOp(t.Products, p.Product, e.Type == EventTeamProductAssigned)
		a.Team = t
	case *TeamMember:
		t := cloneTeam(a.Team)
		t.Members = setOp(t.Members, p.Person, e.Type == EventTeamMemberAdded)
		a.Team = t
	case *PersonMoved:
		ps := clonePerson(a.Person)
		ps.Team = p.To
		a.Person = ps
	case *PersonTeam:
		ps := clonePerson(a.Person)
		if e.Type == EventPersonLeft {
			ps.Team, ps.Left, ps.LeftAt = "", true, e.Meta.Effective
		} else {
			ps.Team, ps.Left, ps.LeftAt = p.Team, false, time.Time{}
		}
		a.Person = ps
	case *PersonOwnership:
		ps := clonePerson(a.Person)
		ps.Owns = setOp(ps.Owns, p.Product, e.Type == EventPersonOwnershipTaken)
		a.Person = ps
	case *PersonErased:
		ps := clonePerson(a.Person)
		ps.Erased = true
		a.Person = ps
	case *ProjectConverted:
		pj := cloneProject(a.Project)
		pj.ConvertedTo = p.Product
		a.Project = pj
	case *ProjectBudgetLinked:
		pj := cloneProject(a.Project)
		pj.Periods = setOp(pj.Periods, p.Period, true)
		a.Project = pj
	case *BudgetAmount:
		amt, err := p.Amount.Minor(p.Currency)
		if err != nil {
			return a, fmt.Errorf("event %s: %w", e.Type, err)
		}
		if e.Type == EventBudgetOpened {
			a.Budget = &BudgetState{Period: p.Period, Currency: p.Currency, Total: amt, Accounts: map[Account]Amount{Pool: amt}}
			a.Budget.charge(p.Charged, amt)
		} else {
			b := cloneBudget(a.Budget)
			b.Total += amt
			b.Accounts[Pool] += amt
			b.charge(p.Charged, amt)
			a.Budget = b
		}
	case *BudgetLifecycle:
		b := cloneBudget(a.Budget)
		b.Closed = e.Type == EventBudgetClosed
		a.Budget = b
	case *FundingMoved:
		amt, err := p.Amount.Minor(a.Budget.Currency)
		if err != nil {
			return a, fmt.Errorf("event %s: %w", e.Type, err)
		}
		b := cloneBudget(a.Budget)
		b.Accounts[p.From] -= amt
		b.Accounts[p.To] += amt
		if b.Accounts[p.From] == 0 && p.From != Pool {
			delete(b.Accounts, p.From)
		}
		b.charge(p.Charged, amt)
		a.Budget = b
	default:
		return a, &UnknownEventError{Type: e.Type, Aggregate: e.Aggregate}
	}
	a.Version = e.Sequence
	return a, nil
}

func evolveLifecycle(a *Aggregate, typ string, effective time.Time) {
	switch typ {
	case EventValueStreamRetired, EventValueStreamReactivated:
		v := *a.ValueStream
		v.Retired = typ == EventValueStreamRetired
		a.ValueStream = &v
	case EventTeamDisbanded, EventTeamReformed:
		t := cloneTeam(a.Team)
		t.Disbanded = typ == EventTeamDisbanded
		a.Team = t
	case EventProjectClosed, EventProjectReopened:
		p := cloneProject(a.Project)
		p.Closed = typ == EventProjectClosed
		if typ == EventProjectReopened {
			p.ConvertedTo = ""
		}
		a.Project = p
	case EventBoardDisbanded, EventBoardReformed:
		b := *a.Board
		b.Disbanded = typ == EventBoardDisbanded
		b.DisbandedAt = time.Time{}
		if b.Disbanded {
			b.DisbandedAt = effective
		}
		a.Board = &b
	case EventMandateRevoked, EventMandateReinstated:
		m := *a.Mandate
		m.Revoked = typ == EventMandateRevoked
		m.RevokedAt = time.Time{}
		if m.Revoked {
			m.RevokedAt = effective
		}
		a.Mandate = &m
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// setOp adds or removes s in a sorted set, returning a new slice.
func setOp(set []string, s string, add bool) []string {
	i, found := slices.BinarySearch(set, s)
	switch {
	case add && !found:
		return slices.Insert(slices.Clone(set), i, s)
	case !add && found:
		return slices.Delete(slices.Clone(set), i, i+1)
	}
	return set
}

func cloneProduct(p *ProductState) *ProductState {
	c := *p
	c.KPIs = make(map[string]KPIState, len(p.KPIs)+1)
	for k, v := range p.KPIs {
		c.KPIs[k] = v
	}
	return &c
}

func cloneTeam(t *TeamState) *TeamState       { c := *t; return &c }
func clonePerson(p *PersonState) *PersonState { c := *p; return &c }
func cloneProject(p *ProjectState) *ProjectState {
	c := *p
	return &c
}

func cloneBudget(b *BudgetState) *BudgetState {
	c := *b
	c.Accounts = make(map[Account]Amount, len(b.Accounts)+1)
	for k, v := range b.Accounts {
		c.Accounts[k] = v
	}
	if b.Used != nil {
		c.Used = make(map[string]Amount, len(b.Used)+1)
		for k, v := range b.Used {
			c.Used[k] = v
		}
	}
	return &c
}

// charge adds |amt| to the use of each mandate in charged; b must be a
// copy the caller owns. Movements count whichever way they go: a period
// limit caps how much is moved, not a balance.
func (b *BudgetState) charge(charged []string, amt Amount) {
	if len(charged) == 0 {
		return
	}
	if amt < 0 {
		amt = -amt
	}
	if b.Used == nil {
		b.Used = make(map[string]Amount, len(charged))
	}
	for _, m := range charged {
		b.Used[m] += amt
	}
}
