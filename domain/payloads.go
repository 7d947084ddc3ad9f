package domain

import (
	"encoding/json"
	"fmt"
	"time"
)

// The event types. Each event's Data is the JSON of the payload struct named
// in the package documentation, at the type's CurrentVersion.
const (
	EventValueStreamDefined     = "valuestream.defined"
	EventValueStreamRetired     = "valuestream.retired"
	EventValueStreamReactivated = "valuestream.reactivated"

	EventProductLaunched        = "product.launched"
	EventProductMoved           = "product.moved"
	EventProductOwnerAssigned   = "product.owner-assigned"
	EventProductOwnerUnassigned = "product.owner-unassigned"
	EventProductRetired         = "product.retired"
	EventProductReactivated     = "product.reactivated"
	EventKPIDefined             = "product.kpi-defined"
	EventKPIRemoved             = "product.kpi-removed"
	EventKPIRecorded            = "product.kpi-recorded"
	EventKPIRecordRetracted     = "product.kpi-record-retracted"
	EventKPITargetSet           = "product.kpi-target-set"
	EventProductTeamAdded       = "product.team-added"
	EventProductTeamRemoved     = "product.team-removed"

	EventValueStreamKPIDefined         = "valuestream.kpi-defined"
	EventValueStreamKPIRemoved         = "valuestream.kpi-removed"
	EventValueStreamKPIRecorded        = "valuestream.kpi-recorded"
	EventValueStreamKPIRecordRetracted = "valuestream.kpi-record-retracted"
	EventValueStreamKPITargetSet       = "valuestream.kpi-target-set"
	EventValueStreamProductAdded       = "valuestream.product-added"
	EventValueStreamProductRemoved     = "valuestream.product-removed"

	EventTeamFormed            = "team.formed"
	EventTeamProductAssigned   = "team.product-assigned"
	EventTeamProductUnassigned = "team.product-unassigned"
	EventTeamMemberAdded       = "team.member-added"
	EventTeamMemberRemoved     = "team.member-removed"
	EventTeamDisbanded         = "team.disbanded"
	EventTeamReformed          = "team.reformed"
	EventPersonJoined          = "person.joined"
	EventPersonMoved           = "person.moved"
	EventPersonLeft            = "person.left"
	// EventPersonErased: the person's data key is destroyed; their name
	// is gone from every copy of the log (see personal.go).
	EventPersonErased            = "person.erased"
	EventPersonRejoined          = "person.rejoined"
	EventPersonOwnershipTaken    = "person.ownership-taken"
	EventPersonOwnershipReleased = "person.ownership-released"
	EventProjectStarted          = "project.started"
	EventProjectClosed           = "project.closed"
	EventProjectReopened         = "project.reopened"
	EventProjectConverted        = "project.converted"
	EventProjectBudgetLinked     = "project.budget-linked"
	EventBudgetOpened            = "budget.opened"
	EventBudgetAdjusted          = "budget.adjusted"
	EventBudgetClosed            = "budget.closed"
	EventBudgetReopened          = "budget.reopened"
	EventFundingAllocated        = "funding.allocated"
	EventFundingShifted          = "funding.shifted"
	EventFundingReleased         = "funding.released"
	EventMandateGranted          = "mandate.granted"
	EventMandateRevoked          = "mandate.revoked"
	EventMandateReinstated       = "mandate.reinstated"
	EventDecisionRecorded        = "decision.recorded"
	EventDecisionRetracted       = "decision.retracted"
	EventBoardFormed             = "board.formed"
	EventBoardMemberAdded        = "board.member-added"
	EventBoardMemberRemoved      = "board.member-removed"
	EventBoardDisbanded          = "board.disbanded"
	EventBoardReformed           = "board.reformed"
	EventProposalOpened          = "proposal.opened"
	EventProposalApproved        = "proposal.approved"
	EventProposalRejected        = "proposal.rejected"
	EventProposalWithdrawn       = "proposal.withdrawn"
	EventProposalDecided         = "proposal.decided"
	EventProposalRefused         = "proposal.refused"
)

