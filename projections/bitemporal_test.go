package projections

import (
	"context"
	"fmt"
	"testing"
	"time"

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
		org, err := db.Organisation(ctx, at)
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

	// The history of Ada's team as known now: t-core until 15 April (the
	// retraction's compensation takes over on 1 March, when the retracted
	// move took effect), then t-edge; all beliefs ever held keep the
	// retracted move.
	hist, err := db.History(ctx, domain.Ref{Kind: domain.KindPerson, ID: "p-1"}, HistoryOptions{})
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
	all, err := db.History(ctx, domain.Ref{Kind: domain.KindPerson, ID: "p-1"}, HistoryOptions{All: true})
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
