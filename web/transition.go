package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"

	"koers/projections"
)

// maxQuarters bounds one transition report (ten years), transitionWorkers
// the quarters computed at once.
const (
	maxQuarters       = 40
	transitionWorkers = 4
)

// quarterOf names the quarter t falls in.
func quarterOf(t time.Time) string {
	return fmt.Sprintf("%d-Q%d", t.Year(), (int(t.Month())-1)/3+1)
}

// quarterSeries is the transition metrics as series, one value a quarter.
type quarterSeries struct {
	Quarters          []string  `json:"quarters"`
	ProductShare      []float64 `json:"product_share"`      // 0..1, of the first currency
	OwnershipCoverage []float64 `json:"ownership_coverage"` // 0..1
	OwnershipChurn    []float64 `json:"ownership_churn"`
	TeamStability     []float64 `json:"team_stability"` // 0..1
	ProjectsConverted []int     `json:"projects_converted"`
	ActiveProducts    []int     `json:"active_products"`
	PeopleInTeams     []int     `json:"people_in_teams"`
	MedianTenureDays  []float64 `json:"median_tenure_days"`
}

type transitionData struct {
	From, To string
	KnownAt  string
	Rows     []projections.Transition
	Series   string // quarterSeries as JSON, for the charts' data attribute
}

// quarters reads from, to and known_at, defaulting to the ledger's first
// quarter and the current one.
func (s *server) quarterRange(r *http.Request) (from, to string, knownAt time.Time, quarters []string, err error) {
	q := s.query(r)
	from, to, knownAt = q.str("from"), q.str("to"), q.moment("known_at")
	if q.err != nil {
		return "", "", time.Time{}, nil, q.err
	}
	if to == "" {
		to = quarterOf(s.cfg.Now().In(s.cfg.Location))
	}
	if from == "" {
		c := timeControls{}
		s.sliderRange(r.Context(), &c)
		if t, perr := time.Parse(time.DateOnly, c.Min); perr == nil {
			from = quarterOf(t)
		} else {
			from = quarterOf(s.cfg.Now().In(s.cfg.Location).AddDate(-2, 0, 0))
		}
	}
	first, _, err := projections.ParseQuarter(from)
	if err != nil {
		return "", "", time.Time{}, nil, badRequest("from: %v", err)
	}
	last, _, err := projections.ParseQuarter(to)
	if err != nil {
		return "", "", time.Time{}, nil, badRequest("to: %v", err)
	}
	if last.Before(first) {
		return "", "", time.Time{}, nil, badRequest("to: %s is before from %s", to, from)
	}
	for t := first; !t.After(last); t = t.AddDate(0, 3, 0) {
		if len(quarters) == maxQuarters {
			return "", "", time.Time{}, nil, badRequest("to: more than %d quarters from %s", maxQuarters, from)
		}
		quarters = append(quarters, quarterOf(t))
	}
	return from, to, knownAt, quarters, nil
}

// transitions computes the quarters side by side, a few at a time.
func (s *server) transitions(ctx context.Context, quarters []string, knownAt time.Time) ([]projections.Transition, error) {
	out := make([]projections.Transition, len(quarters))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(transitionWorkers)
	for i, q := range quarters {
		g.Go(func() error {
			t, err := s.rm.Transition(gctx, q, knownAt)
			out[i] = t
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("transition: %w", err)
	}
	return out, nil
}

func seriesOf(ts []projections.Transition) quarterSeries {
	var s quarterSeries
	for _, t := range ts {
		s.Quarters = append(s.Quarters, t.Quarter)
		share := 0.0
		if len(t.Funding) > 0 {
			share = t.Funding[0].ProductShare
		}
		s.ProductShare = append(s.ProductShare, share)
		s.OwnershipCoverage = append(s.OwnershipCoverage, t.OwnershipCoverage)
		s.OwnershipChurn = append(s.OwnershipChurn, t.OwnershipChurn)
		s.TeamStability = append(s.TeamStability, t.TeamStability)
		s.ProjectsConverted = append(s.ProjectsConverted, t.ProjectsConverted)
		s.ActiveProducts = append(s.ActiveProducts, t.ActiveProducts)
		s.PeopleInTeams = append(s.PeopleInTeams, t.PeopleInTeams)
		s.MedianTenureDays = append(s.MedianTenureDays, t.MedianTenureDays)
	}
	return s
}

func (s *server) transition(w http.ResponseWriter, r *http.Request) error {
	from, to, knownAt, quarters, err := s.quarterRange(r)
	if err != nil {
		return err
	}
	ts, err := s.transitions(r.Context(), quarters, knownAt)
	if err != nil {
		return err
	}
	series, err := json.Marshal(seriesOf(ts))
	if err != nil {
		return fmt.Errorf("transition series: %w", err)
	}
	d := transitionData{From: from, To: to, Rows: ts, Series: string(series)}
	if !knownAt.IsZero() {
		d.KnownAt = knownAt.In(s.cfg.Location).Format("2006-01-02T15:04:05")
	}
	return s.render(w, r, http.StatusOK, "transition", "Transition", d)
}

func (s *server) transitionJSON(w http.ResponseWriter, r *http.Request) error {
	_, _, knownAt, quarters, err := s.quarterRange(r)
	if err != nil {
		return err
	}
	ts, err := s.transitions(r.Context(), quarters, knownAt)
	if err != nil {
		return err
	}
	return writeJSON(w, r, seriesOf(ts))
}
