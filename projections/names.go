package projections

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"koers/domain"
)

// MaxNames bounds one [DB.Names] call.
const MaxNames = 10_000

// Names returns the name each aggregate of refs has now (the latest valid
// name the read models hold, whatever as of a table shows), for showing
// people "Ada Jansen (p-0041)" instead of an id. Aggregates without a name
// are left out.
func (db *DB) Names(ctx context.Context, refs []domain.Ref) (map[domain.Ref]string, error) {
	if len(refs) > MaxNames {
		return nil, fmt.Errorf("names of %d aggregates: at most %d at once", len(refs), MaxNames)
	}
	out := make(map[domain.Ref]string, len(refs))
	if len(refs) == 0 {
		return out, nil
	}
	kinds, ids := make([]string, len(refs)), make([]string, len(refs))
	for i, r := range refs {
		kinds[i], ids[i] = string(r.Kind), r.ID
	}
	err := db.read(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT DISTINCT ON (f.kind, f.id) f.kind, f.id, f.value FROM facts f
			JOIN unnest($1::text[], $2::text[]) AS r(kind, id) ON f.kind = r.kind AND f.id = r.id
			WHERE f.attr = 'name' AND f.superseded_seq IS NULL AND f.value IS NOT NULL
			ORDER BY f.kind, f.id, f.valid_from DESC`, kinds, ids)
		if err != nil {
			return err
		}
		var kind, id, name string
		_, err = pgx.ForEachRow(rows, []any{&kind, &id, &name}, func() error {
			out[domain.Ref{Kind: domain.AggregateKind(kind), ID: id}] = name
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("names: %w", err)
	}
	return out, nil
}

// IDs lists up to limit ids of aggregates of kind that start with prefix,
// sorted: what a shell completes.
func (db *DB) IDs(ctx context.Context, kind domain.AggregateKind, prefix string, limit int) ([]string, error) {
	if limit < 1 || limit > MaxPageLimit {
		return nil, fmt.Errorf("ids of %s: limit %d: want 1 to %d", kind, limit, MaxPageLimit)
	}
	var out []string
	err := db.read(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT DISTINCT id FROM facts WHERE kind = $1 AND starts_with(id, $2) ORDER BY id LIMIT $3`,
			string(kind), prefix, limit)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ids of %s: %w", kind, err)
	}
	return out, nil
}

// Periods lists up to limit budget periods, sorted.
func (db *DB) Periods(ctx context.Context, limit int) ([]string, error) {
	if limit < 1 || limit > MaxPageLimit {
		return nil, fmt.Errorf("periods: limit %d: want 1 to %d", limit, MaxPageLimit)
	}
	var out []string
	err := db.read(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT DISTINCT period FROM journal ORDER BY period LIMIT $1`, limit)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("periods: %w", err)
	}
	return out, nil
}
