package feed

import (
	"context"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"koers/internal/pgerr"
)

// openPool connects to the feeds' database and migrates their tables.
func openPool(ctx context.Context, databaseURL string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("feed database: %w", translate(err))
	}
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("feed database: %w", translate(err))
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// lease holds a session advisory lock on a connection of its own: while it
// is held no other process runs the same feed, which would interleave two
// streams of the same events.
type lease struct{ conn *pgxpool.Conn }

func leaseKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("koers-feed:" + name))
	return int64(h.Sum64())
}

func takeLease(ctx context.Context, pool *pgxpool.Pool, name string) (*lease, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("feed %s: lease: %w", name, translate(err))
	}
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", leaseKey(name)).Scan(&ok); err != nil {
		conn.Release()
		return nil, fmt.Errorf("feed %s: lease: %w", name, translate(err))
	}
	if !ok {
		conn.Release()
		return nil, &BusyError{Name: name}
	}
	return &lease{conn: conn}, nil
}

func (l *lease) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Closing the session would drop the lock as well; unlocking first lets
	// the pool keep the connection.
	if _, err := l.conn.Exec(ctx, "SELECT pg_advisory_unlock_all()"); err != nil {
		l.conn.Conn().Close(ctx)
	}
	l.conn.Release()
}

// claim registers the feed or checks that it is the one registered under
// its name, and returns its checkpoint.
func claim(ctx context.Context, pool *pgxpool.Pool, name, target, source string, fromSeq uint64) (uint64, error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("feed %s: checkpoint: %w", name, translate(err))
	}
	defer tx.Rollback(ctx)
	tag, err := tx.Exec(ctx, `INSERT INTO koers_feed.checkpoint (name, target, source, delivered_seq)
		VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING`, name, target, source, int64(fromSeq-1))
	if err != nil {
		return 0, fmt.Errorf("feed %s: checkpoint: %w", name, translate(err))
	}
	created := tag.RowsAffected() == 1
	var haveTarget, haveSource string
	var seq int64
	if err := tx.QueryRow(ctx, `SELECT target, source, delivered_seq FROM koers_feed.checkpoint WHERE name = $1`, name).
		Scan(&haveTarget, &haveSource, &seq); err != nil {
		return 0, fmt.Errorf("feed %s: checkpoint: %w", name, translate(err))
	}
	switch {
	case haveTarget != target:
		return 0, &MismatchError{Name: name, What: "target", Registered: haveTarget, Given: target}
	case haveSource != source:
		return 0, &MismatchError{Name: name, What: "ledger", Registered: haveSource, Given: source}
	case !created && fromSeq > 1 && fromSeq != uint64(seq)+1:
		return 0, &FromSeqError{Name: name, Checkpoint: uint64(seq), FromSeq: fromSeq}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("feed %s: checkpoint: %w", name, translate(err))
	}
	return uint64(seq), nil
}

// save moves the checkpoint forward to through after the target confirmed
// delivered events (and poisoned and rejected ones were dealt with). It
// never moves it back.
func save(ctx context.Context, pool *pgxpool.Pool, name string, through uint64, delivered, poisoned, rejected int) error {
	tag, err := pool.Exec(ctx, `UPDATE koers_feed.checkpoint
		SET delivered_seq = $2, delivered_total = delivered_total + $3, poisoned_total = poisoned_total + $4,
		    rejected_total = rejected_total + $5, updated_at = now()
		WHERE name = $1 AND delivered_seq < $2`, name, int64(through), delivered, poisoned, rejected)
	if err != nil {
		return fmt.Errorf("feed %s: save checkpoint %d: %w", name, through, translate(err))
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("feed %s: save checkpoint %d: the checkpoint is gone or already past it", name, through)
	}
	return nil
}

// Progress is one feed's registration and checkpoint.
type Progress struct {
	Name           string    `json:"name"`
	Target         string    `json:"target"` // credential-like parts masked
	Source         string    `json:"source"`
	Checkpoint     uint64    `json:"checkpoint"` // last delivered stream sequence
	DeliveredTotal uint64    `json:"delivered_total"`
	PoisonedTotal  uint64    `json:"poisoned_total"`
	RejectedTotal  uint64    `json:"rejected_total"`
	UpdatedAt      time.Time `json:"updated_at"`
}

func list(ctx context.Context, db interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) ([]Progress, error) {
	rows, err := db.Query(ctx, `SELECT name, target, source, delivered_seq, delivered_total, poisoned_total, rejected_total, updated_at
		FROM koers_feed.checkpoint ORDER BY name`)
	if err != nil {
		if pgerr.Code(err) == "42P01" { // undefined_table: no feed ever ran here
			return nil, nil
		}
		return nil, fmt.Errorf("feed checkpoints: %w", translate(err))
	}
	cps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Progress, error) {
		var c Progress
		var seq, d, p, rj int64
		err := r.Scan(&c.Name, &c.Target, &c.Source, &seq, &d, &p, &rj, &c.UpdatedAt)
		// Migration 2 masked what was stored; a database it has not run on
		// yet (status creates nothing) is masked as it is read.
		c.Target = redactStored(c.Target)
		c.Checkpoint, c.DeliveredTotal, c.PoisonedTotal, c.RejectedTotal = uint64(seq), uint64(d), uint64(p), uint64(rj)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("feed checkpoints: %w", translate(err))
	}
	return cps, nil
}
