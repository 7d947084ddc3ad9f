package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"koers/domain"
	"koers/projections"
)

// maxPeriods bounds the budget periods the funding pages list.
const maxPeriods = 100

// periods lists the budget periods opened so far, newest first, from the
// budget.open decisions.
func (s *server) periods(ctx context.Context) ([]string, error) {
	a, err := s.rm.Audit(ctx, projections.AuditFilter{ChangeKind: "budget.open", Limit: maxPeriods})
	if err != nil {
		return nil, fmt.Errorf("budget periods: %w", err)
	}
	var out []string
	for _, d := range a.Decisions {
		var cs []struct {
			Kind, Period string
		}
		if json.Unmarshal(d.Changes, &cs) != nil {
			continue
		}
		for _, c := range cs {
			if c.Kind == "budget.open" && !slices.Contains(out, c.Period) {
				out = append(out, c.Period)
			}
		}
	}
	slices.Sort(out)
	slices.Reverse(out)
	return out, nil
}

// fundingIndex sends to the newest period not in the future, or lists
// none.
func (s *server) fundingIndex(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.periods(r.Context())
	if err != nil {
		return err
	}
	year := fmt.Sprint(s.cfg.Now().In(s.cfg.Location).Year())
	for _, p := range ps {
		if p <= year {
			http.Redirect(w, r, "/funding/"+url.PathEscape(p), http.StatusSeeOther)
			return nil
		}
	}
	if len(ps) > 0 {
		http.Redirect(w, r, "/funding/"+url.PathEscape(ps[0]), http.StatusSeeOther)
		return nil
	}
	return s.render(w, r, http.StatusOK, "funding", "Funding", fundingData{})
}

// maxAccounts bounds the accounts of a period the page reads (pages of
// projections.MaxPageLimit).
const maxAccountPages = 10

// balances reads every balance of a period at at, at most maxAccountPages.
func (s *server) balances(ctx context.Context, period string, at projections.At) ([]projections.Balance, error) {
	var out []projections.Balance
	pg := projections.Page{Limit: projections.MaxPageLimit}
	for i := 0; i < maxAccountPages; i++ {
		b, err := s.rm.Balances(ctx, period, at, pg)
		if err != nil {
			return nil, err
		}
		out = append(out, b.Balances...)
		if b.Next == "" {
			return out, nil
		}
		pg.Cursor = b.Next
	}
	return nil, fmt.Errorf("balances of %s: more than %d accounts", period, maxAccountPages*projections.MaxPageLimit)
}

type balanceRow struct {
	Account string
	Ref     Ref
	Amount  string
	Minor   int64
}

type balanceGroup struct {
	Title string
	Rows  []balanceRow
	Total string
}

type fundingData struct {
	Period   string
	Periods  []string
	Controls timeControls
	Currency string
	Total    string
	Groups   []balanceGroup
	FlowsURL string
}

func validPeriod(p string) error {
	if err := domain.ValidID(p); err != nil {
		return notFoundError("no such budget period: " + err.Error())
	}
	return nil
}