// ValueStreamDefined is the payload of valuestream.defined.
type ValueStreamDefined struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Lifecycle is the payload of events that only flip an aggregate's
// lifecycle: valuestream.retired/reactivated, team.disbanded/reformed,
// project.closed/reopened, mandate.revoked/reinstated.
type Lifecycle struct {
	ID string `json:"id"`
}

// ProductLaunched is the payload of product.launched; Project is set when
// the product came from project.convert.
type ProductLaunched struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	ValueStream string `json:"valuestream"`
	Project     string `json:"project,omitempty"`
}

// ProductMoved is the payload of product.moved (between value streams).
type ProductMoved struct {
	ID   string `json:"id"`
	From string `json:"from"`
	To   string `json:"to"`
}

// ProductOwner is the payload of product.owner-assigned (Previous is the
// owner it replaces, empty for the first) and product.owner-unassigned
// (only by a retraction; Owner is the one removed).
type ProductOwner struct {
	ID       string `json:"id"`
	Owner    string `json:"owner"`
	Previous string `json:"previous,omitempty"`
}

// ProductLifecycle is the payload of product.retired and
// product.reactivated; Owner is the accountable owner released or restored.
type ProductLifecycle struct {
	ID    string `json:"id"`
	Owner string `json:"owner,omitempty"`
}

// KPIDefinition is the payload of product.kpi-defined and
// product.kpi-removed (Product set), and of valuestream.kpi-defined and
// valuestream.kpi-removed (ValueStream set). Direction says which way is
// better (DirectionHigher or DirectionLower), Category which family of
// the essay it measures (KPICategories); both were added later: events
// without them mean higher and value. Target is the default target, for
// every quarter without one of its own.
type KPIDefinition struct {
	Product     string   `json:"product,omitempty"`
	ValueStream string   `json:"valuestream,omitempty"`
	KPI         string   `json:"kpi"`
	Unit        string   `json:"unit"`
	Target      *Decimal `json:"target,omitempty"`
	Direction   string   `json:"direction,omitempty"`
	Category    string   `json:"category,omitempty"`
}

// Subject is the aggregate the KPI belongs to.
func (d KPIDefinition) Subject() Ref { return kpiSubject(d.Product, d.ValueStream) }

// KPIMeasurement is the payload of product.kpi-recorded (Previous is the
// last value before it) and product.kpi-record-retracted (Previous is the
// value the KPI shows again, when the retracted one was the latest), and
// of their valuestream.* twins (ValueStream set instead of Product). The
// measurement's date is the decision's effective time; Note says where it
// came from.
type KPIMeasurement struct {
	Product     string   `json:"product,omitempty"`
	ValueStream string   `json:"valuestream,omitempty"`
	KPI         string   `json:"kpi"`
	Value       Decimal  `json:"value"`
	Previous    *Decimal `json:"previous,omitempty"`
	Note        string   `json:"note,omitempty"`
}

// Subject is the aggregate the KPI belongs to.
func (m KPIMeasurement) Subject() Ref { return kpiSubject(m.Product, m.ValueStream) }

// KPITarget is the payload of product.kpi-target-set and
// valuestream.kpi-target-set: the target of one quarter (Quarter set,
// e.g. 2026-Q2) or the default target (Quarter empty). Target nil unsets
// it; Previous is the target it replaces (nil: none), so that a
// retraction can restore it.
type KPITarget struct {
	Product     string   `json:"product,omitempty"`
	ValueStream string   `json:"valuestream,omitempty"`
	KPI         string   `json:"kpi"`
	Quarter     string   `json:"quarter,omitempty"`
	Target      *Decimal `json:"target,omitempty"`
	Previous    *Decimal `json:"previous,omitempty"`
}

// Subject is the aggregate the KPI belongs to.
func (t KPITarget) Subject() Ref { return kpiSubject(t.Product, t.ValueStream) }

func kpiSubject(product, vs string) Ref {
	if vs != "" {
		return Ref{Kind: KindValueStream, ID: vs}
	}
	return Ref{Kind: KindProduct, ID: product}
}

// ValueStreamProduct is the payload of valuestream.product-added and
// valuestream.product-removed: the value stream's list of active products
// changed (a launch, a move, a retirement, a reactivation), so that the
// value stream itself can refuse to retire while it has active products.
// Written since the value stream's products are kept; ledgers from before
// have none of these events.
type ValueStreamProduct struct {
	ValueStream string `json:"valuestream"`
	Product     string `json:"product"`
}

