package projections

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"koers/domain"
)

// Progress reports a rebuild.
type Progress struct {
	Done    uint64 // stream messages applied
	Total   uint64 // the stream's last sequence when the rebuild started
	Elapsed time.Duration
	Rate    float64 // messages per second so far
}

// Batch bounds of a rebuild when its options leave them zero: a batch of
// 1000 events costs about as many round trips as one of 10,000.
const (
	RebuildBatchEvents = 10_000
	RebuildBatchBytes  = 64 << 20
)

// maxSwitchAttempts bounds how often a rebuild catches up again because the
// live read models moved ahead while it was switching.
const maxSwitchAttempts = 10

// Rebuild builds every read model afresh from sequence 1 into a schema of
// its own (the schema's name and "_rebuild") while db keeps answering from
// the current one, then switches atomically: in one transaction that holds
// the current checkpoint (so no projector commits meanwhile), once the new
// read models are at least as far, the schemas are renamed, and the old one
// is dropped. Projectors on db carry on in the new schema: its checkpoint
// makes them skip what it holds already, and one that had gone further
// reads again from it (see [GapError]). progress, if set, is called after
// each committed batch.
//
// A rebuild does not need the projector's lease ([DB.TakeLease]) and runs
// beside whichever projector holds it; two rebuilds of the same read
// models do not run at once: the second fails with [ErrRebuildRunning].
//
// A rebuild favours throughput over latency: zero opts.BatchEvents and
// opts.BatchBytes default to RebuildBatchEvents and RebuildBatchBytes.
func (db *DB) Rebuild(ctx context.Context, src Source, opts ProjectorOptions, progress func(Progress)) error {
	if opts.BatchEvents == 0 {
		opts.BatchEvents = RebuildBatchEvents
	}
	if opts.BatchBytes == 0 {
		opts.BatchBytes = RebuildBatchBytes
	}
	staging, retired := db.schema+"_rebuild", db.schema+"_retired"
	if !validSchema.MatchString(staging) || !validSchema.MatchString(retired) {
		return fmt.Errorf("rebuild: schema %s: name too long for a rebuild schema", db.schema)
	}
	// Two rebuilds would write one staging schema; the live projector's
	// lease is not needed: the switch holds the live checkpoint.
	lock, ok, err := db.tryAdvisory(ctx, rebuildKey(db.schema), false)
	if err != nil {
		return fmt.Errorf("rebuild: lock: %w", err)
	}
	if !ok {
		return fmt.Errorf("rebuild %s: %w", db.schema, ErrRebuildRunning)
	}
	defer closeLocked(lock)
	if err := db.dropSchema(ctx, staging); err != nil {
		return err
	}
	// The staging schema's batches do not wait for their commits to reach
	// the disk: a crash loses the staging schema's last batches, which no
	// one reads, and the switch's own (synchronous) commit writes the
	// whole log of the rebuild before anyone can.
	base := db.base.Copy()
	base.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	next, err := open(ctx, base, Options{Schema: staging, MaxConns: 2}.WithDefaults(), false)
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	defer next.Close()
	// Maintaining some indexes row by row (the GiST index over the facts'
	// two time ranges) costs a rebuild more than building them once at the
	// end: the migrations mark them, and they are dropped for the bulk of
	// the work.
	deferred, err := deferredIndexes()
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	for _, ix := range deferred {
		if err := next.exec(ctx, `DROP INDEX IF EXISTS `+pgx.Identifier{ix.name}.Sanitize()); err != nil {
			return fmt.Errorf("rebuild: defer index %s: %w", ix.name, err)
		}
	}
	// The facts are derived at the end, set-based (stage.go).
	loadIndexes, err := next.stageStart(ctx)
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	indexed := false

	total, err := src.LastSequence(ctx)
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	start := time.Now()
	onCommit := opts.OnCommit
	opts.OnCommit = func(cp uint64) {
		if onCommit != nil {
			onCommit(cp)
		}
		if progress != nil {
			el := time.Since(start)
			progress(Progress{Done: cp, Total: total, Elapsed: el, Rate: float64(cp) / max(el.Seconds(), 1e-9)})
		}
	}
	// The anchor of the log up to total is a second read of it, which the
	// projector would make in its own goroutine between batches: made
	// beside the load instead, it costs the rebuild (almost) no time.
	actx, stopAnchor := context.WithCancel(ctx)
	anchored := anchorBeside(actx, src, total)
	defer func() {
		stopAnchor()
		<-anchored
	}()
	p, err := NewProjector(next, unanchored{src}, opts)
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	for attempt := 0; attempt < maxSwitchAttempts; attempt++ {
		if err := p.CatchUp(ctx); err != nil {
			return fmt.Errorf("rebuild: %w", err)
		}
		if !indexed {
			if db.rebuilt, err = next.stageFinish(ctx, loadIndexes); err != nil {
				return fmt.Errorf("rebuild: %w", err)
			}
			if r := <-anchored; r.err != nil {
				return fmt.Errorf("rebuild: %w", r.err)
			} else if r.ok {
				if err := next.RecordAnchor(ctx, r.anchor); err != nil {
					return fmt.Errorf("rebuild: %w", err)
				}
			}
			for _, ix := range deferred {
				if err := next.exec(ctx, ix.create); err != nil {
					return fmt.Errorf("rebuild: build index %s: %w", ix.name, err)
				}
			}
			indexed = true
		}
		switched, err := db.switchTo(ctx, next, retired)
		if err != nil {
			return fmt.Errorf("rebuild: %w", err)
		}
		if switched {
			// Nothing a connection kept about the old schema outlives it.
			db.pool.Reset()
			return db.dropSchema(ctx, retired)
		}
	}
	return fmt.Errorf("rebuild: the live read models kept moving ahead or the reporting views stayed in use: gave up after %d attempts to switch", maxSwitchAttempts)
}

