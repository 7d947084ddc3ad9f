package feed_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"koers/domain"
	"koers/eventstore"
	"koers/feed"
	"koers/internal/ledgertest"
	"koers/internal/pgtest"
	"koers/projections"
)

const replaySetup = `{"id":"setup","by":"p-root","authority":"root","reason":"start","effective":"2026-01-01","changes":[
 {"kind":"valuestream.define","id":"payments","name":"Payments"},
 {"kind":"team.form","id":"t-core","name":"Core","type":"stream-aligned"},
 {"kind":"person.join","id":"p-ada","name":"Ada","team":"t-core"},
 {"kind":"person.join","id":"p-bo","name":"Bo","team":"t-core"},
 {"kind":"product.launch","id":"pay-app","name":"Pay app","valuestream":"payments","owner":"p-ada"},
 {"kind":"budget.open","period":"2026","amount":"1000000.00","currency":"EUR"},
 {"kind":"funding.allocate","period":"2026","to":"valuestream:payments","amount":"400000.00"},
 {"kind":"board.form","id":"portfolio","name":"Portfolio board","members":["p-ada","p-bo"],"quorum":2},
 {"kind":"mandate.grant","id":"m-board","holder":"board:portfolio","kinds":["funding.*"],"scope":"*","limit":"300000.00"}]}`

// readModelCounts is what a projector has made of the log: the rows of
// every table a genuine event can reach.
func readModelCounts(tb testing.TB, dbURL string) string {
	tb.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close(ctx)
	var b strings.Builder
	for _, table := range []string{"decisions", "facts", "journal", "kpi_measurements", "proposals", "mandate_use"} {
		var n int
		if err := c.QueryRow(ctx, "SELECT count(*) FROM koers."+table).Scan(&n); err != nil {
			tb.Fatalf("count %s: %v", table, err)
		}
		fmt.Fprintf(&b, "%s=%d ", table, n)
	}
	return b.String()
}

