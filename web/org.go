package web

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"koers/domain"
	"koers/projections"
)

// explorerData is the organisation explorer's page.
type explorerData struct {
	Controls  timeControls
	Org       wholeOrg
	Names     names
	Idle      []projections.Team // active teams that serve no product
	Query     string
	Results   []Ref
	Truncated bool
}

func (s *server) explorer(w http.ResponseWriter, r *http.Request) error {
	q := s.query(r)
	at := q.at()
	search := q.str("q")
	if q.err != nil {
		return q.err
	}
	o, err := s.org(r.Context(), at)
	if err != nil {
		return err
	}
	d := explorerData{Controls: s.controls(at), Org: o, Names: namesOf(o.Organisation), Query: search}
	s.sliderRange(r.Context(), &d.Controls)
	for _, t := range o.Teams {
		if len(t.Products) == 0 {
			d.Idle = append(d.Idle, t)
		}
	}
	if search != "" {
		d.Results, d.Truncated = find(d.Names, search)
	}
	return s.render(w, r, http.StatusOK, "explorer", "Organisation", d)
}

// maxResults bounds a search's answer.
const maxResults = 50

// find returns what has query in its name or id, people first.
func find(n names, query string) ([]Ref, bool) {
	query = strings.ToLower(query)
	var out []Ref
	for key, name := range n {
		kind, id, _ := strings.Cut(key, ":")
		if strings.Contains(strings.ToLower(name), query) || strings.Contains(id, query) {
			out = append(out, Ref{Kind: kind, ID: id, Name: name})
		}
	}
	order := map[string]int{"person": 0, "team": 1, "product": 2, "valuestream": 3, "project": 4}
	slices.SortFunc(out, func(a, b Ref) int {
		return cmp.Or(cmp.Compare(order[a.Kind], order[b.Kind]), cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	if len(out) > maxResults {
		return out[:maxResults], true
	}
	return out, false
}

// search answers the explorer's search box (htmx) or a page of its own.
func (s *server) search(w http.ResponseWriter, r *http.Request) error {
	q := s.query(r)
	at := q.at()
	search := q.str("q")
	if q.err != nil {
		return q.err
	}
	o, err := s.org(r.Context(), at)
	if err != nil {
		return err
	}
	d := explorerData{Controls: s.controls(at), Names: namesOf(o.Organisation), Query: search}
	if search != "" {
		d.Results, d.Truncated = find(d.Names, search)
	}
	return s.render(w, r, http.StatusOK, "search", "Search", d)
}

// sliderRange sets the as-of slider from the ledger's genesis (the root
// mandate's grant) to a year from now; left as it is when unknown.
func (s *server) sliderRange(ctx context.Context, c *timeControls) {
	h, err := s.rm.History(ctx, domain.Ref{Kind: domain.KindMandate, ID: domain.RootMandate}, projections.HistoryOptions{}, projections.Page{Limit: 1})
	if err == nil && len(h.Facts) > 0 {
		c.Min = h.Facts[0].ValidFrom.In(s.cfg.Location).Format(time.DateOnly)
	}
}

// maxFacts bounds the history one aggregate page shows.
const maxFacts = projections.MaxPageLimit

// change is one entry of a timeline: an attribute's value from a date, as
// a decision set it.
type change struct {
	At         time.Time
	Until      *time.Time
	Attribute  string
	Value      string
	Ref        *Ref // the value is an aggregate
	Unset      bool
	Decision   string
	Superseded bool
	RecordedAt time.Time
}

type entityData struct {
	Ref      Ref
	KindName string
	Controls timeControls
	All      bool // superseded beliefs shown
	Now      []change
	Timeline []change
	More     string // the history's next cursor: more than maxFacts
	Names    names
	// What the organisation says about it at the as-of date.
	ValueStream  *projections.ValueStream
	Product      *projections.Product
	Team         *projections.Team
	Person       *projections.Person
	TeamOf       *projections.Team
	Measurements []projections.Measurement
	Decisions    []projections.Decision
	MoreDecision bool
	Chain        []mandateLink // a mandate's grant chain, up to the root
}

type mandateLink struct {
	ID, Holder string
}

// refAttrs are the attributes whose values are other aggregates.
var refAttrs = map[string]string{
	"team": "team", "owner": "person", "valuestream": "valuestream", "product": "product",
	"holder": "person", "grantor": "mandate", "project": "project",
}

func entity(kind domain.AggregateKind) func(*server, http.ResponseWriter, *http.Request) error {
	return func(s *server, w http.ResponseWriter, r *http.Request) error {
		id := r.PathValue("id")
		if err := domain.ValidID(id); err != nil {
			return notFoundError("no such " + kindLabels[string(kind)] + ": " + err.Error())
		}
		return s.entity(w, r, domain.Ref{Kind: kind, ID: id})
	}
}

// entityDecisions is how many of the decisions touching an aggregate its
// page lists; the audit has the rest.
const entityDecisions = 20

func (s *server) entity(w http.ResponseWriter, r *http.Request, ref domain.Ref) error {
	ctx := r.Context()
	q := s.query(r)
	at := q.at()
	all := q.str("all") == "true"
	if q.err != nil {
		return q.err
	}
	hist, err := s.rm.History(ctx, ref, projections.HistoryOptions{KnownAt: at.KnownAt, All: all}, projections.Page{Limit: maxFacts})
	if errors.Is(err, domain.ErrNotFound) {
		return notFoundError("the ledger knows no " + kindLabels[string(ref.Kind)] + " " + ref.ID)
	}
	if err != nil {
		return err
	}
	o, err := s.org(ctx, at)
	if err != nil {
		return err
	}
	n := namesOf(o.Organisation)
	asOf := at.AsOf
	if asOf.IsZero() {
		asOf = o.AsOf
	}
	d := entityData{KindName: kindLabels[string(ref.Kind)], Controls: s.controls(at), All: all, More: hist.Next, Names: n}
	for _, f := range hist.Facts {
		c := change{At: f.ValidFrom, Until: f.ValidTo, Attribute: f.Attribute, Value: f.Value, Unset: f.Unset,
			Decision: f.Decision, Superseded: f.SupersededSeq != 0, RecordedAt: f.RecordedAt}
		if k, ok := refAttrs[f.Attribute]; ok && !f.Unset {
			rf := n.Ref(k, f.Value)
			c.Ref = &rf
		}
		if p, ok := strings.CutPrefix(f.Attribute, "serves:"); ok {
			rf := n.Ref("product", p)
			c.Attribute, c.Ref = "serves", &rf
			if f.Unset {
				c.Value, c.Unset = "no longer", false
			} else {
				c.Value = "yes"
			}
		}
		if f.Attribute == "name" && !f.Unset && !c.Superseded && !f.ValidFrom.After(asOf) {
			n[string(ref.Kind)+":"+ref.ID] = f.Value
		}
		d.Timeline = append(d.Timeline, c)
		if !c.Superseded && !f.ValidFrom.After(asOf) && (f.ValidTo == nil || f.ValidTo.After(asOf)) && !f.Unset {
			d.Now = append(d.Now, c)
		}
	}
	slices.SortStableFunc(d.Timeline, func(a, b change) int {
		return cmp.Or(a.At.Compare(b.At), a.RecordedAt.Compare(b.RecordedAt), cmp.Compare(a.Attribute, b.Attribute))
	})
	d.Ref = n.Ref(string(ref.Kind), ref.ID)
	s.relations(&d, o, ref)
	if ref.Kind == domain.KindProduct {
		m, err := s.rm.Measurements(ctx, ref.ID, at, projections.Page{Limit: 200})
		if err != nil {
			return err
		}
		d.Measurements = m.Measurements
	}
	if ref.Kind == domain.KindMandate {
		if d.Chain, err = s.chain(ctx, ref.ID, at.KnownAt); err != nil {
			return err
		}
	}
	a, err := s.rm.Audit(ctx, projections.AuditFilter{Aggregate: ref.String(), Limit: entityDecisions})
	if err != nil {
		return err
	}
	if ref.Kind == domain.KindMandate {
		a, err = s.rm.Audit(ctx, projections.AuditFilter{Mandate: ref.ID, Limit: entityDecisions})
		if err != nil {
			return err
		}
	}
	d.Decisions, d.MoreDecision = a.Decisions, a.Next != 0
	return s.render(w, r, http.StatusOK, "entity", d.Ref.Label()+" ("+d.KindName+")", d)
}

// relations fills in what the organisation says about ref.
func (s *server) relations(d *entityData, o wholeOrg, ref domain.Ref) {
	for i, vs := range o.ValueStreams {
		if ref.Kind == domain.KindValueStream && vs.ID == ref.ID {
			d.ValueStream = &o.ValueStreams[i]
		}
		for j, p := range vs.Products {
			if ref.Kind == domain.KindProduct && p.ID == ref.ID {
				d.Product = &o.ValueStreams[i].Products[j]
			}
		}
	}
	for i, t := range o.Teams {
		if ref.Kind == domain.KindTeam && t.ID == ref.ID {
			d.Team = &o.Teams[i]
		}
		for j, m := range t.Members {
			if ref.Kind == domain.KindPerson && m.ID == ref.ID {
				d.Person, d.TeamOf = &o.Teams[i].Members[j], &o.Teams[i]
			}
		}
	}
}

// maxChain bounds how far up a grant chain the mandate page follows.
const maxChain = 16

// chain follows a mandate's grantors up to the root.
func (s *server) chain(ctx context.Context, id string, knownAt time.Time) ([]mandateLink, error) {
	var out []mandateLink
	seen := map[string]bool{}
	for i := 0; i < maxChain && id != "" && !seen[id]; i++ {
		seen[id] = true
		h, err := s.rm.History(ctx, domain.Ref{Kind: domain.KindMandate, ID: id}, projections.HistoryOptions{KnownAt: knownAt}, projections.Page{Limit: 100})
		if errors.Is(err, domain.ErrNotFound) {
			break
		}
		if err != nil {
			return nil, err
		}
		l := mandateLink{ID: id}
		next := ""
		for _, f := range h.Facts {
			switch f.Attribute {
			case "holder":
				l.Holder = f.Value
			case "grantor":
				next = f.Value
			}
		}
		out = append(out, l)
		id = next
	}
	return out, nil
}

// compareData is the organisation on two dates and what changed.
type compareData struct {
	A, B       string
	Names      names
	Moved      []moved
	Joined     []Ref
	Left       []Ref
	Owners     []ownerChange
	Launched   []Ref
	Retired    []Ref
	Formed     []Ref
	Disbanded  []Ref
	Assigned   []teamProduct
	Unassigned []teamProduct
	Totals     [2]projections.OrgTotals
	Asked      bool
}

type moved struct {
	Person   Ref
	From, To Ref
}

type ownerChange struct {
	Product  Ref
	From, To Ref
}

type teamProduct struct {
	Team, Product Ref
}

func (s *server) compare(w http.ResponseWriter, r *http.Request) error {
	q := s.query(r)
	a, b := q.date("a"), q.date("b")
	knownAt := q.moment("known_at")
	if q.err != nil {
		return q.err
	}
	d := compareData{}
	if a.IsZero() || b.IsZero() {
		now := s.cfg.Now().In(s.cfg.Location)
		d.A, d.B = now.AddDate(-1, 0, 0).Format(time.DateOnly), now.Format(time.DateOnly)
		return s.render(w, r, http.StatusOK, "compare", "Compare two dates", d)
	}
	d.A, d.B, d.Asked = a.In(s.cfg.Location).Format(time.DateOnly), b.In(s.cfg.Location).Format(time.DateOnly), true
	oa, err := s.org(r.Context(), projections.At{AsOf: a, KnownAt: knownAt})
	if err != nil {
		return err
	}
	ob, err := s.org(r.Context(), projections.At{AsOf: b, KnownAt: knownAt})
	if err != nil {
		return err
	}
	na, nb := namesOf(oa.Organisation), namesOf(ob.Organisation)
	d.Names = names{}
	for k, v := range na {
		d.Names[k] = v
	}
	for k, v := range nb {
		d.Names[k] = v
	}
	d.Totals = [2]projections.OrgTotals{oa.Totals, ob.Totals}
	diff(&d, oa.Organisation, ob.Organisation)
	return s.render(w, r, http.StatusOK, "compare", "Compare "+d.A+" and "+d.B, d)
}

// diff fills in what changed from a to b.
func diff(d *compareData, a, b projections.Organisation) {
	n := d.Names
	teamOf := func(o projections.Organisation) map[string]string {
		m := map[string]string{}
		for _, t := range o.Teams {
			for _, p := range t.Members {
				m[p.ID] = t.ID
			}
		}
		for _, p := range o.Unassigned {
			if _, ok := m[p.ID]; !ok {
				m[p.ID] = p.Team
			}
		}
		return m
	}
	ta, tb := teamOf(a), teamOf(b)
	for _, p := range sortedKeys(tb) {
		from, ok := ta[p]
		switch {
		case !ok:
			d.Joined = append(d.Joined, n.Ref("person", p))
		case from != tb[p]:
			d.Moved = append(d.Moved, moved{Person: n.Ref("person", p), From: n.Ref("team", from), To: n.Ref("team", tb[p])})
		}
	}
	for _, p := range sortedKeys(ta) {
		if _, ok := tb[p]; !ok {
			d.Left = append(d.Left, n.Ref("person", p))
		}
	}
	products := func(o projections.Organisation) map[string]projections.Product {
		m := map[string]projections.Product{}
		for _, vs := range o.ValueStreams {
			for _, p := range vs.Products {
				m[p.ID] = p
			}
		}
		return m
	}
	pa, pb := products(a), products(b)
	for _, id := range sortedKeys(pb) {
		old, ok := pa[id]
		switch {
		case !ok:
			d.Launched = append(d.Launched, n.Ref("product", id))
		case old.Owner != pb[id].Owner:
			d.Owners = append(d.Owners, ownerChange{Product: n.Ref("product", id), From: n.Ref("person", old.Owner), To: n.Ref("person", pb[id].Owner)})
		}
	}
	for _, id := range sortedKeys(pa) {
		if _, ok := pb[id]; !ok {
			d.Retired = append(d.Retired, n.Ref("product", id))
		}
	}
	teams := func(o projections.Organisation) map[string]projections.Team {
		m := map[string]projections.Team{}
		for _, t := range o.Teams {
			m[t.ID] = t
		}
		return m
	}
	tma, tmb := teams(a), teams(b)
	for _, id := range sortedKeys(tmb) {
		old, ok := tma[id]
		if !ok {
			d.Formed = append(d.Formed, n.Ref("team", id))
		}
		for _, p := range tmb[id].Products {
			if !slices.Contains(old.Products, p) {
				d.Assigned = append(d.Assigned, teamProduct{Team: n.Ref("team", id), Product: n.Ref("product", p)})
			}
		}
		for _, p := range old.Products {
			if !slices.Contains(tmb[id].Products, p) {
				d.Unassigned = append(d.Unassigned, teamProduct{Team: n.Ref("team", id), Product: n.Ref("product", p)})
			}
		}
	}
	for _, id := range sortedKeys(tma) {
		if _, ok := tmb[id]; !ok {
			d.Disbanded = append(d.Disbanded, n.Ref("team", id))
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
