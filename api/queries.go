package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"koers/domain"
	"koers/projections"
)

// maxQuarters bounds the quarters of one transition report (ten years).
const maxQuarters = 40

// params reads a request's query parameters, refusing unknown and repeated
// ones, and remembers the first error.
type params struct {
	q   url.Values
	loc *time.Location
	err error
}

func newParams(r *http.Request, loc *time.Location, known ...string) *params {
	p := &params{q: r.URL.Query(), loc: loc}
	allowed := map[string]bool{}
	for _, k := range known {
		allowed[k] = true
	}
	for name, vs := range p.q {
		switch {
		case !allowed[name]:
			p.fail(name, "unknown parameter")
		case len(vs) > 1:
			p.fail(name, "given more than once")
		}
	}
	return p
}

func (p *params) fail(name, format string, a ...any) {
	if p.err == nil {
		p.err = &ParameterError{Name: name, Problem: fmt.Sprintf(format, a...)}
	}
}

func (p *params) str(name string) string { return p.q.Get(name) }

// id reads an optional id parameter.
func (p *params) id(name string) string {
	v := p.q.Get(name)
	if v != "" {
		if err := domain.ValidID(v); err != nil {
			p.fail(name, "%v", err)
		}
	}
	return v
}

// time reads an optional date or RFC 3339 time; zero when absent.
func (p *params) time(name string) time.Time {
	v := p.q.Get(name)
	if v == "" {
		return time.Time{}
	}
	t, err := domain.ParseEffective(v, p.loc)
	if err != nil && p.err == nil {
		p.err = &ParameterError{Name: name, Problem: err.Error(), Err: err}
	}
	return t
}

