package projections

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// writer collects a batch's writes and sends them in few round trips: the
// append-only rows by COPY, the facts resolved in memory against the rows
// they replace (loaded in one query) and then written by one UPDATE and one
// COPY. A statement that reads or changes rows written earlier in the batch
// (a retraction, closing a budget period) first flushes the rows held so
// far, so every statement sees what a statement-per-fact writer would.
//
// The semantics are those of the reference writer (reference set): each fact
// set by one statement that closes the rows it replaces, each row by one
// INSERT; the tests project with both and compare.
type writer struct {
	ctx context.Context
	tx  pgx.Tx
	// reference writes every fact and row at once, one statement each.
	reference bool
	// stage records each fact set as an assertion in the rebuild's
	// staging table instead of resolving it (see stage.go).
	stage  bool
	staged []factSet
	sets   []factSet
	rows   map[string][][]any
	// order keeps the tables' COPY order stable.
	order []string
	// factRows counts the fact rows written.
	factRows int
}

// factSet is one belief: attribute attr of kind:id is value (nil: unset)
// from valid on, recorded at seq.
type factSet struct {
	key        factKey
	value      *string
	valid      time.Time
	seq        int64
	recordedAt time.Time
	decision   string
}

type factKey struct{ kind, id, attr string }

// factRow is a row of facts; existing rows were loaded, the others are new.
type factRow struct {
	key         factKey
	value       *string
	validFrom   time.Time
	validTo     *time.Time
	recordedSeq int64
	recordedAt  time.Time
	superseded  int64 // 0: not superseded
	decision    string
	existing    bool
}

// tableColumns are the columns the writer fills, per table.
var tableColumns = map[string][]string{
	"decisions": {"id", "seq", "first_seq", "actor", "mandate", "reason", "refs", "effective", "recorded_at",
		"changes", "effects", "change_kinds", "aggregates", "retracts", "authority_chain", "approvers"},
	"mandate_use":       {"seq", "mandate", "period", "currency", "amount_minor", "effective", "recorded_at", "decision"},
	"journal":           {"seq", "line", "decision", "event_type", "period", "currency", "account", "amount_minor", "effective", "recorded_at"},
	"kpi_measurements":  {"seq", "subject", "kpi", "value", "effective", "recorded_at", "decision", "kind", "note"},
	"rejected_messages": {"seq", "subject", "reason"},
}

func newWriter(ctx context.Context, tx pgx.Tx, reference, stage bool) *writer {
	return &writer{ctx: ctx, tx: tx, reference: reference, stage: stage, rows: map[string][][]any{}}
}

// set records a belief; see [applier.set].
func (w *writer) set(s factSet) error {
	// pgx sends times to PostgreSQL truncated to microseconds; resolve as it stores them.
	s.valid = s.valid.Truncate(time.Microsecond)
	if w.stage {
		w.staged = append(w.staged, s)
		return nil
	}
	if !w.reference {
		w.sets = append(w.sets, s)
		return nil
	}
	const q = `WITH old AS (
		UPDATE facts SET superseded_seq = $5
		WHERE kind = $1 AND id = $2 AND attr = $3 AND superseded_seq IS NULL
		  AND (valid_to IS NULL OR valid_to > $4)
		RETURNING value, valid_from, decision
	), kept AS (
		INSERT INTO facts (kind, id, attr, value, valid_from, valid_to, recorded_seq, recorded_at, decision)
		SELECT $1, $2, $3, value, valid_from, $4, $5, $6, decision FROM old WHERE valid_from < $4
	)
	INSERT INTO facts (kind, id, attr, value, valid_from, valid_to, recorded_seq, recorded_at, decision)
	VALUES ($1, $2, $3, $7, $4, NULL, $5, $6, $8)`
	_, err := w.tx.Exec(w.ctx, q, s.key.kind, s.key.id, s.key.attr, s.valid, s.seq, s.recordedAt, s.value, s.decision)
	return err
}

