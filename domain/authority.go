package domain

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// MaxGrantDepth bounds a grant chain, root … mandate, counted in mandates.
// The command handler loads a chain in one round when its grants carry it
// (all since chains were written) and one mandate per round otherwise, so
// the bound also keeps old ledgers within its load rounds; and an
// organisation that delegates twelve levels deep has a problem no ledger
// should hide.
const MaxGrantDepth = 12

// authority is the decision's mandate with its grant chain.
type authority struct {
	links []Aggregate // the root first, the decision's mandate last
}

func (a *authority) self() Aggregate        { return a.links[len(a.links)-1] }
func (a *authority) mandate() *MandateState { return a.self().Mandate }

// ids are the mandates of the chain, the root first: the Chain of a grant
// made under the decision's mandate.
func (a *authority) ids() []string {
	out := make([]string, len(a.links))
	for i, l := range a.links {
		out[i] = l.Ref.ID
	}
	return out
}

// holderRef is the aggregate whose standing decides whether a mandate held
// by holder is in force: a person, or a board for "board:<id>".
func holderRef(holder string) (Ref, bool) {
	if id, ok := boardOf(holder); ok {
		if ValidID(id) != nil {
			return Ref{}, false
		}
		return Ref{Kind: KindBoard, ID: id}, true
	}
	if ValidID(holder) != nil {
		return Ref{}, false
	}
	return Ref{Kind: KindPerson, ID: holder}, true
}

// record is the chain as a decision records it: its mandate first, the
// root last.
func (a *authority) record() []ChainLink {
	if a == nil {
		return nil
	}
	out := make([]ChainLink, 0, len(a.links))
	for i := len(a.links) - 1; i >= 0; i-- {
		out = append(out, ChainLink{Mandate: a.links[i].Ref.ID, Holder: a.links[i].Mandate.Holder})
	}
	return out
}

func mustHolderRef(holder string) Ref {
	r, _ := holderRef(holder)
	return r
}

// authority loads the decision's mandate and its grant chain and checks,
// at the recording time k.now, that the actor holds it and that it is in
// force. The effective time plays no part: a holder may record a
// backdated decision today, and a mandate no longer in force today cannot
// be used, whatever date the change takes effect.
func (k *work) authority() (*authority, error) {
	fail := func(problem, advice string) error {
		return &AuthorityError{Mandate: k.d.Authority, Actor: k.d.By, Problem: problem, Advice: advice}
	}
	a, err := k.get(ref(KindMandate, k.d.Authority))
	if err != nil {
		return nil, err
	}
	byBoard := false
	if a.Exists() {
		_, byBoard = boardOf(a.Mandate.Holder)
	}
	switch {
	case !a.Exists():
		return nil, fail("the mandate does not exist", "take the decision under a mandate you hold")
	case !byBoard && a.Mandate.Holder != k.d.By:
		return nil, fail(fmt.Sprintf("the mandate is held by %q", a.Mandate.Holder),
			fmt.Sprintf("only %s may decide under it; take the decision under a mandate you hold", a.Mandate.Holder))
	}
	links, err := k.chainOf(a)
	if err != nil {
		return nil, err
	}
	if byBoard {
		// chainOf loaded the board.
		b, _ := k.get(mustHolderRef(a.Mandate.Holder))
		if b.Board != nil && !contains(b.Board.Members, k.d.By) {
			return nil, fail(fmt.Sprintf("the mandate is held by board %s, of which %s is not a member", b.Ref.ID, k.d.By),
				fmt.Sprintf("ask one of its members (%s) to propose the decision", strings.Join(b.Board.Members, ", ")))
		}
		if b.Board != nil {
			k.boardHolder = &b
		}
	}
	// From the root down: the first mandate not in force is the one to
	// name, since it suspends everything granted under it.
	for i, l := range links {
		reason, since := k.notInForce(l)
		if reason == "" {
			continue
		}
		e := &NotInForceError{Mandate: k.d.Authority, Actor: k.d.By, Link: l.Ref.ID, Holder: l.Mandate.Holder, Reason: reason, Since: since}
		if i > 0 {
			e.AskMandate, e.AskHolder = links[i-1].Ref.ID, links[i-1].Mandate.Holder
		}
		return nil, e
	}
	if b := k.boardHolder; b != nil {
		k.approvers = []string{k.d.By}
		for _, p := range k.d.Approvers {
			if contains(b.Board.Members, p) && !contains(k.approvers, p) {
				k.approvers = append(k.approvers, p)
			}
		}
		if k.mode != modePropose && len(k.approvers) < b.Board.Quorum {
			return nil, &ApprovalsNeededError{Board: b.Ref.ID, Quorum: b.Board.Quorum, Approvers: k.approvers}
		}
	}
	auth := &authority{links: links}
	for _, l := range links {
		if l.Mandate.PeriodLimit != nil {
			k.charged = append(k.charged, l.Ref.ID)
		}
	}
	k.auth = auth
	return auth, nil
}

