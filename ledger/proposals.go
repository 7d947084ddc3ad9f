package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"koers/domain"
)

// Proposal is a proposal as the handler answers about it.
type Proposal struct {
	ID        string    `json:"id"`
	State     string    `json:"state"`
	Board     string    `json:"board"`
	Mandate   string    `json:"mandate"`
	Proposer  string    `json:"proposed_by"`
	Quorum    int       `json:"quorum"`
	Approvers []string  `json:"approvers"`
	Missing   int       `json:"missing"`
	Expires   time.Time `json:"expires"`
	// Reason is why it was refused, rejected or withdrawn.
	Reason string `json:"reason,omitempty"`
}

func proposalOf(id string, p domain.ProposalState, quorum, missing int, now time.Time) *Proposal {
	return &Proposal{ID: id, State: p.StateAt(now), Board: p.Board, Mandate: p.Mandate, Proposer: p.Proposer,
		Quorum: quorum, Approvers: p.Approvers(), Missing: missing, Expires: p.Expires, Reason: p.Reason}
}

// propose records d, taken under a board's mandate, as a proposal.
func (h *Handler) propose(ctx context.Context, d domain.Decision, o handleOpts) (Result, error) {
	// The versions the caller saw (If-Match) hold for the proposal; the
	// decision is taken against the ledger as it is when the quorum is
	// reached.
	refs := domain.Plan(d)
	for r := range o.expect {
		refs = append(refs, r)
	}
	res, err := h.outcome(ctx, refs, func(w domain.World, now time.Time) (domain.Outcome, error) {
		for r := range o.expect {
			if _, ok := w[r]; !ok {
				return domain.Outcome{}, &domain.NeedError{Refs: []domain.Ref{r}}
			}
		}
		if err := checkExpected(w, o.expect); err != nil {
			return domain.Outcome{}, err
		}
		return domain.Propose(w, d, now, o.ttl)
	})
	var dup *domain.DuplicateProposalError
	if errors.As(err, &dup) {
		return h.pendingAgain(ctx, d.ID)
	}
	if err != nil {
		return Result{}, fmt.Errorf("propose decision %s: %w", d.ID, err)
	}
	res.DecisionID = d.ID
	return res, nil
}

// pendingAgain answers a decision submitted again whose id is a proposal.
func (h *Handler) pendingAgain(ctx context.Context, id string) (Result, error) {
	p, err := h.Proposal(ctx, id)
	if err != nil {
		return Result{}, err
	}
	return Result{DecisionID: id, Duplicate: true, State: p.State, Proposal: p}, nil
}

// Proposal returns the proposal id as the log holds it now (state expired
// once past its expiry); the error wraps domain.ErrNotFound when there is none.
func (h *Handler) Proposal(ctx context.Context, id string) (*Proposal, error) {
	if err := domain.ValidID(id); err != nil {
		return nil, err
	}
	r := domain.Ref{Kind: domain.KindProposal, ID: id}
	a, err := h.loadOne(ctx, r)
	if err != nil {
		return nil, err
	}
	if !a.Exists() {
		return nil, &domain.NotFoundError{Ref: r}
	}
	b, err := h.loadOne(ctx, domain.Ref{Kind: domain.KindBoard, ID: a.Proposal.Board})
	if err != nil {
		return nil, err
	}
	quorum, missing := 0, 0
	if b.Board != nil {
		quorum = b.Board.Quorum
		n := 0
		for _, p := range a.Proposal.Approvers() {
			for _, m := range b.Board.Members {
				if m == p {
					n++
				}
			}
		}
		missing = max(quorum-n, 0)
	}
	if a.Proposal.State != domain.ProposalPending {
		missing = 0
	}
	return proposalOf(id, *a.Proposal, quorum, missing, h.opts.Now()), nil
}

// Act approves, rejects or withdraws a proposal. An approval that completes
// the quorum records the decision with it, atomically; a decision that no
// longer fits records the proposal as refused (Result.State "refused",
// the reason in Result.Proposal.Reason) and returns no error: the approval
// itself was taken. Refusals of the action itself write nothing.
func (h *Handler) Act(ctx context.Context, a domain.Action) (Result, error) {
	res, err := h.outcome(ctx, domain.PlanAction(a), func(w domain.World, now time.Time) (domain.Outcome, error) {
		return domain.Act(w, a, now)
	})
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", a.Kind, err)
	}
	return res, nil
}

// outcome loads what f asks for, in bounded rounds, and appends the events
// of its outcome, re-deciding on a conflict a bounded number of times.
func (h *Handler) outcome(ctx context.Context, refs []domain.Ref, f func(domain.World, time.Time) (domain.Outcome, error)) (Result, error) {
	var lastErr error
	for attempt := 0; attempt < h.opts.MaxAttempts; attempt++ {
		world := domain.World{}
		todo := refs
		var o domain.Outcome
		var now time.Time
		var err error
		for round := 0; ; round++ {
			if round == h.opts.MaxLoadRounds {
				return Result{}, fmt.Errorf("still needs more aggregates after %d rounds of loading", h.opts.MaxLoadRounds)
			}
			if err := h.load(ctx, world, todo); err != nil {
				return Result{}, err
			}
			now = h.opts.Now()
			o, err = f(world, now)
			var need *domain.NeedError
			if !errors.As(err, &need) {
				break
			}
			todo = need.Refs
		}
		if err != nil {
			return Result{}, err
		}
		meta := o.Meta
		if meta.DecisionID == "" {
			meta.DecisionID = h.opts.NewID()
		}
		expected := make(map[domain.Ref]uint64, len(o.Events))
		for _, e := range o.Events {
			expected[e.Aggregate] = world[e.Aggregate].Version
		}
		ar, err := h.store.Append(ctx, meta, o.Events, expected)
		if errors.Is(err, domain.ErrOutcomeUnknown) {
			ar, err = h.resolve(ctx, meta, o.Events, expected, err)
		}
		if err == nil {
			res := toResult(ar)
			id := o.Proposal.Decision.ID
			res.State = o.Proposal.StateAt(now)
			res.Proposal = proposalOf(id, o.Proposal, o.Quorum, o.Missing, now)
			if !o.Decided() {
				res.DecisionID = id
			}
			if o.Decided() {
				// An erasure a board decided destroys the key as one
				// decided directly does.
				return res, h.eraseKeys(ctx, o.Proposal.Decision)
			}
			return res, nil
		}
		if !errors.Is(err, domain.ErrConflict) {
			return Result{}, err
		}
		lastErr = err
		if err := h.pause(ctx, attempt); err != nil {
			return Result{}, err
		}
	}
	return Result{}, fmt.Errorf("gave up after %d attempts: %w", h.opts.MaxAttempts, lastErr)
}