func (p *params) uint(name string, max uint64) uint64 {
	v := p.q.Get(name)
	if v == "" {
		return 0
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n > max {
		p.fail(name, "%.20q: want a whole number from 0 to %d", v, max)
	}
	return n
}

func (p *params) bool(name string) bool {
	switch v := p.q.Get(name); v {
	case "", "false":
		return false
	case "true":
		return true
	default:
		p.fail(name, "%.20q: want true or false", v)
		return false
	}
}

// page reads limit and cursor, the paging of every list but the audit's.
func (p *params) page() projections.Page {
	pg := projections.Page{Limit: int(p.uint("limit", projections.MaxPageLimit)), Cursor: p.str("cursor")}
	if p.q.Has("limit") && pg.Limit == 0 {
		p.fail("limit", "want 1 to %d", projections.MaxPageLimit)
	}
	return pg
}

// pageParam answers a page the read models refused as a bad parameter
// (400) naming limit or cursor.
func pageParam(err error) error {
	var pe *projections.PageError
	if errors.As(err, &pe) {
		return &ParameterError{Name: pe.Param, Problem: pe.Problem}
	}
	return err
}

func (p *params) at() projections.At {
	return projections.At{AsOf: p.time("as_of"), KnownAt: p.time("known_at")}
}

func (s *server) getOrg(w http.ResponseWriter, r *http.Request) error {
	p := newParams(r, s.cfg.Location, "as_of", "known_at", "limit", "cursor")
	at, page := p.at(), p.page()
	if p.err != nil {
		return p.err
	}
	org, err := s.cfg.ReadModels.Organisation(r.Context(), at, page)
	if err != nil {
		return pageParam(err)
	}
	return writeJSON(w, http.StatusOK, orgOut(org))
}

// noHistory are the aggregate kinds without attributes, and where their
// state is read instead.
var noHistory = map[domain.AggregateKind]string{
	domain.KindDecision: "GET /v1/decisions/{id}",
	domain.KindProposal: "GET /v1/proposals/{id}",
}

func (s *server) getHistory(w http.ResponseWriter, r *http.Request) error {
	ref, err := pathRef(r)
	if err != nil {
		return err
	}
	if instead, ok := noHistory[ref.Kind]; ok {
		return &ParameterError{Name: "kind", Problem: fmt.Sprintf("a %s has no attribute history: read it at %s", ref.Kind, instead)}
	}
	p := newParams(r, s.cfg.Location, "known_at", "all", "limit", "cursor")
	opts := projections.HistoryOptions{KnownAt: p.time("known_at"), All: p.bool("all")}
	page := p.page()
	if p.err != nil {
		return p.err
	}
	hist, err := s.cfg.ReadModels.History(r.Context(), ref, opts, page)
	if err != nil {
		return pageParam(err)
	}
	return writeJSON(w, http.StatusOK, historyOutOf(ref, hist))
}

func (s *server) getAudit(w http.ResponseWriter, r *http.Request) error {
	p := newParams(r, s.cfg.Location, "by", "authority", "kind", "subject", "from", "to", "axis", "before", "limit")
	f := projections.AuditFilter{Actor: p.id("by"), Mandate: p.id("authority"), ChangeKind: p.str("kind"),
		From: p.time("from"), To: p.time("to"), Before: p.uint("before", 1<<63-1),
		Limit: int(p.uint("limit", projections.MaxAuditLimit))}
	if v := p.str("subject"); v != "" {
		ref, err := domain.ParseRef(v)
		if err != nil {
			p.fail("subject", "%v", err)
		}
		f.Aggregate = ref.String()
	}
	if f.ChangeKind != "" && !slices.Contains(domain.ChangeKinds(), f.ChangeKind) {
		p.fail("kind", "unknown change kind %.40q (e.g. person.move; see package domain)", f.ChangeKind)
	}
	switch p.str("axis") {
	case "", "recorded":
		f.Axis = projections.Recorded
	case "effective":
		f.Axis = projections.Effective
	default:
		p.fail("axis", "%.20q: want recorded or effective", p.str("axis"))
	}
	if p.q.Has("limit") && f.Limit == 0 {
		p.fail("limit", "want 1 to %d", projections.MaxAuditLimit)
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		p.fail("to", "%s is not after from %s", f.To.Format(time.RFC3339), f.From.Format(time.RFC3339))
	}
	if p.err != nil {
		return p.err
	}
	page, err := s.cfg.ReadModels.Audit(r.Context(), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, auditOutOf(page))
}

func (s *server) getFunding(w http.ResponseWriter, r *http.Request) error {
	period := r.PathValue("period")
	if err := domain.ValidID(period); err != nil {
		return &ParameterError{Name: "period", Problem: err.Error()}
	}
	p := newParams(r, s.cfg.Location, "as_of", "known_at", "account", "limit", "cursor")
	at, page := p.at(), p.page()
	account := p.str("account")
	// budget:<period> is the journal's counter-account of the total.
	if account != "" && account != "budget:"+period {
		if _, err := domain.ParseAccount(account); err != nil {
			p.fail("account", "%v", err)
		}
	}
	if p.err != nil {
		return p.err
	}
	if account != "" {
		journal, err := s.cfg.ReadModels.Journal(r.Context(), period, account, at, page)
		if err != nil {
			return pageParam(err)
		}
		return writeJSON(w, http.StatusOK, journalOutOf(period, account, at, journal))
	}
	bs, err := s.cfg.ReadModels.Balances(r.Context(), period, at, page)
	if err != nil {
		return pageParam(err)
	}
	return writeJSON(w, http.StatusOK, balancesOutOf(period, at, bs))
}

func (s *server) getTransition(w http.ResponseWriter, r *http.Request) error {
	p := newParams(r, s.cfg.Location, "from", "to", "known_at")
	knownAt := p.time("known_at")
	fromQ, toQ := p.str("from"), p.str("to")
	if toQ == "" {
		toQ = fromQ
	}
	var first, last time.Time
	var err error
	if fromQ == "" {
		p.fail("from", "is required (a quarter such as 2026-Q1)")
	} else if first, _, err = projections.ParseQuarter(fromQ); err != nil {
		p.err = &ParameterError{Name: "from", Problem: err.Error(), Err: err}
	} else if last, _, err = projections.ParseQuarter(toQ); err != nil {
		p.err = &ParameterError{Name: "to", Problem: err.Error(), Err: err}
	} else if last.Before(first) {
		p.fail("to", "%s is before from %s", toQ, fromQ)
	}
	if p.err != nil {
		return p.err
	}
	var quarters []string
	for q := first; !q.After(last); q = q.AddDate(0, 3, 0) {
		if len(quarters) == maxQuarters {
			return &ParameterError{Name: "to", Problem: fmt.Sprintf("more than %d quarters from %s", maxQuarters, fromQ)}
		}
		quarters = append(quarters, fmt.Sprintf("%d-Q%d", q.Year(), (int(q.Month())-1)/3+1))
	}
	ts := make([]projections.Transition, 0, len(quarters))
	for _, q := range quarters {
		t, err := s.cfg.ReadModels.Transition(r.Context(), q, knownAt)
		if err != nil {
			return err
		}
		ts = append(ts, t)
	}
	return writeJSON(w, http.StatusOK, transitionReportOutOf(fromQ, toQ, knownAt, ts))
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// The answers. Field names are snake_case, times RFC 3339, amounts decimal
// strings with their minor units beside them.

type orgOutT struct {
	AsOf         time.Time        `json:"as_of"`
	KnownAt      *time.Time       `json:"known_at,omitempty"`
	Sequence     uint64           `json:"sequence"`
	ValueStreams []valueStreamOut `json:"value_streams"`
	Teams        []teamOut        `json:"teams"`
	Projects     []projectOut     `json:"projects"`
	Unassigned   []personOut      `json:"unassigned"`
	// Totals counts the whole organisation, whatever the page holds.
	Totals orgTotalsOut `json:"totals"`
	// Next is the cursor= of the next page; "" on the last page.
	Next string `json:"next"`
}

type orgTotalsOut struct {
	ValueStreams  int `json:"value_streams"`
	Products      int `json:"products"`
	Teams         int `json:"teams"`
	PeopleInTeams int `json:"people_in_teams"`
	Projects      int `json:"projects"`
	Unassigned    int `json:"unassigned"`
}

type valueStreamOut struct {
	ID       string       `json:"id"`
	Name     string       `json:"name"`
	Status   string       `json:"status"`
	Products []productOut `json:"products"`
}

type productOut struct {
	ID          string                      `json:"id"`
	Name        string                      `json:"name"`
	ValueStream string                      `json:"valuestream"`
	Status      string                      `json:"status"`
	Owner       string                      `json:"owner,omitempty"`
	Project     string                      `json:"project,omitempty"`
	Teams       []teamOut                   `json:"teams"`
	KPIs        []projections.KPIDefinition `json:"kpis"`
}

type teamOut struct {
	ID       string      `json:"id"`
	Name     string      `json:"name"`
	Type     string      `json:"type"`
	Status   string      `json:"status"`
	Products []string    `json:"products"`
	Members  []personOut `json:"members"`
}

type personOut struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Team   string `json:"team,omitempty"`
	Status string `json:"status"`
}

type projectOut struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	ValueStream string `json:"valuestream,omitempty"`
	Status      string `json:"status"`
	Product     string `json:"product,omitempty"`
}

