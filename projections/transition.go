package projections

import (
	"context"
	"fmt"
	"sort"
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
	if !ok || yerr != nil || nerr != nil || num < 1 || num > 4 || year < 1 || year > 9999 {
		return time.Time{}, time.Time{}, fmt.Errorf("quarter %q: want YYYY-Qn: %w", q, domain.ErrInvalid)
	}
	from = time.Date(year, time.Month(3*(num-1)+1), 1, 0, 0, 0, 0, time.UTC)
	return from, from.AddDate(0, 3, 0), nil
}

func ratio(a, b int, empty float64) float64 {
	if b == 0 {
		return empty
	}
	return float64(a) / float64(b)
}

// Transition returns the transition metrics of a quarter as known at
// knownAt (zero: now).
func (db *DB) Transition(ctx context.Context, quarter string, knownAt time.Time) (Transition, error) {
	from, to, err := ParseQuarter(quarter)
	if err != nil {
		return Transition{}, err
	}
	r := Transition{Quarter: quarter, From: from, To: to, KnownAt: knownAt}
	// The end of the quarter: the last instant PostgreSQL can tell apart.
	end := to.Add(-time.Microsecond)
	err = db.read(ctx, func(tx pgx.Tx) error {
		atEnd, err := resolve(ctx, tx, At{AsOf: end, KnownAt: knownAt})
		if err != nil {
			return err
		}
		atStart := known{asOf: from, seq: atEnd.seq}
		endFacts, err := facts(ctx, tx, atEnd, domain.KindProduct, domain.KindPerson)
		if err != nil {
			return err
		}
		startFacts, err := facts(ctx, tx, atStart, domain.KindPerson)
		if err != nil {
			return err
		}
		for ref, a := range endFacts {
			if ref.Kind == domain.KindProduct && a["status"] == statusActive {
				r.ActiveProducts++
				if a["owner"] != "" {
					r.OwnedProducts++
				}
			}
		}
		for ref, a := range startFacts {
			if a["status"] != statusActive || a["team"] == "" {
				continue
			}
			r.PeopleAtStart++
			if e := endFacts[ref]; e["status"] == statusActive && e["team"] == a["team"] {
				r.StayedInTeam++
			}
		}
		if err := tx.QueryRow(ctx, `WITH v AS (
				SELECT id, value, valid_from, valid_to FROM facts
				WHERE kind = 'product' AND attr = 'owner' AND recorded_seq <= $1 AND (superseded_seq IS NULL OR superseded_seq > $1))
			SELECT count(*) FROM v cur JOIN v prev ON prev.id = cur.id AND prev.valid_to = cur.valid_from
			WHERE cur.valid_from >= $2 AND cur.valid_from < $3 AND prev.value IS NOT NULL AND cur.value IS DISTINCT FROM prev.value`,
			atEnd.seq, from, to).Scan(&r.OwnerChanges); err != nil {
			return fmt.Errorf("owner changes: %w", err)
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM facts
			WHERE kind = 'project' AND attr = 'status' AND value = 'converted' AND recorded_seq <= $1
			  AND (superseded_seq IS NULL OR superseded_seq > $1) AND valid_from >= $2 AND valid_from < $3`,
			atEnd.seq, from, to).Scan(&r.ProjectsConverted); err != nil {
			return fmt.Errorf("converted projects: %w", err)
		}
		if err := r.tenure(ctx, tx, atEnd.seq, endFacts); err != nil {
			return fmt.Errorf("team tenure: %w", err)
		}
		shares := map[domain.Currency]*FundingShare{}
		rows, err := tx.Query(ctx, `SELECT currency, split_part(account, ':', 1), sum(amount_minor) FROM journal
			WHERE seq <= $1 AND effective <= $2 AND account LIKE '%:%' AND account NOT LIKE 'budget:%'
			GROUP BY 1, 2`, atEnd.seq, end)
		if err != nil {
			return fmt.Errorf("funding: %w", err)
		}
		var cur, kind string
		var sum int64
		_, err = pgx.ForEachRow(rows, []any{&cur, &kind, &sum}, func() error {
			s := shares[domain.Currency(cur)]
			if s == nil {
				s = &FundingShare{Currency: domain.Currency(cur)}
				shares[s.Currency] = s
			}
			switch domain.AggregateKind(kind) {
			case domain.KindProduct:
				s.Products += domain.Amount(sum)
			case domain.KindValueStream:
				s.ValueStreams += domain.Amount(sum)
			case domain.KindProject:
				s.Projects += domain.Amount(sum)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("funding: %w", err)
		}
		for _, s := range shares {
			if total := s.Products + s.ValueStreams + s.Projects; total > 0 {
				s.ProductShare = float64(s.Products+s.ValueStreams) / float64(total)
			}
			r.Funding = append(r.Funding, *s)
		}
		sort.Slice(r.Funding, func(i, j int) bool { return r.Funding[i].Currency < r.Funding[j].Currency })
		return nil
	})
	if err != nil {
		return Transition{}, fmt.Errorf("transition %s: %w", quarter, err)
	}
	r.OwnershipCoverage = ratio(r.OwnedProducts, r.ActiveProducts, 1)
	r.OwnershipChurn = ratio(r.OwnerChanges, r.ActiveProducts, 0)
	r.TeamStability = ratio(r.StayedInTeam, r.PeopleAtStart, 1)
	return r, nil
}

// tenure sets PeopleInTeams and MedianTenureDays from the team beliefs
// known at seq: for every active person in a team at the end of the
// quarter, the stint in that team is the run of adjacent intervals with
// that team ending in the one that holds at the end.
func (r *Transition) tenure(ctx context.Context, tx pgx.Tx, seq int64, endFacts map[domain.Ref]map[string]string) error {
	rows, err := tx.Query(ctx, `SELECT id, value, valid_from, valid_to FROM facts
		WHERE kind = 'person' AND attr = 'team' AND recorded_seq <= $1 AND (superseded_seq IS NULL OR superseded_seq > $1)
		ORDER BY id, valid_from`, seq)
	if err != nil {
		return err
	}
	type interval struct {
		value *string
		from  time.Time
		to    *time.Time
	}
	byPerson := map[string][]interval{}
	var id string
	var iv interval
	if _, err := pgx.ForEachRow(rows, []any{&id, &iv.value, &iv.from, &iv.to}, func() error {
		byPerson[id] = append(byPerson[id], iv)
		return nil
	}); err != nil {
		return err
	}
	end := r.To.Add(-time.Microsecond)
	var days []float64
	for ref, a := range endFacts {
		if ref.Kind != domain.KindPerson || a["status"] != statusActive || a["team"] == "" {
			continue
		}
		ivs := byPerson[ref.ID]
		i := len(ivs) - 1
		for ; i >= 0; i-- {
			if !ivs[i].from.After(end) && (ivs[i].to == nil || ivs[i].to.After(end)) {
				break
			}
		}
		if i < 0 || ivs[i].value == nil || *ivs[i].value != a["team"] {
			continue
		}
		start := ivs[i].from
		for j := i - 1; j >= 0; j-- {
			prev := ivs[j]
			if prev.to == nil || !prev.to.Equal(start) || prev.value == nil || *prev.value != a["team"] {
				break
			}
			start = prev.from
		}
		days = append(days, r.To.Sub(start).Hours()/24)
	}
	r.PeopleInTeams = len(days)
	r.MedianTenureDays = median(days)
	return nil
}

// median of xs, the mean of the two middle values when their number is
// even; 0 when there are none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	sort.Float64s(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return xs[n/2-1] + 0.5*(xs[n/2]-xs[n/2-1])
}
