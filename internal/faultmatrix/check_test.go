package faultmatrix

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"koers/domain"
	"koers/eventstore"
	"koers/internal/pgtest"
)

// logContents is what the log holds, read message by message.
type logContents struct {
	last     uint64
	records  map[string]int      // decision.recorded events per decision id
	events   map[string][]string // event ids per decision id
	rejected int                 // stored messages that are not genuine events
}

// readLog reads the whole log as an auditor would: without the seal key,
// every message checked.
func (e *env) readLog() logContents {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var nc *nats.Conn
	var err error
	if len(e.nodes) > 0 {
		nc, err = nats.Connect(natsURL(e.nodes), nats.Timeout(5*time.Second))
	} else {
		// The data folder's embedded server, which serve holds.
		var local *eventstore.Local
		if local, err = eventstore.OpenLocal(eventstore.LocalOptions{DataDir: e.data}); err != nil {
			e.t.Fatalf("join the data folder: %v", err)
		}
		defer local.Close()
		nc, err = local.Connect()
	}
	if err != nil {
		e.t.Fatalf("connect to the log: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		e.t.Fatal(err)
	}
	replicas := 1
	if len(e.nodes) > 1 {
		replicas = 3
	}
	st, err := eventstore.Open(ctx, js, eventstore.Config{Existing: true, Inspect: true, Replicas: replicas})
	if err != nil {
		e.t.Fatalf("open the log: %v", err)
	}
	c := logContents{records: map[string]int{}, events: map[string][]string{}}
	if c.last, err = st.LastSequence(ctx); err != nil {
		e.t.Fatalf("the log's last sequence: %v", err)
	}
	for r, err := range st.Read(ctx, 1, domain.ReadOptions{Until: c.last}) {
		var rejected *domain.RejectedError
		switch {
		case errors.As(err, &rejected):
			c.rejected++
			continue
		case err != nil:
			e.t.Fatalf("read the log: %v", err)
		}
		id := r.Meta.DecisionID
		c.events[id] = append(c.events[id], r.EventID)
		if r.Type == "decision.recorded" {
			c.records[id]++
		}
	}
	return c
}

// row is one scenario's line in the table of figures.
type row struct {
	scenario   string
	faults     string
	sent       int
	acked      int
	refused    int
	retried    int // decisions answered only after more than one attempt
	landed     int // acknowledged as recorded before (200): an earlier attempt had landed unanswered
	attempts   int // attempts after the first, over all decisions
	givenUp    int
	lost       int
	duplicated int
	feedAgain  int // events the feed's target received more than once (allowed: same id)
	recoveries []recovery
	took       time.Duration
}

// check runs the checks every scenario ends with, once its load has
// finished, and returns its figures.
func (e *env) check(l *load, faults string, began time.Time) row {
	t := e.t
	t.Helper()
	ds := l.snapshot()
	log := e.readLog()
	r := row{scenario: e.name, faults: faults, sent: len(ds)}
	var acked []string
	for _, d := range ds {
		if d.attempts > 1 {
			r.retried++
		}
		switch d.outcome {
		case acknowledged:
			r.acked++
			acked = append(acked, d.id)
			if d.duplicate {
				r.landed++
			}
			switch n := log.records[d.id]; {
			case n == 0:
				r.lost++
				t.Errorf("decision %s was acknowledged (%d after %d attempts) but is not in the log", d.id, d.status, d.attempts)
			case n > 1:
				r.duplicated++
				t.Errorf("decision %s is in the log %d times", d.id, n)
			}
			if d.badOnPurpose {
				t.Errorf("decision %s forms a team that exists, yet it was acknowledged", d.id)
			}
			if d.contradicted {
				t.Errorf("decision %s was answered that nothing was recorded (or was new), yet a later attempt found it recorded", d.id)
			}
		case refused:
			r.refused++
			if !d.badOnPurpose {
				t.Errorf("decision %s was refused: %d %s", d.id, d.status, d.reason)
			}
			if log.records[d.id] > 0 {
				t.Errorf("decision %s was refused (%d %s), yet it is in the log", d.id, d.status, d.reason)
			}
		case givenUp:
			r.givenUp++
			t.Errorf("decision %s given up after %d attempts: last answer %d %s", d.id, d.attempts, d.status, d.reason)
		}
	}
	for _, d := range ds {
		r.attempts += d.attempts - 1
	}
	if log.rejected > 0 {
		t.Errorf("the log holds %d messages that are not genuine events", log.rejected)
	}
	for id, n := range log.records {
		if n > 1 && !slices.Contains(acked, id) {
			t.Errorf("decision %s is in the log %d times", id, n)
		}
	}
	// No event is in the log twice either (an event's id is its
	// decision's id and its index).
	for id, events := range log.events {
		if dup := len(events) - len(compactSorted(events)); dup > 0 {
			t.Errorf("decision %s has %d events in the log twice: %v", id, dup, events)
		}
	}

	// The read models follow the log to its end and hold every
	// acknowledged decision.
	live := e.connect(e.db)
	defer live.Close(context.Background())
	waitFor(t, 5*time.Minute, "the read models caught up with the log", func() error {
		var seq uint64
		if err := live.QueryRow(context.Background(), `SELECT seq FROM koers.checkpoint`).Scan(&seq); err != nil {
			return err
		}
		if seq < log.last {
			return fmt.Errorf("checkpoint %d, the log's last sequence %d", seq, log.last)
		}
		return nil
	})
	var missing []string
	if err := live.QueryRow(context.Background(), `SELECT coalesce(array_agg(a.id), '{}') FROM unnest($1::text[]) AS a(id)
		WHERE NOT EXISTS (SELECT 1 FROM koers.decisions d WHERE d.id = a.id)`, acked).Scan(&missing); err != nil {
		t.Fatal(err)
	}
	if len(missing) > 0 {
		r.lost += len(missing)
		t.Errorf("%d acknowledged decisions are not in the read models: %v", len(missing), first(missing, 10))
	}

	// A fresh rebuild from the log, into a database of its own, has the
	// same rows as the read models that lived through the faults.
	fresh := pgtest.Fresh(t)
	if code, out, errOut := koers(t, e.argsWithDB(fresh, "rebuild")...); code != 0 {
		t.Fatalf("rebuild into a fresh database: exit %d: %s %s", code, out, errOut)
	}
	rebuilt := e.connect(fresh)
	defer rebuilt.Close(context.Background())
	if a, b := digest(t, live), digest(t, rebuilt); a != b {
		t.Errorf("the read models differ from a fresh rebuild:\nlive:\n%s\nrebuilt:\n%s", a, b)
	}

	if code, out, errOut := koers(t, e.args("verify")...); code != 0 {
		t.Errorf("verify: exit %d: %s %s", code, lastLines(out, 5), errOut)
	}

	// The feed's target receives every event of the log, in the end; an
	// event sent again carries the same id (at least once, deduplicated
	// by id downstream).
	var want []string
	for _, ids := range log.events {
		want = append(want, ids...)
	}
	waitFor(t, 10*time.Minute, "the feed's target received every event of the log", func() error {
		n := 0
		for _, id := range want {
			if !e.target.has(id) {
				n++
			}
		}
		if n > 0 {
			return fmt.Errorf("%d of %d events not yet delivered", n, len(want))
		}
		return nil
	})
	for id, n := range e.target.deliveries() {
		if n > 1 {
			r.feedAgain += n - 1
		}
		decision, _, _ := strings.Cut(id, "/")
		if _, ok := log.events[decision]; !ok {
			t.Errorf("the feed delivered event %s, which is not in the log", id)
		}
	}

	e.mu.Lock()
	r.recoveries = slices.Clone(e.recoveries)
	e.mu.Unlock()
	r.took = time.Since(began)
	return r
}

// argsWithDB are the scenario's arguments with another read-model
// database.
func (e *env) argsWithDB(db string, args ...string) []string {
	a := e.args(args...)
	for i := range a {
		if a[i] == "--database-url" {
			a[i+1] = db
		}
	}
	return a
}

func (e *env) connect(url string) *pgx.Conn {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		e.t.Fatalf("connect to the read models: %v", err)
	}
	return c
}

