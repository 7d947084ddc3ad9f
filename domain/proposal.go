package domain

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The states of a proposal. ProposalExpired is never written: a pending
// proposal is expired once its expiry has passed, judged at the time of
// whatever looks at it next (an approval, a query), so no timer is needed.
const (
	ProposalPending   = "pending"
	ProposalDecided   = "decided"
	ProposalRefused   = "refused"
	ProposalRejected  = "rejected"
	ProposalWithdrawn = "withdrawn"
	ProposalExpired   = "expired"
)

// ProposalStates lists every state a proposal can be in.
var ProposalStates = []string{ProposalPending, ProposalDecided, ProposalRefused, ProposalRejected, ProposalExpired, ProposalWithdrawn}

// Bounds on a proposal's life.
const (
	DefaultProposalTTL = 14 * 24 * time.Hour
	MinProposalTTL     = time.Second
	MaxProposalTTL     = 366 * 24 * time.Hour
)

// ProposalState is a decision under a board's mandate waiting for its
// approvals. State is as written (pending, decided, refused, rejected,
// withdrawn); StateAt adds expiry.
type ProposalState struct {
	Decision   Decision
	Board      string
	Mandate    string
	Proposer   string
	ProposedAt time.Time // recorded time
	OpenedSeq  uint64    // sequence of proposal.opened
	Expires    time.Time
	// Approvals, the proposer's first, in the order given.
	Approvals []Approval
	State     string
	// Reason is why it was refused, rejected or withdrawn.
	Reason   string
	ClosedBy string
	ClosedAt time.Time
}

