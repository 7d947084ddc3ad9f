package projections

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"

	"koers/consumer"
	"koers/domain"
	"koers/eventstore"
	"koers/internal/ledgertest"
	"koers/internal/pgtest"
	"koers/ledger"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var clock = ledgertest.Clock

type env struct {
	h  *ledger.Handler
	st *eventstore.Store
	nc *nats.Conn
}

// newLog starts a test ledger: an embedded NATS server with a fresh store,
// initialised with the root mandate held by p-root.
func newLog(t testing.TB) env {
	t.Helper()
	l := ledgertest.New(t)
	return env{h: l.Handler, st: l.Store, nc: l.Conn}
}

func (e env) submit(t testing.TB, decision string) {
	t.Helper()
	if _, err := e.h.Submit(context.Background(), []byte(decision)); err != nil {
		t.Fatalf("decision %s: %v", decision, err)
	}
}

var schemas atomic.Int64

// newDB opens the read models in a schema of their own in the package's
// test database.
func newDB(t testing.TB) *DB {
	t.Helper()
	schema := fmt.Sprintf("t%d_%d", os.Getpid(), schemas.Add(1))
	db, err := Open(context.Background(), pgtest.Package(t), Options{Schema: schema, ReportingSchema: schema + "_r"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

func newProjector(t testing.TB, db *DB, src Source, opts ProjectorOptions) *Projector {
	t.Helper()
	p, err := NewProjector(db, src, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func catchUp(t testing.TB, db *DB, src Source) {
	t.Helper()
	if err := newProjector(t, db, src, ProjectorOptions{}).CatchUp(context.Background()); err != nil {
		t.Fatalf("catch up: %v", err)
	}
}

// unitsOf returns the whole log of src as the consumer groups it, one unit
// per decision or rejected message, in stream order.
func unitsOf(t testing.TB, src Source) []consumer.Unit {
	t.Helper()
	var units []consumer.Unit
	c, err := consumer.New(src, consumer.Config{
		Checkpoint: func(context.Context) (uint64, error) {
			if len(units) == 0 {
				return 0, nil
			}
			return units[len(units)-1].Last(), nil
		},
		Handle: func(_ context.Context, b consumer.Batch) error {
			units = append(units, b.Units...)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	return units
}

func day(s string) time.Time {
	d, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return d
}

const bootstrap = `{"id":"bootstrap","by":"p-root","authority":"root","reason":"start","effective":"2026-01-01","changes":[
 {"kind":"valuestream.define","id":"payments","name":"Payments"},
 {"kind":"valuestream.define","id":"lending","name":"Lending"},
 {"kind":"team.form","id":"t-core","name":"Core","type":"stream-aligned"},
 {"kind":"team.form","id":"t-edge","name":"Edge","type":"platform"},
 {"kind":"person.join","id":"p-1","name":"Ada","team":"t-core"},
 {"kind":"product.launch","id":"pay-app","name":"Pay app","valuestream":"payments","owner":"p-1"},
 {"kind":"team.assign","team":"t-core","product":"pay-app"},
 {"kind":"budget.open","period":"2026","amount":"1000000.00","currency":"EUR"},
 {"kind":"funding.allocate","period":"2026","to":"valuestream:payments","amount":"250000.00"}]}`

// script is a small history: a bootstrap, hires, a move, a project, funding,
// KPIs and a mandate for p-1, each effective on its own date.
var script = []string{
	bootstrap,
	`{"id":"hire-bob","by":"p-root","authority":"root","reason":"hire","effective":"2026-02-01","changes":[
	 {"kind":"person.join","id":"p-2","name":"Bob","team":"t-edge"}]}`,
	`{"id":"move-ada","by":"p-root","authority":"root","reason":"help edge","effective":"2026-03-01","changes":[
	 {"kind":"person.move","person":"p-1","to":"t-edge"}]}`,
	`{"id":"grant-ada","by":"p-root","authority":"root","reason":"delegate","effective":"2026-03-01","changes":[
	 {"kind":"mandate.grant","id":"m-people","holder":"p-1","kinds":["person.*","kpi.*"],"scope":"*"}]}`,
	`{"id":"hire-cy","by":"p-1","authority":"m-people","reason":"hire","effective":"2026-03-15","changes":[
	 {"kind":"person.join","id":"p-3","name":"Cy","team":"t-core"}]}`,
	`{"id":"start-x","by":"p-root","authority":"root","reason":"explore","effective":"2026-04-01","changes":[
	 {"kind":"project.start","id":"proj-x","name":"X","valuestream":"lending"},
	 {"kind":"funding.shift","period":"2026","from":"valuestream:payments","to":"product:pay-app","amount":"100000.00"},
	 {"kind":"funding.allocate","period":"2026","to":"project:proj-x","amount":"50000.00"}]}`,
	`{"id":"kpis","by":"p-1","authority":"m-people","reason":"measure","effective":"2026-04-02","changes":[
	 {"kind":"kpi.define","product":"pay-app","kpi":"conversion","unit":"%","target":"5"},
	 {"kind":"kpi.record","product":"pay-app","kpi":"conversion","value":"3.2"}]}`,
}

func (e env) play(t testing.TB, decisions ...string) {
	t.Helper()
	for _, d := range decisions {
		e.submit(t, d)
	}
}

func names(ps []Person) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.ID)
	}
	return strings.Join(s, ",")
}

func TestProjectorBuildsTheOrganisationAsOfAnyValidTime(t *testing.T) {
	e := newLog(t)
	e.play(t, script...)
	db := newDB(t)
	catchUp(t, db, e.st)
	ctx := context.Background()

	now, err := db.Organisation(ctx, At{}, Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(now.ValueStreams) != 2 || now.ValueStreams[1].ID != "payments" || len(now.ValueStreams[1].Products) != 1 {
		t.Fatalf("value streams now: %+v", now.ValueStreams)
	}
	app := now.ValueStreams[1].Products[0]
	if app.ID != "pay-app" || app.Owner != "p-1" || len(app.Teams) != 1 || app.Teams[0].ID != "t-core" || names(app.Teams[0].Members) != "p-3" {
		t.Fatalf("pay-app now: %+v", app)
	}
	if len(app.KPIs) != 1 || app.KPIs[0] != (KPIDefinition{KPI: "conversion", Unit: "%", Target: "5", Direction: "higher", Category: "value"}) {
		t.Fatalf("pay-app KPIs: %+v", app.KPIs)
	}
	if names(now.Unassigned) != "p-1,p-2" {
		t.Fatalf("unassigned now: %s, want p-1,p-2 (t-edge serves no product)", names(now.Unassigned))
	}
	if len(now.Projects) != 1 || now.Projects[0] != (Project{ID: "proj-x", Name: "X", ValueStream: "lending", Status: "active"}) {
		t.Fatalf("projects now: %+v", now.Projects)
	}

	feb, err := db.Organisation(ctx, At{AsOf: day("2026-02-15")}, Page{})
	if err != nil {
		t.Fatal(err)
	}
	core := feb.ValueStreams[1].Products[0].Teams[0]
	if names(core.Members) != "p-1" || names(feb.Unassigned) != "p-2" || len(feb.Projects) != 0 {
		t.Fatalf("as of 2026-02-15: core %+v, unassigned %s, projects %+v", core, names(feb.Unassigned), feb.Projects)
	}
	dec, err := db.Organisation(ctx, At{AsOf: day("2025-12-31")}, Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(dec.ValueStreams) != 0 || len(dec.Teams) != 0 {
		t.Fatalf("as of 2025-12-31, before the bootstrap: %+v", dec)
	}

	bal, err := balances(db.Balances(ctx, "2026", At{}, Page{}))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"budget:2026": "-1000000.00", "pool": "700000.00", "valuestream:payments": "150000.00",
		"product:pay-app": "100000.00", "project:proj-x": "50000.00"}
	var sum domain.Amount
	for _, b := range bal {
		if want[b.Account] != b.Amount() {
			t.Errorf("balance %s: %s, want %s", b.Account, b.Amount(), want[b.Account])
		}
		sum += b.Minor
	}
	if len(bal) != len(want) || sum != 0 {
		t.Fatalf("balances %+v sum to %d, want the %d accounts to sum to 0", bal, sum, len(want))
	}
	mar, err := balances(db.Balances(ctx, "2026", At{AsOf: day("2026-03-31")}, Page{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(mar) != 3 {
		t.Fatalf("balances as of 2026-03-31: %+v, want budget, pool and payments only", mar)
	}
	lines, err := journal(db.Journal(ctx, "2026", "valuestream:payments", At{}, Page{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 || lines[0].Minor != 25000000 || lines[1].Minor != -10000000 || lines[1].Decision != "start-x" {
		t.Fatalf("journal of payments: %+v", lines)
	}
	if lines[0].Counter != "pool" || lines[0].Balance != 25000000 || lines[1].Balance != 15000000 || lines[1].Counter != "product:pay-app" {
		t.Fatalf("journal of payments: counter-accounts %q, %q and running balances %d, %d; want pool, product:pay-app, 250000.00 and 150000.00",
			lines[0].Counter, lines[1].Counter, lines[0].Balance, lines[1].Balance)
	}
	ms, err := measurements(db.Measurements(ctx, "pay-app", At{}, Page{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].Value != "3.2" || ms[0].KPI != "conversion" {
		t.Fatalf("measurements: %+v", ms)
	}
}

// dump renders every read-model table, to compare two projections.
func dump(t testing.TB, db *DB) string {
	t.Helper()
	var b strings.Builder
	err := db.withConn(context.Background(), func(c *pgx.Conn) error {
		for _, table := range []string{"decisions", "facts", "journal", "kpi_measurements", "rejected_messages"} {
			var s string
			if err := c.QueryRow(context.Background(), `SELECT coalesce(string_agg(to_jsonb(t)::text, E'\n' ORDER BY to_jsonb(t)::text), '') FROM `+table+` t`).Scan(&s); err != nil {
				return err
			}
			fmt.Fprintf(&b, "%s:\n%s\n", table, s)
		}
		var cp int64
		if err := c.QueryRow(context.Background(), `SELECT seq FROM checkpoint`).Scan(&cp); err != nil {
			return err
		}
		fmt.Fprintf(&b, "checkpoint %d\n", cp)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestRestartsAnywhereApplyEveryEventExactlyOnce(t *testing.T) {
	e := newLog(t)
	e.play(t, script...)
	// A forged message in the middle of the stream.
	if err := e.nc.Publish("koers.person.p-forged", []byte(`{"v":1,"type":"person.joined"}`)); err != nil {
		t.Fatal(err)
	}
	e.nc.Flush()
	e.play(t, `{"id":"late","by":"p-root","authority":"root","reason":"r","effective":"2026-05-01","changes":[
	 {"kind":"team.assign","team":"t-edge","product":"pay-app"}]}`)
	ctx := context.Background()
	last, err := e.st.LastSequence(ctx)
	if err != nil {
		t.Fatal(err)
	}

	whole := newDB(t)
	catchUp(t, whole, e.st)
	want := dump(t, whole)
	if !strings.Contains(want, "p-forged") || !strings.Contains(want, fmt.Sprintf("checkpoint %d", last)) {
		t.Fatalf("uninterrupted run lacks the rejected message or the checkpoint %d:\n%s", last, want)
	}

	// Cancel the projector at its first commit each time, with batches of
	// two events: the cancel lands while the next batch is read or applied.
	cut := newDB(t)
	restarts := 0
	for ; restarts < 100; restarts++ {
		cp, err := cut.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if cp == last {
			break
		}
		runCtx, cancel := context.WithCancel(ctx)
		p := newProjector(t, cut, e.st, ProjectorOptions{BatchEvents: 2, OnCommit: func(uint64) { cancel() }})
		if err := p.Run(runCtx); err != nil {
			t.Fatalf("run %d: %v", restarts, err)
		}
		cancel()
	}
	if restarts < 3 {
		t.Fatalf("only %d restarts: the test did not interrupt the projector", restarts)
	}
	if got := dump(t, cut); got != want {
		t.Fatalf("after %d restarts the read models differ from one run:\n%s\nwant:\n%s", restarts, got, want)
	}

	// Applying batches again changes nothing.
	ident, err := IdentityOf(ctx, e.st)
	if err != nil || ident.IsZero() || ident.Stream != "KOERS" {
		t.Fatalf("identity of the ledger: %+v, %v", ident, err)
	}
	units := unitsOf(t, e.st)
	if _, err := cut.apply(ctx, units[:3], ident, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := cut.apply(ctx, units, ident, nil); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, cut); got != want {
		t.Fatalf("re-applying batches changed the read models:\n%s\nwant:\n%s", got, want)
	}
	fresh := newDB(t)
	if _, err := fresh.apply(ctx, units[:4], ident, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.apply(ctx, units[2:], ident, nil); err != nil {
		t.Fatalf("overlapping batch: %v", err)
	}
	if got := dump(t, fresh); got != want {
		t.Fatalf("overlapping batches differ from one run:\n%s\nwant:\n%s", got, want)
	}

	// A batch cut short inside its transaction leaves no trace.
	half := newDB(t)
	if _, err := half.apply(ctx, units[:2], ident, nil); err != nil {
		t.Fatal(err)
	}
	before := dump(t, half)
	cancelled, cancel := context.WithCancel(ctx)
	mid := 0
	var applyErr error
	err = half.withTx(ctx, func(tx pgx.Tx) error {
		// Apply part of the next units in a transaction, then abandon it.
		w := newWriter(ctx, tx, false, false)
		for _, u := range units[2:5] {
			if err := applyUnit(w, u, nil, nil); err != nil {
				return err
			}
			mid++
		}
		if err := w.flush(); err != nil {
			return err
		}
		cancel()
		_, applyErr = tx.Exec(cancelled, `UPDATE checkpoint SET seq = seq + 1`)
		return applyErr
	})
	if err == nil || mid != 3 || !errors.Is(applyErr, context.Canceled) {
		t.Fatalf("cancelled transaction: %v after %d units (%v)", err, mid, applyErr)
	}
	if got := dump(t, half); got != before {
		t.Fatalf("a cancelled batch left rows behind:\n%s\nwant:\n%s", got, before)
	}
	if err := newProjector(t, half, e.st, ProjectorOptions{}).CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, half); got != want {
		t.Fatalf("after a cancelled batch and a restart:\n%s\nwant:\n%s", got, want)
	}
}

func TestKnownAtShowsTheBeliefBeforeABackdatedDecisionAndARetraction(t *testing.T) {
	e := newLog(t)
	e.play(t, bootstrap,
		`{"id":"move-ada","by":"p-root","authority":"root","reason":"help edge","effective":"2026-03-01","changes":[
		 {"kind":"person.move","person":"p-1","to":"t-edge"}]}`,
		`{"id":"move-app","by":"p-root","authority":"root","reason":"belongs to lending since February","effective":"2026-02-01","changes":[
		 {"kind":"product.move","product":"pay-app","valuestream":"lending"}]}`,
		`{"id":"undo-move-ada","by":"p-root","authority":"root","reason":"mistake","effective":"2026-04-01","changes":[
		 {"kind":"decision.retract","decision":"move-ada"}]}`)
	db := newDB(t)
	catchUp(t, db, e.st)
	ctx := context.Background()
	recordedAt := func(id string) time.Time {
		d, err := db.Decision(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return d.RecordedAt
	}
	stream := func(at At) string {
		org, err := db.Organisation(ctx, at, Page{})
		if err != nil {
			t.Fatal(err)
		}
		for _, vs := range org.ValueStreams {
			for _, p := range vs.Products {
				if p.ID == "pay-app" {
					return vs.ID
				}
			}
		}
		return ""
	}
	teamOf := func(at At) string {
		org, err := db.Organisation(ctx, at, Page{})
		if err != nil {
			t.Fatal(err)
		}
		for _, tm := range org.Teams {
			for _, m := range tm.Members {
				if m.ID == "p-1" {
					return tm.ID
				}
			}
		}
		return ""
	}
	beforeBackdated, beforeRetraction := recordedAt("move-ada"), recordedAt("move-app")
	cases := []struct {
		name string
		got  func(At) string
		at   At
		want string
	}{
		{"product known before the backdated move", stream, At{AsOf: day("2026-02-15"), KnownAt: beforeBackdated}, "payments"},
		{"product known after the backdated move", stream, At{AsOf: day("2026-02-15")}, "lending"},
		{"product before the backdated move's effective time", stream, At{AsOf: day("2026-01-15")}, "payments"},
		{"person known before the retraction", teamOf, At{AsOf: day("2026-03-15"), KnownAt: beforeRetraction}, "t-edge"},
		{"person known before the retraction, now", teamOf, At{KnownAt: beforeRetraction}, "t-edge"},
		{"person known after the retraction", teamOf, At{AsOf: day("2026-03-15")}, "t-core"},
		{"person now", teamOf, At{}, "t-core"},
		{"person before the move", teamOf, At{AsOf: day("2026-02-15"), KnownAt: beforeRetraction}, "t-core"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.got(c.at); got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}

	d, err := db.Decision(ctx, "move-ada")
	if err != nil {
		t.Fatal(err)
	}
	if d.RetractedBy != "undo-move-ada" || d.RetractedSequence == 0 {
		t.Fatalf("move-ada in the log: %+v, want retracted by undo-move-ada", d)
	}
	if u, _ := db.Decision(ctx, "undo-move-ada"); u.Retracts != "move-ada" {
		t.Fatalf("undo-move-ada in the log: %+v", u)
	}

	all, err := history(db.History(ctx, domain.Ref{Kind: domain.KindPerson, ID: "p-1"}, HistoryOptions{All: true}, Page{}))
	if err != nil {
		t.Fatal(err)
	}
	current, err := history(db.History(ctx, domain.Ref{Kind: domain.KindPerson, ID: "p-1"}, HistoryOptions{}, Page{}))
	if err != nil {
		t.Fatal(err)
	}
	superseded := 0
	for _, f := range all {
		if f.SupersededSeq != 0 {
			superseded++
		}
	}
	if superseded == 0 || len(current) >= len(all) {
		t.Fatalf("history of p-1: %d beliefs, %d superseded, %d current; want the retracted move kept as superseded", len(all), superseded, len(current))
	}
	for _, f := range current {
		if f.Attribute == "team" && f.Value != "t-core" {
			t.Fatalf("current history of p-1 still shows team %s: %+v", f.Value, current)
		}
	}
	if _, err := history(db.History(ctx, domain.Ref{Kind: domain.KindPerson, ID: "p-nobody"}, HistoryOptions{}, Page{})); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("history of an unknown person: %v, want domain.ErrNotFound", err)
	}
}

func ids(ds []Decision) string {
	var s []string
	for _, d := range ds {
		s = append(s, d.ID)
	}
	return strings.Join(s, ",")
}

func TestAuditFiltersAndPages(t *testing.T) {
	e := newLog(t)
	e.play(t, script...)
	db := newDB(t)
	catchUp(t, db, e.st)
	ctx := context.Background()
	cases := []struct {
		name   string
		filter AuditFilter
		want   string
	}{
		{"all, newest first", AuditFilter{}, "kpis,start-x,hire-cy,grant-ada,move-ada,hire-bob,bootstrap,genesis"},
		{"by actor", AuditFilter{Actor: "p-1"}, "kpis,hire-cy"},
		{"by mandate", AuditFilter{Mandate: "m-people"}, "kpis,hire-cy"},
		{"by change kind", AuditFilter{ChangeKind: "person.join"}, "hire-cy,hire-bob,bootstrap"},
		{"by aggregate", AuditFilter{Aggregate: "person:p-1"}, "move-ada,bootstrap"},
		{"by effective range", AuditFilter{Axis: Effective, From: day("2026-03-01"), To: day("2026-04-01")}, "hire-cy,grant-ada,move-ada"},
		{"by recorded range", AuditFilter{From: time.Now().Add(time.Hour)}, ""},
		{"combined", AuditFilter{ChangeKind: "person.join", Axis: Effective, From: day("2026-02-01")}, "hire-cy,hire-bob"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			page, err := db.Audit(ctx, c.filter)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(page.Decisions); got != c.want || page.Next != 0 {
				t.Fatalf("got %s (next %d), want %s", got, page.Next, c.want)
			}
		})
	}

	var got []string
	f := AuditFilter{Limit: 3}
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		page, err := db.Audit(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Decisions) > 3 {
			t.Fatalf("page of %d, limit 3", len(page.Decisions))
		}
		got = append(got, ids(page.Decisions))
		if page.Next == 0 {
			break
		}
		f.Before = page.Next
	}
	if strings.Join(got, "|") != "kpis,start-x,hire-cy|grant-ada,move-ada,hire-bob|bootstrap,genesis" {
		t.Fatalf("pages: %v", got)
	}

	d, err := db.Decision(ctx, "start-x")
	if err != nil {
		t.Fatal(err)
	}
	if d.Actor != "p-root" || d.Mandate != "root" || d.Reason != "explore" || !d.Effective.Equal(day("2026-04-01")) ||
		len(d.Effects) < 3 || d.FirstSequence+uint64(len(d.Effects)) != d.Sequence || !strings.Contains(string(d.Changes), "funding.shift") {
		t.Fatalf("start-x: %+v", d)
	}
	if _, err := db.Audit(ctx, AuditFilter{Limit: MaxAuditLimit + 1}); !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("limit above the maximum: %v", err)
	}
}

func TestLagAndFollowingTheLiveStream(t *testing.T) {
	e := newLog(t)
	e.play(t, bootstrap)
	db := newDB(t)
	ctx := context.Background()
	commits := make(chan uint64, 100)
	p := newProjector(t, db, e.st, ProjectorOptions{FlushInterval: 5 * time.Millisecond, OnCommit: func(cp uint64) {
		select {
		case commits <- cp:
		default:
		}
	}})
	lag, err := p.Lag(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if lag.Checkpoint != 0 || lag.Events() != lag.Last || lag.Last == 0 {
		t.Fatalf("lag before projecting: %+v", lag)
	}

	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	waitFor := func(seq uint64) {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case cp := <-commits:
				if cp >= seq {
					return
				}
			case <-timeout:
				t.Fatalf("projector did not reach %d", seq)
			}
		}
	}
	waitFor(lag.Last)
	if lag, err := p.Lag(ctx); err != nil || lag.Events() != 0 {
		t.Fatalf("lag after catching up: %+v, %v", lag, err)
	}
	e.submit(t, `{"id":"hire-bob","by":"p-root","authority":"root","reason":"hire","changes":[{"kind":"person.join","id":"p-2","name":"Bob","team":"t-edge"}]}`)
	last, err := e.st.LastSequence(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(last)
	if _, err := db.Decision(ctx, "hire-bob"); err != nil {
		t.Fatalf("live decision not projected: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run ended with %v", err)
	}
	if lag, err := p.Lag(ctx); err != nil || lag.Events() != 0 || lag.Checkpoint != last {
		t.Fatalf("lag at the end: %+v, %v", lag, err)
	}
}

func TestTransitionMetricsPerQuarter(t *testing.T) {
	e := newLog(t)
	e.play(t, script...)
	e.play(t,
		`{"id":"convert-x","by":"p-root","authority":"root","reason":"it works","effective":"2026-05-01","changes":[
		 {"kind":"project.convert","project":"proj-x","product":"x-app","name":"X app","valuestream":"lending","owner":"p-2"}]}`,
		`{"id":"new-owner","by":"p-root","authority":"root","reason":"rotation","effective":"2026-05-15","changes":[
		 {"kind":"product.assign-owner","product":"pay-app","owner":"p-3"}]}`)
	db := newDB(t)
	catchUp(t, db, e.st)
	ctx := context.Background()
	kpis, err := db.Decision(ctx, "kpis")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		quarter string
		knownAt time.Time
		check   func(Transition) bool
	}{
		{"Q1: Ada moved, money on a value stream", "2026-Q1", time.Time{}, func(r Transition) bool {
			return r.PeopleAtStart == 1 && r.StayedInTeam == 0 && r.TeamStability == 0 && r.ActiveProducts == 1 &&
				r.OwnershipCoverage == 1 && r.OwnerChanges == 0 && r.ProjectsConverted == 0 &&
				len(r.Funding) == 1 && r.Funding[0].ValueStreams == 25000000 && r.Funding[0].ProductShare == 1
		}},
		{"Q2: a conversion and an owner change", "2026-Q2", time.Time{}, func(r Transition) bool {
			return r.PeopleAtStart == 3 && r.TeamStability == 1 && r.ActiveProducts == 2 && r.OwnedProducts == 2 &&
				r.OwnerChanges == 1 && r.OwnershipChurn == 0.5 && r.ProjectsConverted == 1 &&
				len(r.Funding) == 1 && r.Funding[0].Products == 15000000 && r.Funding[0].Projects == 0 && r.Funding[0].ProductShare == 1
		}},
		{"Q2 known before the conversion", "2026-Q2", kpis.RecordedAt, func(r Transition) bool {
			return r.ActiveProducts == 1 && r.OwnerChanges == 0 && r.ProjectsConverted == 0 &&
				len(r.Funding) == 1 && r.Funding[0].Projects == 5000000 && r.Funding[0].ProductShare == 250000.0/300000.0
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := db.Transition(ctx, c.quarter, c.knownAt)
			if err != nil {
				t.Fatal(err)
			}
			if !c.check(r) {
				t.Fatalf("%+v", r)
			}
		})
	}
	// Team tenure at the end of the quarter: Ada in t-edge since 1 March,
	// Bob since 1 February, Cy in t-core since 15 March.
	for q, want := range map[string]float64{"2026-Q1": 31, "2026-Q2": 122} {
		r, err := db.Transition(ctx, q, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if r.PeopleInTeams != 3 || r.MedianTenureDays != want {
			t.Errorf("%s: %d people in teams, median tenure %v days; want 3 and %v", q, r.PeopleInTeams, r.MedianTenureDays, want)
		}
	}
	if _, err := db.Transition(ctx, "2026-Q5", time.Time{}); !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("quarter 2026-Q5: %v", err)
	}
}

func TestRebuildSwitchesWhileTheLiveProjectorRuns(t *testing.T) {
	e := newLog(t)
	e.play(t, script...)
	db := newDB(t)
	ctx := context.Background()
	commits := make(chan uint64, 1000)
	live := newProjector(t, db, e.st, ProjectorOptions{FlushInterval: 5 * time.Millisecond, OnCommit: func(cp uint64) {
		select {
		case commits <- cp:
		default:
		}
	}})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- live.Run(runCtx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("live projector: %v", err)
		}
	}()
	waitFor := func(seq uint64) {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			if cp, err := db.Checkpoint(ctx); err == nil && cp >= seq {
				return
			}
			select {
			case <-commits:
			case <-time.After(20 * time.Millisecond):
			case <-timeout:
				t.Fatalf("live projector did not reach %d", seq)
			}
		}
	}
	last, _ := e.st.LastSequence(ctx)
	waitFor(last)

	var calls []Progress
	answered := 0
	err := db.Rebuild(ctx, e.st, ProjectorOptions{BatchEvents: 5}, func(p Progress) {
		calls = append(calls, p)
		// The current read models keep answering meanwhile.
		if org, err := db.Organisation(ctx, At{}, Page{}); err == nil && len(org.ValueStreams) == 2 {
			answered++
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) < 2 || calls[len(calls)-1].Done != last || calls[0].Total != last || calls[0].Rate <= 0 || answered != len(calls) {
		t.Fatalf("progress %+v, answered %d times; want several reports ending at %d, each while the old read models answered", calls, answered, last)
	}

	// The live projector goes on in the new schema.
	e.submit(t, `{"id":"after","by":"p-root","authority":"root","reason":"r","changes":[{"kind":"team.form","id":"t-new","name":"New","type":"enabling"}]}`)
	last, _ = e.st.LastSequence(ctx)
	waitFor(last)
	whole := newDB(t)
	catchUp(t, whole, e.st)
	if got, want := dump(t, db), dump(t, whole); got != want {
		t.Fatalf("after a rebuild and more live events the read models differ from one run:\n%s\nwant:\n%s", got, want)
	}
}

func TestCallsAfterCloseFailWithErrClosed(t *testing.T) {
	db := newDB(t)
	db.Close()
	if _, err := db.Checkpoint(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("checkpoint after close: %v, want ErrClosed", err)
	}
	if _, err := db.Checkpoint(context.Background()); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("checkpoint after close: %v, want domain.ErrUnavailable", err)
	}
}

// A server that cannot be reached is a *DatabaseError wrapping
// domain.ErrUnavailable, not the driver's error.
func TestAnUnreachableServerIsUnavailable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Port 1 on loopback: nothing listens, the connection is refused at once.
	_, err := Open(ctx, "postgres://koers@127.0.0.1:1/koers?connect_timeout=2", Options{})
	var dbErr *DatabaseError
	if !errors.As(err, &dbErr) || !errors.Is(err, domain.ErrUnavailable) || !errors.Is(err, ErrDatabase) {
		t.Fatalf("open on a closed port: %v (%T), want a *DatabaseError wrapping domain.ErrUnavailable", err, err)
	}
	var conn *pgconn.ConnectError
	if errors.As(err, &conn) {
		t.Fatalf("open on a closed port: %v carries the driver's *pgconn.ConnectError", err)
	}
}