// chainOf returns a's grant chain, the root first and a last, with the
// holders of its mandates loaded. Missing aggregates are asked for together
// in one *NeedError when the grants carry their chain.
func (k *work) chainOf(a Aggregate) ([]Aggregate, error) {
	links := []Aggregate{a}
	var need []Ref
	cur := a
	for !cur.Mandate.IsRoot() {
		if len(links) > MaxGrantDepth {
			return nil, fmt.Errorf("mandate %s: grant chain longer than %d mandates", a.Ref.ID, MaxGrantDepth)
		}
		if ids := cur.Mandate.Chain; len(ids) > 0 {
			// The chain as written at the grant: every mandate at once.
			if len(ids)+len(links) > MaxGrantDepth+1 {
				return nil, fmt.Errorf("mandate %s: grant chain longer than %d mandates", a.Ref.ID, MaxGrantDepth)
			}
			above := make([]Aggregate, len(ids))
			for i, id := range ids {
				g, err := k.get(ref(KindMandate, id))
				if err != nil {
					need = append(need, ref(KindMandate, id))
					continue
				}
				above[i] = g
			}
			if len(need) > 0 {
				return nil, &NeedError{Refs: need}
			}
			links = append(above, links...)
			break
		}
		// A grant from before chains were written: one link at a time.
		g, err := k.get(ref(KindMandate, cur.Mandate.Grantor))
		if err != nil {
			return nil, err
		}
		if !g.Exists() {
			return nil, fmt.Errorf("mandate %s was granted under %s, which does not exist", cur.Ref.ID, cur.Mandate.Grantor)
		}
		links = append([]Aggregate{g}, links...)
		cur = g
	}
	for _, l := range links {
		if l.Mandate == nil {
			return nil, fmt.Errorf("mandate %s: %s in its grant chain does not exist", a.Ref.ID, l.Ref)
		}
		if l.Mandate.IsRoot() {
			continue
		}
		if r, ok := holderRef(l.Mandate.Holder); ok {
			if _, err := k.get(r); err != nil && !containsRef(need, r) {
				need = append(need, r)
			}
		}
	}
	if len(need) > 0 {
		return nil, &NeedError{Refs: need}
	}
	return links, nil
}

