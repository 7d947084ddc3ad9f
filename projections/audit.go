package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"koers/domain"
)

// Decision is one entry of the decision log.
type Decision struct {
	ID, Actor, Mandate, Reason string
	Refs                       []string
	Effective, RecordedAt      time.Time
	// FirstSequence and Sequence span the decision's events in the stream;
	// Sequence is its decision.recorded.
	FirstSequence, Sequence uint64
	Changes                 json.RawMessage // the changes, in the public decision format
	Effects                 []domain.Effect // the events it produced
	Retracts                string          // the decision this one retracts, if any
	RetractedBy             string          // the decision that retracted this one, if any
	RetractedSequence       uint64
	// AuthorityChain is the decision's mandate and those it was granted
	// under, as they were when it was recorded: the mandate first, the
	// root last (empty for decisions recorded before it was kept).
	AuthorityChain []domain.ChainLink
	// Approvers are the board members whose approvals decided it.
	Approvers []string
}

// TimeAxis says which time an [AuditFilter]'s range is on.
type TimeAxis int

const (
	// Recorded filters on when the ledger recorded the decision.
	Recorded TimeAxis = iota
	// Effective filters on when the decision took effect.
	Effective
)

// MaxAuditLimit bounds one page of the audit.
const MaxAuditLimit = 1000

// AuditFilter selects decisions for [DB.Audit]. Zero fields select all.
type AuditFilter struct {
	Actor      string
	Mandate    string
	ChangeKind string // e.g. person.move
	Aggregate  string // kind:id, e.g. product:pay-app; any decision whose effects touch it
	// From (inclusive) and To (exclusive) bound the time on Axis.
	From, To time.Time
	Axis     TimeAxis
	// Before is the paging cursor: only decisions recorded before this
	// sequence (the Next of the previous page). 0: from the newest.
	Before uint64
	// Limit is the page size. Default 50, at most MaxAuditLimit.
	Limit int
}

// AuditPage is one page of the audit, newest first.
type AuditPage struct {
	Decisions []Decision
	// Next is the cursor of the next page (AuditFilter.Before); 0 when this
	// is the last.
	Next uint64
}

const decisionColumns = `id, actor, mandate, reason, refs, effective, recorded_at, first_seq, seq,
	changes, effects, coalesce(retracts, ''), coalesce(retracted_by, ''), coalesce(retracted_seq, 0),
	authority_chain, approvers`

func scanDecision(row pgx.CollectableRow) (Decision, error) {
	var d Decision
	var first, seq, rseq int64
	var effects, chain []byte
	if err := row.Scan(&d.ID, &d.Actor, &d.Mandate, &d.Reason, &d.Refs, &d.Effective, &d.RecordedAt, &first, &seq,
		&d.Changes, &effects, &d.Retracts, &d.RetractedBy, &rseq, &chain, &d.Approvers); err != nil {
		return d, err
	}
	if err := json.Unmarshal(chain, &d.AuthorityChain); err != nil {
		return d, fmt.Errorf("authority chain of %s: %w", d.ID, err)
	}
	d.FirstSequence, d.Sequence, d.RetractedSequence = uint64(first), uint64(seq), uint64(rseq)
	if err := json.Unmarshal(effects, &d.Effects); err != nil {
		return d, fmt.Errorf("effects of %s: %w", d.ID, err)
	}
	return d, nil
}

// Audit returns the decisions f selects, newest (highest sequence) first,
// one page at a time.
func (db *DB) Audit(ctx context.Context, f AuditFilter) (AuditPage, error) {
	if f.Limit == 0 {
		f.Limit = 50
	}
	if f.Limit < 1 || f.Limit > MaxAuditLimit {
		return AuditPage{}, fmt.Errorf("audit: limit %d: want 1 to %d: %w", f.Limit, MaxAuditLimit, domain.ErrInvalid)
	}
	var (
		where []string
		args  []any
	)
	arg := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if f.Actor != "" {
		arg("actor = ?", f.Actor)
	}
	if f.Mandate != "" {
		arg("mandate = ?", f.Mandate)
	}
	if f.ChangeKind != "" {
		arg("change_kinds @> ARRAY[?::text]", f.ChangeKind)
	}
	if f.Aggregate != "" {
		arg("aggregates @> ARRAY[?::text]", f.Aggregate)
	}
	col := "recorded_at"
	if f.Axis == Effective {
		col = "effective"
	}
	if !f.From.IsZero() {
		arg(col+" >= ?", f.From)
	}
	if !f.To.IsZero() {
		arg(col+" < ?", f.To)
	}
	if f.Before > 0 {
		arg("seq < ?", int64(f.Before))
	}
	q := `SELECT ` + decisionColumns + ` FROM decisions`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	// One more than the page tells whether there is a next page.
	q += ` ORDER BY seq DESC LIMIT ` + strconv.Itoa(f.Limit+1)
	var page AuditPage
	err := db.read(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		page.Decisions, err = pgx.CollectRows(rows, scanDecision)
		return err
	})
	if err != nil {
		return AuditPage{}, fmt.Errorf("audit: %w", err)
	}
	if len(page.Decisions) > f.Limit {
		page.Decisions = page.Decisions[:f.Limit]
		page.Next = page.Decisions[f.Limit-1].Sequence
	}
	return page, nil
}

// Decision returns one decision of the log, or an error wrapping domain.ErrNotFound.
func (db *DB) Decision(ctx context.Context, id string) (Decision, error) {
	var d Decision
	err := db.read(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+decisionColumns+` FROM decisions WHERE id = $1`, id)
		if err != nil {
			return err
		}
		d, err = pgx.CollectExactlyOneRow(rows, scanDecision)
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Decision{}, fmt.Errorf("decision %s: %w", id, domain.ErrNotFound)
	}
	if err != nil {
		return Decision{}, fmt.Errorf("decision %s: %w", id, err)
	}
	return d, nil
}
