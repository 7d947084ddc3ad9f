package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// A rebuild knows the whole history before anyone reads its facts, so it
// does not resolve each belief against the rows it replaces as the live
// projector must (a look-up, an UPDATE and a COPY per batch into an indexed
// table that grows: most of a rebuild's time). Its batches COPY every fact
// set, as an assertion, into an unlogged table of the staging schema; at
// the end one INSERT … SELECT derives the facts' valid and recorded ranges
// with window functions, and the indexes are built once.
//
// The derivation holds for an attribute whose assertions come in
// valid-time order (each no earlier than the one before it): assertion i
// gives the row (value i, from valid i, open, recorded with i, superseded
// by i+1) and, when i+1 is valid later than i, the part of it kept before
// i+1 (value i, from valid i to valid i+1, recorded with i+1). That is what
// [resolveSet] makes of such a run. An attribute with a backdated assertion
// (a retraction, a restatement, a decision effective before the one
// before it) is resolved in Go by [resolveSet] itself, one attribute at a
// time, and copied.

// assertionsTable is the staging table of the fact sets of a rebuild.
const assertionsTable = "fact_assertions"

var assertionColumns = []string{"kind", "id", "attr", "value", "valid_from", "recorded_seq", "recorded_at", "decision"}

// assertionSource copies fact sets, one buffer of values reused for all.
type assertionSource struct {
	sets []factSet
	i    int
	vals [8]any
}

func (s *assertionSource) Next() bool { s.i++; return s.i <= len(s.sets) }
func (s *assertionSource) Err() error { return nil }

func (s *assertionSource) Values() ([]any, error) {
	f := &s.sets[s.i-1]
	s.vals = [8]any{f.key.kind, f.key.id, f.key.attr, f.value, f.valid, f.seq, f.recordedAt, f.decision}
	return s.vals[:], nil
}

// loadIndexedTables are the tables whose secondary indexes a rebuild drops
// while it loads and builds once at the end: nothing reads them by those
// indexes during the load (a retraction finds its decision by the primary
// key, which stays), and the GIN indexes of the decision log cost most to
// maintain row by row.
var loadIndexedTables = []string{"facts", "decisions"}