// TeamFormed is the payload of team.formed.
type TeamFormed struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
}

// TeamProduct is the payload of team.product-assigned/unassigned (on the
// team) and of product.team-added/removed (on the product, in the same
// decision, so that a product knows its teams and leaves their lists when
// it retires).
type TeamProduct struct {
	Team    string `json:"team"`
	Product string `json:"product"`
}

// TeamMember is the payload of team.member-added/removed.
type TeamMember struct {
	Team   string `json:"team"`
	Person string `json:"person"`
}

// PersonJoined is the payload of person.joined, at schema version 2:
// Role, optional, was added in version 2 (upcast.go reads version 1).
type PersonJoined struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Team string `json:"team"`
	// Role is the person's role in the team ("developer"), if given.
	Role string `json:"role,omitempty"`
}

// PersonErased is the payload of person.erased.
type PersonErased struct {
	ID string `json:"id"`
}

// PersonMoved is the payload of person.moved.
type PersonMoved struct {
	ID   string `json:"id"`
	From string `json:"from"`
	To   string `json:"to"`
}

// PersonTeam is the payload of person.left (the team left) and
// person.rejoined (the team rejoined, only by a retraction).
type PersonTeam struct {
	ID   string `json:"id"`
	Team string `json:"team"`
}

// PersonOwnership is the payload of person.ownership-taken/released: the
// person became or stopped being the accountable owner of the product.
type PersonOwnership struct {
	Person  string `json:"person"`
	Product string `json:"product"`
}

// ProjectStarted is the payload of project.started.
type ProjectStarted struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	ValueStream string `json:"valuestream,omitempty"`
}

// ProjectConverted is the payload of project.converted.
type ProjectConverted struct {
	ID      string `json:"id"`
	Product string `json:"product"`
}

// ProjectBudgetLinked is the payload of project.budget-linked: the project
// received funds in that period for the first time (a conversion moves them).
type ProjectBudgetLinked struct {
	ID     string `json:"id"`
	Period string `json:"period"`
}

// BudgetAmount is the payload of budget.opened (the period's total, all in
// the pool) and budget.adjusted (a signed change of total and pool).
type BudgetAmount struct {
	Period   string   `json:"period"`
	Currency Currency `json:"currency"`
	Amount   Decimal  `json:"amount"`
	// Charged are the mandates with a period limit whose use in this period
	// the amount counts against (see FundingMoved.Charged).
	Charged []string `json:"charged,omitempty"`
}

// BudgetLifecycle is the payload of budget.closed/reopened (only by a
// retraction of budget.open).
type BudgetLifecycle struct {
	Period string `json:"period"`
}

// FundingMoved is the payload of funding.allocated (From is pool),
// funding.shifted and funding.released (To is pool): Amount, positive,
// leaves From and enters To.
type FundingMoved struct {
	Period   string   `json:"period"`
	Currency Currency `json:"currency"`
	From     Account  `json:"from"`
	To       Account  `json:"to"`
	Amount   Decimal  `json:"amount"`
	// Charged are the mandates with a period limit that this movement
	// counts against: the decision's mandate and those it was granted under,
	// when they have one. The budget folds them into its per-mandate use,
	// so that the check and the movement are on one aggregate and one
	// expected version (two decisions cannot both take the last headroom).
	// Absent in events written before period limits existed, which counted
	// against none.
	Charged []string `json:"charged,omitempty"`
}

// MandateGranted is the payload of mandate.granted; Grantor is the mandate
// the grant was decided under (empty for the root mandate); no Limit means
// no amount limit per decision, no PeriodLimit none per budget period, no
// ValidUntil no expiry.
//
// ValidUntil, PeriodLimit and Chain were added after the first ledgers were
// written; events without them are still SchemaVersion 1 and mean what they
// meant then (no expiry, no period limit, chain unknown: Decide walks it
// through Grantor one mandate at a time).
type MandateGranted struct {
	ID          string     `json:"id"`
	Holder      string     `json:"holder"`
	Kinds       []string   `json:"kinds"`
	Scope       string     `json:"scope"`
	Limit       *Decimal   `json:"limit,omitempty"`
	PeriodLimit *Decimal   `json:"period_limit,omitempty"`
	ValidUntil  *time.Time `json:"valid_until,omitempty"`
	Grantor     string     `json:"grantor,omitempty"`
	// Chain are the mandates the grant descends from, the root first and
	// Grantor last, so that Decide can ask for the whole chain at once.
	Chain []string `json:"chain,omitempty"`
}