// anchored is the outcome of [anchorBeside]: the anchor (ok false when
// the source makes none, or the log is empty) or the error that stopped it.
type anchored struct {
	anchor domain.Anchor
	ok     bool
	err    error
}

// anchorBeside computes the anchor of src up to sequence total in a
// goroutine of its own and sends the outcome on the channel it returns,
// which is closed once the goroutine ended.
func anchorBeside(ctx context.Context, src Source, total uint64) <-chan anchored {
	out := make(chan anchored, 1)
	go func() {
		defer close(out)
		an, ok := src.(domain.Anchorer)
		if !ok || total == 0 {
			out <- anchored{}
			return
		}
		a, err := an.Anchor(ctx, domain.Anchor{}, total)
		if err != nil {
			err = fmt.Errorf("anchor at %d: %w", total, err)
		}
		out <- anchored{anchor: a, ok: err == nil, err: err}
	}()
	return out
}

// unanchored is a source without its [domain.Anchorer] side, for the
// projector of a rebuild, which anchors the log itself (anchorBeside). It
// still checks the log's integrity as the source does.
type unanchored struct{ Source }

func (u unanchored) CheckIntegrity(ctx context.Context, anchors ...domain.Anchor) error {
	if ic, ok := u.Source.(domain.IntegrityChecker); ok {
		return ic.CheckIntegrity(ctx, anchors...)
	}
	return nil
}

func (u unanchored) Halted() error {
	if ic, ok := u.Source.(domain.IntegrityChecker); ok {
		return ic.Halted()
	}
	return nil
}

// deferredIndex is an index a rebuild drops from its staging schema and
// creates once the staging read models have caught up.
type deferredIndex struct {
	name   string
	create string // the migration's own CREATE INDEX statement
}

// deferredMarker precedes, on a line of its own in a migration's Up part,
// each CREATE INDEX statement a rebuild defers.
const deferredMarker = "-- +koers deferred-by-rebuild"

var createIndexName = regexp.MustCompile(`(?is)^CREATE\s+INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?([a-z_][a-z0-9_]*)\s+ON\s`)