func orgOut(o projections.Organisation) orgOutT {
	out := orgOutT{AsOf: o.AsOf, KnownAt: optTime(o.KnownAt), Sequence: o.Sequence,
		ValueStreams: make([]valueStreamOut, len(o.ValueStreams)), Teams: teamsOut(o.Teams),
		Projects: make([]projectOut, len(o.Projects)), Unassigned: peopleOut(o.Unassigned), Next: o.Next,
		Totals: orgTotalsOut{ValueStreams: o.Totals.ValueStreams, Products: o.Totals.Products, Teams: o.Totals.Teams,
			PeopleInTeams: o.Totals.PeopleInTeams, Projects: o.Totals.Projects, Unassigned: o.Totals.Unassigned}}
	for i, vs := range o.ValueStreams {
		v := valueStreamOut{ID: vs.ID, Name: vs.Name, Status: vs.Status, Products: make([]productOut, len(vs.Products))}
		for j, p := range vs.Products {
			kpis := p.KPIs
			if kpis == nil {
				kpis = []projections.KPIDefinition{}
			}
			v.Products[j] = productOut{ID: p.ID, Name: p.Name, ValueStream: p.ValueStream, Status: p.Status, Owner: p.Owner,
				Project: p.Project, Teams: teamsOut(p.Teams), KPIs: kpis}
		}
		out.ValueStreams[i] = v
	}
	for i, p := range o.Projects {
		out.Projects[i] = projectOut{ID: p.ID, Name: p.Name, ValueStream: p.ValueStream, Status: p.Status, Product: p.Product}
	}
	return out
}