func (s *server) funding(w http.ResponseWriter, r *http.Request) error {
	period := r.PathValue("period")
	if err := validPeriod(period); err != nil {
		return err
	}
	q := s.query(r)
	at := q.at()
	if q.err != nil {
		return q.err
	}
	ps, err := s.periods(r.Context())
	if err != nil {
		return err
	}
	if !slices.Contains(ps, period) {
		return notFoundError("no budget period " + period + " was opened")
	}
	bs, err := s.balances(r.Context(), period, at)
	if err != nil {
		return err
	}
	o, err := s.org(r.Context(), at)
	if err != nil {
		return err
	}
	n := namesOf(o.Organisation)
	d := fundingData{Period: period, Periods: ps, Controls: s.controls(at)}
	flows := url.Values{}
	if d.Controls.AsOf != "" {
		flows.Set("as_of", d.Controls.AsOf)
	}
	if d.Controls.KnownAt != "" {
		flows.Set("known_at", d.Controls.KnownAt)
	}
	d.FlowsURL = "/funding/" + url.PathEscape(period) + "/flows.json"
	if len(flows) > 0 {
		d.FlowsURL += "?" + flows.Encode()
	}
	groups := map[string]*balanceGroup{}
	titles := []struct{ kind, title string }{{"pool", "Unallocated"}, {"valuestream", "Value streams"}, {"product", "Products"}, {"project", "Projects"}}
	for _, t := range titles {
		groups[t.kind] = &balanceGroup{Title: t.title}
	}
	sums := map[string]domain.Amount{}
	var cur domain.Currency
	for _, b := range bs {
		cur = b.Currency
		kind, _, _ := strings.Cut(b.Account, ":")
		if kind == "budget" {
			d.Total = (-b.Minor).Format(b.Currency)
			continue
		}
		g, ok := groups[kind]
		if !ok {
			continue
		}
		g.Rows = append(g.Rows, balanceRow{Account: b.Account, Ref: n.Account(b.Account), Amount: b.Amount(), Minor: int64(b.Minor)})
		sums[kind] += b.Minor
	}
	d.Currency = string(cur)
	for _, t := range titles {
		g := groups[t.kind]
		g.Total = sums[t.kind].Format(cur)
		if len(g.Rows) > 0 {
			d.Groups = append(d.Groups, *g)
		}
	}
	return s.render(w, r, http.StatusOK, "funding", "Funding "+period, d)
}

// flowsOut is a period's Sankey: nodes and links, every amount exact in
// minor units beside the value the chart draws.
type flowsOut struct {
	Period     string      `json:"period"`
	Currency   string      `json:"currency"`
	TotalMinor int64       `json:"total_minor"`
	Total      string      `json:"total"`
	Nodes      []flowNode  `json:"nodes"`
	Links      []flowLink  `json:"links"`
	Accounts   []flowOwned `json:"accounts"`
}

type flowNode struct {
	Name    string `json:"name"` // unique: what the links name
	Label   string `json:"label"`
	Account string `json:"account,omitempty"`
	URL     string `json:"url,omitempty"`
	Depth   int    `json:"depth"`
}

type flowLink struct {
	Source string  `json:"source"`
	Target string  `json:"target"`
	Value  float64 `json:"value"` // for drawing only
	Minor  int64   `json:"minor"`
	Amount string  `json:"amount"`
}

// flowOwned is an account's own balance: what stays on it.
type flowOwned struct {
	Account string `json:"account"`
	Minor   int64  `json:"minor"`
	Amount  string `json:"amount"`
}

// flows answers the Sankey of a period as of a date: the budget's total
// flows to the pool and to the value streams, each value stream's to its
// products and projects (as the organisation places them at that date;
// those it does not place hang off the budget itself).
func (s *server) flows(w http.ResponseWriter, r *http.Request) error {
	period := r.PathValue("period")
	if err := validPeriod(period); err != nil {
		return err
	}
	q := s.query(r)
	at := q.at()
	if q.err != nil {
		return q.err
	}
	bs, err := s.balances(r.Context(), period, at)
	if err != nil {
		return err
	}
	o, err := s.org(r.Context(), at)
	if err != nil {
		return err
	}
	return writeJSON(w, r, flowsOf(period, bs, o.Organisation))
}

