package projections

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"koers/domain"
)

// TestFundingJournalBalances checks, over a history of allocations, shifts,
// releases, adjustments and a retracted opening, that the lines of every
// movement sum to zero and that at every valid time asked, as known at
// every decision, the accounts of a period hold exactly its total.
func TestFundingJournalBalances(t *testing.T) {
	e := newLog(t)
	e.play(t, script...)
	e.play(t,
		`{"id":"adjust","by":"p-root","authority":"root","reason":"mid-year cut","effective":"2026-05-01","changes":[
		 {"kind":"budget.adjust","period":"2026","amount":"-200000.00"}]}`,
		`{"id":"release","by":"p-root","authority":"root","reason":"less needed","effective":"2026-05-10","changes":[
		 {"kind":"funding.release","period":"2026","from":"project:proj-x","amount":"20000.00"},
		 {"kind":"funding.shift","period":"2026","from":"valuestream:payments","to":"product:pay-app","amount":"50000.00"}]}`,
		`{"id":"open-2027","by":"p-root","authority":"root","reason":"plan","effective":"2026-06-01","changes":[
		 {"kind":"budget.open","period":"2027","amount":"500.00","currency":"EUR"},
		 {"kind":"funding.allocate","period":"2027","to":"product:pay-app","amount":"200.00"}]}`,
		`{"id":"undo-2027","by":"p-root","authority":"root","reason":"too early","effective":"2026-06-03","changes":[
		 {"kind":"decision.retract","decision":"open-2027"}]}`,
		`{"id":"boost","by":"p-root","authority":"root","reason":"good quarter","effective":"2026-06-15","changes":[
		 {"kind":"budget.adjust","period":"2026","amount":"30000.00"}]}`)
	db := newDB(t)
	catchUp(t, db, e.st)
	ctx := context.Background()

	var unbalanced int
	err := db.withConn(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT count(*) FROM (SELECT seq FROM journal GROUP BY seq HAVING sum(amount_minor) <> 0) x`).Scan(&unbalanced)
	})
	if err != nil || unbalanced != 0 {
		t.Fatalf("%d movements whose lines do not sum to zero (%v)", unbalanced, err)
	}

	page, err := db.Audit(ctx, AuditFilter{Limit: MaxAuditLimit})
	if err != nil {
		t.Fatal(err)
	}
	// The period totals known after each decision, by valid time: what the
	// openings and adjustments recorded by then say.
	total := func(period string, asOf time.Time, knownSeq uint64) domain.Amount {
		type change struct {
			id     string
			at     string
			amount domain.Amount
		}
		all := map[string][]change{
			"2026": {{"bootstrap", "2026-01-01", 100000000}, {"adjust", "2026-05-01", -20000000}, {"boost", "2026-06-15", 3000000}},
			"2027": {{"open-2027", "2026-06-01", 50000}},
		}
		var sum domain.Amount
		for _, c := range all[period] {
			d, err := db.Decision(ctx, c.id)
			if err != nil {
				t.Fatal(err)
			}
			if d.Sequence > knownSeq || day(c.at).After(asOf) {
				continue
			}
			if d.RetractedSequence != 0 && d.RetractedSequence <= knownSeq {
				continue
			}
			sum += c.amount
		}
		return sum
	}
	asOfs := []string{"2025-12-31", "2026-01-01", "2026-03-31", "2026-04-01", "2026-05-01", "2026-05-10", "2026-05-31",
		"2026-06-01", "2026-06-02", "2026-06-03", "2026-06-15", "2026-12-31"}
	checked := 0
	for _, d := range page.Decisions {
		for _, a := range asOfs {
			for _, period := range []string{"2026", "2027"} {
				at := At{AsOf: day(a), KnownAt: d.RecordedAt}
				bal, err := balances(db.Balances(ctx, period, at, Page{}))
				if err != nil {
					t.Fatal(err)
				}
				var sum, budget, accounts domain.Amount
				for _, b := range bal {
					sum += b.Minor
					if b.Account == "budget:"+period {
						budget = b.Minor
					} else {
						accounts += b.Minor
						if b.Minor < 0 {
							t.Errorf("%s as of %s known at %s: %s below zero: %d", period, a, d.ID, b.Account, b.Minor)
						}
					}
				}
				want := total(period, day(a), d.Sequence)
				if sum != 0 || -budget != want || accounts != want {
					t.Errorf("%s as of %s known at %s: accounts hold %d, budget account %d, sum %d; want a total of %d",
						period, a, d.ID, accounts, budget, sum, want)
				}
				checked++
			}
		}
	}
	if checked < 100 {
		t.Fatalf("only %d (period, as of, known at) points checked", checked)
	}
	// Spot check of the exact balances now.
	bal, err := balances(db.Balances(ctx, "2026", At{}, Page{}))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"budget:2026": "-830000.00", "pool": "550000.00", "valuestream:payments": "100000.00",
		"product:pay-app": "150000.00", "project:proj-x": "30000.00"}
	for _, b := range bal {
		if want[b.Account] != b.Amount() {
			t.Errorf("balance %s now: %s, want %s", b.Account, b.Amount(), want[b.Account])
		}
	}
	if len(bal) != len(want) {
		t.Errorf("balances now: %+v", bal)
	}
}
