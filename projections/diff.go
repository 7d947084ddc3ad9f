package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"koers/domain"
)

// Diff is what changed in the organisation and in funding between two
// valid times, as known at one recorded time: every attribute of a value
// stream, product, team, person or project whose value at To differs from
// its value at From, with the decision behind its value at To; and every
// funding account whose balance differs, with the decisions that moved
// money on it in between. A change and back again in between is no
// change.
type Diff struct {
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	KnownAt  time.Time `json:"known_at"`
	Sequence uint64    `json:"sequence"`
	// Changes are one page, by kind, id and attribute.
	Changes []DiffChange `json:"changes"`
	// Funding is given on the first page only (empty on the next ones),
	// by period and account; at most MaxDiffAccounts.
	Funding []DiffFunding `json:"funding"`
	// Next is the cursor of the next page of Changes; empty on the last.
	Next string `json:"next"`
}

// DiffChange is one attribute that changed. Before and After are nil
// when the attribute was not set then.
type DiffChange struct {
	Kind      domain.AggregateKind `json:"kind"`
	ID        string               `json:"id"`
	Attribute string               `json:"attribute"`
	Before    *string              `json:"before"`
	After     *string              `json:"after"`
	// Decision is the last decision effective in (From, To] that set the
	// attribute (its value at To), Effective its effective time.
	Decision  string    `json:"decision"`
	Effective time.Time `json:"effective"`
}

// DiffFunding is one account whose balance changed.
type DiffFunding struct {
	Period   string          `json:"period"`
	Account  string          `json:"account"`
	Currency domain.Currency `json:"currency"`
	Before   domain.Amount   `json:"before_minor"`
	After    domain.Amount   `json:"after_minor"`
	// Decisions moved money on the account effective in (From, To], by
	// effective time; at most MaxDiffDecisions.
	Decisions []string `json:"decisions"`
}

// Bounds of a diff.
const (
	MaxDiffAccounts  = 1000
	MaxDiffDecisions = 20
)

// diffKinds are the aggregates of the organisation a diff compares.
var diffKinds = []string{"valuestream", "product", "team", "person", "project"}