func teamsOut(ts []projections.Team) []teamOut {
	out := make([]teamOut, len(ts))
	for i, t := range ts {
		products := t.Products
		if products == nil {
			products = []string{}
		}
		out[i] = teamOut{ID: t.ID, Name: t.Name, Type: t.Type, Status: t.Status, Products: products, Members: peopleOut(t.Members)}
	}
	return out
}

func peopleOut(ps []projections.Person) []personOut {
	out := make([]personOut, len(ps))
	for i, p := range ps {
		out[i] = personOut{ID: p.ID, Name: p.Name, Team: p.Team, Status: p.Status}
	}
	return out
}

type historyOut struct {
	Kind  string    `json:"kind"`
	ID    string    `json:"id"`
	Facts []factOut `json:"facts"`
	// Next is the cursor= of the next page; "" on the last page.
	Next string `json:"next"`
}

type factOut struct {
	Attribute          string     `json:"attribute"`
	Value              string     `json:"value"`
	Unset              bool       `json:"unset,omitempty"`
	ValidFrom          time.Time  `json:"valid_from"`
	ValidTo            *time.Time `json:"valid_to,omitempty"`
	RecordedSequence   uint64     `json:"recorded_sequence"`
	RecordedAt         time.Time  `json:"recorded_at"`
	SupersededSequence uint64     `json:"superseded_sequence,omitempty"`
	Decision           string     `json:"decision"`
}

type auditOut struct {
	Decisions []decisionLogOut `json:"decisions"`
	// Next is the before= of the next page; 0 on the last page.
	Next uint64 `json:"next"`
}

type decisionLogOut struct {
	ID                string          `json:"id"`
	By                string          `json:"by"`
	Authority         string          `json:"authority"`
	Reason            string          `json:"reason"`
	Refs              []string        `json:"refs"`
	Effective         time.Time       `json:"effective"`
	RecordedAt        time.Time       `json:"recorded_at"`
	FirstSequence     uint64          `json:"first_sequence"`
	Sequence          uint64          `json:"sequence"`
	Changes           json.RawMessage `json:"changes"`
	Effects           []domain.Effect `json:"effects"`
	Retracts          string          `json:"retracts,omitempty"`
	RetractedBy       string          `json:"retracted_by,omitempty"`
	RetractedSequence uint64          `json:"retracted_sequence,omitempty"`
	// AuthorityChain is the decision's mandate and those above it when it
	// was recorded, the mandate first and the root last.
	AuthorityChain []domain.ChainLink `json:"authority_chain"`
	// Approvers are the board members whose approvals decided it.
	Approvers []string `json:"approvers"`
}

func decisionOut(d projections.Decision) decisionLogOut {
	refs, effects, changes := d.Refs, d.Effects, d.Changes
	if refs == nil {
		refs = []string{}
	}
	if effects == nil {
		effects = []domain.Effect{}
	}
	if len(changes) == 0 {
		changes = json.RawMessage("[]")
	}
	return decisionLogOut{ID: d.ID, By: d.Actor, Authority: d.Mandate, Reason: d.Reason, Refs: refs,
		Effective: d.Effective, RecordedAt: d.RecordedAt, FirstSequence: d.FirstSequence, Sequence: d.Sequence,
		Changes: changes, Effects: effects, Retracts: d.Retracts, RetractedBy: d.RetractedBy, RetractedSequence: d.RetractedSequence,
		AuthorityChain: nonNil(d.AuthorityChain), Approvers: nonNil(d.Approvers)}
}