// deferredIndexes reads the indexes a rebuild defers from the embedded
// migrations, so that the statement a rebuild runs at the end is the one
// the migration runs, never a copy that could drift from it.
func deferredIndexes() ([]deferredIndex, error) {
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	var out []deferredIndex
	for _, name := range files {
		b, err := migrations.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", name, err)
		}
		up, _, _ := strings.Cut(string(b), "-- +goose Down")
		rest := up
		// Bounded by the file: each round consumes one marker.
		for {
			_, after, ok := strings.Cut(rest, deferredMarker+"\n")
			if !ok {
				break
			}
			stmt, tail, ok := strings.Cut(after, ";")
			if !ok {
				return nil, fmt.Errorf("migration %s: %s not followed by a statement ending in ;", name, deferredMarker)
			}
			stmt = strings.TrimSpace(stmt)
			m := createIndexName.FindStringSubmatch(stmt)
			if m == nil {
				return nil, fmt.Errorf("migration %s: %s must precede a CREATE INDEX statement, not %.40q", name, deferredMarker, stmt)
			}
			out = append(out, deferredIndex{name: m[1], create: stmt})
			rest = tail
		}
	}
	return out, nil
}

// exec runs one statement in the read models' schema.
func (db *DB) exec(ctx context.Context, sql string) error {
	return db.withConn(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, sql)
		return err
	})
}

// switchTo renames next's schema to db's, and db's to retired, if next is
// at least as far as db; it reports whether it did.
func (db *DB) switchTo(ctx context.Context, next *DB, retired string) (bool, error) {
	cur, nxt, ret := pgx.Identifier{db.schema}.Sanitize(), pgx.Identifier{next.schema}.Sanitize(), pgx.Identifier{retired}.Sanitize()
	switched := false
	err := db.withTx(ctx, func(tx pgx.Tx) error {
		// Rebinding the reporting views waits for the reports reading
		// them, while the live projectors wait for this transaction: give
		// up after a while and try again after catching up.
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '`+switchLockTimeout+`'`); err != nil {
			return fmt.Errorf("lock timeout: %w", err)
		}
		var live, built int64
		if err := tx.QueryRow(ctx, `SELECT seq FROM `+cur+`.checkpoint FOR UPDATE`).Scan(&live); err != nil {
			return fmt.Errorf("lock live checkpoint: %w", err)
		}
		if err := tx.QueryRow(ctx, `SELECT seq FROM `+nxt+`.checkpoint FOR UPDATE`).Scan(&built); err != nil {
			return fmt.Errorf("lock rebuilt checkpoint: %w", err)
		}
		// Read models of another ledger are replaced whatever their
		// checkpoint: there is nothing of theirs to keep up with.
		var liveLedger, builtLedger *string
		if err := tx.QueryRow(ctx, `SELECT ledger_genesis FROM `+cur+`.checkpoint`).Scan(&liveLedger); err != nil {
			return fmt.Errorf("live ledger identity: %w", err)
		}
		if err := tx.QueryRow(ctx, `SELECT ledger_genesis FROM `+nxt+`.checkpoint`).Scan(&builtLedger); err != nil {
			return fmt.Errorf("rebuilt ledger identity: %w", err)
		}
		sameLedger := liveLedger == nil || builtLedger == nil || *liveLedger == *builtLedger
		if sameLedger && built < live {
			return nil
		}
		if _, err := tx.Exec(ctx, `DROP SCHEMA IF EXISTS `+ret+` CASCADE`); err != nil {
			return fmt.Errorf("drop %s: %w", retired, err)
		}
		if _, err := tx.Exec(ctx, `ALTER SCHEMA `+cur+` RENAME TO `+ret); err != nil {
			return fmt.Errorf("retire %s: %w", db.schema, err)
		}
		if _, err := tx.Exec(ctx, `ALTER SCHEMA `+nxt+` RENAME TO `+cur); err != nil {
			return fmt.Errorf("switch to %s: %w", next.schema, err)
		}
		// The views followed the old tables into the retired schema: point
		// them at the new ones before that is dropped.
		if err := db.createReporting(ctx, tx, db.schema, true); err != nil {
			return err
		}
		switched = true
		return nil
	})
	var dbErr *DatabaseError
	if errors.As(err, &dbErr) && dbErr.Code == "55P03" { // lock_not_available
		return false, nil
	}
	return switched, err
}

// switchLockTimeout bounds how long a switch waits for a lock (a variable
// for tests).
var switchLockTimeout = "3s"

func (db *DB) dropSchema(ctx context.Context, schema string) error {
	err := db.withConn(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`)
		return err
	})
	if err != nil {
		return fmt.Errorf("drop schema %s: %w", schema, err)
	}
	return nil
}
