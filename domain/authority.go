package domain

import (
	"fmt"
	"strings"
)

// mandate is the decision's authority: it must exist since the effective
// time, be held by the actor and not be revoked.
func (k *work) mandate() (*MandateState, error) {
	fail := func(p string) error { return &AuthorityError{Mandate: k.d.Authority, Actor: k.d.By, Problem: p} }
	a, err := k.get(ref(KindMandate, k.d.Authority))
	if err != nil {
		return nil, err
	}
	switch {
	case !a.Exists():
		return nil, fail("the mandate does not exist")
	case a.Mandate.Revoked:
		return nil, fail("the mandate is revoked")
	case a.Mandate.Holder != k.d.By:
		return nil, fail(fmt.Sprintf("the mandate is held by %q", a.Mandate.Holder))
	case k.eff().Before(a.Since):
		return nil, fail(fmt.Sprintf("the mandate is only valid from %s", a.Since.Format("2006-01-02T15:04:05Z07:00")))
	}
	return a.Mandate, nil
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
	case ChangeProductOwner, ChangeProductRetire, ChangeKPIDefine, ChangeKPIRecord, ChangeTeamAssign, ChangeTeamUnassign:
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

// authorize checks that m covers c: kind, scope, amount, and for a grant
// that it is no wider than m. A retraction needs authority over every change
// it undoes.
func (k *work) authorize(m *MandateState, c Change, depth int) error {
	fail := func(p string) error { return &AuthorityError{Mandate: k.d.Authority, Actor: k.d.By, Problem: p} }
	if !kindsCover(m.Kinds, c.Kind) {
		return fail(fmt.Sprintf("does not cover kind %s (covers %s)", c.Kind, strings.Join(m.Kinds, ", ")))
	}
	ts, err := k.targets(c)
	if err != nil {
		return err
	}
	for _, t := range ts {
		ok, err := k.covers(m.Scope, t)
		if err != nil {
			return err
		}
		if !ok {
			return fail(fmt.Sprintf("scope %s does not cover %s", m.Scope, t))
		}
	}
	if m.Limit != nil && c.Amount != nil && (strings.HasPrefix(c.Kind, "funding.") || strings.HasPrefix(c.Kind, "budget.")) {
		amt := *c.Amount
		if amt.Sign() < 0 {
			amt = amt.Neg()
		}
		if amt.Cmp(*m.Limit) > 0 {
			return fail(fmt.Sprintf("amount %s exceeds the mandate's limit %s", amt, m.Limit))
		}
	}
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
			return fail(fmt.Sprintf("no amount limit, the grantor's is %s", m.Limit))
		}
		if c.Limit.Cmp(*m.Limit) > 0 {
			return fail(fmt.Sprintf("limit %s exceeds the grantor's %s", c.Limit, m.Limit))
		}
	}
	return nil
}