// stageStart readies db, a rebuild's staging schema, for staged facts: the
// assertions table, and the secondary indexes of loadIndexedTables dropped.
// It returns the statements that build those indexes again.
func (db *DB) stageStart(ctx context.Context) ([]deferredIndex, error) {
	var out []deferredIndex
	err := db.withConn(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT i.relname, pg_get_indexdef(i.oid)
			FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
			JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
			WHERE n.nspname = $1 AND t.relname = ANY($2) AND NOT x.indisunique AND NOT x.indisprimary
			ORDER BY t.relname, i.relname`, db.schema, loadIndexedTables)
		if err != nil {
			return fmt.Errorf("list indexes: %w", err)
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (deferredIndex, error) {
			var ix deferredIndex
			return ix, r.Scan(&ix.name, &ix.create)
		})
		if err != nil {
			return fmt.Errorf("list indexes: %w", err)
		}
		for _, ix := range out {
			if _, err := c.Exec(ctx, `DROP INDEX `+pgx.Identifier{ix.name}.Sanitize()); err != nil {
				return fmt.Errorf("drop index %s: %w", ix.name, err)
			}
		}
		// Unlogged: the table lives as long as the rebuild, and a crash
		// loses a staging schema that the next rebuild drops anyway.
		_, err = c.Exec(ctx, `CREATE UNLOGGED TABLE `+assertionsTable+` (
			kind text NOT NULL, id text NOT NULL, attr text NOT NULL, value text,
			valid_from timestamptz NOT NULL, recorded_seq bigint NOT NULL, recorded_at timestamptz NOT NULL, decision text NOT NULL)`)
		if err != nil {
			return fmt.Errorf("create %s: %w", assertionsTable, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("stage facts: %w", err)
	}
	db.stageFacts.Store(true)
	return out, nil
}

// stageStats says how a rebuild derived its facts.
type stageStats struct {
	derivedRows    int64 // fact rows of attributes in valid-time order
	backdatedAttrs int64 // attributes resolved one by one
}

// stageFinish derives the facts from the assertions staged, builds the
// indexes stageStart dropped, and drops the assertions; batches after it
// resolve their facts as the live projector does.
func (db *DB) stageFinish(ctx context.Context, indexes []deferredIndex) (stageStats, error) {
	db.stageFacts.Store(false)
	var st stageStats
	err := db.withConn(ctx, func(c *pgx.Conn) error {
		// The sort of the assertions by attribute and sequence is the
		// derivation's one big step: give it memory rather than many runs
		// on disk.
		if _, err := c.Exec(ctx, `SET work_mem = '64MB'`); err != nil {
			return fmt.Errorf("work_mem: %w", err)
		}
		tag, err := c.Exec(ctx, deriveFacts)
		if err != nil {
			return fmt.Errorf("derive facts: %w", err)
		}
		st.derivedRows = tag.RowsAffected()
		if st.backdatedAttrs, err = resolveBackdated(ctx, c, db); err != nil {
			return err
		}
		if _, err := c.Exec(ctx, `RESET work_mem`); err != nil {
			return fmt.Errorf("work_mem: %w", err)
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("stage facts: %w", err)
	}
	for _, ix := range indexes {
		if err := db.exec(ctx, ix.create); err != nil {
			return st, fmt.Errorf("stage facts: build index %s: %w", ix.name, err)
		}
	}
	if err := db.exec(ctx, `DROP TABLE `+assertionsTable); err != nil {
		return st, fmt.Errorf("stage facts: drop %s: %w", assertionsTable, err)
	}
	if err := db.exec(ctx, `ANALYZE facts, decisions`); err != nil {
		return st, fmt.Errorf("stage facts: analyze: %w", err)
	}
	return st, nil
}

// orderedAssertions are the assertions with the next assertion's valid
// time, sequence and recorded time on the same attribute, and whether the
// attribute's assertions are all in valid-time order.
const orderedAssertions = `SELECT l.*, bool_and(l.next_valid IS NULL OR l.next_valid >= l.valid_from)
		OVER (PARTITION BY l.kind, l.id, l.attr) AS in_order
	FROM (SELECT a.*, lead(a.valid_from) OVER w AS next_valid, lead(a.recorded_seq) OVER w AS next_seq,
			lead(a.recorded_at) OVER w AS next_at
		FROM ` + assertionsTable + ` a
		WINDOW w AS (PARTITION BY a.kind, a.id, a.attr ORDER BY a.recorded_seq)) l`

// deriveFacts writes the facts of the attributes whose assertions are in
// valid-time order: per assertion its own row and, when the next one is
// valid later, the part kept before it.
const deriveFacts = `INSERT INTO facts (kind, id, attr, value, valid_from, valid_to, recorded_seq, recorded_at, superseded_seq, decision)
	SELECT b.kind, b.id, b.attr, b.value, b.valid_from, r.valid_to, r.recorded_seq, r.recorded_at, r.superseded_seq, b.decision
	FROM (` + orderedAssertions + `) b
	CROSS JOIN LATERAL (VALUES
		(0, NULL::timestamptz, b.recorded_seq, b.recorded_at, b.next_seq),
		(1, b.next_valid, b.next_seq, b.next_at, NULL::bigint)) AS r(part, valid_to, recorded_seq, recorded_at, superseded_seq)
	WHERE b.in_order AND (r.part = 0 OR b.next_valid > b.valid_from)`

// backdatedAssertions are the assertions of the attributes that are not in
// valid-time order, by attribute and sequence.
const backdatedAssertions = `SELECT kind, id, attr, value, valid_from, recorded_seq, recorded_at, decision
	FROM (` + orderedAssertions + `) b WHERE NOT b.in_order ORDER BY kind, id, attr, recorded_seq`

// backdatedCopyRows bounds the fact rows resolveBackdated holds before it
// copies them.
const backdatedCopyRows = 10_000

// resolveBackdated resolves the attributes with backdated assertions one
// at a time with [resolveSet] and copies their rows, reading on c and copying
// on a second connection of db. It holds one attribute's rows and at most
// backdatedCopyRows more. It returns how many attributes it resolved.
func resolveBackdated(ctx context.Context, c *pgx.Conn, db *DB) (int64, error) {
	rows, err := c.Query(ctx, backdatedAssertions)
	if err != nil {
		return 0, fmt.Errorf("read backdated assertions: %w", err)
	}
	defer rows.Close()
	var (
		s       factSet
		cur     []*factRow
		created []*factRow
		prev    factKey
		attrs   int64
	)
	flush := func() error {
		if len(created) == 0 {
			return nil
		}
		err := db.withConn(ctx, func(w *pgx.Conn) error {
			_, err := w.CopyFrom(ctx, pgx.Identifier{"facts"}, factColumns, pgx.CopyFromRows(factValues(created)))
			return err
		})
		if err != nil {
			return fmt.Errorf("copy %d backdated facts: %w", len(created), err)
		}
		created = created[:0]
		return nil
	}
	// Bounded by the rows of the query.
	for rows.Next() {
		if err := rows.Scan(&s.key.kind, &s.key.id, &s.key.attr, &s.value, &s.valid, &s.seq, &s.recordedAt, &s.decision); err != nil {
			return 0, fmt.Errorf("read backdated assertions: %w", err)
		}
		if attrs == 0 || s.key != prev {
			attrs++
			// The rows of the attribute before are final: superseded_seq
			// is only ever set by a later assertion of the same attribute.
			if len(created) >= backdatedCopyRows {
				if err := flush(); err != nil {
					return 0, err
				}
			}
			cur, prev = nil, s.key
		}
		s.valid = s.valid.Truncate(time.Microsecond)
		cur, created = resolveSet(cur, s, created, func(*factRow) {})
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("read backdated assertions: %w", err)
	}
	return attrs, flush()
}

var factColumns = []string{"kind", "id", "attr", "value", "valid_from", "valid_to", "recorded_seq", "recorded_at", "superseded_seq", "decision"}

// factValues are rows' values in factColumns order.
func factValues(rows []*factRow) [][]any {
	out := make([][]any, len(rows))
	for i, row := range rows {
		var sup *int64
		if row.superseded != 0 {
			sup = &row.superseded
		}
		out[i] = []any{row.key.kind, row.key.id, row.key.attr, row.value, row.validFrom, row.validTo, row.recordedSeq, row.recordedAt, sup, row.decision}
	}
	return out
}