// notInForce says why mandate l is not in force at k.now (a Reason
// constant) and since when; "" when it is. It judges l alone; authority
// walks the chain. Times are effective times: a revocation, expiry or
// departure applies from its effective time, or at once when that lies in
// the past (k.now is never before a recorded event, so "recorded, and
// effective" is "effective").
func (k *work) notInForce(l Aggregate) (string, time.Time) {
	m := l.Mandate
	switch {
	case m.Revoked && !k.now.Before(m.RevokedAt):
		return ReasonRevoked, m.RevokedAt
	case m.ValidUntil != nil && !k.now.Before(*m.ValidUntil):
		return ReasonExpired, *m.ValidUntil
	case m.IsRoot():
		// In force from the ledger's creation on, whatever effective date
		// the genesis was given; its holder is whoever created the ledger,
		// not necessarily a person in it.
		return "", time.Time{}
	case k.now.Before(l.Since):
		return ReasonNotYet, l.Since
	}
	r, ok := holderRef(m.Holder)
	if !ok {
		return ReasonHolderAbsent, time.Time{}
	}
	h, _ := k.get(r) // chainOf loaded it
	if r.Kind == KindBoard {
		switch {
		case h.Board == nil:
			return ReasonHolderAbsent, time.Time{}
		case h.Board.Disbanded && !k.now.Before(h.Board.DisbandedAt):
			return ReasonBoardDisbanded, h.Board.DisbandedAt
		}
		return "", time.Time{}
	}
	switch {
	case h.Person == nil:
		return ReasonHolderAbsent, time.Time{}
	case h.Person.Left && !k.now.Before(h.Person.LeftAt):
		return ReasonHolderLeft, h.Person.LeftAt
	}
	return "", time.Time{}
}

// target is something a change acts on that a mandate's scope must cover.
type target struct {
	kind AggregateKind // "" is the whole organisation
	id   string
}

func (t target) String() string {
	if t.kind == "" {
		return "the whole organisation"
	}
	return string(t.kind) + ":" + t.id
}

var global = target{}

func accountTarget(a string) target {
	r, ok := Account(a).Ref()
	if !ok {
		return global // the pool belongs to the whole organisation
	}
	return target{kind: r.Kind, id: r.ID}
}

func scopeTarget(scope string) target {
	if scope == "*" {
		return global
	}
	k, id, _ := strings.Cut(scope, ":")
	return target{kind: AggregateKind(k), id: id}
}

// targets are what c acts on, for the scope check.
func (k *work) targets(c Change) ([]target, error) {
	vs := func(id string) target { return target{kind: KindValueStream, id: id} }
	product := target{kind: KindProduct, id: c.Product}
	switch c.Kind {
	case ChangeValueStreamDefine:
		return []target{vs(c.ID)}, nil
	case ChangeValueStreamRetire, ChangeProductLaunch:
		return []target{vs(c.ValueStream)}, nil
	case ChangeProductMove:
		return []target{product, vs(c.ValueStream)}, nil
	case ChangeKPIDefine, ChangeKPIRecord, ChangeKPITarget:
		if c.ValueStream != "" {
			return []target{vs(c.ValueStream)}, nil
		}
		return []target{product}, nil
	case ChangeProductOwner, ChangeProductRetire, ChangeTeamAssign, ChangeTeamUnassign:
		return []target{product}, nil
	case ChangeProjectStart:
		if c.ValueStream == "" {
			return []target{global}, nil
		}
		return []target{vs(c.ValueStream)}, nil
	case ChangeProjectClose:
		return []target{{kind: KindProject, id: c.Project}}, nil
	case ChangeProjectConvert:
		return []target{{kind: KindProject, id: c.Project}, vs(c.ValueStream)}, nil
	case ChangeFundingAllocate:
		return []target{global, accountTarget(c.To)}, nil
	case ChangeFundingShift:
		return []target{accountTarget(c.From), accountTarget(c.To)}, nil
	case ChangeFundingRelease:
		return []target{accountTarget(c.From), global}, nil
	case ChangeMandateGrant:
		return nil, nil // the granted scope is checked by noEscalation
	case ChangeMandateRevoke:
		m, err := k.existing(ref(KindMandate, c.Mandate))
		if err != nil {
			return nil, err
		}
		return []target{scopeTarget(m.Mandate.Scope)}, nil
	case ChangeDecisionRetract:
		return nil, nil // checked per retracted change
	}
	return []target{global}, nil // teams, people, budgets
}