// Effect is one event a decision produced, kept in its record so a
// retraction can compensate it.
type Effect struct {
	Aggregate string          `json:"aggregate"` // kind:id
	Type      string          `json:"type"`
	Data      json.RawMessage `json:"data"`
	// SchemaVersion of Data; absent (0) is version 1, as every effect was
	// before event payloads had versions above 1.
	SchemaVersion int `json:"schema_version,omitempty"`
}

// Version is the schema version of the effect's Data.
func (e Effect) Version() int {
	if e.SchemaVersion == 0 {
		return 1
	}
	return e.SchemaVersion
}

// DecisionRecorded is the payload of decision.recorded, the one event on
// decision:<id>: the decision as taken and the events it produced.
type DecisionRecorded struct {
	ID        string    `json:"id"`
	By        string    `json:"by"`
	Authority string    `json:"authority"`
	Reason    string    `json:"reason"`
	Refs      []string  `json:"refs,omitempty"`
	Effective time.Time `json:"effective"`
	Changes   []Change  `json:"changes"`
	Effects   []Effect  `json:"effects"`
	// Retracts is the decision this one retracts, if it is a retraction.
	Retracts string `json:"retracts,omitempty"`
	// AuthorityChain is the decision's mandate and those it was granted
	// under, as they were when the decision was recorded: the mandate
	// first, the root last. Absent in decisions recorded before it was
	// written.
	AuthorityChain []ChainLink `json:"authority_chain,omitempty"`
	// Approvers are the board members whose approvals decided it, when it
	// was taken under a board's mandate (the proposer first).
	Approvers []string `json:"approvers,omitempty"`
	// Signature is the actor's signature over the decision's canonical
	// encoding (hex) and SignedWith the registered key that verified it;
	// both absent for an unsigned decision.
	Signature  string `json:"signature,omitempty"`
	SignedWith string `json:"signed_with,omitempty"`
	// EffectiveOmitted: the decision named no effective time and took its
	// recording time; its signature covers none.
	EffectiveOmitted bool `json:"effective_omitted,omitempty"`
}

// ChainLink is one mandate of an authority chain and its holder then.
type ChainLink struct {
	Mandate string `json:"mandate"`
	Holder  string `json:"holder"`
}

// BoardFormed is the payload of board.formed.
type BoardFormed struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Members []string `json:"members"`
	Quorum  int      `json:"quorum"`
}

// BoardMember is the payload of board.member-added and
// board.member-removed: Quorum is the board's quorum after the change,
// Previous the one before.
type BoardMember struct {
	Board    string `json:"board"`
	Person   string `json:"person"`
	Quorum   int    `json:"quorum"`
	Previous int    `json:"previous_quorum"`
}

// ProposalOpened is the payload of proposal.opened, on proposal:<id>
// (the decision's id): a decision under mandate Mandate, held by Board,
// waiting for Quorum approvals (ProposedBy's counts as the first) until
// Expires.
type ProposalOpened struct {
	ID         string    `json:"id"`
	Board      string    `json:"board"`
	Mandate    string    `json:"mandate"`
	Quorum     int       `json:"quorum"`
	ProposedBy string    `json:"proposed_by"`
	Expires    time.Time `json:"expires"`
	Decision   Decision  `json:"decision"`
	// EffectiveOmitted: the decision named no effective time (it took the
	// proposal's recording time); its signature, if any, covers none.
	EffectiveOmitted bool `json:"effective_omitted,omitempty"`
}