// row appends a row to an append-only table, values in tableColumns order.
func (w *writer) row(table string, values ...any) error {
	cols := tableColumns[table]
	if len(values) != len(cols) {
		return fmt.Errorf("%s row: %d values for %d columns", table, len(values), len(cols))
	}
	if w.reference {
		q := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES (" + placeholders(len(cols)) + ")"
		_, err := w.tx.Exec(w.ctx, q, values...)
		return err
	}
	if _, ok := w.rows[table]; !ok {
		w.order = append(w.order, table)
	}
	w.rows[table] = append(w.rows[table], values)
	return nil
}

func placeholders(n int) string {
	ps := make([]string, n)
	for i := range ps {
		ps[i] = "$" + strconv.Itoa(i+1)
	}
	return strings.Join(ps, ", ")
}

// exec runs a statement that may read or change rows written before it in
// the batch.
func (w *writer) exec(q string, args ...any) error {
	if err := w.flushRows(); err != nil {
		return err
	}
	_, err := w.tx.Exec(w.ctx, q, args...)
	return err
}

// query runs a query that may read rows written before it in the batch.
func (w *writer) query(q string, args ...any) (pgx.Rows, error) {
	if err := w.flushRows(); err != nil {
		return nil, err
	}
	return w.tx.Query(w.ctx, q, args...)
}

// queryRow is query for one row.
func (w *writer) queryRow(q string, args ...any) (pgx.Row, error) {
	if err := w.flushRows(); err != nil {
		return nil, err
	}
	return w.tx.QueryRow(w.ctx, q, args...), nil
}

// flushRows copies the rows held for the append-only tables.
func (w *writer) flushRows() error {
	for _, table := range w.order {
		rows := w.rows[table]
		if len(rows) == 0 {
			continue
		}
		if _, err := w.tx.CopyFrom(w.ctx, pgx.Identifier{table}, tableColumns[table], pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("copy %d rows into %s: %w", len(rows), table, err)
		}
		w.rows[table] = rows[:0]
	}
	if len(w.staged) > 0 {
		if _, err := w.tx.CopyFrom(w.ctx, pgx.Identifier{assertionsTable}, assertionColumns, &assertionSource{sets: w.staged}); err != nil {
			return fmt.Errorf("copy %d fact assertions: %w", len(w.staged), err)
		}
		w.staged = w.staged[:0]
	}
	return nil
}

// flush writes everything held.
func (w *writer) flush() error {
	if err := w.flushRows(); err != nil {
		return err
	}
	return w.flushFacts()
}