// covers reports whether scope covers t; valuestream:<id> covers the value
// stream, its products and projects and their funding accounts.
func (k *work) covers(scope string, t target) (bool, error) {
	if scope == "*" {
		return true, nil
	}
	if t == global {
		return false, nil
	}
	s := scopeTarget(scope)
	if s == t {
		return true, nil
	}
	if s.kind != KindValueStream {
		return false, nil
	}
	switch t.kind {
	case KindProduct:
		p, err := k.existing(ref(KindProduct, t.id))
		if err != nil {
			return false, err
		}
		return p.Product.ValueStream == s.id, nil
	case KindProject:
		p, err := k.existing(ref(KindProject, t.id))
		if err != nil {
			return false, err
		}
		return p.Project.ValueStream == s.id, nil
	}
	return false, nil
}

// kindCovers reports whether pattern p covers kind or pattern q.
func kindCovers(p, q string) bool {
	if p == "*" || p == q {
		return true
	}
	if q == "*" {
		return false
	}
	prefix, ok := strings.CutSuffix(p, ".*")
	return ok && strings.HasPrefix(q, prefix+".")
}

func kindsCover(patterns []string, q string) bool {
	for _, p := range patterns {
		if kindCovers(p, q) {
			return true
		}
	}
	return false
}

// coversChange reports whether m covers c's kind and every target of c.
func (k *work) coversChange(m *MandateState, c Change) (bool, string, error) {
	if !kindsCover(m.Kinds, c.Kind) {
		return false, fmt.Sprintf("does not cover kind %s (covers %s)", c.Kind, strings.Join(m.Kinds, ", ")), nil
	}
	ts, err := k.targets(c)
	if err != nil {
		return false, "", err
	}
	for _, t := range ts {
		ok, err := k.covers(m.Scope, t)
		if err != nil {
			return false, "", err
		}
		if !ok {
			return false, fmt.Sprintf("scope %s does not cover %s", m.Scope, t), nil
		}
	}
	return true, "", nil
}

// authorize checks that m covers c: kind, scope, and for a grant that it
// is no wider than m. A retraction needs authority over every change it
// undoes. Amounts are summed here and checked against the limits once the
// whole decision is known (checkLimits).
func (k *work) authorize(m *MandateState, c Change, depth int) error {
	ok, problem, err := k.coversChange(m, c)
	if err != nil {
		return err
	}
	if !ok {
		return &AuthorityError{Mandate: k.d.Authority, Actor: k.d.By, Problem: problem,
			Advice: k.askAbove(func(up *MandateState) bool {
				ok, _, err := k.coversChange(up, c)
				return err == nil && ok
			})}
	}
	k.count(c)
	switch c.Kind {
	case ChangeMandateGrant:
		return k.noEscalation(m, c)
	case ChangeDecisionRetract:
		if depth > 0 {
			return nil // retracting a retraction is refused by the decider
		}
		rec, err := k.get(ref(KindDecision, c.Decision))
		if err != nil {
			return err
		}
		if !rec.Exists() {
			return &NotFoundError{Ref: rec.Ref}
		}
		for _, orig := range rec.Decision.Record.Changes {
			if err := k.authorize(m, orig, depth+1); err != nil {
				return fmt.Errorf("retract %s: %w", c.Decision, err)
			}
		}
	}
	return nil
}

// count adds c's amount to the decision's total in its currency: funding
// and budget changes, also those a retraction undoes (the undoing moves
// the same money back). A change whose period or currency is unknown is
// left to apply to refuse.
func (k *work) count(c Change) {
	if c.Amount == nil || !(strings.HasPrefix(c.Kind, "funding.") || strings.HasPrefix(c.Kind, "budget.")) {
		return
	}
	cur := c.Currency
	if cur == "" {
		b, err := k.get(ref(KindBudget, c.Period))
		if err != nil || b.Budget == nil {
			return
		}
		cur = b.Budget.Currency
	}
	amt, err := c.Amount.Minor(cur)
	if err != nil {
		return
	}
	if amt < 0 {
		amt = -amt
	}
	if k.moved == nil {
		k.moved = map[Currency]Amount{}
	}
	// Saturate rather than overflow: 200 changes of the largest amount
	// exceed an int64, and any such sum is far above every limit.
	if sum := k.moved[cur] + amt; sum >= k.moved[cur] {
		k.moved[cur] = sum
	} else {
		k.moved[cur] = 1<<63 - 1
	}
}