// ProposalVote is the payload of proposal.approved, proposal.rejected
// and proposal.withdrawn: By is the member who acted.
type ProposalVote struct {
	ID     string `json:"id"`
	By     string `json:"by"`
	Reason string `json:"reason,omitempty"`
	// Signature (hex) is By's signature over the action's canonical
	// encoding and SignedWith the registered key that verified it.
	Signature  string `json:"signature,omitempty"`
	SignedWith string `json:"signed_with,omitempty"`
}

// ProposalOutcome is the payload of proposal.decided (the decision's
// events follow in the same batch) and proposal.refused (Reason: why the
// decision no longer fit): both record the approval of By that completed
// the quorum (with ApprovalReason), and Approvers, every member whose
// approval counted. So every action on a proposal is one event, except a
// decision, which ends with its decision.recorded.
type ProposalOutcome struct {
	ID             string   `json:"id"`
	By             string   `json:"by"`
	ApprovalReason string   `json:"approval_reason,omitempty"`
	Approvers      []string `json:"approvers"`
	Reason         string   `json:"reason,omitempty"`
	// ApprovalSignature and ApprovalSignedWith as in ProposalVote.
	ApprovalSignature  string `json:"approval_signature,omitempty"`
	ApprovalSignedWith string `json:"approval_signed_with,omitempty"`
}

// DecisionRetracted is the payload of decision.retracted, on the retracted
// decision's record; By is the retracting decision.
type DecisionRetracted struct {
	ID string `json:"id"`
	By string `json:"by"`
}

type eventSpec struct {
	kind AggregateKind
	new  func() any
}

func spec[T any](k AggregateKind) eventSpec {
	return eventSpec{kind: k, new: func() any { return new(T) }}
}

