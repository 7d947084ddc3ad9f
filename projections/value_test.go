package projections

import (
	"context"
	"errors"
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

func renderDiff(d Diff) string {
	var b strings.Builder
	v := func(s *string) string {
		if s == nil {
			return "-"
		}
		return *s
	}
	for _, c := range d.Changes {
		if strings.HasPrefix(c.Attribute, "kpi:") {
			fmt.Fprintf(&b, "%s:%s %s set=%v by %s\n", c.Kind, c.ID, c.Attribute, c.After != nil, c.Decision)
			continue
		}
		fmt.Fprintf(&b, "%s:%s %s %s→%s by %s %s\n", c.Kind, c.ID, c.Attribute, v(c.Before), v(c.After), c.Decision, c.Effective.Format("2006-01-02"))
	}
	for _, f := range d.Funding {
		fmt.Fprintf(&b, "%s %s %s→%s %s\n", f.Period, f.Account, f.Before.Format(f.Currency), f.After.Format(f.Currency), strings.Join(f.Decisions, ","))
	}
	return b.String()
}

// wantDiffQ2 is what changed from 2026-03-31 to 2026-06-30; a
// retraction's compensation takes effect when the decision it undoes did
// (undo-wrong moves money on 2026-06-05, alloc-wrong's date).
const wantDiffQ2 = `person:p-2 team t-edge→t-core by move-bob 2026-05-01
person:p-3 name -→Cy by hire-cy 2026-04-02
person:p-3 status -→active by hire-cy 2026-04-02
person:p-3 team -→t-core by hire-cy 2026-04-02
product:loans name -→Loans by launch-loans 2026-05-01
product:loans owner -→p-1 by launch-loans 2026-05-01
product:loans status -→active by launch-loans 2026-05-01
product:loans valuestream -→lending by launch-loans 2026-05-01
product:pay-app kpi-target:conversion@2026-Q2 -→4 by target-q2 2026-04-01
product:pay-app owner p-1→p-3 by owner-cy 2026-06-01
project:proj-x name -→X by start-x 2026-04-01
project:proj-x status -→closed by close-x 2026-06-15
project:proj-x valuestream -→lending by start-x 2026-04-01
2026 pool 750000.00→725000.00 start-x,launch-loans,alloc-wrong,undo-wrong,close-x,release-loans
2026 product:loans 0.00→25000.00 launch-loans,alloc-wrong,undo-wrong,release-loans
2026 product:pay-app 0.00→100000.00 fund-app
2026 valuestream:payments 250000.00→150000.00 fund-app
`

func TestDiffOfTheScenario(t *testing.T) {
	_, db := valueScenario(t)
	ctx := context.Background()
	d, err := db.Diff(ctx, day("2026-03-31"), day("2026-06-30"), time.Time{}, Page{})
	if err != nil {
		t.Fatal(err)
	}
	if got := renderDiff(d); got != wantDiffQ2 || d.Next != "" {
		t.Fatalf("diff:\n%s\nwant\n%s", got, wantDiffQ2)
	}
	// Pages of 5 add up to the same changes, funding on the first page.
	var all Diff
	cursor := ""
	for i := 0; i < 10; i++ {
		p, err := db.Diff(ctx, day("2026-03-31"), day("2026-06-30"), time.Time{}, Page{Limit: 5, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		all.Changes = append(all.Changes, p.Changes...)
		all.Funding = append(all.Funding, p.Funding...)
		if cursor = p.Next; cursor == "" {
			break
		}
	}
	if got := renderDiff(all); got != wantDiffQ2 {
		t.Fatalf("paged diff:\n%s", got)
	}
	if _, err := db.Diff(ctx, day("2026-06-30"), day("2026-03-31"), time.Time{}, Page{}); !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("to before from: %v", err)
	}
}

func TestRestatementOfTheScenario(t *testing.T) {
	e, db := valueScenario(t)
	ctx := context.Background()
	last, err := db.Decision(ctx, "m-lead-q2")
	if err != nil {
		t.Fatal(err)
	}
	// Recorded after the quarter's figures were read: a backdated owner
	// change and the retraction of a measurement.
	e.submit(t, `{"id":"late-owner","by":"p-root","authority":"root","reason":"Cy took over loans in May","effective":"2026-05-15","changes":[
	 {"kind":"product.assign-owner","product":"loans","owner":"p-3"}]}`)
	e.submit(t, `{"id":"undo-may","by":"p-root","authority":"root","reason":"the May export counted test traffic","effective":"2026-07-05","changes":[
	 {"kind":"decision.retract","decision":"m-conv-may"}]}`)
	catchUp(t, db, e.st)
	r, err := db.Restatement(ctx, "2026-Q2", last.RecordedAt)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, f := range r.Differences {
		fmt.Fprintf(&b, "%s %s: %s → %s (%s)\n", orNone(f.Subject), f.Figure, f.Then, f.Now, strings.Join(f.Decisions, ","))
	}
	for _, d := range r.Decisions {
		fmt.Fprintf(&b, "decision %s effective %s retracts %s\n", d.ID, d.Effective.Format("2006-01-02"), orNone(d.Retracts))
	}
	want := `- decisions_root: 14 → 15 (late-owner,undo-may)
- owner_changes: 1 → 2 (late-owner,undo-may)
- ownership_churn: 0.5 → 1 (late-owner,undo-may)
product:loans decisions: 4 → 5 (late-owner)
product:loans owner_changes: 0 → 1 (late-owner)
product:loans owner_end: p-1 → p-3 (late-owner)
product:pay-app kpi:conversion.last: 4.5 → 3.9 (undo-may)
product:pay-app kpi:conversion.measurements: 2 → 1 (undo-may)
product:pay-app kpi:conversion.on_target: true → false (undo-may)
decision late-owner effective 2026-05-15 retracts -
decision undo-may effective 2026-07-05 retracts m-conv-may
`
	if got := b.String(); got != want {
		t.Fatalf("restatement of 2026-Q2:\n%s\nwant\n%s", got, want)
	}
}
