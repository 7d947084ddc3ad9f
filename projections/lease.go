package projections

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
)

// The projector's lease: several processes may serve one ledger's read
// models (several `koers serve` behind a load balancer), all of them
// accepting decisions, but one projector at a time writes the read
// models. The lease is a PostgreSQL session advisory lock, keyed by the
// read models' schema (one schema holds one ledger's read models), held on
// a connection of its own: while that session lives no other process
// holds it, and when the process dies — even killed with -9 — PostgreSQL
// ends the session and frees the lock at once.
//
// The lease is an economy, not the only guard: a projector that lost its
// lease without knowing yet (a connection cut) and the new holder cannot
// both commit the same batch, because every batch moves the checkpoint
// under the checkpoint's row lock and one that does not start right after
// it is refused ([GapError]).

// ErrLeaseHeld is returned by [DB.TakeLease] when another session holds
// the lease.
var ErrLeaseHeld = errors.New("another process's projector holds the read models' lease")

// Lease is the right to write the read models of one schema. Release it
// when done; [Lease.Check] says whether it is still held.
type Lease struct {
	conn   *pgx.Conn
	schema string
}

// LeaseKey is the advisory lock key of the projector's lease on the read
// models in schema.
func LeaseKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("koers-projector:" + schema))
	return int64(h.Sum64())
}

// rebuildKey is the advisory lock key a rebuild of schema holds, so that
// two rebuilds do not write one staging schema.
func rebuildKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("koers-rebuild:" + schema))
	return int64(h.Sum64())
}

// TakeLease tries once to take the projector's lease on db's read models,
// on a connection of its own; it does not wait for a holder to let go. It
// returns ErrLeaseHeld when another session holds it, a [*DatabaseError]
// when PostgreSQL could not be asked.
//
// A standby asks again and again: the session of an attempt that found the
// lease held is kept for the next one rather than a connection opened each
// time.
func (db *DB) TakeLease(ctx context.Context) (*Lease, error) {
	db.standby.Lock()
	conn := db.standby.conn
	db.standby.conn = nil
	db.standby.Unlock()
	key := LeaseKey(db.schema)
	if conn != nil && !conn.IsClosed() {
		var ok bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&ok); err != nil {
			conn.Close(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("projector lease: %w", translate(err))
		}
		if ok {
			return &Lease{conn: conn, schema: db.schema}, nil
		}
		db.keepStandby(conn)
		return nil, ErrLeaseHeld
	}
	conn, ok, err := db.tryAdvisory(ctx, key, true)
	if err != nil {
		return nil, fmt.Errorf("projector lease: %w", err)
	}
	if !ok {
		return nil, ErrLeaseHeld
	}
	return &Lease{conn: conn, schema: db.schema}, nil
}

// keepStandby keeps conn for the next attempt at the lease, or closes it
// when one is kept already.
func (db *DB) keepStandby(conn *pgx.Conn) {
	db.standby.Lock()
	if db.standby.conn == nil && !db.standby.closed {
		db.standby.conn, conn = conn, nil
	}
	db.standby.Unlock()
	if conn != nil {
		conn.Close(context.Background())
	}
}

// tryAdvisory opens a connection of its own and tries a session advisory
// lock on it; the connection holds the lock when ok.
// When keep, a connection that did not get the lock is kept for the next
// attempt at the projector's lease.
func (db *DB) tryAdvisory(ctx context.Context, key int64, keep bool) (conn *pgx.Conn, ok bool, err error) {
	cfg := db.base.ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = leaseApplication()
	conn, err = pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, false, translate(err)
	}
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&ok); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, false, translate(err)
	}
	if !ok {
		if keep {
			db.keepStandby(conn)
		} else {
			conn.Close(context.WithoutCancel(ctx))
		}
		return nil, false, nil
	}
	return conn, true, nil
}

// leaseApplication names a lease's session in pg_stat_activity: which
// process on which host holds it.
func leaseApplication() string {
	host, _ := os.Hostname()
	name := fmt.Sprintf("%s pid %d on %s", leaseAppPrefix, os.Getpid(), host)
	if len(name) > 63 { // NAMEDATALEN - 1
		name = name[:63]
	}
	return name
}

const leaseAppPrefix = "koers-lease"

// LeaseHolder describes the session holding the projector's lease on db's
// read models: its application name (which process on which host) and
// since when the session lives; ok is false while none holds it.
func (db *DB) LeaseHolder(ctx context.Context) (holder string, since time.Time, ok bool, err error) {
	key := uint64(LeaseKey(db.schema))
	err = db.withConn(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT a.application_name, a.backend_start FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
			WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
			AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid AND l.objsubid = 1`,
			int64(key>>32), int64(key&0xffffffff)).Scan(&holder, &since)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return "", time.Time{}, false, nil
	}
	if err != nil {
		return "", time.Time{}, false, fmt.Errorf("projector lease holder: %w", err)
	}
	return holder, since, true, nil
}

// Check asks PostgreSQL whether the lease's session still lives (and so
// still holds the lock); an error means the lease may be lost.
func (l *Lease) Check(ctx context.Context) error {
	var held bool
	// A bigint key shows in pg_locks as its high and low 32 bits.
	key := uint64(LeaseKey(l.schema))
	err := l.conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND pid = pg_backend_pid() AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND objsubid = 1)`,
		int64(key>>32), int64(key&0xffffffff)).Scan(&held)
	if err != nil {
		return fmt.Errorf("projector lease: %w", translate(err))
	}
	if !held {
		return errors.New("projector lease: the lock is no longer held")
	}
	return nil
}

// Watch checks the lease every interval until ctx ends (it returns nil) or
// a check fails (it returns why): then the lease must be taken as lost.
// Each check waits at most timeout.
func (l *Lease) Watch(ctx context.Context, interval, timeout time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		err := l.Check(cctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			return err
		}
	}
}

// ErrRebuildRunning is returned by [DB.Rebuild] while another rebuild of
// the same read models runs.
var ErrRebuildRunning = errors.New("another rebuild of these read models is running")

// Release lets go of the lease. It unlocks before closing the session:
// the server ends a closed session a moment later, and the next holder
// should not find the lock still taken.
func (l *Lease) Release() {
	closeLocked(l.conn)
}

func closeLocked(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = conn.Exec(ctx, "SELECT pg_advisory_unlock_all()")
	_ = conn.Close(ctx)
}
