package projections

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"koers/domain"
)

// Restatement compares a quarter's figures as known then (by default at
// the quarter's end) with the same figures as known now: the transition
// metrics and the portfolio review, figure by figure, with the decisions
// recorded since that restated the quarter — those effective before its
// end, and retractions of such decisions (a retraction takes effect when
// the decision it undoes did).
type Restatement struct {
	Quarter string `json:"quarter"`
	// Then is the recorded time the old figures are known at.
	Then         time.Time `json:"then"`
	ThenSequence uint64    `json:"then_sequence"`
	NowSequence  uint64    `json:"now_sequence"`
	// Differences are the figures that differ, the transition's first
	// (Subject empty), then the review's by subject and figure.
	Differences []RestatedFigure `json:"differences"`
	// Decisions restated the quarter, by sequence; at most
	// MaxRestatingDecisions.
	Decisions []RestatingDecision `json:"decisions"`
}

// RestatedFigure is one figure known differently now. Decisions are those
// of Restatement.Decisions that touched the subject (all of them for the
// transition's figures, which are the organisation's).
type RestatedFigure struct {
	Subject   string   `json:"subject"` // product:<id>, valuestream:<id>; empty: the transition
	Figure    string   `json:"figure"`
	Then      string   `json:"then"`
	Now       string   `json:"now"`
	Decisions []string `json:"decisions"`
}

// RestatingDecision is a decision recorded after Then that changed what
// the quarter looks like.
type RestatingDecision struct {
	ID         string    `json:"id"`
	Actor      string    `json:"by"`
	Effective  time.Time `json:"effective"`
	RecordedAt time.Time `json:"recorded_at"`
	Retracts   string    `json:"retracts,omitempty"`
	Kinds      []string  `json:"change_kinds"`
}

// MaxRestatingDecisions bounds the decisions of one restatement.
const MaxRestatingDecisions = 200