func flowsOf(period string, bs []projections.Balance, o projections.Organisation) flowsOut {
	n := namesOf(o)
	streamOf := map[string]string{}
	for _, vs := range o.ValueStreams {
		for _, p := range vs.Products {
			streamOf["product:"+p.ID] = vs.ID
		}
	}
	for _, p := range o.Projects {
		if p.ValueStream != "" {
			streamOf["project:"+p.ID] = p.ValueStream
		}
	}
	out := flowsOut{Period: period, Nodes: []flowNode{}, Links: []flowLink{}, Accounts: []flowOwned{}}
	var cur domain.Currency
	budget := "budget:" + period
	balance := map[string]domain.Amount{}
	for _, b := range bs {
		cur = b.Currency
		if b.Account == budget {
			out.TotalMinor = -int64(b.Minor)
			continue
		}
		if b.Minor != 0 {
			balance[b.Account] = b.Minor
			out.Accounts = append(out.Accounts, flowOwned{Account: b.Account, Minor: int64(b.Minor), Amount: b.Amount()})
		}
	}
	out.Currency, out.Total = string(cur), domain.Amount(out.TotalMinor).Format(cur)
	root := "Budget " + period
	out.Nodes = append(out.Nodes, flowNode{Name: root, Label: root, Account: budget, Depth: 0})
	// A value stream's inflow is its own balance and its children's.
	inflow := map[string]domain.Amount{}
	children := map[string][]string{}
	var loose []string
	for _, acc := range sortedKeys(balance) {
		kind, id, _ := strings.Cut(acc, ":")
		switch kind {
		case "valuestream":
			inflow[id] += balance[acc]
		case "product", "project":
			if vs, ok := streamOf[acc]; ok {
				inflow[vs] += balance[acc]
				children[vs] = append(children[vs], acc)
			} else {
				loose = append(loose, acc)
			}
		}
	}
	node := func(acc string, depth int) string {
		ref := n.Account(acc)
		label := ref.Label()
		if acc == string(domain.Pool) {
			label = "Unallocated pool"
		}
		name := label + " (" + acc + ")"
		out.Nodes = append(out.Nodes, flowNode{Name: name, Label: label, Account: acc, URL: ref.URL(), Depth: depth})
		return name
	}
	linkTo := func(src, dst string, m domain.Amount) {
		v, _ := strconv.ParseFloat(m.Format(cur), 64) // drawn only; Minor is exact
		out.Links = append(out.Links, flowLink{Source: src, Target: dst, Value: v, Minor: int64(m), Amount: m.Format(cur)})
	}
	if m := balance[string(domain.Pool)]; m > 0 {
		linkTo(root, node(string(domain.Pool), 1), m)
	}
	for _, vs := range sortedKeys(inflow) {
		if inflow[vs] <= 0 {
			continue
		}
		name := node("valuestream:"+vs, 1)
		linkTo(root, name, inflow[vs])
		for _, c := range children[vs] {
			if balance[c] > 0 {
				linkTo(name, node(c, 2), balance[c])
			}
		}
	}
	for _, acc := range loose {
		if balance[acc] > 0 {
			linkTo(root, node(acc, 2), balance[acc])
		}
	}
	return out
}

type journalData struct {
	Period, Account string
	Ref             Ref
	Controls        timeControls
	Lines           []projections.JournalLine
	Names           names
	Next            string
	Balance         string
}

// journalPageSize is a journal page.
const journalPageSize = 100

func (s *server) journal(w http.ResponseWriter, r *http.Request) error {
	period := r.PathValue("period")
	if err := validPeriod(period); err != nil {
		return err
	}
	q := s.query(r)
	at := q.at()
	account := q.str("account")
	cursor := q.str("cursor")
	if account == "" {
		q.fail("account", "is required (e.g. valuestream:payments or pool)")
	} else if account != "budget:"+period {
		if _, err := domain.ParseAccount(account); err != nil {
			q.fail("account", "%v", err)
		}
	}
	if len(cursor) > 1024 {
		q.fail("cursor", "too long")
	}
	if q.err != nil {
		return q.err
	}
	j, err := s.rm.Journal(r.Context(), period, account, at, projections.Page{Limit: journalPageSize, Cursor: cursor})
	if err != nil {
		return err
	}
	o, err := s.org(r.Context(), at)
	if err != nil {
		return err
	}
	n := namesOf(o.Organisation)
	d := journalData{Period: period, Account: account, Ref: n.Account(account), Controls: s.controls(at), Lines: j.Lines, Names: n}
	if j.Next != "" {
		next := r.URL.Query()
		next.Set("cursor", j.Next)
		d.Next = "/funding/" + url.PathEscape(period) + "/journal?" + next.Encode()
	}
	return s.render(w, r, http.StatusOK, "journal", "Journal of "+d.Ref.Label()+" in "+period, d)
}