// flushFacts resolves the sets held against the current rows of the
// attributes they touch and writes the outcome.
func (w *writer) flushFacts() error {
	if len(w.sets) == 0 {
		return nil
	}
	sets := w.sets
	w.sets = nil
	cur := map[factKey][]*factRow{}
	var kinds, ids, attrs []string
	for _, s := range sets {
		if _, ok := cur[s.key]; !ok {
			cur[s.key] = nil
			kinds, ids, attrs = append(kinds, s.key.kind), append(ids, s.key.id), append(attrs, s.key.attr)
		}
	}
	// A batch looks up hundreds of attributes among a table of millions of
	// rows: one index probe each. The planner, its statistics behind a
	// table that grows by the batch, prefers to scan the current facts
	// whole (30 ms a batch at 300,000 rows, growing with the table). The
	// UPDATE below probes the same way.
	if _, err := w.tx.Exec(w.ctx, `SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; SET LOCAL enable_bitmapscan = off`); err != nil {
		return fmt.Errorf("plan fact look-ups: %w", err)
	}
	rows, err := w.tx.Query(w.ctx, `SELECT f.kind, f.id, f.attr, f.value, f.valid_from, f.valid_to, f.recorded_seq, f.recorded_at, f.decision
		FROM unnest($1::text[], $2::text[], $3::text[]) AS u(kind, id, attr)
		JOIN facts f ON f.kind = u.kind AND f.id = u.id AND f.attr = u.attr AND f.superseded_seq IS NULL`, kinds, ids, attrs)
	if err != nil {
		return fmt.Errorf("load current facts: %w", err)
	}
	var k factKey
	var r factRow
	_, err = pgx.ForEachRow(rows, []any{&k.kind, &k.id, &k.attr, &r.value, &r.validFrom, &r.validTo, &r.recordedSeq, &r.recordedAt, &r.decision}, func() error {
		row := r
		row.existing = true
		cur[k] = append(cur[k], &row)
		return nil
	})
	if err != nil {
		return fmt.Errorf("load current facts: %w", err)
	}
	var created []*factRow
	var uKinds, uIDs, uAttrs []string
	var uFrom []time.Time
	var uSeq []int64
	for _, s := range sets {
		cur[s.key], created = resolveSet(cur[s.key], s, created, func(old *factRow) {
			if old.existing {
				uKinds, uIDs, uAttrs = append(uKinds, s.key.kind), append(uIDs, s.key.id), append(uAttrs, s.key.attr)
				uFrom, uSeq = append(uFrom, old.validFrom), append(uSeq, s.seq)
			}
		})
	}
	if len(uSeq) > 0 {
		if _, err := w.tx.Exec(w.ctx, `UPDATE facts f SET superseded_seq = u.seq
			FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::bigint[]) AS u(kind, id, attr, valid_from, seq)
			WHERE f.kind = u.kind AND f.id = u.id AND f.attr = u.attr AND f.valid_from = u.valid_from AND f.superseded_seq IS NULL`,
			uKinds, uIDs, uAttrs, uFrom, uSeq); err != nil {
			return fmt.Errorf("supersede %d facts: %w", len(uSeq), err)
		}
	}
	if _, err := w.tx.Exec(w.ctx, `SET LOCAL enable_hashjoin TO DEFAULT; SET LOCAL enable_mergejoin TO DEFAULT; SET LOCAL enable_bitmapscan TO DEFAULT`); err != nil {
		return fmt.Errorf("plan fact look-ups: %w", err)
	}
	out := factValues(created)
	w.factRows += len(out)
	if _, err := w.tx.CopyFrom(w.ctx, pgx.Identifier{"facts"}, factColumns, pgx.CopyFromRows(out)); err != nil {
		return fmt.Errorf("copy %d facts: %w", len(out), err)
	}
	return nil
}

// resolveSet applies belief s to cur, the rows of its attribute not superseded
// yet, as the reference writer's statement does: every row that ends after
// s's valid time is superseded by s (closed is told of each), the part of
// it before that time is kept as a new row recorded with s, and s's own row
// follows. It returns the attribute's rows not superseded afterwards, and
// created with the new rows appended. The live writer and the rebuild's
// assertions that are not in valid-time order (stage.go) both resolve here.
func resolveSet(cur []*factRow, s factSet, created []*factRow, closed func(old *factRow)) ([]*factRow, []*factRow) {
	var keep, next []*factRow
	for _, old := range cur {
		if old.validTo != nil && !old.validTo.After(s.valid) {
			keep = append(keep, old)
			continue
		}
		old.superseded = s.seq
		closed(old)
		if old.validFrom.Before(s.valid) {
			to := s.valid
			part := &factRow{key: s.key, value: old.value, validFrom: old.validFrom, validTo: &to, recordedSeq: s.seq,
				recordedAt: s.recordedAt, decision: old.decision}
			created = append(created, part)
			next = append(next, part)
		}
	}
	row := &factRow{key: s.key, value: s.value, validFrom: s.valid, recordedSeq: s.seq, recordedAt: s.recordedAt, decision: s.decision}
	created = append(created, row)
	return append(append(keep, next...), row), created
}