// Approval is one member's approval of a proposal.
type Approval struct {
	By     string    `json:"by"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// StateAt is the proposal's state at now: a pending proposal past its
// expiry is expired.
func (p *ProposalState) StateAt(now time.Time) string {
	if p.State == ProposalPending && !now.Before(p.Expires) {
		return ProposalExpired
	}
	return p.State
}

// Approvers are the members who approved, the proposer first.
func (p *ProposalState) Approvers() []string {
	out := make([]string, len(p.Approvals))
	for i, a := range p.Approvals {
		out[i] = a.By
	}
	return out
}

func cloneProposal(p *ProposalState) *ProposalState {
	c := *p
	c.Approvals = slices.Clone(p.Approvals)
	return &c
}

func evolveVote(a *Aggregate, e Recorded, v *ProposalVote) {
	p := cloneProposal(a.Proposal)
	switch e.Type {
	case EventProposalApproved:
		p.Approvals = append(p.Approvals, Approval{By: v.By, Reason: v.Reason, At: e.RecordedAt})
	case EventProposalRejected:
		p.State, p.Reason, p.ClosedBy, p.ClosedAt = ProposalRejected, v.Reason, v.By, e.RecordedAt
	case EventProposalWithdrawn:
		p.State, p.Reason, p.ClosedBy, p.ClosedAt = ProposalWithdrawn, v.Reason, v.By, e.RecordedAt
	}
	a.Proposal = p
}

// Outcome is what Propose or Act produced: the events to append together
// and the proposal after them.
type Outcome struct {
	Events []Event
	// Meta is what the events carry: the decision's own when the proposal
	// was decided (its events are in the batch); otherwise the action's,
	// whose DecisionID the command handler fills in (each action on a
	// proposal is its own entry in the log).
	Meta     Meta
	Proposal ProposalState
	// Quorum is the board's quorum when the outcome was decided; Missing
	// how many approvals the proposal still waits for.
	Quorum  int
	Missing int
	// Refusal is why the decision no longer fit when the last approval
	// came (the proposal is refused; the events record that).
	Refusal error
}

// Decided reports whether the outcome records the decision.
func (o Outcome) Decided() bool { return o.Proposal.State == ProposalDecided }

// Propose records d, taken under a board's mandate by one of its members,
// as a pending proposal that expires after ttl (0: DefaultProposalTTL).
// The decision is checked as Decide would take it now, its quorum aside,
// so that what cannot be decided is refused at once. The world is loaded
// as for Decide (Plan, then *NeedError).
func Propose(w World, d Decision, now time.Time, ttl time.Duration) (Outcome, error) {
	if ttl == 0 {
		ttl = DefaultProposalTTL
	}
	if ttl < MinProposalTTL || ttl > MaxProposalTTL {
		return Outcome{}, &FieldError{Field: "expires", Err: fmt.Errorf("%s: want %s to %s", ttl, MinProposalTTL, MaxProposalTTL)}
	}
	k, _, err := decide(w, d, now, modePropose)
	if err != nil {
		return Outcome{}, err
	}
	b := k.boardHolder
	if b == nil {
		return Outcome{}, fmt.Errorf("decision %s: mandate %s is not held by a board, nothing to propose: %w", d.ID, d.Authority, ErrInvalid)
	}
	r := ref(KindProposal, d.ID)
	opened := ProposalOpened{ID: d.ID, Board: b.Ref.ID, Mandate: d.Authority, Quorum: b.Board.Quorum, ProposedBy: d.By,
		Expires: now.Add(ttl).UTC(), Decision: d, EffectiveOmitted: !d.EffectiveGiven}
	ev, err := newEvent(r, EventProposalOpened, opened)
	if err != nil {
		return Outcome{}, err
	}
	p, err := Evolve(w[r], Recorded{Event: ev, RecordedAt: now})
	if err != nil {
		return Outcome{}, err
	}
	return Outcome{Events: []Event{ev}, Meta: actionMeta(d.By, d.Authority, d.Reason, now), Proposal: *p.Proposal,
		Quorum: b.Board.Quorum, Missing: max(b.Board.Quorum-1, 0)}, nil
}

func actionMeta(by, mandate, reason string, now time.Time) Meta {
	return Meta{By: by, Authority: mandate, Reason: reason, Effective: now}
}

// The actions on a proposal.
const (
	ActionApprove  = "approve"
	ActionReject   = "reject"
	ActionWithdraw = "withdraw"
)

// Action is a member's approval or rejection of a proposal, or its
// proposer's withdrawal.
type Action struct {
	Proposal string
	Kind     string // ActionApprove, ActionReject, ActionWithdraw
	By       string
	Reason   string // required to reject
	// Signature is the member's Ed25519 signature over [CanonicalAction];
	// nil when unsigned.
	Signature []byte
}

// PlanAction lists the aggregates Act needs first.
func PlanAction(a Action) []Ref {
	refs := []Ref{ref(KindProposal, a.Proposal), LedgerPolicyRef}
	if ValidID(a.By) == nil {
		refs = append(refs, ref(KindPerson, a.By))
		if len(a.Signature) > 0 {
			refs = append(refs, ref(KindActor, a.By))
		}
	}
	return refs
}

// Act applies a to its proposal at now. An approval that completes the
// quorum decides the proposal's decision against the state at that moment
// (invariants, versions, the board's authority then): the outcome holds
// the approval, proposal.decided and the decision's events, to append
// atomically under the decision's meta; a decision that no longer fits
// gives the approval and proposal.refused with the reason (Outcome.Refusal).
//
// Errors (nothing to write): *NeedError, *NotFoundError, *ProposalClosedError
// (decided, refused, rejected, withdrawn or expired: expiry is judged here,
// at the action's time), *ApprovalError (not a member, approved already,
// not the proposer, no reason), *FieldError.
func Act(w World, a Action, now time.Time) (Outcome, error) {
	if now.IsZero() {
		return Outcome{}, errors.New("act: the recording time (now) is required")
	}
	if err := ValidID(a.Proposal); err != nil {
		return Outcome{}, &FieldError{Field: "proposal", Err: err}
	}
	if err := ValidID(a.By); err != nil {
		return Outcome{}, &FieldError{Field: "by", Err: err}
	}
	if err := checkText(a.Reason, MaxReasonLen, a.Kind == ActionReject); err != nil {
		return Outcome{}, &FieldError{Field: "reason", Err: err}
	}
	k := &work{base: w, cur: map[Ref]Aggregate{}, now: now}
	if err := k.load(PlanAction(a)...); err != nil {
		return Outcome{}, err
	}
	pr, _ := k.get(ref(KindProposal, a.Proposal))
	if !pr.Exists() {
		return Outcome{}, &NotFoundError{Ref: pr.Ref}
	}
	signedWith, err := k.checkActionSignature(a)
	if err != nil {
		return Outcome{}, err
	}
	sig := ""
	if signedWith != "" {
		sig = hex.EncodeToString(a.Signature)
	}
	p := pr.Proposal
	if st := p.StateAt(now); st != ProposalPending {
		return Outcome{}, &ProposalClosedError{ID: a.Proposal, State: st, Reason: p.Reason, At: closedAt(p, st)}
	}
	br := ref(KindBoard, p.Board)
	if err := k.load(br); err != nil {
		return Outcome{}, err
	}
	b, _ := k.get(br)
	fail := func(problem, advice string) error {
		return &ApprovalError{Proposal: a.Proposal, By: a.By, Problem: problem, Advice: advice}
	}
	member := func() error {
		person, _ := k.get(ref(KindPerson, a.By))
		switch {
		case b.Board == nil:
			return fail(fmt.Sprintf("board %s does not exist", p.Board), "")
		case !contains(b.Board.Members, a.By):
			return fail(fmt.Sprintf("is not a member of board %s", p.Board),
				fmt.Sprintf("its members (%s) may %s it", strings.Join(b.Board.Members, ", "), a.Kind))
		case !person.Active():
			return fail(fmt.Sprintf("is %s", person.Status()), fmt.Sprintf("another member of board %s (%s) may %s it",
				p.Board, strings.Join(b.Board.Members, ", "), a.Kind))
		}
		return nil
	}
	vote := func(typ string) (Event, error) {
		return newEvent(pr.Ref, typ, ProposalVote{ID: a.Proposal, By: a.By, Reason: a.Reason, Signature: sig, SignedWith: signedWith})
	}
	out := Outcome{Meta: actionMeta(a.By, p.Mandate, actionReason(a), now)}
	if b.Board != nil {
		out.Quorum = b.Board.Quorum
	}
	var events []Event
	switch a.Kind {
	case ActionWithdraw:
		if a.By != p.Proposer {
			return Outcome{}, fail(fmt.Sprintf("did not propose it (%s did)", p.Proposer), fmt.Sprintf("only %s may withdraw it; members may reject it", p.Proposer))
		}
		ev, err := vote(EventProposalWithdrawn)
		if err != nil {
			return Outcome{}, err
		}
		events = append(events, ev)
	case ActionReject:
		if err := member(); err != nil {
			return Outcome{}, err
		}
		ev, err := vote(EventProposalRejected)
		if err != nil {
			return Outcome{}, err
		}
		events = append(events, ev)
	case ActionApprove:
		if err := member(); err != nil {
			return Outcome{}, err
		}
		if contains(p.Approvers(), a.By) {
			return Outcome{}, fail("has approved it already (a member approves once)",
				fmt.Sprintf("it waits for %d more approvals from other members", missing(p.Approvers(), b.Board)))
		}
		approved := func() error {
			ev, err := vote(EventProposalApproved)
			events = append(events, ev)
			return err
		}
		approvers := append(p.Approvers(), a.By)
		if n := missing(approvers, b.Board); n > 0 {
			out.Missing = n
			if err := approved(); err != nil {
				return Outcome{}, err
			}
			break
		}
		d := p.Decision
		d.Approvers = approvers
		_, evs, err := decide(w, d, now, modeFromProposal)
		var ne *NeedError
		var ae *ApprovalsNeededError
		switch {
		case errors.As(err, &ne):
			return Outcome{}, ne
		case errors.As(err, &ae):
			out.Missing = ae.Quorum - len(ae.Approvers)
			if err := approved(); err != nil {
				return Outcome{}, err
			}
		case err != nil:
			refused, rerr := newEvent(pr.Ref, EventProposalRefused, ProposalOutcome{ID: a.Proposal, By: a.By, ApprovalReason: a.Reason,
				Approvers: approvers, Reason: err.Error(), ApprovalSignature: sig, ApprovalSignedWith: signedWith})
			if rerr != nil {
				return Outcome{}, rerr
			}
			events = append(events, refused)
			out.Refusal = err
		default:
			decided, derr := newEvent(pr.Ref, EventProposalDecided, ProposalOutcome{ID: a.Proposal, By: a.By, ApprovalReason: a.Reason,
				Approvers: approvers, ApprovalSignature: sig, ApprovalSignedWith: signedWith})
			if derr != nil {
				return Outcome{}, derr
			}
			events = append([]Event{decided}, evs...)
			out.Meta = d.Meta()
		}
	default:
		return Outcome{}, &FieldError{Field: "action", Err: fmt.Errorf("%q: want approve, reject or withdraw", truncate(a.Kind, 20))}
	}
	st := pr
	for _, ev := range events {
		if ev.Aggregate != pr.Ref {
			continue
		}
		var err error
		if st, err = Evolve(st, Recorded{Event: ev, RecordedAt: now}); err != nil {
			return Outcome{}, err
		}
	}
	out.Events, out.Proposal = events, *st.Proposal
	return out, nil
}

func actionReason(a Action) string {
	if a.Reason != "" {
		return a.Reason
	}
	return a.Kind + " proposal " + a.Proposal
}

func closedAt(p *ProposalState, state string) time.Time {
	if state == ProposalExpired {
		return p.Expires
	}
	return p.ClosedAt
}

// missing is how many more approvals a proposal approved by approvers
// waits for: only current members of the board count.
func missing(approvers []string, b *BoardState) int {
	if b == nil {
		return 1
	}
	n := 0
	for _, a := range approvers {
		if contains(b.Members, a) {
			n++
		}
	}
	return max(b.Quorum-n, 0)
}

// ApprovalsNeededError is returned by Decide for a decision under a
// board's mandate that its quorum has not approved: the command handler
// records it as a proposal instead (Propose).
type ApprovalsNeededError struct {
	Board     string
	Quorum    int
	Approvers []string // the members who approved so far
}

func (e *ApprovalsNeededError) Error() string {
	return fmt.Sprintf("board %s decides with %d approvals, the decision has %d: record it as a proposal and let the members approve it",
		e.Board, e.Quorum, len(e.Approvers))
}
func (e *ApprovalsNeededError) Unwrap() error { return ErrRefused }

// DuplicateProposalError is returned when the decision id is a proposal
// already; the command handler answers with the proposal.
type DuplicateProposalError struct{ ID string }

func (e *DuplicateProposalError) Error() string {
	return fmt.Sprintf("decision %q is a proposal already", e.ID)
}

// ProposalClosedError is an action on a proposal that is no longer pending.
type ProposalClosedError struct {
	ID     string
	State  string
	Reason string
	At     time.Time
}

func (e *ProposalClosedError) Error() string {
	s := fmt.Sprintf("proposal %s is %s", e.ID, e.State)
	if !e.At.IsZero() {
		s += " since " + e.At.Format(time.RFC3339)
	}
	if e.Reason != "" {
		s += " (" + e.Reason + ")"
	}
	switch e.State {
	case ProposalExpired, ProposalRefused, ProposalRejected, ProposalWithdrawn:
		s += "; nothing more can happen to it: propose the decision again under a new id"
	}
	return s
}
func (e *ProposalClosedError) Unwrap() error { return ErrRefused }

// ApprovalError is an approval, rejection or withdrawal its actor may not
// give; Advice says who may.
type ApprovalError struct {
	Proposal string
	By       string
	Problem  string
	Advice   string
}

func (e *ApprovalError) Error() string {
	return withAdvice(fmt.Sprintf("proposal %s: %s %s", e.Proposal, e.By, e.Problem), e.Advice)
}
func (e *ApprovalError) Unwrap() error { return ErrUnauthorized }

// EndsAppend reports whether an event of type typ is the last of what one
// append writes: a decision's decision.recorded, or the one event of an
// action on a proposal (a proposal.decided is followed by its decision's
// events, which end with their own decision.recorded). Readers that keep
// an append's events together (the consumer) cut units there.
func EndsAppend(typ string) bool {
	switch typ {
	case EventDecisionRecorded, EventProposalOpened, EventProposalApproved, EventProposalRejected,
		EventProposalWithdrawn, EventProposalRefused:
		return true
	}
	return false
}