// checkLimits checks the decision's totals against its mandate's limit
// per decision, and what it moved in each budget period against the period
// limit of every mandate in the chain (the budget events already carry the
// charges, so the budgets in k.cur hold the use after this decision).
func (k *work) checkLimits(auth *authority) error {
	m := auth.mandate()
	if m.Limit != nil {
		for _, cur := range sortedCurrencies(k.moved) {
			total := k.moved[cur]
			if total.Decimal(cur).Cmp(*m.Limit) <= 0 {
				continue
			}
			return &LimitError{Mandate: k.d.Authority, Actor: k.d.By, Currency: cur,
				Limit: *m.Limit, Total: total.Decimal(cur),
				Advice: k.askAbove(func(up *MandateState) bool { return up.Limit == nil || total.Decimal(cur).Cmp(*up.Limit) <= 0 })}
		}
	}
	if len(k.charged) == 0 {
		return nil
	}
	var budgets []Ref
	for r, a := range k.cur {
		if r.Kind == KindBudget && a.Budget != nil {
			budgets = append(budgets, r)
		}
	}
	sort.Slice(budgets, func(i, j int) bool { return budgets[i].ID < budgets[j].ID })
	for i, l := range auth.links {
		limit := l.Mandate.PeriodLimit
		if limit == nil {
			continue
		}
		for _, r := range budgets {
			after := k.cur[r].Budget
			if after.Used[l.Ref.ID].Decimal(after.Currency).Cmp(*limit) <= 0 {
				continue
			}
			var before Amount
			if b := k.base[r].Budget; b != nil {
				before = b.Used[l.Ref.ID]
			}
			cur := after.Currency
			headroom := limitMinor(*limit, cur) - before
			if headroom < 0 {
				headroom = 0
			}
			e := &PeriodLimitError{Mandate: k.d.Authority, Actor: k.d.By, Limited: l.Ref.ID, Period: r.ID, Currency: cur,
				Limit: *limit, Used: before.Decimal(cur), Wanted: (after.Used[l.Ref.ID] - before).Decimal(cur),
				Headroom: headroom.Decimal(cur)}
			if i > 0 {
				e.AskMandate, e.AskHolder = auth.links[i-1].Ref.ID, auth.links[i-1].Mandate.Holder
			}
			return e
		}
	}
	return nil
}

// limitMinor is limit in minor units of cur, rounded down (a limit written
// with more decimals than the currency has allows no more than its whole
// minor units), capped far above any budget.
func limitMinor(limit Decimal, cur Currency) Amount {
	dec, _ := cur.Decimals()
	c, e := limit.coef, limit.exp
	for ; e > dec; e-- {
		c /= 10
	}
	for ; e < dec; e++ {
		if c > int64(MaxTotal) {
			return MaxTotal * 10
		}
		c *= 10
	}
	return Amount(c)
}

