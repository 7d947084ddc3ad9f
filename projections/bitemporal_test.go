package projections

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"koers/domain"
)

// TestBitemporalBackdatedMoveRetractionAndCorrectedDate records a team
// move, a backdated move of someone else, the retraction of the first move
// and its correction to another effective date, and asks who was in which
// team at several (as of, known at) pairs.
func TestBitemporalBackdatedMoveRetractionAndCorrectedDate(t *testing.T) {
	e := newLog(t)
	e.play(t, bootstrap,
		`{"id":"hire-bob","by":"p-root","authority":"root","reason":"hire","effective":"2026-02-01","changes":[
		 {"kind":"person.join","id":"p-2","name":"Bob","team":"t-edge"}]}`,
		`{"id":"move-ada","by":"p-root","authority":"root","reason":"help edge","effective":"2026-03-01","changes":[
		 {"kind":"person.move","person":"p-1","to":"t-edge"}]}`,
		`{"id":"move-bob","by":"p-root","authority":"root","reason":"was agreed in February","effective":"2026-02-10","changes":[
		 {"kind":"person.move","person":"p-2","to":"t-core"}]}`,
		`{"id":"undo-move-ada","by":"p-root","authority":"root","reason":"wrong date","effective":"2026-04-01","changes":[
		 {"kind":"decision.retract","decision":"move-ada"}]}`,
		`{"id":"move-ada-corrected","by":"p-root","authority":"root","reason":"help edge, from mid April","effective":"2026-04-15","changes":[
		 {"kind":"person.move","person":"p-1","to":"t-edge"}]}`)
	db := newDB(t)
	catchUp(t, db, e.st)
	ctx := context.Background()
	known := map[string]time.Time{}
	for _, id := range []string{"bootstrap", "hire-bob", "move-ada", "move-bob", "undo-move-ada", "move-ada-corrected"} {
		d, err := db.Decision(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		known[id] = d.RecordedAt
	}
	// teams answers "p-1 p-2": the team of each, "-" when not in one.
	teams := func(at At) string {
		org, err := db.Organisation(ctx, at, Page{})
		if err != nil {
			t.Fatal(err)
		}
		of := map[string]string{"p-1": "-", "p-2": "-"}
		for _, tm := range org.Teams {
			for _, m := range tm.Members {
				of[m.ID] = tm.ID
			}
		}
		return of["p-1"] + " " + of["p-2"]
	}
	cases := []struct {
		asOf, knownAt string // knownAt: the decision recorded last at that time; "" now
		want          string
	}{
		{"2026-03-15", "hire-bob", "t-core t-edge"},
		{"2026-03-15", "move-ada", "t-edge t-edge"},
		{"2026-02-15", "move-ada", "t-core t-edge"},
		// The backdated move of Bob, known from its recording on.
		{"2026-02-15", "move-bob", "t-core t-core"},
		{"2026-02-05", "move-bob", "t-core t-edge"},
		{"2026-03-15", "move-bob", "t-edge t-core"},
		// Retracted: Ada never moved on 1 March.
		{"2026-03-15", "undo-move-ada", "t-core t-core"},
		{"2026-05-01", "undo-move-ada", "t-core t-core"},
		// Corrected: she moved on 15 April instead.
		{"2026-03-15", "move-ada-corrected", "t-core t-core"},
		{"2026-04-14", "move-ada-corrected", "t-core t-core"},
		{"2026-04-15", "move-ada-corrected", "t-edge t-core"},
		{"2026-05-01", "", "t-edge t-core"},
		{"2026-01-15", "", "t-core -"},
		{"2025-12-31", "", "- -"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("as of %s known at %s", c.asOf, c.knownAt), func(t *testing.T) {
			at := At{AsOf: day(c.asOf)}
			if c.knownAt != "" {
				at.KnownAt = known[c.knownAt]
			}
			if got := teams(at); got != c.want {
				t.Fatalf("teams of p-1 and p-2: %s, want %s", got, c.want)
			}
		})
	}

	// Tenure at the end of Q1, known now: Ada's stint in t-core runs
	// unbroken from 1 January (her move was retracted), Bob's from 10
	// February; known before the retraction, Ada had moved on 1 March.
	for _, c := range []struct {
		knownAt string
		want    float64
	}{{"", (90 + 50) / 2.0}, {"move-bob", (31 + 50) / 2.0}} {
		var at time.Time
		if c.knownAt != "" {
			at = known[c.knownAt]
		}
		r, err := db.Transition(ctx, "2026-Q1", at)
		if err != nil {
			t.Fatal(err)
		}
		if r.PeopleInTeams != 2 || r.MedianTenureDays != c.want {
			t.Errorf("Q1 known at %q: %d people in teams, median tenure %v days; want 2 and %v", c.knownAt, r.PeopleInTeams, r.MedianTenureDays, c.want)
		}
	}

	var viewDays float64
	if err := db.withConn(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT median_tenure_days FROM `+db.reporting+`.transition_metrics WHERE quarter = '2026-Q1'`).Scan(&viewDays)
	}); err != nil || viewDays != 70 {
		t.Errorf("median tenure of 2026-Q1 in the reporting view: %v (%v), want 70", viewDays, err)
	}

	// The history of Ada's team as known now: t-core until 15 April (the
	// retraction's compensation takes over on 1 March, when the retracted
	// move took effect), then t-edge; all beliefs ever held keep the
	// retracted move.
	hist, err := history(db.History(ctx, domain.Ref{Kind: domain.KindPerson, ID: "p-1"}, HistoryOptions{}, Page{}))
	if err != nil {
		t.Fatal(err)
	}
	var got string
	for _, f := range hist {
		if f.Attribute == "team" {
			to := "open"
			if f.ValidTo != nil {
				to = f.ValidTo.Format("2006-01-02")
			}
			got += fmt.Sprintf("%s[%s,%s) ", f.Value, f.ValidFrom.Format("2006-01-02"), to)
		}
	}
	if want := "t-core[2026-01-01,2026-03-01) t-core[2026-03-01,2026-04-15) t-edge[2026-04-15,open) "; got != want {
		t.Fatalf("team history of p-1 now: %s, want %s", got, want)
	}
	all, err := history(db.History(ctx, domain.Ref{Kind: domain.KindPerson, ID: "p-1"}, HistoryOptions{All: true}, Page{}))
	if err != nil {
		t.Fatal(err)
	}
	retracted := false
	for _, f := range all {
		if f.Attribute == "team" && f.Decision == "move-ada" && f.SupersededSeq != 0 {
			retracted = true
		}
	}
	if !retracted {
		t.Fatalf("every belief of p-1: %+v, want the retracted move kept as superseded", all)
	}
}