// Diff returns one page of what changed between the valid times from and
// to (from before to), as known at knownAt (zero: now).
func (db *DB) Diff(ctx context.Context, from, to, knownAt time.Time, page Page) (Diff, error) {
	if from.IsZero() || to.IsZero() || !from.Before(to) {
		return Diff{}, fmt.Errorf("diff: from %s must be before to %s: %w", timeParam(from), timeParam(to), domain.ErrInvalid)
	}
	pg, err := newPager("diff", page, timeParam(from), timeParam(to), timeParam(knownAt))
	if err != nil {
		return Diff{}, fmt.Errorf("diff: %w", err)
	}
	after, err := pg.key(3)
	if err != nil {
		return Diff{}, fmt.Errorf("diff: %w", err)
	}
	var afterKind *string
	var afterID, afterAttr string
	if after != nil {
		afterKind, afterID, afterAttr = &after[0], after[1], after[2]
	}
	out := Diff{From: from, To: to, KnownAt: knownAt, Changes: []DiffChange{}, Funding: []DiffFunding{}}
	err = db.read(ctx, func(tx pgx.Tx) error {
		k, err := pg.known(ctx, tx, At{AsOf: to, KnownAt: knownAt})
		if err != nil {
			return err
		}
		out.Sequence = uint64(k.seq)
		rows, err := tx.Query(ctx, `WITH f AS (
				SELECT kind, id, attr, value, valid_from, valid_to, decision, recorded_seq FROM facts
				WHERE kind = ANY($1) AND recorded_seq <= $2 AND (superseded_seq IS NULL OR superseded_seq > $2)
				  AND ($5::text IS NULL OR (kind, id, attr) > ($5, $6, $7))
			),
			a AS (SELECT kind, id, attr, value FROM f WHERE valid_from <= $3 AND (valid_to IS NULL OR valid_to > $3)),
			b AS (SELECT kind, id, attr, value FROM f WHERE valid_from <= $4 AND (valid_to IS NULL OR valid_to > $4)),
			c AS (
				SELECT coalesce(b.kind, a.kind) AS kind, coalesce(b.id, a.id) AS id, coalesce(b.attr, a.attr) AS attr,
				       a.value AS before, b.value AS after
				FROM a FULL JOIN b ON a.kind = b.kind AND a.id = b.id AND a.attr = b.attr
				WHERE a.value IS DISTINCT FROM b.value
				ORDER BY 1, 2, 3 LIMIT $8
			)
			SELECT c.kind, c.id, c.attr, c.before, c.after, coalesce(w.decision, ''), coalesce(d.effective, $4)
			FROM c
			LEFT JOIN LATERAL (SELECT f.decision FROM f WHERE f.kind = c.kind AND f.id = c.id AND f.attr = c.attr
			                   AND f.valid_from > $3 AND f.valid_from <= $4
			                   ORDER BY f.valid_from DESC, f.recorded_seq DESC LIMIT 1) w ON true
			LEFT JOIN decisions d ON d.id = w.decision
			ORDER BY c.kind, c.id, c.attr`,
			diffKinds, k.seq, from, to, afterKind, afterID, afterAttr, pg.limit+1)
		if err != nil {
			return fmt.Errorf("changes: %w", err)
		}
		out.Changes, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (DiffChange, error) {
			var c DiffChange
			var kind string
			err := row.Scan(&kind, &c.ID, &c.Attribute, &c.Before, &c.After, &c.Decision, &c.Effective)
			c.Kind = domain.AggregateKind(kind)
			return c, err
		})
		if err != nil {
			return fmt.Errorf("changes: %w", err)
		}
		if len(out.Changes) > pg.limit {
			out.Changes = out.Changes[:pg.limit]
			last := out.Changes[pg.limit-1]
			out.Next = pg.next(k, string(last.Kind), last.ID, last.Attribute)
		}
		if after != nil {
			return nil
		}
		rows, err = tx.Query(ctx, `SELECT period, account, currency, before, after, decisions[1:$5] FROM (
				SELECT j.period, j.account, j.currency,
				       coalesce(sum(j.amount_minor) FILTER (WHERE j.effective <= $3), 0)::bigint AS before,
				       coalesce(sum(j.amount_minor) FILTER (WHERE j.effective <= $4), 0)::bigint AS after,
				       array_agg(j.decision ORDER BY j.effective, j.seq) FILTER (WHERE j.effective > $3 AND j.effective <= $4) AS decisions
				FROM journal j
				WHERE j.seq <= $1 AND j.account NOT LIKE 'budget:%'
				GROUP BY j.period, j.account, j.currency) x
			WHERE before <> after
			ORDER BY period, account, currency LIMIT $2`, k.seq, MaxDiffAccounts, from, to, MaxDiffDecisions)
		if err != nil {
			return fmt.Errorf("funding: %w", err)
		}
		out.Funding, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (DiffFunding, error) {
			var f DiffFunding
			var cur string
			var before, after int64
			var ds []string
			err := row.Scan(&f.Period, &f.Account, &cur, &before, &after, &ds)
			f.Currency, f.Before, f.After = domain.Currency(cur), domain.Amount(before), domain.Amount(after)
			f.Decisions = uniq(ds)
			return f, err
		})
		if err != nil {
			return fmt.Errorf("funding: %w", err)
		}
		out.Funding = nonNil(out.Funding)
		return nil
	})
	if err != nil {
		return Diff{}, fmt.Errorf("diff %s to %s: %w", timeParam(from), timeParam(to), err)
	}
	return out, nil
}

// uniq keeps the first of each repeated string, in order.
func uniq(xs []string) []string {
	out := []string{}
	seen := map[string]bool{}
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