// Restatement returns quarter's restatement between then (zero: the
// quarter's end) and now.
func (db *DB) Restatement(ctx context.Context, quarter string, then time.Time) (Restatement, error) {
	q, err := domain.ParseQuarter(quarter)
	if err != nil {
		return Restatement{}, err
	}
	if then.IsZero() {
		then = q.To
	}
	r := Restatement{Quarter: q.Name, Then: then, Differences: []RestatedFigure{}, Decisions: []RestatingDecision{}}
	tThen, err := db.Transition(ctx, q.Name, then)
	if err != nil {
		return Restatement{}, err
	}
	tNow, err := db.Transition(ctx, q.Name, time.Time{})
	if err != nil {
		return Restatement{}, err
	}
	rThen, err := db.Review(ctx, q.Name, then)
	if err != nil {
		return Restatement{}, err
	}
	rNow, err := db.Review(ctx, q.Name, time.Time{})
	if err != nil {
		return Restatement{}, err
	}
	r.ThenSequence, r.NowSequence = rThen.Sequence, rNow.Sequence
	bySubject := map[string][]string{}
	err = db.read(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT d.id, d.actor, d.effective, d.recorded_at, coalesce(d.retracts, ''), d.change_kinds
			FROM decisions d
			WHERE d.seq > $1 AND d.seq <= $2
			  AND (d.effective < $3 OR EXISTS (SELECT 1 FROM decisions r WHERE r.id = d.retracts AND r.effective < $3))
			ORDER BY d.seq LIMIT $4`, int64(r.ThenSequence), int64(r.NowSequence), q.To, MaxRestatingDecisions)
		if err != nil {
			return err
		}
		r.Decisions, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (RestatingDecision, error) {
			var d RestatingDecision
			err := row.Scan(&d.ID, &d.Actor, &d.Effective, &d.RecordedAt, &d.Retracts, &d.Kinds)
			return d, err
		})
		if err != nil {
			return err
		}
		ids := make([]string, len(r.Decisions))
		for i, d := range r.Decisions {
			ids[i] = d.ID
		}
		rows, err = tx.Query(ctx, `SELECT DISTINCT agg, decision FROM subject_decisions($1) WHERE decision = ANY($2) ORDER BY 1, 2`,
			int64(r.NowSequence), ids)
		if err != nil {
			return err
		}
		return forEachRow(rows, func(row pgx.Rows) error {
			var agg, id string
			if err := row.Scan(&agg, &id); err != nil {
				return err
			}
			bySubject[agg] = append(bySubject[agg], id)
			return nil
		})
	})
	if err != nil {
		return Restatement{}, fmt.Errorf("restatement of %s: %w", quarter, err)
	}
	r.Decisions = nonNil(r.Decisions)
	all := make([]string, len(r.Decisions))
	for i, d := range r.Decisions {
		all[i] = d.ID
	}
	before, after := transitionFigures(tThen), transitionFigures(tNow)
	for _, name := range unionKeys(before, after) {
		if before[name] != after[name] {
			r.Differences = append(r.Differences, RestatedFigure{Figure: name, Then: before[name], Now: after[name], Decisions: all})
		}
	}
	before, after = reviewFigures(rThen), reviewFigures(rNow)
	for _, key := range unionKeys(before, after) {
		if before[key] == after[key] {
			continue
		}
		subject, figure, _ := strings.Cut(key, " ")
		ds := bySubject[subject]
		if ds == nil {
			ds = []string{}
		}
		r.Differences = append(r.Differences, RestatedFigure{Subject: subject, Figure: figure, Then: before[key], Now: after[key], Decisions: ds})
	}
	return r, nil
}

func unionKeys(a, b map[string]string) []string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

func ratio(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

// transitionFigures names a transition's figures as the reporting views
// do.
func transitionFigures(t Transition) map[string]string {
	m := map[string]string{
		"active_products": strconv.Itoa(t.ActiveProducts), "owned_products": strconv.Itoa(t.OwnedProducts),
		"ownership_coverage": ratio(t.OwnershipCoverage), "owner_changes": strconv.Itoa(t.OwnerChanges),
		"ownership_churn": ratio(t.OwnershipChurn), "people_at_start": strconv.Itoa(t.PeopleAtStart),
		"stayed_in_team": strconv.Itoa(t.StayedInTeam), "team_stability": ratio(t.TeamStability),
		"projects_converted": strconv.Itoa(t.ProjectsConverted), "people_in_teams": strconv.Itoa(t.PeopleInTeams),
		"median_tenure_days": ratio(t.MedianTenureDays), "teams_disbanded_after_close": strconv.Itoa(t.TeamsDisbandedAfterClose),
		"decisions_root": strconv.Itoa(t.DecisionsRoot), "decisions_delegated": strconv.Itoa(t.DecisionsDelegated),
		"decisions_board": strconv.Itoa(t.DecisionsBoard), "kpi_subjects": strconv.Itoa(t.KPISubjects),
		"kpi_subjects_covered": strconv.Itoa(t.KPISubjectsCovered), "kpi_coverage": ratio(t.KPICoverage),
	}
	for _, f := range t.Funding {
		c := f.Currency
		m["products."+string(c)] = f.Products.Format(c)
		m["value_streams."+string(c)] = f.ValueStreams.Format(c)
		m["projects."+string(c)] = f.Projects.Format(c)
		m["closed_projects."+string(c)] = f.ClosedProjects.Format(c)
		m["product_share."+string(c)] = ratio(f.ProductShare)
	}
	return m
}

// reviewFigures names a review's figures "<kind>:<id> <figure>".
func reviewFigures(r Review) map[string]string {
	m := map[string]string{}
	add := func(s ReviewSubject) {
		p := string(s.Kind) + ":" + s.ID + " "
		m[p+"status_end"] = s.StatusEnd
		if s.Kind == domain.KindProduct {
			m[p+"valuestream"] = s.ValueStream
			m[p+"owner_end"] = s.OwnerEnd
			m[p+"owner_changes"] = strconv.Itoa(s.OwnerChanges)
		}
		m[p+"teams"] = strings.Join(s.Teams, ",")
		m[p+"stayed_in_team"] = fmt.Sprintf("%d/%d", s.StayedInTeam, s.PeopleAtStart)
		m[p+"decisions"] = strconv.Itoa(s.DecisionCount)
		for _, f := range s.Funding {
			c := f.Currency
			m[p+"allocated."+string(c)] = f.Allocated.Format(c)
			m[p+"shifted_in."+string(c)] = f.ShiftedIn.Format(c)
			m[p+"shifted_out."+string(c)] = f.ShiftedOut.Format(c)
			m[p+"released."+string(c)] = f.Released.Format(c)
			m[p+"balance."+string(c)] = f.Balance.Format(c)
		}
		for _, k := range s.KPIs {
			kp := p + "kpi:" + k.KPI + "."
			m[kp+"measurements"] = strconv.Itoa(k.Measurements)
			m[kp+"last"] = k.Last
			m[kp+"target"] = k.Target
			on := ""
			if k.OnTarget != nil {
				on = strconv.FormatBool(*k.OnTarget)
			}
			m[kp+"on_target"] = on
			m[kp+"trend"] = k.Trend
		}
	}
	for _, v := range r.ValueStreams {
		add(v.ReviewSubject)
		for _, p := range v.Products {
			add(p)
		}
	}
	return m
}
