package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"koers/domain"
)

// KPIValue is one measurement of a KPI of a product or value stream, with
// the KPI's definition and its target in the measurement's quarter as
// believed at the query's point in both times. The figures come from the
// SQL function kpi_values (migration 00007), which the reporting view
// kpi_values and the review call as well.
type KPIValue struct {
	Kind      domain.AggregateKind `json:"kind"` // product or valuestream
	ID        string               `json:"id"`
	KPI       string               `json:"kpi"`
	Category  string               `json:"category"` // value, customer, flow, sustainability, team
	Unit      string               `json:"unit"`
	Direction string               `json:"direction"` // higher or lower: which way is better
	Effective time.Time            `json:"effective"`
	Quarter   string               `json:"quarter"`          // of Effective, UTC: 2026-Q2
	Value     string               `json:"value"`            // exact decimal
	Target    string               `json:"target,omitempty"` // the quarter's target, else the default; empty: none
	// OnTarget is nil without a target.
	OnTarget   *bool     `json:"on_target"`
	Note       string    `json:"note,omitempty"`
	Decision   string    `json:"decision"`
	Sequence   uint64    `json:"sequence"`
	RecordedAt time.Time `json:"recorded_at"`
}

// KPIFilter narrows [DB.KPIValues]; zero fields match everything.
type KPIFilter struct {
	Subject  domain.Ref // a product or value stream; zero: all
	KPI      string
	From, To time.Time // measurements effective in [From, To)
}

// KPIPage is one page of KPI values.
type KPIPage struct {
	AsOf     time.Time  `json:"as_of"`
	KnownAt  time.Time  `json:"known_at"`
	Sequence uint64     `json:"sequence"`
	Values   []KPIValue `json:"values"`
	// Next is the cursor of the next page ([Page].Cursor); empty on the
	// last page.
	Next string `json:"next"`
}

// KPIValues returns one page of KPI measurements matching f at at, by
// subject (kind, id), KPI and date, oldest first; retracted measurements
// are left out once the retraction is known.
func (db *DB) KPIValues(ctx context.Context, f KPIFilter, at At, page Page) (KPIPage, error) {
	if f.Subject != (domain.Ref{}) && f.Subject.Kind != domain.KindProduct && f.Subject.Kind != domain.KindValueStream {
		return KPIPage{}, fmt.Errorf("kpi values of %s: KPIs belong to products and value streams: %w", f.Subject, domain.ErrInvalid)
	}
	pg, err := newPager("kpis", page, f.Subject.String(), f.KPI, timeParam(f.From), timeParam(f.To), timeParam(at.AsOf), timeParam(at.KnownAt))
	if err != nil {
		return KPIPage{}, fmt.Errorf("kpi values: %w", err)
	}
	after, err := pg.key(5)
	if err != nil {
		return KPIPage{}, fmt.Errorf("kpi values: %w", err)
	}
	var (
		afterKind      *string
		afterID        string
		afterKPI       string
		afterEffective time.Time
		afterSeq       int64
	)
	if after != nil {
		afterKind, afterID, afterKPI = &after[0], after[1], after[2]
		if afterEffective, err = keyTime(after[3]); err == nil {
			afterSeq, err = keyInt(after[4])
		}
		if err != nil {
			return KPIPage{}, fmt.Errorf("kpi values: %w", err)
		}
	}
	var kind, id, kpi *string
	if f.Subject != (domain.Ref{}) {
		kind, id = str(string(f.Subject.Kind)), &f.Subject.ID
	}
	if f.KPI != "" {
		kpi = &f.KPI
	}
	out := KPIPage{AsOf: at.AsOf, KnownAt: at.KnownAt}
	err = db.read(ctx, func(tx pgx.Tx) error {
		k, err := pg.known(ctx, tx, at)
		if err != nil {
			return err
		}
		out.Sequence = uint64(k.seq)
		rows, err := tx.Query(ctx, `SELECT kind, id, kpi, category, unit, direction, effective, quarter, value::text,
				coalesce(target::text, ''), on_target, coalesce(note, ''), decision, seq, recorded_at
			FROM kpi_values($1, $2, $3, $4, $5, $6, $7)
			WHERE $8::text IS NULL OR (kind, id, kpi, effective, seq) > ($8, $9, $10, $11, $12)
			ORDER BY kind, id, kpi, effective, seq LIMIT $13`,
			k.seq, k.asOf, kind, id, kpi, nullTime(f.From), nullTime(f.To),
			afterKind, afterID, afterKPI, afterEffective, afterSeq, pg.limit+1)
		if err != nil {
			return err
		}
		out.Values, err = pgx.CollectRows(rows, scanKPIValue)
		if err != nil {
			return err
		}
		if len(out.Values) > pg.limit {
			out.Values = out.Values[:pg.limit]
			last := out.Values[pg.limit-1]
			out.Next = pg.next(k, string(last.Kind), last.ID, last.KPI, fmtTime(last.Effective), fmtInt(int64(last.Sequence)))
		}
		return nil
	})
	if err != nil {
		return KPIPage{}, fmt.Errorf("kpi values: %w", err)
	}
	return out, nil
}

