package projections

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"koers/domain"
	"koers/internal/valuetest"
)

// valueScenario records the fixed scenario of internal/valuetest and
// brings fresh read models up to date with it.
func valueScenario(t *testing.T) (env, *DB) {
	t.Helper()
	e := newLog(t)
	for _, d := range valuetest.Decisions {
		e.submit(t, d)
	}
	db := newDB(t)
	catchUp(t, db, e.st)
	return e, db
}

func renderKPIValues(vs []KPIValue) string {
	var b strings.Builder
	for _, v := range vs {
		on := "-"
		if v.OnTarget != nil {
			on = fmt.Sprint(*v.OnTarget)
		}
		fmt.Fprintf(&b, "%s:%s %s %s %s %s %s %s target=%s on=%s note=%q %s\n", v.Kind, v.ID, v.KPI, v.Category, v.Unit, v.Direction,
			v.Effective.Format("2006-01-02"), v.Value, orNone(v.Target), on, v.Note, v.Decision)
	}
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func TestKPIValuesOfTheScenario(t *testing.T) {
	_, db := valueScenario(t)
	ctx := context.Background()
	page, err := db.KPIValues(ctx, KPIFilter{}, At{}, Page{})
	if err != nil {
		t.Fatal(err)
	}
	want := `product:pay-app conversion customer % higher 2026-03-20 3.2 target=5 on=false note="web analytics" m-conv-q1
product:pay-app conversion customer % higher 2026-04-20 3.9 target=4 on=false note="" m-conv-apr
product:pay-app conversion customer % higher 2026-05-15 4.5 target=4 on=true note="" m-conv-may
valuestream:payments lead-time flow days lower 2026-03-31 14 target=10 on=false note="" m-lead-q1
valuestream:payments lead-time flow days lower 2026-06-30 12 target=10 on=false note="" m-lead-q2
`
	if got := renderKPIValues(page.Values); got != want || page.Next != "" {
		t.Fatalf("kpi values:\n%s\nwant\n%s(next %q)", got, want, page.Next)
	}

	t.Run("filtered by subject, KPI and dates", func(t *testing.T) {
		p, err := db.KPIValues(ctx, KPIFilter{Subject: domain.Ref{Kind: domain.KindProduct, ID: "pay-app"}, KPI: "conversion",
			From: day("2026-04-01"), To: day("2026-07-01")}, At{}, Page{})
		if err != nil {
			t.Fatal(err)
		}
		if got := renderKPIValues(p.Values); got != strings.Join(strings.Split(want, "\n")[1:3], "\n")+"\n" {
			t.Fatalf("filtered:\n%s", got)
		}
	})
	t.Run("as of a date", func(t *testing.T) {
		p, err := db.KPIValues(ctx, KPIFilter{Subject: domain.Ref{Kind: domain.KindValueStream, ID: "payments"}}, At{AsOf: day("2026-04-01")}, Page{})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Values) != 1 || p.Values[0].Value != "14" {
			t.Fatalf("as of 2026-04-01: %s", renderKPIValues(p.Values))
		}
	})
	t.Run("pages add up", func(t *testing.T) {
		var all []KPIValue
		cursor := ""
		for i := 0; i < 10; i++ {
			p, err := db.KPIValues(ctx, KPIFilter{}, At{}, Page{Limit: 2, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, p.Values...)
			if cursor = p.Next; cursor == "" {
				break
			}
		}
		if got := renderKPIValues(all); got != want {
			t.Fatalf("pages:\n%s", got)
		}
		if _, err := db.KPIValues(ctx, KPIFilter{KPI: "other"}, At{}, Page{Limit: 2, Cursor: "x"}); err == nil {
			t.Fatal("a bad cursor was accepted")
		}
	})
	t.Run("the reporting view says the same", func(t *testing.T) {
		var n int
		var onTarget int
		if err := db.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE on_target) FROM `+db.reporting+`.kpi_values`).Scan(&n, &onTarget); err != nil {
			t.Fatal(err)
		}
		if n != 5 || onTarget != 1 {
			t.Fatalf("reporting.kpi_values: %d rows, %d on target; want 5, 1", n, onTarget)
		}
	})
}

// renderReview writes a review as lines, one per subject, so that a
// test compares all of it at once.
func renderReview(r Review) string {
	var b strings.Builder
	cur := func(a domain.Amount) string { return a.Format("EUR") }
	subject := func(indent string, s ReviewSubject) {
		fmt.Fprintf(&b, "%s%s:%s %q status=%s→%s owner=%s→%s changes=%d teams=%s stayed=%d/%d decisions=%d\n", indent, s.Kind, s.ID, s.Name,
			orNone(s.StatusStart), orNone(s.StatusEnd), orNone(s.OwnerStart), orNone(s.OwnerEnd), s.OwnerChanges, strings.Join(s.Teams, ","),
			s.StayedInTeam, s.PeopleAtStart, s.DecisionCount)
		for _, f := range s.Funding {
			fmt.Fprintf(&b, "%s  money allocated=%s in=%s out=%s released=%s balance=%s\n", indent, cur(f.Allocated), cur(f.ShiftedIn),
				cur(f.ShiftedOut), cur(f.Released), cur(f.Balance))
		}
		for _, k := range s.KPIs {
			on := "-"
			if k.OnTarget != nil {
				on = fmt.Sprint(*k.OnTarget)
			}
			fmt.Fprintf(&b, "%s  kpi %s n=%d last=%s previous=%s target=%s on=%s trend=%s\n", indent, k.KPI, k.Measurements,
				orNone(k.Last), orNone(k.Previous), orNone(k.Target), on, orNone(k.Trend))
		}
		var ds []string
		for _, d := range s.Decisions {
			id := d.ID
			if d.Retracted {
				id += "(retracted)"
			}
			ds = append(ds, id)
		}
		if len(ds) > 0 {
			fmt.Fprintf(&b, "%s  decided %s\n", indent, strings.Join(ds, " "))
		}
	}
	for _, v := range r.ValueStreams {
		subject("", v.ReviewSubject)
		for _, p := range v.Products {
			subject("  ", p)
		}
		t := v.Totals
		fmt.Fprintf(&b, "  total products=%d owned=%d kpis-on-target=%d/%d\n", t.ActiveProducts, t.OwnedProducts, t.KPIsOnTarget, t.KPIsWithTarget)
		for _, f := range t.Funding {
			fmt.Fprintf(&b, "  total money allocated=%s in=%s out=%s released=%s balance=%s\n", cur(f.Allocated), cur(f.ShiftedIn),
				cur(f.ShiftedOut), cur(f.Released), cur(f.Balance))
		}
	}
	return b.String()
}

// wantReviewQ2 is the review of 2026-Q2 of the scenario, as known now.
const wantReviewQ2 = `valuestream:lending "Lending" status=active→active owner=-→- changes=0 teams= stayed=0/0 decisions=1
  decided launch-loans
  product:loans "Loans" status=-→active owner=-→p-1 changes=0 teams= stayed=0/0 decisions=4
    money allocated=50000.00 in=0.00 out=0.00 released=25000.00 balance=25000.00
    decided launch-loans alloc-wrong(retracted) release-loans undo-wrong
  total products=1 owned=1 kpis-on-target=0/0
  total money allocated=50000.00 in=0.00 out=0.00 released=25000.00 balance=25000.00
valuestream:payments "Payments" status=active→active owner=-→- changes=0 teams=t-core,t-edge stayed=1/2 decisions=2
  money allocated=0.00 in=0.00 out=100000.00 released=0.00 balance=150000.00
  kpi lead-time n=1 last=12 previous=14 target=10 on=false trend=improving
  decided fund-app m-lead-q2
  product:pay-app "Pay app" status=active→active owner=p-1→p-3 changes=1 teams=t-core,t-edge stayed=1/2 decisions=5
    money allocated=0.00 in=100000.00 out=0.00 released=0.00 balance=100000.00
    kpi conversion n=2 last=4.5 previous=3.2 target=4 on=true trend=improving
    decided target-q2 fund-app m-conv-apr m-conv-may owner-cy
  total products=1 owned=1 kpis-on-target=1/2
  total money allocated=0.00 in=100000.00 out=100000.00 released=0.00 balance=250000.00
`

func TestReviewOfTheScenario(t *testing.T) {
	_, db := valueScenario(t)
	r, err := db.Review(context.Background(), "2026-Q2", day("2100-01-01"))
	if err != nil {
		t.Fatal(err)
	}
	if got := renderReview(r); got != wantReviewQ2 {
		t.Fatalf("review 2026-Q2:\n%s\nwant\n%s", got, wantReviewQ2)
	}
	if _, err := db.Review(context.Background(), "2026-Q7", day("2100-01-01")); err == nil {
		t.Fatal("a bad quarter was accepted")
	}
}

func TestRelapseSignalsOfTheScenario(t *testing.T) {
	e, db := valueScenario(t)
	for _, d := range []string{
		`{"id":"grant-kpi","by":"p-root","authority":"root","reason":"the owner records KPIs","effective":"2026-07-01","changes":[
		 {"kind":"mandate.grant","id":"m-kpi","holder":"p-1","kinds":["kpi.*"],"scope":"*"}]}`,
		`{"id":"form-tx","by":"p-root","authority":"root","reason":"a team for X","effective":"2026-07-01","changes":[
		 {"kind":"team.form","id":"t-x","name":"X","type":"stream-aligned"}]}`,
		`{"id":"disband-tx","by":"p-root","authority":"root","reason":"X is done","effective":"2026-07-10","changes":[
		 {"kind":"team.disband","team":"t-x"}]}`,
		`{"id":"m-conv-q3","by":"p-1","authority":"m-kpi","reason":"BI","effective":"2026-07-20","changes":[
		 {"kind":"kpi.record","product":"pay-app","kpi":"conversion","value":"5.2"}]}`,
	} {
		e.submit(t, d)
	}
	catchUp(t, db, e.st)
	ctx := context.Background()
	q2, err := db.Transition(ctx, "2026-Q2", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	// project.close released proj-x's 50,000.00: nothing stays on a closed project.
	if len(q2.Funding) != 1 || q2.Funding[0].Projects != 0 || q2.Funding[0].ClosedProjects != 0 ||
		q2.DecisionsRoot != 14 || q2.DecisionsDelegated != 0 || q2.DecisionsBoard != 0 ||
		q2.TeamsDisbandedAfterClose != 0 || q2.KPISubjects != 4 || q2.KPISubjectsCovered != 2 || q2.KPICoverage != 0.5 {
		t.Fatalf("2026-Q2: %+v", q2)
	}
	q3, err := db.Transition(ctx, "2026-Q3", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if q3.TeamsDisbandedAfterClose != 1 || q3.DecisionsRoot != 3 || q3.DecisionsDelegated != 1 || q3.DecisionsBoard != 0 ||
		q3.KPISubjects != 4 || q3.KPISubjectsCovered != 1 || q3.KPICoverage != 0.25 {
		t.Fatalf("2026-Q3: %+v", q3)
	}
	var disbanded, covered int64
	var closed int64
	if err := db.pool.QueryRow(ctx, `SELECT m.teams_disbanded_after_close, m.kpi_subjects_covered, f.closed_projects_minor
		FROM `+db.reporting+`.transition_metrics m JOIN `+db.reporting+`.transition_funding f USING (quarter) WHERE quarter = '2026-Q3'`).
		Scan(&disbanded, &covered, &closed); err != nil {
		t.Fatal(err)
	}
	if disbanded != 1 || covered != 1 || closed != 0 {
		t.Fatalf("reporting views for 2026-Q3: %d disbanded, %d covered, %d on closed projects", disbanded, covered, closed)
	}
}
