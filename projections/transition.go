package projections

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"koers/domain"
)

// Transition says, for one quarter, whether the organisation is really
// steered by products: where the money is, how stable the teams are, how
// well products are owned, how many projects became products.
type Transition struct {
	Quarter  string    // 2026-Q2
	From, To time.Time // [From, To), UTC
	KnownAt  time.Time // zero: now
	// Funding is the money on the accounts at the end of the quarter, over
	// every budget period, per currency.
	Funding []FundingShare
	// ActiveProducts at the end of the quarter, OwnedProducts of them with
	// an accountable owner; OwnershipCoverage is their ratio (1 when there
	// are no products).
	ActiveProducts, OwnedProducts int
	OwnershipCoverage             float64
	// OwnerChanges in the quarter: an owner replaced or removed;
	// OwnershipChurn is OwnerChanges per active product.
	OwnerChanges   int
	OwnershipChurn float64
	// PeopleAtStart in a team when the quarter began, StayedInTeam of them
	// in the same team when it ended; TeamStability is their ratio (1 when
	// there was nobody).
	PeopleAtStart, StayedInTeam int
	TeamStability               float64
	// ProjectsConverted into products in the quarter.
	ProjectsConverted int
	// PeopleInTeams at the end of the quarter (active, in a team), and
	// MedianTenureDays the median of how long each had been in that team
	// without a break by the end of the quarter, in days (0 when nobody).
	// A move away and back starts a new stint.
	PeopleInTeams    int
	MedianTenureDays float64
}

// FundingShare is the money on product, value-stream and project accounts
// in one currency.
type FundingShare struct {
	Currency                         domain.Currency
	Products, ValueStreams, Projects domain.Amount
	// ProductShare is (Products+ValueStreams) / (Products+ValueStreams+Projects),
	// 0 when nothing is allocated.
	ProductShare float64
}

// ParseQuarter parses "2026-Q2" into the quarter's first instant and the
// next quarter's, in UTC.
func ParseQuarter(q string) (from, to time.Time, err error) {
	y, n, ok := strings.Cut(q, "-Q")
	year, yerr := strconv.Atoi(y)
	num, nerr := strconv.Atoi(n)
	if !ok || yerr != nil || nerr != nil || num < 1 || num > 4 || len(y) != 4 || len(n) != 1 {
		return time.Time{}, time.Time{}, fmt.Errorf("quarter %.40q: want YYYY-Qn: %w", q, domain.ErrInvalid)
	}
	from = time.Date(year, time.Month(3*(num-1)+1), 1, 0, 0, 0, 0, time.UTC)
	to = from.AddDate(0, 3, 0)
	// A quarter lies within the ledger's times, end included: 9999-Q4
	// ends in the year 10000.
	if from.Before(domain.MinTime) || to.After(domain.MaxTime) {
		return time.Time{}, time.Time{}, &domain.TimeRangeError{Value: q, Quarter: true}
	}
	return from, to, nil
}

// Transition returns the transition metrics of a quarter as known at
// knownAt (zero: now). The figures come from the read models' SQL
// functions transition_metrics and transition_funding (migration 00004),
// which the reporting views call as well: one computation, one answer.
func (db *DB) Transition(ctx context.Context, quarter string, knownAt time.Time) (Transition, error) {
	from, to, err := ParseQuarter(quarter)
	if err != nil {
		return Transition{}, err
	}
	r := Transition{Quarter: quarter, From: from, To: to, KnownAt: knownAt}
	err = db.read(ctx, func(tx pgx.Tx) error {
		k, err := resolve(ctx, tx, At{AsOf: from, KnownAt: knownAt})
		if err != nil {
			return err
		}
		var got string
		if err := tx.QueryRow(ctx, `SELECT quarter, active_products, owned_products, ownership_coverage, owner_changes, ownership_churn,
				people_at_start, stayed_in_team, team_stability, projects_converted, people_in_teams, median_tenure_days
			FROM transition_metrics($1, $2, $2)`, k.seq, from).
			Scan(&got, &r.ActiveProducts, &r.OwnedProducts, &r.OwnershipCoverage, &r.OwnerChanges, &r.OwnershipChurn,
				&r.PeopleAtStart, &r.StayedInTeam, &r.TeamStability, &r.ProjectsConverted, &r.PeopleInTeams, &r.MedianTenureDays); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		if got != quarter {
			// ParseQuarter and the function's quarters must agree.
			return fmt.Errorf("metrics: asked for %s, computed %s", quarter, got)
		}
		rows, err := tx.Query(ctx, `SELECT currency, products_minor, value_streams_minor, projects_minor, product_share
			FROM transition_funding($1, $2, $2) ORDER BY currency`, k.seq, from)
		if err != nil {
			return fmt.Errorf("funding: %w", err)
		}
		r.Funding, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (FundingShare, error) {
			var s FundingShare
			var cur string
			var p, v, j int64
			err := row.Scan(&cur, &p, &v, &j, &s.ProductShare)
			s.Currency, s.Products, s.ValueStreams, s.Projects = domain.Currency(cur), domain.Amount(p), domain.Amount(v), domain.Amount(j)
			return s, err
		})
		if err != nil {
			return fmt.Errorf("funding: %w", err)
		}
		return nil
	})
	if err != nil {
		return Transition{}, fmt.Errorf("transition %s: %w", quarter, err)
	}
	return r, nil
}