func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}

type fundingOut struct {
	Period  string     `json:"period"`
	AsOf    *time.Time `json:"as_of,omitempty"`
	KnownAt *time.Time `json:"known_at,omitempty"`
	// Balances when no account is asked for, Journal (of Account) when one is.
	Balances []balanceOut     `json:"balances,omitempty"`
	Account  string           `json:"account,omitempty"`
	Journal  []journalLineOut `json:"journal,omitempty"`
	// Next is the cursor= of the next page of Balances or Journal; "" on
	// the last page.
	Next string `json:"next"`
}

type balanceOut struct {
	Account  string `json:"account"`
	Currency string `json:"currency"`
	Amount   string `json:"amount"`
	Minor    int64  `json:"minor"`
}

type journalLineOut struct {
	Sequence   uint64    `json:"sequence"`
	Line       int       `json:"line"`
	Decision   string    `json:"decision"`
	EventType  string    `json:"event_type"`
	Account    string    `json:"account"`
	Currency   string    `json:"currency"`
	Amount     string    `json:"amount"`
	Minor      int64     `json:"minor"`
	Effective  time.Time `json:"effective"`
	RecordedAt time.Time `json:"recorded_at"`
	// CounterAccount is the other side of the movement ("pool", or
	// several joined by ", ").
	CounterAccount string `json:"counter_account"`
	// Balance is the account's balance after the line, with BalanceMinor
	// its minor units.
	Balance      string `json:"balance"`
	BalanceMinor int64  `json:"balance_minor"`
}

type transitionReportOut struct {
	From     string          `json:"from"`
	To       string          `json:"to"`
	KnownAt  *time.Time      `json:"known_at,omitempty"`
	Quarters []transitionOut `json:"quarters"`
}

type transitionOut struct {
	Quarter           string            `json:"quarter"`
	From              time.Time         `json:"from"`
	To                time.Time         `json:"to"`
	Funding           []fundingShareOut `json:"funding"`
	ActiveProducts    int               `json:"active_products"`
	OwnedProducts     int               `json:"owned_products"`
	OwnershipCoverage float64           `json:"ownership_coverage"`
	OwnerChanges      int               `json:"owner_changes"`
	OwnershipChurn    float64           `json:"ownership_churn"`
	PeopleAtStart     int               `json:"people_at_start"`
	StayedInTeam      int               `json:"stayed_in_team"`
	TeamStability     float64           `json:"team_stability"`
	ProjectsConverted int               `json:"projects_converted"`
}

type fundingShareOut struct {
	Currency     string  `json:"currency"`
	Products     string  `json:"products"`
	ValueStreams string  `json:"valuestreams"`
	Projects     string  `json:"projects"`
	ProductShare float64 `json:"product_share"`
}

func transitionOutOf(t projections.Transition) transitionOut {
	out := transitionOut{Quarter: t.Quarter, From: t.From, To: t.To, Funding: make([]fundingShareOut, len(t.Funding)),
		ActiveProducts: t.ActiveProducts, OwnedProducts: t.OwnedProducts, OwnershipCoverage: t.OwnershipCoverage,
		OwnerChanges: t.OwnerChanges, OwnershipChurn: t.OwnershipChurn, PeopleAtStart: t.PeopleAtStart,
		StayedInTeam: t.StayedInTeam, TeamStability: t.TeamStability, ProjectsConverted: t.ProjectsConverted}
	for i, f := range t.Funding {
		out.Funding[i] = fundingShareOut{Currency: string(f.Currency), Products: f.Products.Format(f.Currency),
			ValueStreams: f.ValueStreams.Format(f.Currency), Projects: f.Projects.Format(f.Currency), ProductShare: f.ProductShare}
	}
	return out
}