func sortedCurrencies(m map[Currency]Amount) []Currency {
	out := make([]Currency, 0, len(m))
	for c := range m {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// askAbove names who could take the decision instead: the holder of the
// nearest mandate up the decision's chain for which ok holds ("" when none
// does, or the chain is not known yet).
func (k *work) askAbove(ok func(*MandateState) bool) string {
	if k.auth == nil {
		return ""
	}
	links := k.auth.links
	for i := len(links) - 2; i >= 0; i-- {
		if ok(links[i].Mandate) {
			return fmt.Sprintf("ask %s, who holds mandate %q, under which yours was granted", links[i].Mandate.Holder, links[i].Ref.ID)
		}
	}
	return ""
}

// noEscalation checks that grant c stays within m: kinds, scope, limit,
// period limit, validity, and the depth of the chain.
func (k *work) noEscalation(m *MandateState, c Change) error {
	fail := func(p string) error { return &EscalationError{Grantor: k.d.Authority, Problem: p} }
	for _, q := range c.Kinds {
		if !kindsCover(m.Kinds, q) {
			return fail(fmt.Sprintf("kind %s is not within %s", q, strings.Join(m.Kinds, ", ")))
		}
	}
	ok, err := k.covers(m.Scope, scopeTarget(c.Scope))
	if err != nil {
		return err
	}
	if !ok {
		return fail(fmt.Sprintf("scope %s is not within %s", c.Scope, m.Scope))
	}
	if m.Limit != nil {
		if c.Limit == nil {
			return fail(fmt.Sprintf("no amount limit, the grantor's is %s (give a limit of at most %s)", m.Limit, m.Limit))
		}
		if c.Limit.Cmp(*m.Limit) > 0 {
			return fail(fmt.Sprintf("limit %s exceeds the grantor's %s", c.Limit, m.Limit))
		}
	}
	if m.PeriodLimit != nil {
		if c.PeriodLimit == nil {
			return fail(fmt.Sprintf("no period limit, the grantor's is %s (give a period_limit of at most %s)", m.PeriodLimit, m.PeriodLimit))
		}
		if c.PeriodLimit.Cmp(*m.PeriodLimit) > 0 {
			return fail(fmt.Sprintf("period limit %s exceeds the grantor's %s", c.PeriodLimit, m.PeriodLimit))
		}
	}
	if m.ValidUntil != nil {
		until := m.ValidUntil.Format(time.RFC3339)
		if c.ValidUntil.IsZero() {
			return fail(fmt.Sprintf("no expiry, the grantor's mandate expires %s (give a valid_until no later)", until))
		}
		if c.ValidUntil.After(*m.ValidUntil) {
			return fail(fmt.Sprintf("valid until %s, after the grantor's %s", c.ValidUntil.Format(time.RFC3339), until))
		}
	}
	if k.auth != nil && len(k.auth.links) >= MaxGrantDepth {
		return fail(fmt.Sprintf("the grant chain would be %d mandates deep, at most %d (grant under a mandate nearer the root)",
			len(k.auth.links)+1, MaxGrantDepth))
	}
	return nil
}

// grant applies a mandate.grant: the holder must be an active person, the
// expiry still ahead.
func (k *work) grant(c Change) error {
	r := ref(KindMandate, c.ID)
	if err := k.absent(r); err != nil {
		return err
	}
	hr, ok := holderRef(c.Holder)
	if !ok {
		return &HolderError{Holder: c.Holder, Problem: "is not a valid holder"}
	}
	if _, err := k.active(hr); err != nil {
		if hr.Kind == KindBoard {
			return &HolderError{Holder: c.Holder, Problem: "cannot hold a mandate: it must be an active board (form it with board.form first)", Err: err}
		}
		return &HolderError{Holder: c.Holder, Problem: "cannot hold a mandate: it must be a person in the organisation (add them with person.join first)", Err: err}
	}
	var until *time.Time
	if !c.ValidUntil.IsZero() {
		start := k.eff()
		if k.now.After(start) {
			start = k.now
		}
		if !c.ValidUntil.After(start) {
			return &StateError{Ref: r, Problem: fmt.Sprintf("valid_until %s is not after %s, when the grant takes effect",
				c.ValidUntil.Format(time.RFC3339), start.Format(time.RFC3339))}
		}
		t := c.ValidUntil
		until = &t
	}
	var chain []string
	if k.auth != nil {
		chain = k.auth.ids()
	}
	return k.emit(r, EventMandateGranted, MandateGranted{ID: c.ID, Holder: c.Holder, Kinds: c.Kinds, Scope: c.Scope,
		Limit: c.Limit, PeriodLimit: c.PeriodLimit, ValidUntil: until, Grantor: k.d.Authority, Chain: chain})
}