func scanKPIValue(row pgx.CollectableRow) (KPIValue, error) {
	var v KPIValue
	var kind string
	var seq int64
	err := row.Scan(&kind, &v.ID, &v.KPI, &v.Category, &v.Unit, &v.Direction, &v.Effective, &v.Quarter, &v.Value,
		&v.Target, &v.OnTarget, &v.Note, &v.Decision, &seq, &v.RecordedAt)
	v.Kind, v.Sequence = domain.AggregateKind(kind), uint64(seq)
	return v, err
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Review is the quarterly portfolio review: per value stream and its
// products, the money (allocated, shifted in and out, released, balance),
// the accountable owner and its changes, the teams and their stability,
// the KPIs against their targets with their trend, and the decisions
// effective in the quarter, with value-stream totals. It answers for the
// quarter as known at KnownAt; the figures come from the SQL functions
// review_subjects, review_funding and review_kpis (migration 00007),
// which the reporting views review, review_funding and review_kpis call
// for every quarter.
type Review struct {
	Quarter string    `json:"quarter"`
	From    time.Time `json:"from"` // [From, To), UTC
	To      time.Time `json:"to"`
	KnownAt time.Time `json:"known_at"` // zero: now
	// Sequence is the last decision's stream sequence known at KnownAt.
	Sequence     uint64              `json:"sequence"`
	ValueStreams []ReviewValueStream `json:"value_streams"`
}

// ReviewValueStream is a value stream in a review: its own figures (its
// account, KPIs, decisions), its products' and the totals of both.
type ReviewValueStream struct {
	ReviewSubject
	Products []ReviewSubject `json:"products"`
	Totals   ReviewTotals    `json:"totals"`
}

// ReviewSubject is one product or value stream in a review. Status and
// owner are at the quarter's start and end; Teams are the active teams
// serving it at the end (a value stream's: those of its active
// products); PeopleAtStart were in those teams at the start, StayedInTeam
// of them in the same team at the end.
type ReviewSubject struct {
	Kind          domain.AggregateKind `json:"kind"`
	ID            string               `json:"id"`
	Name          string               `json:"name"`
	ValueStream   string               `json:"valuestream"`
	StatusStart   string               `json:"status_start"`
	StatusEnd     string               `json:"status_end"`
	OwnerStart    string               `json:"owner_start"`
	OwnerEnd      string               `json:"owner_end"`
	OwnerChanges  int                  `json:"owner_changes"`
	Teams         []string             `json:"teams"`
	PeopleAtStart int                  `json:"people_at_start"`
	StayedInTeam  int                  `json:"stayed_in_team"`
	Funding       []ReviewFunding      `json:"funding"`
	KPIs          []ReviewKPI          `json:"kpis"`
	DecisionCount int                  `json:"decision_count"`
	// Decisions are the first MaxReviewDecisions, by effective time.
	Decisions []ReviewDecision `json:"decisions"`
}

// ReviewFunding is the money of one account (or a total) in one currency
// in the quarter.
type ReviewFunding struct {
	Currency   domain.Currency `json:"currency"`
	Allocated  domain.Amount   `json:"allocated_minor"`
	ShiftedIn  domain.Amount   `json:"shifted_in_minor"`
	ShiftedOut domain.Amount   `json:"shifted_out_minor"`
	Released   domain.Amount   `json:"released_minor"`
	Balance    domain.Amount   `json:"balance_minor"` // at the quarter's end
}

// ReviewKPI is one KPI in a review: the last value measured in the
// quarter against the quarter's target, and the trend from the last value
// before the quarter (improving, worsening, steady, new; empty when no
// value in the quarter).
type ReviewKPI struct {
	KPI           string    `json:"kpi"`
	Category      string    `json:"category"`
	Unit          string    `json:"unit"`
	Direction     string    `json:"direction"`
	Measurements  int       `json:"measurements"`
	Last          string    `json:"last,omitempty"` // exact decimals; empty: none
	Previous      string    `json:"previous,omitempty"`
	Target        string    `json:"target,omitempty"`
	LastEffective time.Time `json:"last_effective,omitzero"`
	OnTarget      *bool     `json:"on_target"`
	Trend         string    `json:"trend,omitempty"`
}

// ReviewDecision is a decision effective in the quarter that touched a
// product or value stream.
type ReviewDecision struct {
	ID        string    `json:"id"`
	Actor     string    `json:"by"`
	Mandate   string    `json:"authority"`
	Effective time.Time `json:"effective"`
	Kinds     []string  `json:"change_kinds"`
	Retracted bool      `json:"retracted"` // known retracted at the review's known time
}

// ReviewTotals add up a value stream and its products: products active at
// the quarter's end and how many had an owner, the money per currency,
// and the KPIs with a value in the quarter and a target, and how many of
// them met it.
type ReviewTotals struct {
	ActiveProducts int             `json:"active_products"`
	OwnedProducts  int             `json:"owned_products"`
	Funding        []ReviewFunding `json:"funding"`
	KPIsWithTarget int             `json:"kpis_with_target"`
	KPIsOnTarget   int             `json:"kpis_on_target"`
}

// Bounds of a review.
const (
	// MaxReviewDecisions is how many decisions a review lists per product
	// or value stream (DecisionCount counts them all).
	MaxReviewDecisions = 20
	// MaxReviewSubjects bounds the products and value streams of one
	// review.
	MaxReviewSubjects = 5000
)

// ErrReviewTooLarge is returned when a quarter has more than
// MaxReviewSubjects products and value streams.
var ErrReviewTooLarge = fmt.Errorf("review: more than %d products and value streams: %w", MaxReviewSubjects, domain.ErrTooLarge)

// Review returns the portfolio review of quarter (2026-Q2) as known at
// knownAt (zero: now).
func (db *DB) Review(ctx context.Context, quarter string, knownAt time.Time) (Review, error) {
	q, err := domain.ParseQuarter(quarter)
	if err != nil {
		return Review{}, err
	}
	r := Review{Quarter: q.Name, From: q.From, To: q.To, KnownAt: knownAt}
	err = db.read(ctx, func(tx pgx.Tx) error {
		k, err := resolve(ctx, tx, At{AsOf: q.From, KnownAt: knownAt})
		if err != nil {
			return err
		}
		r.Sequence = uint64(k.seq)
		r.ValueStreams, err = review(ctx, tx, k.seq, q)
		return err
	})
	if err != nil {
		return Review{}, fmt.Errorf("review %s: %w", quarter, err)
	}
	return r, nil
}

func review(ctx context.Context, tx pgx.Tx, seq int64, q domain.Quarter) ([]ReviewValueStream, error) {
	type key struct {
		kind domain.AggregateKind
		id   string
	}
	subjects := map[key]*ReviewSubject{}
	var order []key
	rows, err := tx.Query(ctx, `SELECT kind, id, coalesce(name, ''), coalesce(valuestream, ''), coalesce(status_start, ''), coalesce(status_end, ''),
			coalesce(owner_start, ''), coalesce(owner_end, ''), owner_changes, teams, people_at_start, stayed_in_team, decisions
		FROM review_subjects($1, $2, $2) LIMIT $3`, seq, q.From, MaxReviewSubjects+1)
	if err != nil {
		return nil, fmt.Errorf("subjects: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ReviewSubject, error) {
		var s ReviewSubject
		var kind string
		var changes, atStart, stayed, decisions int64
		err := row.Scan(&kind, &s.ID, &s.Name, &s.ValueStream, &s.StatusStart, &s.StatusEnd, &s.OwnerStart, &s.OwnerEnd,
			&changes, &s.Teams, &atStart, &stayed, &decisions)
		s.Kind = domain.AggregateKind(kind)
		s.OwnerChanges, s.PeopleAtStart, s.StayedInTeam, s.DecisionCount = int(changes), int(atStart), int(stayed), int(decisions)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("subjects: %w", err)
	}
	if len(list) > MaxReviewSubjects {
		return nil, ErrReviewTooLarge
	}
	for i := range list {
		s := &list[i]
		if s.Kind == domain.KindValueStream {
			s.ValueStream = s.ID
		}
		kk := key{s.Kind, s.ID}
		subjects[kk] = s
		order = append(order, kk)
	}
	rows, err = tx.Query(ctx, `SELECT kind, id, currency, allocated_minor, shifted_in_minor, shifted_out_minor, released_minor, balance_minor
		FROM review_funding($1, $2, $2)`, seq, q.From)
	if err != nil {
		return nil, fmt.Errorf("funding: %w", err)
	}
	err = forEachRow(rows, func(row pgx.Rows) error {
		var kind, id, cur string
		var f ReviewFunding
		var a, in, out, rel, bal int64
		if err := row.Scan(&kind, &id, &cur, &a, &in, &out, &rel, &bal); err != nil {
			return err
		}
		f.Currency, f.Allocated, f.ShiftedIn, f.ShiftedOut, f.Released, f.Balance =
			domain.Currency(cur), domain.Amount(a), domain.Amount(in), domain.Amount(out), domain.Amount(rel), domain.Amount(bal)
		if s := subjects[key{domain.AggregateKind(kind), id}]; s != nil {
			s.Funding = append(s.Funding, f)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("funding: %w", err)
	}
	rows, err = tx.Query(ctx, `SELECT kind, id, kpi, category, unit, direction, measurements, coalesce(last_value::text, ''),
			last_effective, coalesce(previous_value::text, ''), coalesce(target::text, ''), on_target, coalesce(trend, '')
		FROM review_kpis($1, $2, $2)`, seq, q.From)
	if err != nil {
		return nil, fmt.Errorf("kpis: %w", err)
	}
	err = forEachRow(rows, func(row pgx.Rows) error {
		var kind, id string
		var k ReviewKPI
		var n int64
		var last *time.Time
		if err := row.Scan(&kind, &id, &k.KPI, &k.Category, &k.Unit, &k.Direction, &n, &k.Last, &last, &k.Previous, &k.Target,
			&k.OnTarget, &k.Trend); err != nil {
			return err
		}
		k.Measurements = int(n)
		if last != nil {
			k.LastEffective = *last
		}
		if s := subjects[key{domain.AggregateKind(kind), id}]; s != nil {
			s.KPIs = append(s.KPIs, k)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("kpis: %w", err)
	}
	rows, err = tx.Query(ctx, `SELECT x.agg, d.id, d.actor, d.mandate, d.effective, d.change_kinds,
			d.retracted_seq IS NOT NULL AND d.retracted_seq <= $1
		FROM (SELECT s.agg, s.decision, s.seq, row_number() OVER (PARTITION BY s.agg ORDER BY s.effective, s.seq) AS rn
		      FROM subject_decisions($1) s WHERE s.effective >= $2 AND s.effective < $3) x
		JOIN decisions d ON d.id = x.decision
		WHERE x.rn <= $4 ORDER BY x.agg, x.rn`, seq, q.From, q.To, MaxReviewDecisions)
	if err != nil {
		return nil, fmt.Errorf("decisions: %w", err)
	}
	err = forEachRow(rows, func(row pgx.Rows) error {
		var agg string
		var d ReviewDecision
		if err := row.Scan(&agg, &d.ID, &d.Actor, &d.Mandate, &d.Effective, &d.Kinds, &d.Retracted); err != nil {
			return err
		}
		ref, err := domain.ParseRef(agg)
		if err != nil {
			return err
		}
		if s := subjects[key{ref.Kind, ref.ID}]; s != nil {
			s.Decisions = append(s.Decisions, d)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("decisions: %w", err)
	}

	for _, s := range subjects {
		s.Teams, s.Funding, s.KPIs, s.Decisions = nonNil(s.Teams), nonNil(s.Funding), nonNil(s.KPIs), nonNil(s.Decisions)
	}
	streams := map[string]*ReviewValueStream{}
	var ids []string
	stream := func(id string) *ReviewValueStream {
		if v := streams[id]; v != nil {
			return v
		}
		v := &ReviewValueStream{ReviewSubject: ReviewSubject{Kind: domain.KindValueStream, ID: id, ValueStream: id}}
		streams[id] = v
		ids = append(ids, id)
		return v
	}
	for _, kk := range order {
		s := subjects[kk]
		if kk.kind == domain.KindValueStream {
			v := stream(s.ID)
			v.ReviewSubject = *s
			continue
		}
		v := stream(s.ValueStream)
		v.Products = append(v.Products, *s)
	}
	sort.Strings(ids)
	out := make([]ReviewValueStream, 0, len(ids))
	for _, id := range ids {
		v := streams[id]
		v.ReviewSubject.Teams, v.ReviewSubject.Funding = nonNil(v.ReviewSubject.Teams), nonNil(v.ReviewSubject.Funding)
		v.ReviewSubject.KPIs, v.ReviewSubject.Decisions = nonNil(v.ReviewSubject.KPIs), nonNil(v.ReviewSubject.Decisions)
		v.Products = nonNil(v.Products)
		v.Totals = reviewTotals(v)
		v.Totals.Funding = nonNil(v.Totals.Funding)
		out = append(out, *v)
	}
	return out, nil
}

func reviewTotals(v *ReviewValueStream) ReviewTotals {
	var t ReviewTotals
	byCur := map[domain.Currency]*ReviewFunding{}
	var curs []domain.Currency
	add := func(s ReviewSubject) {
		for _, f := range s.Funding {
			tf := byCur[f.Currency]
			if tf == nil {
				tf = &ReviewFunding{Currency: f.Currency}
				byCur[f.Currency] = tf
				curs = append(curs, f.Currency)
			}
			tf.Allocated += f.Allocated
			tf.ShiftedIn += f.ShiftedIn
			tf.ShiftedOut += f.ShiftedOut
			tf.Released += f.Released
			tf.Balance += f.Balance
		}
		for _, k := range s.KPIs {
			if k.OnTarget != nil {
				t.KPIsWithTarget++
				if *k.OnTarget {
					t.KPIsOnTarget++
				}
			}
		}
	}
	add(v.ReviewSubject)
	for _, p := range v.Products {
		add(p)
		if p.StatusEnd == statusActive {
			t.ActiveProducts++
			if p.OwnerEnd != "" {
				t.OwnedProducts++
			}
		}
	}
	sort.Slice(curs, func(i, j int) bool { return curs[i] < curs[j] })
	for _, c := range curs {
		t.Funding = append(t.Funding, *byCur[c])
	}
	return t
}

// forEachRow calls fn for each row and closes rows.
func forEachRow(rows pgx.Rows, fn func(pgx.Rows) error) error {
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// nonNil makes a nil list an empty one, so that JSON shows [] rather than null.
func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}

// MarshalJSON writes the amounts as decimal strings in the currency with
// their minor units beside them, as every Koers answer does.
func (f ReviewFunding) MarshalJSON() ([]byte, error) {
	c := f.Currency
	return json.Marshal(struct {
		Currency        domain.Currency `json:"currency"`
		Allocated       string          `json:"allocated"`
		AllocatedMinor  domain.Amount   `json:"allocated_minor"`
		ShiftedIn       string          `json:"shifted_in"`
		ShiftedInMinor  domain.Amount   `json:"shifted_in_minor"`
		ShiftedOut      string          `json:"shifted_out"`
		ShiftedOutMinor domain.Amount   `json:"shifted_out_minor"`
		Released        string          `json:"released"`
		ReleasedMinor   domain.Amount   `json:"released_minor"`
		Balance         string          `json:"balance"`
		BalanceMinor    domain.Amount   `json:"balance_minor"`
	}{c, f.Allocated.Format(c), f.Allocated, f.ShiftedIn.Format(c), f.ShiftedIn, f.ShiftedOut.Format(c), f.ShiftedOut,
		f.Released.Format(c), f.Released, f.Balance.Format(c), f.Balance})
}
