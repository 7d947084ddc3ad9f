package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"koers/domain"
)

// The states of a mandate (Mandate.State).
const (
	MandateInForce   = "in force"
	MandateSuspended = "suspended"
	MandateExpired   = "expired"
	MandateRevoked   = "revoked"
)

// Mandate is who may decide what: one mandate at one point in both times.
type Mandate struct {
	ID          string     `json:"id"`
	Holder      string     `json:"holder"`
	Kinds       []string   `json:"kinds"`
	Scope       string     `json:"scope"`
	Limit       string     `json:"limit,omitempty"`
	PeriodLimit string     `json:"period_limit,omitempty"`
	ValidUntil  *time.Time `json:"valid_until,omitempty"`
	// Chain is the mandate and those it was granted under, the mandate
	// first and the root last.
	Chain []domain.ChainLink `json:"chain"`
	// State is in force, suspended (a mandate of its chain or its holder is
	// not in force), expired or revoked; Why says what suspends it.
	State string `json:"state"`
	Why   string `json:"why,omitempty"`
	// Headroom is, per budget period it was used in, what is left of its
	// period limit (only for a mandate with one).
	Headroom []Headroom `json:"headroom,omitempty"`
	// Members and Quorum are the holding board's, when a board holds it.
	Members []string `json:"members,omitempty"`
	Quorum  int      `json:"quorum,omitempty"`
}

// Headroom is what a mandate with a period limit has moved in one budget
// period, under itself and every mandate beneath it, and what is left.
type Headroom struct {
	Period   string `json:"period"`
	Currency string `json:"currency"`
	Used     string `json:"used"`
	Left     string `json:"left"`
}

// MaxMandates bounds one answer of [DB.Mandates].
const MaxMandates = 1000

// MandateFilter selects mandates for [DB.Mandates].
type MandateFilter struct {
	// Holder selects the mandates of one person or board ("board:<id>");
	// empty: all.
	Holder string
	At     At
	// Limit bounds the answer. Default and maximum MaxMandates.
	Limit int
}