var eventSpecs = map[string]eventSpec{
	EventValueStreamDefined:     spec[ValueStreamDefined](KindValueStream),
	EventValueStreamRetired:     spec[Lifecycle](KindValueStream),
	EventValueStreamReactivated: spec[Lifecycle](KindValueStream),
	EventProductLaunched:        spec[ProductLaunched](KindProduct),
	EventProductMoved:           spec[ProductMoved](KindProduct),
	EventProductOwnerAssigned:   spec[ProductOwner](KindProduct),
	EventProductOwnerUnassigned: spec[ProductOwner](KindProduct),
	EventProductRetired:         spec[ProductLifecycle](KindProduct),
	EventProductReactivated:     spec[ProductLifecycle](KindProduct),
	EventKPIDefined:             spec[KPIDefinition](KindProduct),
	EventKPIRemoved:             spec[KPIDefinition](KindProduct),
	EventKPIRecorded:            spec[KPIMeasurement](KindProduct),
	EventKPIRecordRetracted:     spec[KPIMeasurement](KindProduct),
	EventKPITargetSet:           spec[KPITarget](KindProduct),
	EventProductTeamAdded:       spec[TeamProduct](KindProduct),
	EventProductTeamRemoved:     spec[TeamProduct](KindProduct),

	EventValueStreamKPIDefined:         spec[KPIDefinition](KindValueStream),
	EventValueStreamKPIRemoved:         spec[KPIDefinition](KindValueStream),
	EventValueStreamKPIRecorded:        spec[KPIMeasurement](KindValueStream),
	EventValueStreamKPIRecordRetracted: spec[KPIMeasurement](KindValueStream),
	EventValueStreamKPITargetSet:       spec[KPITarget](KindValueStream),
	EventValueStreamProductAdded:       spec[ValueStreamProduct](KindValueStream),
	EventValueStreamProductRemoved:     spec[ValueStreamProduct](KindValueStream),
	EventTeamFormed:                    spec[TeamFormed](KindTeam),
	EventTeamProductAssigned:           spec[TeamProduct](KindTeam),
	EventTeamProductUnassigned:         spec[TeamProduct](KindTeam),
	EventTeamMemberAdded:               spec[TeamMember](KindTeam),
	EventTeamMemberRemoved:             spec[TeamMember](KindTeam),
	EventTeamDisbanded:                 spec[Lifecycle](KindTeam),
	EventTeamReformed:                  spec[Lifecycle](KindTeam),
	EventPersonJoined:                  spec[PersonJoined](KindPerson),
	EventPersonMoved:                   spec[PersonMoved](KindPerson),
	EventPersonLeft:                    spec[PersonTeam](KindPerson),
	EventPersonErased:                  spec[PersonErased](KindPerson),
	EventPersonRejoined:                spec[PersonTeam](KindPerson),
	EventPersonOwnershipTaken:          spec[PersonOwnership](KindPerson),
	EventPersonOwnershipReleased:       spec[PersonOwnership](KindPerson),
	EventProjectStarted:                spec[ProjectStarted](KindProject),
	EventProjectClosed:                 spec[Lifecycle](KindProject),
	EventProjectReopened:               spec[Lifecycle](KindProject),
	EventProjectConverted:              spec[ProjectConverted](KindProject),
	EventProjectBudgetLinked:           spec[ProjectBudgetLinked](KindProject),
	EventBudgetOpened:                  spec[BudgetAmount](KindBudget),
	EventBudgetAdjusted:                spec[BudgetAmount](KindBudget),
	EventBudgetClosed:                  spec[BudgetLifecycle](KindBudget),
	EventBudgetReopened:                spec[BudgetLifecycle](KindBudget),
	EventFundingAllocated:              spec[FundingMoved](KindBudget),
	EventFundingShifted:                spec[FundingMoved](KindBudget),
	EventFundingReleased:               spec[FundingMoved](KindBudget),
	EventMandateGranted:                spec[MandateGranted](KindMandate),
	EventMandateRevoked:                spec[Lifecycle](KindMandate),
	EventMandateReinstated:             spec[Lifecycle](KindMandate),
	EventDecisionRecorded:              spec[DecisionRecorded](KindDecision),
	EventDecisionRetracted:             spec[DecisionRetracted](KindDecision),
	EventBoardFormed:                   spec[BoardFormed](KindBoard),
	EventBoardMemberAdded:              spec[BoardMember](KindBoard),
	EventBoardMemberRemoved:            spec[BoardMember](KindBoard),
	EventBoardDisbanded:                spec[Lifecycle](KindBoard),
	EventBoardReformed:                 spec[Lifecycle](KindBoard),
	EventProposalOpened:                spec[ProposalOpened](KindProposal),
	EventProposalApproved:              spec[ProposalVote](KindProposal),
	EventProposalRejected:              spec[ProposalVote](KindProposal),
	EventProposalWithdrawn:             spec[ProposalVote](KindProposal),
	EventProposalDecided:               spec[ProposalOutcome](KindProposal),
	EventProposalRefused:               spec[ProposalOutcome](KindProposal),
	EventLedgerKeyRecorded:             spec[LedgerKey](KindLedger),
	EventLedgerSignaturesRequired:      spec[LedgerPolicySet](KindLedger),
	EventActorKeyRegistered:            spec[ActorKey](KindActor),
	EventActorKeyRevoked:               spec[ActorKey](KindActor),
}

// EventTypes lists every event type the domain writes.
func EventTypes() []string { return sortedKeys(eventSpecs) }

// DecodeEventData decodes e's payload into its typed struct (a pointer, e.g.
// *FundingMoved for funding.shifted), for projections. A payload of an
// older schema version is upcast first (see Upcast); one that cannot be is
// a *SchemaVersionError.
func DecodeEventData(e Recorded) (any, error) { return decodeData(e.Event) }

func decodeData(e Event) (any, error) {
	s, ok := eventSpecs[e.Type]
	if !ok || s.kind != e.Aggregate.Kind {
		return nil, &UnknownEventError{Type: e.Type, Aggregate: e.Aggregate}
	}
	e, err := Upcast(e)
	if err != nil {
		return nil, err
	}
	v := s.new()
	if err := json.Unmarshal(e.Data, v); err != nil {
		return nil, fmt.Errorf("event %s on %s: decode payload: %w", e.Type, e.Aggregate, err)
	}
	return v, nil
}

func newEvent(ref Ref, typ string, payload any) (Event, error) {
	data, err := json.Marshal(payload)
	if err != nil {
		return Event{}, fmt.Errorf("encode %s: %w", typ, err)
	}
	return Event{Aggregate: ref, Type: typ, SchemaVersion: CurrentVersion(typ), Data: data}, nil
}
