package projections

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"koers/internal/pgtest"
)

func TestOneLeasePerReadModelsFreedWhenItsSessionEnds(t *testing.T) {
	ctx := context.Background()
	db := newDB(t)
	// A second process's view of the same read models.
	other, err := Open(ctx, pgtest.Package(t), Options{Schema: db.Schema(), ReportingSchema: db.reporting})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	l, err := db.TakeLease(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Check(ctx); err != nil {
		t.Fatalf("the holder's check: %v", err)
	}
	if holder, _, ok, err := other.LeaseHolder(ctx); err != nil || !ok || !strings.HasPrefix(holder, leaseAppPrefix+" pid ") {
		t.Fatalf("the lease's holder: %q %v %v", holder, ok, err)
	}
	// A standby asks again and again on one session.
	var pids []uint32
	for i := 0; i < 3; i++ {
		if _, err := other.TakeLease(ctx); !errors.Is(err, ErrLeaseHeld) {
			t.Fatalf("a second lease on the same read models: %v, want ErrLeaseHeld", err)
		}
		other.standby.Lock()
		pids = append(pids, other.standby.conn.PgConn().PID())
		other.standby.Unlock()
	}
	if pids[0] != pids[1] || pids[1] != pids[2] {
		t.Errorf("a standby's attempts opened sessions %v, want one", pids)
	}
	// Other read models have a lease of their own.
	l2, err := newDB(t).TakeLease(ctx)
	if err != nil {
		t.Fatalf("the lease of other read models: %v", err)
	}
	l2.Release()

	// The holder's session ends as with a kill: the lock goes with it, and
	// the holder's watch says so.
	watch := make(chan error, 1)
	go func() { watch <- l.Watch(ctx, 50*time.Millisecond, time.Second) }()
	if _, err := db.pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, int64(l.conn.PgConn().PID())); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-watch:
		if err == nil {
			t.Fatal("the watch ended without an error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watch did not see the lease lost")
	}
	l.Release()
	if _, _, ok, err := other.LeaseHolder(ctx); err != nil || ok {
		t.Fatalf("a holder after its session ended: %v %v", ok, err)
	}
	l3, err := other.TakeLease(ctx)
	if err != nil {
		t.Fatalf("the lease after its holder's session ended: %v", err)
	}
	l3.Release()
	l4, err := db.TakeLease(ctx)
	if err != nil {
		t.Fatalf("the lease after release: %v", err)
	}
	l4.Release()
}

func TestTwoRebuildsDoNotRunAtOnce(t *testing.T) {
	ctx := context.Background()
	db := newDB(t)
	conn, ok, err := db.tryAdvisory(ctx, rebuildKey(db.Schema()), false)
	if err != nil || !ok {
		t.Fatalf("the rebuild lock: %v %v", ok, err)
	}
	defer conn.Close(ctx)
	if err := db.Rebuild(ctx, nil, ProjectorOptions{}, nil); !errors.Is(err, ErrRebuildRunning) {
		t.Fatalf("a rebuild beside another: %v, want ErrRebuildRunning", err)
	}
}
