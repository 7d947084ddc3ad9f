package faultmatrix

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"koers/internal/pgserver"
)

// form holds the counts and durations of one form of the matrix.
type form struct {
	load         loadOptions
	serveKills   int
	killEvery    time.Duration // load between two kills of serve
	natsDown     time.Duration // a killed nats-server stays down this long
	clusterHold  time.Duration // load with a cluster node down, and after it is back
	clusterKills []string      // the cluster's nodes killed in turn: "leader", "follower"
	pgStops      []time.Duration
	feedDown     time.Duration
	tail         time.Duration // load after the last fault
}

// The counts and durations, and a short form for `go test ./...`.
var (
	longForm = form{
		load:         loadOptions{Clients: 8, Interval: 100 * time.Millisecond, GiveUpAfter: 2 * time.Minute},
		serveKills:   20,
		killEvery:    5 * time.Second,
		natsDown:     5 * time.Second,
		clusterHold:  15 * time.Second,
		clusterKills: []string{"leader", "follower"},
		pgStops:      []time.Duration{10 * time.Second, 5 * time.Minute},
		feedDown:     time.Minute,
		tail:         5 * time.Second,
	}
	shortForm = form{
		load:       loadOptions{Clients: 4, Interval: 50 * time.Millisecond, GiveUpAfter: time.Minute},
		serveKills: 2,
		killEvery:  2 * time.Second,
		natsDown:   time.Second,
		// No cluster failover: in 1 of 22 short runs serve acknowledged
		// nothing for 2 minutes after the leader came back (not explained
		// yet, see the README's fault matrix), which would fail CI at
		// random; the long form runs both failovers.
		clusterHold:  2 * time.Second,
		clusterKills: nil,
		pgStops:      []time.Duration{3 * time.Second},
		feedDown:     3 * time.Second,
		tail:         time.Second,
	}
)

// table collects the scenarios' figures.
var table struct {
	mu   sync.Mutex
	rows []row
}

func TestFaultMatrix(t *testing.T) {
	f := shortForm
	formName := "short"
	if *long {
		f, formName = longForm, "long"
	}
	t.Cleanup(func() { report(t, formName, f) })
	for _, sc := range []struct {
		name   string
		env    envOptions
		faults string
		inject func(*env, *load, form)
	}{
		{"serve-kill", envOptions{}, fmt.Sprintf("serve kill -9 ×%d, restarted at once", f.serveKills), killServe},
		{"nats-kill", envOptions{natsNodes: 1}, fmt.Sprintf("nats-server kill -9, restarted after %s", f.natsDown), killNATS},
		{"cluster", envOptions{natsNodes: 3}, fmt.Sprintf("R3 cluster: kill -9 of the stream's %s, down %s each", strings.Join(f.clusterKills, ", then a "), f.clusterHold), killClusterNodes},
		{"postgresql", envOptions{privatePG: true}, "PostgreSQL stopped for " + durations(f.pgStops), stopPostgreSQL},
		{"feed-target", envOptions{}, fmt.Sprintf("webhook feed target down for %s", f.feedDown), takeTargetDown},
	} {
		if sc.name == "cluster" && len(f.clusterKills) == 0 {
			continue // the short form's choice, see shortForm
		}
		t.Run(sc.name, func(t *testing.T) {
			began := time.Now()
			e := newEnv(t, sc.name, sc.env)
			l := startLoad(sc.name, e.base, e.token, f.load)
			// The load runs before the first fault, and is stopped (after
			// each client's decision in flight) however the scenario ends.
			stopped := false
			t.Cleanup(func() {
				if !stopped {
					l.finish()
				}
			})
			e.keepLoading(l, f.tail, 5)
			sc.inject(e, l, f)
			e.keepLoading(l, f.tail, 5)
			l.finish()
			stopped = true
			r := e.check(l, sc.faults, began)
			table.mu.Lock()
			table.rows = append(table.rows, r)
			table.mu.Unlock()
		})
	}
}

// killServe kills serve with -9 (its embedded NATS with it) and starts it
// again at once, serveKills times.
func killServe(e *env, l *load, f form) {
	for i := 0; i < f.serveKills; i++ {
		e.keepLoading(l, f.killEvery, 1)
		e.serve.kill()
		killed := time.Now()
		e.startServe()
		e.waitAck(l, killed, "serve killed", 2*time.Minute)
	}
}

// killNATS kills the nats-server serve uses with -9 and starts it again
// on its store.
func killNATS(e *env, l *load, f form) {
	n := e.nodes[0]
	n.kill()
	killed := time.Now()
	time.Sleep(f.natsDown)
	n.restart(e.t)
	back := time.Now()
	e.waitAck(l, killed, "nats-server killed", 2*time.Minute)
	e.waitAck(l, back, "nats-server back", 2*time.Minute)
	if !e.serve.running() {
		e.t.Fatalf("serve exited after its NATS came back:\n%s", e.serve.tail())
	}
}

