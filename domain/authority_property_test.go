package domain

import (
	"errors"
	"fmt"
	"math/rand"
	"testing"
	"time"
)

// authModel is an independent account of which mandates are in force:
// what the test's own decisions granted, revoked and who left, kept
// without the domain's state.
type authModel struct {
	mandates map[string]*modelMandate
	leftAt   map[string]time.Time // person -> effective departure (absent: active)
}

type modelMandate struct {
	holder, grantor string
	since           time.Time
	until           *time.Time
	revokedAt       *time.Time
}

// inForce walks from m to the root: every mandate on the way must be
// unrevoked, unexpired, already effective and held by a person still there.
func (a *authModel) inForce(id string, now time.Time) bool {
	for depth := 0; depth <= MaxGrantDepth; depth++ {
		m, ok := a.mandates[id]
		if !ok {
			return false
		}
		if m.revokedAt != nil && !now.Before(*m.revokedAt) {
			return false
		}
		if m.until != nil && !now.Before(*m.until) {
			return false
		}
		if id == RootMandate {
			return true
		}
		if now.Before(m.since) {
			return false
		}
		if left, ok := a.leftAt[m.holder]; ok && !now.Before(left) {
			return false
		}
		id = m.grantor
	}
	return false
}

// TestNoDecisionOutsideItsRootChain takes random sequences of grants (some
// expiring, some effective later), revocations and departures (some
// effective later, some retracted again) while the clock moves on, and
// tries decisions under random mandates in between: a decision is
// accepted exactly when the model finds an unbroken chain of mandates in
// force from it to the root, held by the actor; never otherwise.
func TestNoDecisionOutsideItsRootChain(t *testing.T) {
	for seed := int64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { checkRootChains(t, seed) })
	}
}

func checkRootChains(t *testing.T, seed int64) {
	rng := rand.New(rand.NewSource(seed))
	l := orgFixture(t)
	people := []string{"p-a", "p-b", "p-c", "p-d", "p-e"}
	var joins []string
	for _, p := range people {
		joins = append(joins, ch("person.join", "id", p, "name", "P", "team", "t-lending"))
	}
	l.must(dec(joins...))
	model := &authModel{mandates: map[string]*modelMandate{RootMandate: {holder: rootActor}}, leftAt: map[string]time.Time{}}
	ids := []string{RootMandate}
	leaves := map[string]string{} // person -> the decision that made them leave
	stamp := func(t time.Time) string { return t.Format(time.RFC3339) }
	around := func() time.Time { return l.now.Add(time.Duration(rng.Intn(20*24)-10*24) * time.Hour) }
	const steps = 300
	accepted, refused, n := 0, 0, 0
	for step := 0; step < steps; step++ {
		l.now = l.now.Add(time.Duration(rng.Intn(72)) * time.Hour)
		n++
		id := fmt.Sprintf("s-%04d", n)
		switch op := rng.Intn(12); {
		case op < 4: // a grant under a random mandate (mostly one in force), by its holder
			under := ids[rng.Intn(len(ids))]
			for try := 0; try < 4 && !model.inForce(under, l.now); try++ {
				under = ids[rng.Intn(len(ids))]
			}
			holder := people[rng.Intn(len(people))]
			eff := around()
			kv := []string{"id", "m-" + id, "holder", holder, "kinds", `["kpi.*","mandate.grant"]`, "scope", "*"}
			var until *time.Time
			if rng.Intn(3) == 0 {
				u := l.now.Add(time.Duration(1+rng.Intn(30*24)) * time.Hour)
				until = &u
				kv = append(kv, "valid_until", stamp(u))
			}
			if p := model.mandates[under].until; p != nil && (until == nil || until.After(*p)) {
				until = p // stay within the grantor's validity
				kv = append(kv[:8], "valid_until", stamp(*p))
			}
			d := decOpts([]string{"id=" + id, "by=" + model.mandates[under].holder, "authority=" + under, "effective=" + stamp(eff)}, ch("mandate.grant", kv...))
			if _, err := l.try(d); err == nil {
				if !model.inForce(under, l.now) {
					t.Fatalf("step %d: a grant under %s was accepted, but the model has it out of force", step, under)
				}
				model.mandates["m-"+id] = &modelMandate{holder: holder, grantor: under, since: eff, until: until}
				ids = append(ids, "m-"+id)
			}
		case op < 5: // the root revokes a mandate, at once or later
			m := ids[rng.Intn(len(ids))]
			eff := around()
			if eff.Before(model.mandates[m].since) {
				eff = model.mandates[m].since
			}
			if _, err := l.try(decOpts([]string{"id=" + id, "effective=" + stamp(eff)}, ch("mandate.revoke", "mandate", m))); err == nil {
				model.mandates[m].revokedAt = &eff
			}
		case op < 6: // someone leaves
			p := people[rng.Intn(len(people))]
			eff := around()
			if _, err := l.try(decOpts([]string{"id=" + id, "effective=" + stamp(eff)}, ch("person.leave", "person", p))); err == nil {
				model.leftAt[p], leaves[p] = eff, id
			}
		case op < 7: // a departure is retracted: the person is back
			for _, p := range sortedKeys(leaves) {
				leave := leaves[p]
				eff := l.now
				if left := model.leftAt[p]; left.After(eff) {
					eff = left
				}
				if _, err := l.try(decOpts([]string{"id=" + id, "effective=" + stamp(eff)}, ch("decision.retract", "decision", leave))); err != nil {
					t.Fatalf("step %d: retract the departure of %s: %v", step, p, err)
				}
				delete(model.leftAt, p)
				delete(leaves, p)
				break
			}
		default: // a decision under a random mandate, by its holder or not
			m := ids[rng.Intn(len(ids))]
			by := model.mandates[m].holder
			if rng.Intn(6) == 0 {
				by = people[rng.Intn(len(people))]
			}
			eff := around()
			if eff.Before(day0) {
				eff = day0 // the product exists since day0
			}
			d := decOpts([]string{"id=" + id, "by=" + by, "authority=" + m, "effective=" + stamp(eff)},
				ch("kpi.define", "product", "loans", "kpi", "k-"+id, "unit", "u"))
			_, err := l.try(d)
			want := by == model.mandates[m].holder && model.inForce(m, l.now)
			switch {
			case err == nil && !want:
				t.Fatalf("step %d: %s under %s at %s was accepted outside its root chain", step, by, m, stamp(l.now))
			case err != nil && want:
				t.Fatalf("step %d: %s under %s at %s was refused although in force: %v", step, by, m, stamp(l.now), err)
			case err != nil && !errors.Is(err, ErrUnauthorized):
				t.Fatalf("step %d: refused for another reason than authority: %v", step, err)
			case err == nil:
				accepted++
			default:
				refused++
			}
		}
	}
	deep := 0
	for _, m := range ids {
		d := 0
		for c := m; c != RootMandate; c = model.mandates[c].grantor {
			d++
		}
		deep = max(deep, d)
	}
	t.Logf("%d mandates granted, chains up to %d deep; %d decisions accepted, %d refused", len(ids)-1, deep, accepted, refused)
	if accepted < 10 || refused < 10 || deep < 3 {
		t.Fatalf("poor coverage: %d decisions accepted, %d refused", accepted, refused)
	}
}