func rejectedSeqs(tb testing.TB, dbURL string) map[uint64]string {
	tb.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, "SELECT seq, reason FROM koers.rejected_messages")
	if err != nil {
		tb.Fatal(err)
	}
	out := map[uint64]string{}
	for rows.Next() {
		var seq int64
		var reason string
		if err := rows.Scan(&seq, &reason); err != nil {
			tb.Fatal(err)
		}
		out[uint64(seq)] = reason
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// TestReplaysNeverCountAndNeverBlockWrites replays, verbatim, one event of
// every kind (the root mandate's genesis, a domain event, a decision
// record, a proposal event) by publishing its stored bytes again, as
// anyone with publish rights can: the projector records them as rejected
// and applies nothing, the feed delivers none of them, every aggregate
// they land on still loads and takes new decisions, and verify reports
// each one.
func TestReplaysNeverCountAndNeverBlockWrites(t *testing.T) {
	ctx := context.Background()
	l := ledgertest.New(t)
	l.Submit(t, strings.ReplaceAll(replaySetup, "\n", ""))
	prop := l.Submit(t, `{"id":"fund-app","by":"p-ada","authority":"m-board","reason":"fund the app","effective":"2026-02-01","changes":[
	 {"kind":"funding.shift","period":"2026","from":"valuestream:payments","to":"product:pay-app","amount":"250000.00"}]}`)
	if prop.State != "pending" {
		t.Fatalf("fund-app: state %q, want pending", prop.State)
	}

	// One genuine message of each kind, by its place in the log.
	var genesis, domainEvent, record, proposal domain.Recorded
	for _, r := range readAll(t, l.Store) {
		switch {
		case r.Sequence == 1:
			genesis = r
		case r.Meta.DecisionID == "setup" && r.Type == domain.EventDecisionRecorded:
			record = r
		case r.Meta.DecisionID == "setup" && r.Aggregate.Kind == domain.KindValueStream && domainEvent.Sequence == 0:
			domainEvent = r
		case r.Aggregate.Kind == domain.KindProposal && proposal.Sequence == 0:
			proposal = r
		}
	}
	if genesis.Aggregate.String() != "mandate:root" || domainEvent.Sequence == 0 || record.Sequence == 0 || proposal.Sequence == 0 {
		t.Fatalf("genesis %v, domain event %v, record %v, proposal %v", genesis.Aggregate, domainEvent.Sequence, record.Sequence, proposal.Sequence)
	}

	// Read models and a feed before the replays.
	dbURL := pgtest.Fresh(t)
	db, err := projections.Open(ctx, dbURL, projections.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	proj, err := projections.NewProjector(db, l.Store, projections.ProjectorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := proj.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	before := readModelCounts(t, dbURL)
	rc, url := webhook(t, nil)
	r := start(t, l, pgtest.Package(t), fastRetries(feed.Config{Name: uniqueName(t, "replay"), Target: url, Ledger: "KOERS"}))
	caughtUp(t, l, r)

	stream, err := l.JS.Stream(ctx, "KOERS")
	if err != nil {
		t.Fatal(err)
	}
	replayed := map[uint64]domain.Recorded{}
	for _, orig := range []domain.Recorded{genesis, domainEvent, record, proposal, domainEvent} { // the domain event twice
		m, err := stream.GetMsg(ctx, orig.Sequence)
		if err != nil {
			t.Fatal(err)
		}
		ack, err := l.JS.Publish(ctx, m.Subject, m.Data)
		if err != nil {
			t.Fatalf("replay %d: %v", orig.Sequence, err)
		}
		replayed[ack.Sequence] = orig
	}

	// The projector records every replay as rejected and applies none.
	if err := proj.CatchUp(ctx); err != nil {
		t.Fatalf("projector after the replays: %v", err)
	}
	if after := readModelCounts(t, dbURL); after != before {
		t.Fatalf("the replays reached the read models:\nbefore %s\nafter  %s", before, after)
	}
	rejected := rejectedSeqs(t, dbURL)
	for seq, orig := range replayed {
		if !strings.Contains(rejected[seq], "out of place") {
			t.Errorf("replay of %s (%d) at %d: rejected with %q, want out of place", orig.EventID, orig.Sequence, seq, rejected[seq])
		}
	}

	// Every aggregate still loads, with only its genuine events, at the
	// version of its subject's last message.
	for seq, orig := range replayed {
		h, err := l.Store.Load(ctx, orig.Aggregate)
		if err != nil {
			t.Fatalf("load %s after its replay: %v", orig.Aggregate, err)
		}
		for _, e := range h.Events {
			if e.Sequence == seq {
				t.Fatalf("load %s returned the replay at %d", orig.Aggregate, seq)
			}
		}
		if h.Version < seq {
			t.Fatalf("load %s: version %d, want at least the replay's %d", orig.Aggregate, h.Version, seq)
		}
	}

	// Writes go on: under the root mandate (its genesis replayed), on the
	// value stream (its event replayed) and on the proposal (its event
	// replayed), which the board's second member approves.
	l.Submit(t, `{"id":"after-root","by":"p-root","authority":"root","reason":"more","effective":"2026-03-01","changes":[
	 {"kind":"funding.allocate","period":"2026","to":"valuestream:payments","amount":"1000.00"}]}`)
	res, err := l.Handler.Act(ctx, domain.Action{Proposal: "fund-app", Kind: "approve", By: "p-bo"})
	if err != nil || res.State != "decided" {
		t.Fatalf("approve fund-app after the replays: %+v, %v", res, err)
	}
	l.Submit(t, `{"id":"after-record","by":"p-root","authority":"root","reason":"more","effective":"2026-03-01","changes":[
	 {"kind":"team.form","id":"t-new","name":"New","type":"platform"}]}`)

	if err := proj.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"after-root", "fund-app", "after-record"} {
		if _, err := db.Decision(ctx, id); err != nil {
			t.Errorf("decision %s after the replays: %v", id, err)
		}
	}

	// The feed delivers each genuine event once and no replay.
	caughtUp(t, l, r)
	r.stop()
	want := readAll(t, l.Store)
	got := rc.arrived(t)
	seen := map[string]int{}
	for _, a := range got {
		seen[a.id]++
	}
	for _, w := range want {
		if seen[w.EventID] != 1 {
			t.Errorf("event %s arrived %d times, want once", w.EventID, seen[w.EventID])
		}
	}
	if len(got) != len(want) {
		t.Errorf("the feed delivered %d messages for %d genuine events", len(got), len(want))
	}

	// Verify reports each replay, and nothing else.
	rep, err := l.Store.Verify(ctx, eventstore.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != len(replayed) {
		t.Fatalf("verify: %d problems, want %d (one per replay): %+v", len(rep.Problems), len(replayed), rep.Problems)
	}
	for _, p := range rep.Problems {
		orig, ok := replayed[p.Sequence]
		if !ok || !strings.Contains(p.What, "replay of event "+orig.EventID) {
			t.Errorf("verify problem %+v: want a replay of a known event", p)
		}
	}
}