// killClusterNodes kills the node that leads the ledger's stream, lets
// the load run on the two others, starts it again and waits until it has
// caught up; then (long form) the same with a follower.
func killClusterNodes(e *env, l *load, f form) {
	url := natsURL(e.nodes)
	for _, role := range f.clusterKills {
		var leader string
		var current []string
		waitFor(e.t, 2*time.Minute, "the stream has a leader and two current followers", func() error {
			var err error
			if leader, current, err = streamCluster(context.Background(), url, "KOERS"); err != nil {
				return err
			}
			if len(current) < 2 {
				return fmt.Errorf("leader %s, current followers %v", leader, current)
			}
			return nil
		})
		victim := leader
		if role == "follower" {
			victim = current[0]
		}
		var node *natsNode
		for _, n := range e.nodes {
			if n.name == victim {
				node = n
			}
		}
		if node == nil {
			e.t.Fatalf("no node named %q", victim)
		}
		node.kill()
		killed := time.Now()
		e.waitAck(l, killed, "stream "+role+" killed", 2*time.Minute)
		e.keepLoading(l, f.clusterHold, 1)
		node.restart(e.t)
		back := time.Now()
		waitFor(e.t, 2*time.Minute, "the restarted "+role+" is current again", func() error {
			_, current, err := streamCluster(context.Background(), url, "KOERS")
			if err != nil {
				return err
			}
			if !slices.Contains(current, victim) {
				return fmt.Errorf("current followers %v", current)
			}
			return nil
		})
		e.recovered("killed "+role+" restarted → current again", time.Since(back))
		e.keepLoading(l, f.clusterHold, 1)
	}
}

// stopPostgreSQL stops the read models' PostgreSQL for each of pgStops:
// serve goes on recording decisions, and its projector catches up once
// the database is back.
func stopPostgreSQL(e *env, l *load, f form) {
	ctx := context.Background()
	for _, d := range f.pgStops {
		if err := pgserver.StopPrivate(ctx, e.pgDir); err != nil {
			e.t.Fatal(err)
		}
		stopped := time.Now()
		e.waitAck(l, stopped, fmt.Sprintf("PostgreSQL stopped (%s)", d), 2*time.Minute)
		time.Sleep(time.Until(stopped.Add(d)))
		if !e.serve.running() {
			e.t.Fatalf("serve exited while PostgreSQL was down:\n%s", e.serve.tail())
		}
		if _, err := pgserver.Private(ctx, e.pgDir); err != nil {
			e.t.Fatalf("start PostgreSQL again: %v", err)
		}
		back := time.Now()
		e.waitVisible(l.ackedBefore(back), fmt.Sprintf("PostgreSQL back (%s) → read models caught up", d), back)
		e.keepLoading(l, f.tail, 1)
	}
}

// waitVisible waits until the live read models hold every id, and
// records the time since t0.
func (e *env) waitVisible(ids []string, what string, t0 time.Time) {
	e.t.Helper()
	waitFor(e.t, 10*time.Minute, what, func() error {
		c, err := pgxConnect(e.db)
		if err != nil {
			return err
		}
		defer c.Close(context.Background())
		var n int
		if err := c.QueryRow(context.Background(), `SELECT count(*) FROM koers.decisions WHERE id = ANY($1)`, ids).Scan(&n); err != nil {
			return err
		}
		if n < len(ids) {
			return fmt.Errorf("%d of %d acknowledged decisions in the read models", n, len(ids))
		}
		return nil
	})
	e.recovered(what, time.Since(t0))
}

// takeTargetDown closes the feed's webhook target for feedDown; the feed
// waits for it, and delivers everything once it is back.
func takeTargetDown(e *env, l *load, f form) {
	e.target.down()
	time.Sleep(f.feedDown)
	if err := e.target.up(); err != nil {
		e.t.Fatal(err)
	}
	back := time.Now()
	ids := l.ackedBefore(back)
	waitFor(e.t, 10*time.Minute, "the feed delivered what was decided while its target was down", func() error {
		n := 0
		for _, id := range ids {
			if !e.target.decisionDelivered(id) {
				n++
			}
		}
		if n > 0 {
			return fmt.Errorf("%d of %d decisions not yet delivered", n, len(ids))
		}
		return nil
	})
	e.recovered("feed target back → all delivered", time.Since(back))
}

// report logs the table of figures, and writes it to -figures.
func report(t *testing.T, formName string, f form) {
	table.mu.Lock()
	defer table.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "fault matrix, %s form, %s, load: %d clients, a decision each at most every %s\n\n", formName,
		time.Now().UTC().Format("2006-01-02 15:04 MST"), f.load.Clients, f.load.Interval)
	b.WriteString("| scenario | faults | sent | acknowledged (of which landed unanswered) | refused | retried (attempts) | given up | lost | duplicated | feed re-sent | recovery | took |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range table.rows {
		fmt.Fprintf(&b, "| %s | %s | %d | %d (%d) | %d | %d (%d) | %d | %d | %d | %d | %s | %s |\n", r.scenario, r.faults, r.sent, r.acked, r.landed, r.refused,
			r.retried, r.attempts, r.givenUp, r.lost, r.duplicated, r.feedAgain, summarize(r.recoveries), r.took.Round(time.Second))
	}
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Fprintf(&b, "\nload average at the end: %s\n", strings.Join(strings.Fields(string(load))[:3], " "))
	}
	t.Log("\n" + b.String())
	if *figures != "" {
		if err := os.WriteFile(*figures, []byte(b.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// summarize gives the recoveries of each kind: the one, or the median
// and the longest of several.
func summarize(rs []recovery) string {
	var kinds []string
	by := map[string][]time.Duration{}
	for _, r := range rs {
		if _, ok := by[r.what]; !ok {
			kinds = append(kinds, r.what)
		}
		by[r.what] = append(by[r.what], r.d)
	}
	var parts []string
	for _, k := range kinds {
		ds := by[k]
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		if len(ds) == 1 {
			parts = append(parts, fmt.Sprintf("%s: %s", k, round(ds[0])))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s: median %s, max %s (×%d)", k, round(ds[len(ds)/2]), round(ds[len(ds)-1]), len(ds)))
	}
	return strings.Join(parts, "; ")
}

func round(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

func durations(ds []time.Duration) string {
	var s []string
	for _, d := range ds {
		s = append(s, d.String())
	}
	return strings.Join(s, " and ")
}