// Mandates returns the mandates granted as of f.At, ordered by id, with
// their state, chain and period headroom then. A mandate is in force when
// it is not revoked or expired at the valid time, its holder is an active
// person or board then, and every mandate of its chain is in force.
// Headroom counts every movement known at f.At.KnownAt.
func (db *DB) Mandates(ctx context.Context, f MandateFilter) ([]Mandate, error) {
	if f.Limit == 0 {
		f.Limit = MaxMandates
	}
	if f.Limit < 1 || f.Limit > MaxMandates {
		return nil, fmt.Errorf("mandates: limit %d: want 1 to %d: %w", f.Limit, MaxMandates, domain.ErrInvalid)
	}
	var out []Mandate
	err := db.read(ctx, func(tx pgx.Tx) error {
		k, err := resolve(ctx, tx, f.At)
		if err != nil {
			return err
		}
		all, err := facts(ctx, tx, k, domain.KindMandate, domain.KindPerson, domain.KindBoard)
		if err != nil {
			return err
		}
		used, err := mandateUse(ctx, tx, k)
		if err != nil {
			return err
		}
		for _, r := range sortedRefs(all, domain.KindMandate) {
			m := mandateAt(all, r.ID, k.asOf)
			if f.Holder != "" && m.Holder != f.Holder {
				continue
			}
			m.Headroom = headroom(m, used[m.ID])
			out = append(out, m)
			if len(out) == f.Limit {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("mandates: %w", err)
	}
	return out, nil
}

type use struct {
	period, currency string
	minor            int64
}

func mandateUse(ctx context.Context, tx pgx.Tx, k known) (map[string][]use, error) {
	rows, err := tx.Query(ctx, `SELECT mandate, period, currency, sum(amount_minor)::bigint FROM mandate_use
		WHERE seq <= $1 GROUP BY mandate, period, currency ORDER BY mandate, period`, k.seq)
	if err != nil {
		return nil, fmt.Errorf("read mandate use: %w", err)
	}
	defer rows.Close()
	out := map[string][]use{}
	for rows.Next() {
		var m string
		var u use
		if err := rows.Scan(&m, &u.period, &u.currency, &u.minor); err != nil {
			return nil, err
		}
		out[m] = append(out[m], u)
	}
	return out, rows.Err()
}

func headroom(m Mandate, uses []use) []Headroom {
	if m.PeriodLimit == "" {
		return nil
	}
	limit, err := domain.ParseDecimal(m.PeriodLimit)
	if err != nil {
		return nil
	}
	var out []Headroom
	for _, u := range uses {
		cur := domain.Currency(u.currency)
		lim, err := limit.Minor(cur)
		if err != nil {
			continue
		}
		left := max(lim-domain.Amount(u.minor), 0)
		out = append(out, Headroom{Period: u.period, Currency: u.currency, Used: domain.Amount(u.minor).Format(cur), Left: left.Format(cur)})
	}
	return out
}

// mandateAt builds mandate id from the facts at asOf and judges its state.
func mandateAt(all map[domain.Ref]map[string]string, id string, asOf time.Time) Mandate {
	attrs := all[domain.Ref{Kind: domain.KindMandate, ID: id}]
	m := Mandate{ID: id, Holder: attrs["holder"], Scope: attrs["scope"], Limit: attrs["limit"], PeriodLimit: attrs["period_limit"],
		Kinds: strings.Split(attrs["kinds"], ",")}
	if v := attrs["valid_until"]; v != "" {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			m.ValidUntil = &t
		}
	}
	if b, ok := strings.CutPrefix(m.Holder, domain.BoardHolderPrefix); ok {
		battrs := all[domain.Ref{Kind: domain.KindBoard, ID: b}]
		for attr := range battrs {
			if p, ok := strings.CutPrefix(attr, "member:"); ok {
				m.Members = append(m.Members, p)
			}
		}
		sort.Strings(m.Members)
		m.Quorum, _ = strconv.Atoi(battrs["quorum"])
	}
	// The chain, the mandate first; bounded like the domain's.
	cur := id
	for i := 0; i <= domain.MaxGrantDepth && cur != ""; i++ {
		a := all[domain.Ref{Kind: domain.KindMandate, ID: cur}]
		if a == nil {
			m.Chain = append(m.Chain, domain.ChainLink{Mandate: cur})
			break
		}
		m.Chain = append(m.Chain, domain.ChainLink{Mandate: cur, Holder: a["holder"]})
		cur = a["grantor"]
	}
	// From the root down, the first link not in force decides.
	m.State = MandateInForce
	for i := len(m.Chain) - 1; i >= 0; i-- {
		l := m.Chain[i]
		own, why := linkState(all, l.Mandate, asOf)
		if own == MandateInForce {
			continue
		}
		if i == 0 {
			m.State, m.Why = own, why
		} else {
			m.State, m.Why = MandateSuspended, fmt.Sprintf("mandate %s, under which it was granted, is %s", l.Mandate, own)
			if own == MandateSuspended {
				m.Why = fmt.Sprintf("mandate %s, under which it was granted: %s", l.Mandate, why)
			}
		}
		break
	}
	return m
}

// linkState judges one mandate alone at asOf.
func linkState(all map[domain.Ref]map[string]string, id string, asOf time.Time) (string, string) {
	a := all[domain.Ref{Kind: domain.KindMandate, ID: id}]
	if a == nil {
		return MandateSuspended, fmt.Sprintf("mandate %s is not known", id)
	}
	if a["status"] == "revoked" {
		return MandateRevoked, ""
	}
	if v := a["valid_until"]; v != "" {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil && !asOf.Before(t) {
			return MandateExpired, "expired " + t.Format(time.RFC3339)
		}
	}
	if a["grantor"] == "" {
		return MandateInForce, "" // the root: its holder need not be in the ledger
	}
	holder := a["holder"]
	ref := domain.Ref{Kind: domain.KindPerson, ID: holder}
	if b, ok := strings.CutPrefix(holder, domain.BoardHolderPrefix); ok {
		ref = domain.Ref{Kind: domain.KindBoard, ID: b}
	}
	if st := all[ref]["status"]; st != statusActive {
		if st == "" {
			st = "not in the organisation"
		}
		return MandateSuspended, fmt.Sprintf("its holder %s is %s", holder, st)
	}
	return MandateInForce, ""
}

// ProposalView is a proposal in the read models.
type ProposalView struct {
	ID         string          `json:"id"`
	State      string          `json:"state"`
	Board      string          `json:"board"`
	Mandate    string          `json:"mandate"`
	ProposedBy string          `json:"proposed_by"`
	Quorum     int             `json:"quorum"`
	Approvals  []Approval      `json:"approvals"`
	Missing    int             `json:"missing"`
	ProposedAt time.Time       `json:"proposed_at"`
	Expires    time.Time       `json:"expires"`
	Reason     string          `json:"reason,omitempty"`
	ClosedBy   string          `json:"closed_by,omitempty"`
	ClosedAt   *time.Time      `json:"closed_at,omitempty"`
	Decision   json.RawMessage `json:"decision"`
	// Sequence is that of the proposal.opened event: the paging cursor.
	Sequence uint64 `json:"sequence"`
}

// Approval is one member's approval of a proposal.
type Approval struct {
	By     string    `json:"by"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// MaxProposalLimit bounds one page of proposals.
const MaxProposalLimit = 1000

// ProposalFilter selects proposals for [DB.Proposals].
type ProposalFilter struct {
	// State is one of domain.ProposalStates; empty: all. Expired are the
	// pending proposals whose expiry has passed at Now.
	State string
	// Now is when expiry is judged. Zero: now.
	Now time.Time
	// Before is the paging cursor: proposals opened before this sequence
	// (the Next of the previous page). 0: from the newest.
	Before uint64
	// Limit is the page size. Default 50, at most MaxProposalLimit.
	Limit int
}

// ProposalPage is one page of proposals, newest first.
type ProposalPage struct {
	Proposals []ProposalView `json:"proposals"`
	// Next is the cursor of the next page; 0 when this is the last.
	Next uint64 `json:"next,omitempty"`
}

const proposalColumns = `p.id, CASE WHEN p.state = 'pending' AND p.expires_at <= $1 THEN 'expired' ELSE p.state END,
	p.board, p.mandate, p.proposed_by, p.quorum, p.approvals, p.proposed_at, p.expires_at, coalesce(p.reason, ''),
	coalesce(p.closed_by, ''), p.closed_at, p.decision, p.proposed_seq,
	(SELECT coalesce(max(value), '') FROM facts f WHERE f.kind = 'board' AND f.id = p.board AND f.attr = 'quorum'
	   AND f.superseded_seq IS NULL AND f.valid_to IS NULL),
	(SELECT coalesce(array_agg(substr(f.attr, 8)), '{}') FROM facts f WHERE f.kind = 'board' AND f.id = p.board
	   AND f.attr LIKE 'member:%' AND f.value IS NOT NULL AND f.superseded_seq IS NULL AND f.valid_to IS NULL)`

func scanProposal(row pgx.CollectableRow) (ProposalView, error) {
	var p ProposalView
	var approvals []byte
	var seq int64
	var quorum string
	var members []string
	if err := row.Scan(&p.ID, &p.State, &p.Board, &p.Mandate, &p.ProposedBy, &p.Quorum, &approvals, &p.ProposedAt, &p.Expires,
		&p.Reason, &p.ClosedBy, &p.ClosedAt, &p.Decision, &seq, &quorum, &members); err != nil {
		return p, err
	}
	p.Sequence = uint64(seq)
	if err := json.Unmarshal(approvals, &p.Approvals); err != nil {
		return p, fmt.Errorf("approvals of %s: %w", p.ID, err)
	}
	if p.State == domain.ProposalPending {
		// Judged like the domain: the board's quorum now, and only the
		// approvals of its current members count.
		q, err := strconv.Atoi(quorum)
		if err != nil {
			q = p.Quorum
		}
		n := 0
		for _, a := range p.Approvals {
			for _, m := range members {
				if a.By == m {
					n++
				}
			}
		}
		p.Quorum, p.Missing = q, max(q-n, 0)
	}
	return p, nil
}

// Proposals returns the proposals f selects, newest first, one page at a time.
func (db *DB) Proposals(ctx context.Context, f ProposalFilter) (ProposalPage, error) {
	if f.Limit == 0 {
		f.Limit = 50
	}
	if f.Limit < 1 || f.Limit > MaxProposalLimit {
		return ProposalPage{}, fmt.Errorf("proposals: limit %d: want 1 to %d: %w", f.Limit, MaxProposalLimit, domain.ErrInvalid)
	}
	if f.State != "" && !contains(domain.ProposalStates, f.State) {
		return ProposalPage{}, fmt.Errorf("proposals: state %q: want one of %s: %w", f.State, strings.Join(domain.ProposalStates, ", "), domain.ErrInvalid)
	}
	if f.Now.IsZero() {
		f.Now = time.Now()
	}
	args := []any{f.Now}
	var where []string
	switch f.State {
	case "":
	case domain.ProposalExpired:
		where = append(where, `p.state = 'pending' AND p.expires_at <= $1`)
	case domain.ProposalPending:
		where = append(where, `p.state = 'pending' AND p.expires_at > $1`)
	default:
		args = append(args, f.State)
		where = append(where, `p.state = $2`)
	}
	if f.Before > 0 {
		args = append(args, int64(f.Before))
		where = append(where, `p.proposed_seq < $`+strconv.Itoa(len(args)))
	}
	q := `SELECT ` + proposalColumns + ` FROM proposals p`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY p.proposed_seq DESC LIMIT ` + strconv.Itoa(f.Limit+1)
	var page ProposalPage
	err := db.read(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		page.Proposals, err = pgx.CollectRows(rows, scanProposal)
		return err
	})
	if err != nil {
		return ProposalPage{}, fmt.Errorf("proposals: %w", err)
	}
	if len(page.Proposals) > f.Limit {
		page.Proposals = page.Proposals[:f.Limit]
		page.Next = page.Proposals[f.Limit-1].Sequence
	}
	return page, nil
}

// Proposal returns one proposal, or ErrNotFound.
func (db *DB) Proposal(ctx context.Context, id string, now time.Time) (ProposalView, error) {
	if now.IsZero() {
		now = time.Now()
	}
	var p ProposalView
	err := db.read(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+proposalColumns+` FROM proposals p WHERE p.id = $2`, now, id)
		if err != nil {
			return err
		}
		p, err = pgx.CollectExactlyOneRow(rows, scanProposal)
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return ProposalView{}, fmt.Errorf("proposal %s: %w", id, domain.ErrNotFound)
	}
	if err != nil {
		return ProposalView{}, fmt.Errorf("proposal %s: %w", id, err)
	}
	return p, nil
}
