// Package sample generates a realistic decision history for `koers demo`,
// tests and benchmarks: a mid-size organisation moving from projects to
// products over three years. The history is deterministic for a seed and
// valid against the domain's rules, decision after decision.
package sample

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Options size the organisation. Zero fields take the default in their doc.
type Options struct {
	Seed int64
	// Start is the first day of the history. Default 2024-01-01 UTC.
	Start time.Time
	// Years of history. Default 3 (the last year up to October).
	Years int
	// People at the start. Default 500.
	People int
	// Teams. Default 60.
	Teams int
	// Products by the end. Default 40.
	Products int
}

func (o Options) withDefaults() Options {
	if o.Start.IsZero() {
		o.Start = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if o.Years == 0 {
		o.Years = 3
	}
	if o.People == 0 {
		o.People = 500
	}
	if o.Teams == 0 {
		o.Teams = 60
	}
	if o.Products == 0 {
		o.Products = 40
	}
	return o
}

// Root is the actor holding the root mandate, Board the portfolio board's
// chair, who proposes its decisions, BoardID the board and BoardMandate
// its mandate. The board has three members and a quorum of two: every
// decision under BoardMandate is a proposal until Approver approves it
// (the chair's own approval is the first).
const (
	Root         = "p-root"
	Board        = "p-0001"
	Approver     = "p-0002"
	BoardID      = "portfolio"
	BoardMandate = "m-portfolio-board"
)

// BoardMembers are the portfolio board's members; none of them leaves.
var BoardMembers = []string{Board, Approver, "p-0003"}

// BoardQuorum is the portfolio board's quorum.
const BoardQuorum = 2

// LastPeriod is the budget period of the history's last year.
func LastPeriod(o Options) string {
	o = o.withDefaults()
	return fmt.Sprint(o.Start.Year() + o.Years - 1)
}

// Genesis is the effective date a demo ledger's genesis is given: a month
// before Start, so that its log begins with it (the root mandate is in
// force from the ledger's creation whatever this date).
func Genesis(o Options) time.Time { return o.withDefaults().Start.AddDate(0, -1, 0) }

var streams = []struct{ id, name string }{
	{"payments", "Payments"}, {"lending", "Lending"}, {"savings", "Savings"}, {"cards", "Cards"},
	{"onboarding", "Customer onboarding"}, {"mortgages", "Mortgages"}, {"insurance", "Insurance"}, {"data", "Data & insights"},
}

var productWords = []string{"app", "portal", "engine", "hub", "api", "desk", "tracker", "wallet", "advisor", "ledger"}

var firstNames = []string{"Anne", "Bram", "Chantal", "Daan", "Eva", "Fleur", "Gijs", "Hanna", "Ivo", "Julia", "Koen", "Lotte",
	"Mees", "Noor", "Olaf", "Pien", "Quinten", "Roos", "Sem", "Tess", "Umut", "Vera", "Wouter", "Xander", "Yara", "Zeynep"}
var lastNames = []string{"de Vries", "Jansen", "Bakker", "Visser", "Smit", "Meijer", "de Boer", "Mulder", "de Groot", "Bos",
	"Vos", "Peters", "Hendriks", "van Dijk", "Dekker", "Brouwer", "de Wit", "Dijkstra", "Kaya", "El Amrani"}

type product struct {
	id, stream, owner string
	teams             []string
	kpi               bool
}

type gen struct {
	o   Options
	rng *rand.Rand
	out []string
	n   int // decisions written

	people   map[string]string // person -> team (active people only)
	owners   map[string]bool   // people who own an active product
	nextP    int
	teams    []string
	members  map[string][]string // team -> people
	aligned  []string            // stream-aligned teams
	teamVS   map[string]string   // stream-aligned team -> its value stream
	products []*product
	projects []string
	projVS   map[string]string
	funds    map[string]map[string]int64 // period -> account -> cents
	leads    map[string]string           // value stream -> lead
	lastMove []string                    // decision ids of recent single moves (retractable)
}

// History returns the decisions, one JSON object each, in the order they
// must be applied.
func History(o Options) ([]string, error) {
	o = o.withDefaults()
	if o.People < o.Teams || o.Teams < len(streams)+4 || o.Products < len(streams) {
		return nil, fmt.Errorf("sample: %d people, %d teams, %d products is too small", o.People, o.Teams, o.Products)
	}
	g := &gen{o: o, rng: rand.New(rand.NewPCG(uint64(o.Seed), 0x6b6f657273)), people: map[string]string{}, owners: map[string]bool{},
		members: map[string][]string{}, teamVS: map[string]string{}, projVS: map[string]string{},
		funds: map[string]map[string]int64{}, leads: map[string]string{}}
	g.bootstrap()
	months := o.Years*12 - 2
	launchesPerMonth := float64(o.Products-len(streams)) / float64(months)
	launched := 0.0
	for m := 1; m <= months; m++ {
		date := o.Start.AddDate(0, m, 0)
		if date.Month() == time.January {
			g.budget(date)
		}
		launched += launchesPerMonth
		for len(g.products) < len(streams)+int(launched) && len(g.products) < o.Products {
			g.launchOrConvert(date.AddDate(0, 0, 3))
		}
		g.moves(date.AddDate(0, 0, 7))
		g.churn(date.AddDate(0, 0, 14))
		if date.Month()%3 == 0 {
			g.quarter(date.AddDate(0, 0, 20))
		}
		if m%9 == 4 {
			g.retractAndCorrect(date.AddDate(0, 0, 25))
		}
	}
	g.closeProjects(o.Start.AddDate(o.Years-1, 6, 0))
	return g.out, nil
}

func (g *gen) decide(date time.Time, by, authority, reason string, refs []string, changes ...map[string]any) string {
	g.n++
	id := fmt.Sprintf("%s-%04d", date.Format("2006-01"), g.n)
	if g.o.Seed != 0 {
		// Another seed is another organisation: its ids never pass for
		// the decisions of another seed's ledger.
		id = fmt.Sprintf("s%d-%s", g.o.Seed, id)
	}
	d := map[string]any{"id": id, "by": by, "authority": authority, "reason": reason,
		"effective": date.Format(time.DateOnly), "changes": changes}
	if len(refs) > 0 {
		d["refs"] = refs
	}
	b, err := json.Marshal(d)
	if err != nil {
		panic(err) // maps of strings and numbers always encode
	}
	g.out = append(g.out, string(b))
	return id
}

func minutes(date time.Time) []string {
	return []string{"https://wiki.example.org/portfolio-board/minutes/" + date.Format(time.DateOnly)}
}

func (g *gen) board(date time.Time, reason string, changes ...map[string]any) string {
	return g.decide(date, Board, BoardMandate, reason, minutes(date), changes...)
}

func (g *gen) personName() string {
	return firstNames[g.rng.IntN(len(firstNames))] + " " + lastNames[g.rng.IntN(len(lastNames))]
}

func (g *gen) newPerson() string {
	g.nextP++
	return fmt.Sprintf("p-%04d", g.nextP)
}

func (g *gen) bootstrap() {
	start := g.o.Start
	var changes []map[string]any
	for _, s := range streams {
		changes = append(changes, map[string]any{"kind": "valuestream.define", "id": s.id, "name": s.name})
	}
	types := []string{"platform", "platform", "enabling", "complicated-subsystem"}
	for i := 0; i < g.o.Teams; i++ {
		id := fmt.Sprintf("t-%02d", i+1)
		typ := "stream-aligned"
		if i >= g.o.Teams*3/4 {
			typ = types[i%len(types)]
		} else {
			g.aligned = append(g.aligned, id)
			g.teamVS[id] = streams[i%len(streams)].id
		}
		g.teams = append(g.teams, id)
		changes = append(changes, map[string]any{"kind": "team.form", "id": id, "name": "Team " + id[2:], "type": typ})
	}
	g.decide(start, Root, "root", "record the organisation as it stands", []string{"https://wiki.example.org/org-chart/" + start.Format("2006-01")}, changes...)

	// People join in decisions of at most 150, round-robin over the teams.
	changes = nil
	for i := 0; i < g.o.People; i++ {
		p := g.newPerson()
		t := g.teams[i%len(g.teams)]
		g.people[p], g.members[t] = t, append(g.members[t], p)
		changes = append(changes, map[string]any{"kind": "person.join", "id": p, "name": g.personName(), "team": t})
		if len(changes) == 150 {
			g.decide(start, Root, "root", "record the people as they stand", nil, changes...)
			changes = nil
		}
	}
	if len(changes) > 0 {
		g.decide(start, Root, "root", "record the people as they stand", nil, changes...)
	}
	g.decide(start, Root, "root", "the portfolio board steers funding and structure", nil,
		map[string]any{"kind": "board.form", "id": BoardID, "name": "Portfolio board", "members": BoardMembers, "quorum": BoardQuorum},
		map[string]any{"kind": "mandate.grant", "id": BoardMandate, "holder": "board:" + BoardID,
			"kinds": []string{"funding.*", "budget.*", "person.*", "team.*", "product.*", "project.*", "kpi.*", "decision.retract"}, "scope": "*"})
	// A lead per value stream may move money within it, up to a limit.
	changes = nil
	for i, s := range streams {
		lead := fmt.Sprintf("p-%04d", 10+i)
		g.leads[s.id] = lead
		changes = append(changes, map[string]any{"kind": "mandate.grant", "id": "m-lead-" + s.id, "holder": lead,
			"kinds": []string{"funding.shift", "kpi.*"}, "scope": "valuestream:" + s.id, "limit": "250000.00"})
	}
	g.decide(start, Root, "root", "value-stream leads steer their own funding", nil, changes...)

	// The legacy: projects in every value stream, and one product each.
	changes = nil
	for i := 0; i < len(streams)*3; i++ {
		id := fmt.Sprintf("prj-%02d", i+1)
		vs := streams[i%len(streams)].id
		g.projects, g.projVS[id] = append(g.projects, id), vs
		changes = append(changes, map[string]any{"kind": "project.start", "id": id, "name": "Project " + id[4:], "valuestream": vs})
	}
	g.board(start, "the running projects", changes...)
	g.budget(start)
	for _, s := range streams {
		g.launch(start.AddDate(0, 0, 1), s.id, "")
	}
}

func (g *gen) account(period, acc string) int64 { return g.funds[period][acc] }

func (g *gen) move(period, from, to string, cents int64) {
	g.funds[period][from] -= cents
	g.funds[period][to] += cents
}

func money(cents int64) string { return fmt.Sprintf("%d.%02d", cents/100, cents%100) }

// budget opens a year: the share on projects falls as the years go by.
func (g *gen) budget(date time.Time) {
	period := date.Format("2006")
	year := date.Year() - g.o.Start.Year()
	total := int64(24_000_000_00) + int64(year)*2_000_000_00
	g.funds[period] = map[string]int64{"pool": total}
	changes := []map[string]any{{"kind": "budget.open", "period": period, "amount": money(total), "currency": "EUR"}}
	projectShare := []int64{55, 30, 10}[min(year, 2)]
	var active []string
	for _, p := range g.projects {
		active = append(active, p)
	}
	if len(active) > 0 {
		each := total * projectShare / 100 / int64(len(active)) / 100_00 * 100_00
		for _, p := range active {
			changes = append(changes, map[string]any{"kind": "funding.allocate", "period": period, "to": "project:" + p, "amount": money(each)})
			g.move(period, "pool", "project:"+p, each)
		}
	}
	each := total * (90 - projectShare) / 100 / int64(len(streams)) / 100_00 * 100_00
	for _, s := range streams {
		changes = append(changes, map[string]any{"kind": "funding.allocate", "period": period, "to": "valuestream:" + s.id, "amount": money(each)})
		g.move(period, "pool", "valuestream:"+s.id, each)
	}
	g.board(date, fmt.Sprintf("annual budget %s", period), changes...)
}

// pickOwner returns an active person who owns nothing yet.
func (g *gen) pickOwner() string {
	for tries := 0; tries < 1000; tries++ {
		p := fmt.Sprintf("p-%04d", 20+g.rng.IntN(g.nextP-20)+1)
		if _, active := g.people[p]; active && !g.owners[p] && p != Board {
			return p
		}
	}
	panic("sample: no person left to own a product")
}

func (g *gen) launch(date time.Time, vs, fromProject string) {
	n := len(g.products) + 1
	id := fmt.Sprintf("%s-%s-%d", vs, productWords[n%len(productWords)], n)
	owner := g.pickOwner()
	p := &product{id: id, stream: vs, owner: owner}
	var change map[string]any
	name := strings.ToUpper(vs[:1]) + vs[1:] + " " + productWords[n%len(productWords)]
	reason := "a stable team and one accountable owner for " + name
	if fromProject != "" {
		change = map[string]any{"kind": "project.convert", "project": fromProject, "product": id, "name": name, "valuestream": vs, "owner": owner}
		reason = "turn project " + fromProject + " into a product: it is here to stay"
		for period, accs := range g.funds {
			if c := accs["project:"+fromProject]; c > 0 {
				g.move(period, "project:"+fromProject, "product:"+id, c)
			}
		}
		g.projects = slices.DeleteFunc(g.projects, func(s string) bool { return s == fromProject })
	} else {
		change = map[string]any{"kind": "product.launch", "id": id, "name": name, "valuestream": vs, "owner": owner}
	}
	changes := []map[string]any{change}
	for _, t := range g.alignedIn(vs, 1+g.rng.IntN(2)) {
		p.teams = append(p.teams, t)
		changes = append(changes, map[string]any{"kind": "team.assign", "team": t, "product": id})
	}
	changes = append(changes, map[string]any{"kind": "kpi.define", "product": id, "kpi": "lead-time", "unit": "days", "target": "5"})
	p.kpi = true
	g.owners[owner] = true
	g.products = append(g.products, p)
	g.board(date, reason, changes...)
}

func (g *gen) alignedIn(vs string, n int) []string {
	var ts []string
	for _, t := range g.aligned {
		if g.teamVS[t] == vs {
			ts = append(ts, t)
		}
	}
	g.rng.Shuffle(len(ts), func(i, j int) { ts[i], ts[j] = ts[j], ts[i] })
	return ts[:min(n, len(ts))]
}

func (g *gen) launchOrConvert(date time.Time) {
	vs := streams[len(g.products)%len(streams)].id
	for _, p := range g.projects {
		if g.projVS[p] == vs && g.rng.IntN(3) > 0 {
			g.launch(date, vs, p)
			return
		}
	}
	g.launch(date, vs, "")
}

// moves: a few people change teams every month; now and then a whole
// reorganisation in one decision.
func (g *gen) moves(date time.Time) {
	g.lastMove = nil
	pinned := map[string]bool{}
	count := 4 + g.rng.IntN(5)
	var reorg []map[string]any
	for i := 0; i < count; i++ {
		p, from := g.randomPerson()
		to := g.teams[g.rng.IntN(len(g.teams))]
		if to == from || len(g.members[from]) < 3 || pinned[p] {
			continue
		}
		pinned[p] = true
		g.relocate(p, from, to)
		c := map[string]any{"kind": "person.move", "person": p, "to": to}
		if i < 2 {
			id := g.board(date, "move "+p+" to "+to+" where the work is", c)
			g.lastMove = append(g.lastMove, id+" "+p+" "+from+" "+to)
		} else {
			reorg = append(reorg, c)
		}
	}
	if len(reorg) > 0 {
		g.board(date.AddDate(0, 0, 1), "monthly team composition review", reorg...)
	}
}

func (g *gen) relocate(p, from, to string) {
	g.people[p] = to
	g.members[from] = slices.DeleteFunc(g.members[from], func(s string) bool { return s == p })
	g.members[to] = append(g.members[to], p)
}

func (g *gen) randomPerson() (string, string) {
	for {
		p := fmt.Sprintf("p-%04d", 20+g.rng.IntN(g.nextP-20)+1)
		if t, ok := g.people[p]; ok {
			return p, t
		}
	}
}

// churn: people leave and join.
func (g *gen) churn(date time.Time) {
	var changes []map[string]any
	for i := 0; i < 2; i++ {
		p, t := g.randomPerson()
		if g.owners[p] || len(g.members[t]) < 3 || g.isLead(p) || g.movedThisMonth(p) {
			continue
		}
		delete(g.people, p)
		g.members[t] = slices.DeleteFunc(g.members[t], func(s string) bool { return s == p })
		changes = append(changes, map[string]any{"kind": "person.leave", "person": p})
	}
	for i := 0; i < 2; i++ {
		p := g.newPerson()
		t := g.teams[g.rng.IntN(len(g.teams))]
		g.people[p], g.members[t] = t, append(g.members[t], p)
		changes = append(changes, map[string]any{"kind": "person.join", "id": p, "name": g.personName(), "team": t})
	}
	g.board(date, "joiners and leavers", changes...)
}

func (g *gen) movedThisMonth(p string) bool {
	for _, m := range g.lastMove {
		if strings.Fields(m)[1] == p {
			return true
		}
	}
	return false
}

func (g *gen) isLead(p string) bool {
	if slices.Contains(BoardMembers, p) {
		return true // the board keeps its members
	}
	for _, l := range g.leads {
		if l == p {
			return true
		}
	}
	return false
}

// quarter: leads move money to their products, the board changes an owner
// or two, products report their KPIs.
func (g *gen) quarter(date time.Time) {
	period := date.Format("2006")
	for _, s := range streams {
		var mine []*product
		for _, p := range g.products {
			if p.stream == s.id {
				mine = append(mine, p)
			}
		}
		avail := g.account(period, "valuestream:"+s.id)
		if len(mine) == 0 || avail < 10_000_00 {
			continue
		}
		p := mine[g.rng.IntN(len(mine))]
		amount := min(avail/4, 250_000_00) / 1000_00 * 1000_00
		if amount == 0 {
			continue
		}
		g.move(period, "valuestream:"+s.id, "product:"+p.id, amount)
		g.decide(date, g.leads[s.id], "m-lead-"+s.id, "fund the product that delivers the most value this quarter", nil,
			map[string]any{"kind": "funding.shift", "period": period, "from": "valuestream:" + s.id, "to": "product:" + p.id, "amount": money(amount)})
	}
	for i := 0; i < 2; i++ {
		p := g.products[g.rng.IntN(len(g.products))]
		owner := g.pickOwner()
		delete(g.owners, p.owner)
		p.owner, g.owners[owner] = owner, true
		g.board(date.AddDate(0, 0, 2), "new product owner for "+p.id, map[string]any{"kind": "product.assign-owner", "product": p.id, "owner": owner})
	}
	var kpis []map[string]any
	for _, p := range g.products {
		kpis = append(kpis, map[string]any{"kind": "kpi.record", "product": p.id, "kpi": "lead-time", "value": fmt.Sprint(3 + g.rng.IntN(12))})
	}
	g.board(date.AddDate(0, 0, 3), "quarterly KPI review", kpis...)
}

// retractAndCorrect: a move turns out to be wrong and is retracted; another
// was recorded with the wrong date and is corrected: retracted, and decided
// again with the date it really took effect (backdated).
func (g *gen) retractAndCorrect(date time.Time) {
	if len(g.lastMove) < 2 {
		return
	}
	undo := strings.Fields(g.lastMove[len(g.lastMove)-1])
	fix := strings.Fields(g.lastMove[len(g.lastMove)-2])
	g.lastMove = nil
	g.board(date, "the move of "+undo[1]+" was a mistake", map[string]any{"kind": "decision.retract", "decision": undo[0]})
	g.relocate(undo[1], undo[3], undo[2])
	if fix[1] == undo[1] {
		return
	}
	g.board(date, "wrong date on the move of "+fix[1]+": retract it", map[string]any{"kind": "decision.retract", "decision": fix[0]})
	g.relocate(fix[1], fix[3], fix[2])
	// It really happened at the start of the month: backdated.
	moved := time.Date(date.Year(), date.Month(), 2, 0, 0, 0, 0, time.UTC)
	g.board(moved, "correction, recorded on "+date.AddDate(0, 0, 1).Format(time.DateOnly)+": "+fix[1]+" moved to "+fix[3]+" on "+moved.Format(time.DateOnly),
		map[string]any{"kind": "person.move", "person": fix[1], "to": fix[3]})
	g.relocate(fix[1], fix[2], fix[3])
}

func (g *gen) closeProjects(date time.Time) {
	var changes []map[string]any
	for _, p := range g.projects {
		changes = append(changes, map[string]any{"kind": "project.close", "project": p})
	}
	if len(changes) > 0 {
		g.board(date, "the remaining projects end: their work goes to the products", changes...)
	}
	g.projects = nil
}