// digest is a fingerprint of every read-model table, computed by the
// server, as projections' parity test takes it.
func digest(t interface {
	Helper()
	Fatalf(string, ...any)
}, c *pgx.Conn) string {
	t.Helper()
	var b strings.Builder
	for _, table := range []string{"decisions", "facts", "journal", "kpi_measurements", "rejected_messages", "checkpoint"} {
		var n int64
		var sum string
		q := `SELECT count(*), md5(coalesce(string_agg(r, E'\n' ORDER BY r), '')) FROM (SELECT to_jsonb(t)::text AS r FROM koers.` + table + ` t) x`
		if table == "checkpoint" {
			q = `SELECT seq, coalesce(ledger_genesis, '') FROM koers.checkpoint`
		}
		if err := c.QueryRow(context.Background(), q).Scan(&n, &sum); err != nil {
			t.Fatalf("digest of %s: %v", table, err)
		}
		fmt.Fprintf(&b, "%s %d %s\n", table, n, sum)
	}
	return b.String()
}

func first(s []string, n int) []string {
	sort.Strings(s)
	if len(s) > n {
		return s[:n]
	}
	return s
}

func pgxConnect(url string) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return pgx.Connect(ctx, url)
}

// compactSorted is a sorted copy of s without repeats.
func compactSorted(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return slices.Compact(c)
}
