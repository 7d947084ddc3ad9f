package domain

import (
	"errors"
	"testing"
)

func retract(id string, opts ...string) string {
	return decOpts(opts, ch("decision.retract", "decision", id))
}

func withID(id string, changes ...string) string { return decOpts([]string{"id=" + id}, changes...) }

func TestDecideRetract(t *testing.T) {
	move := withID("mv", ch("person.move", "person", "p-0042", "to", "t-payments-core"))
	shift := withID("sh", ch("funding.shift", "period", "2026", "from", "valuestream:lending", "to", "valuestream:payments", "amount", "100000.00"))
	runDecideCases(t, []decideCase{
		{name: "retract person.move moves the person back", given: []string{move}, when: retract("mv"),
			then: []string{"team:t-payments-core team.member-removed", "team:t-lending team.member-added",
				"person:p-0042 person.moved", "decision:mv decision.retracted"}},
		{name: "retract refuses a second retraction", given: []string{move, retract("mv")}, when: retract("mv"),
			errAs: isA[*RetractError](), errIs: ErrRefused, msg: `cannot retract "mv": it was already retracted by "d-0003"`},
		{name: "retract refuses retracting a retraction", given: []string{move, withID("undo-mv", ch("decision.retract", "decision", "mv"))},
			when: retract("undo-mv"), errAs: isA[*RetractError](), msg: `it is itself the retraction of "mv"`},
		{name: "retract refuses an unknown decision", when: retract("nope"), errAs: isA[*NotFoundError](), errIs: ErrNotFound},
		{name: "retract refuses the genesis", when: retract(GenesisDecision), errAs: isA[*RetractError](), msg: "genesis cannot be retracted"},
		{name: "retract refuses an effective time before the decision",
			given: []string{decOpts([]string{"id=late", "effective=2026-05-01"}, ch("person.move", "person", "p-0042", "to", "t-empty"))},
			when:  retract("late", "effective=2026-04-01"), errAs: isA[*RetractError](), msg: "before the decision"},
		{name: "retract refuses when the person moved on since", given: []string{move, dec(ch("person.move", "person", "p-0042", "to", "t-empty"))},
			when: retract("mv"), errAs: isA[*RetractError](), msg: `changed since: "p-0042" is no longer a member`},
		{name: "retract funding.shift moves the funds back", given: []string{shift}, when: retract("sh"),
			then: []string{"budget:2026 funding.shifted", "decision:sh decision.retracted"}},
		{name: "retract refuses when the funds were shifted onward",
			given: []string{shift, dec(ch("funding.shift", "period", "2026", "from", "valuestream:payments", "to", "product:payments-app", "amount", "250000.00"))},
			when:  retract("sh"), errAs: isA[*InsufficientFundsError](),
			msg: `cannot retract "sh": undo funding.shifted on budget:2026: the funds were moved on: budget 2026: valuestream:payments holds 50000.00, cannot take 100000.00`},
		{name: "retract product.launch retires it and releases the owner",
			given: []string{withID("launch", ch("product.launch", "id", "cards", "name", "Cards", "valuestream", "payments", "owner", "p-0042"))},
			when:  retract("launch"),
			then: []string{"person:p-0042 person.ownership-released", "product:cards product.owner-unassigned",
				"valuestream:payments valuestream.product-removed", "product:cards product.retired", "decision:launch decision.retracted"}},
		{name: "retract product.assign-owner gives the product back",
			given: []string{withID("own", ch("product.assign-owner", "product", "loans", "owner", "p-0042"))},
			when:  retract("own"),
			then: []string{"person:p-0042 person.ownership-released", "person:p-owner person.ownership-taken", "product:loans product.owner-assigned",
				"decision:own decision.retracted"}},
		{name: "retract product.assign-owner refuses when the previous owner left",
			given: []string{withID("own", ch("product.assign-owner", "product", "loans", "owner", "p-0042")), dec(ch("person.leave", "person", "p-owner"))},
			when:  retract("own"), errAs: isA[*InactiveError](), msg: "person:p-owner is gone"},
		{name: "retract project.convert restores project and funds",
			given: []string{withID("cv", ch("project.convert", "project", "legacy-crm", "product", "crm", "name", "CRM", "valuestream", "lending", "owner", "p-0042"))},
			when:  retract("cv"),
			then: []string{"budget:2026 funding.shifted", "person:p-0042 person.ownership-released", "product:crm product.owner-unassigned",
				"valuestream:lending valuestream.product-removed", "product:crm product.retired", "project:legacy-crm project.reopened", "decision:cv decision.retracted"}},
		{name: "retract of a conversion lets the project convert again",
			given: []string{withID("cv", ch("project.convert", "project", "legacy-crm", "product", "crm", "name", "CRM", "valuestream", "lending", "owner", "p-0042")), retract("cv")},
			when:  dec(ch("project.convert", "project", "legacy-crm", "product", "crm-2", "name", "CRM", "valuestream", "lending", "owner", "p-0042")),
			then: []string{"project:legacy-crm project.converted", "product:crm-2 product.launched", "valuestream:lending valuestream.product-added",
				"product:crm-2 product.owner-assigned", "person:p-0042 person.ownership-taken", "budget:2026 funding.shifted"}},
		{name: "retract person.leave brings the person back",
			given: []string{withID("bye", ch("person.leave", "person", "p-0042"))}, when: retract("bye"),
			then: []string{"team:t-lending team.member-added", "person:p-0042 person.rejoined", "decision:bye decision.retracted"}},
		{name: "retract person.join refuses while the person owns a product",
			given: []string{withID("hi", ch("person.join", "id", "p-new", "name", "New", "team", "t-empty")),
				dec(ch("product.assign-owner", "product", "loans", "owner", "p-new"))},
			when: retract("hi"), errAs: isA[*StillOwnsError]()},
		{name: "retract team.disband reforms the team",
			given: []string{withID("dis", ch("team.disband", "team", "t-empty"))}, when: retract("dis"),
			then: []string{"team:t-empty team.reformed", "decision:dis decision.retracted"}},
		{name: "retract team.form refuses while it has members",
			given: []string{withID("tf", ch("team.form", "id", "t-x", "name", "X", "type", "enabling")),
				dec(ch("person.move", "person", "p-0042", "to", "t-x"))},
			when: retract("tf"), errAs: isA[*TeamHasMembersError]()},
		{name: "retract valuestream.retire reactivates it",
			given: []string{withID("vr", ch("product.retire", "product", "payments-app"), ch("valuestream.retire", "valuestream", "payments"))},
			when:  retract("vr"),
			then: []string{"valuestream:payments valuestream.reactivated", "person:p-0043 person.ownership-taken",
				"valuestream:payments valuestream.product-added", "product:payments-app product.reactivated", "decision:vr decision.retracted"}},
		{name: "retract product.retire gives the teams their product back",
			given: []string{dec(ch("team.assign", "team", "t-lending", "product", "loans")), withID("pr", ch("product.retire", "product", "loans"))},
			when:  retract("pr"),
			then: []string{"person:p-owner person.ownership-taken", "valuestream:lending valuestream.product-added", "product:loans product.reactivated",
				"product:loans product.team-added", "team:t-lending team.product-assigned", "decision:pr decision.retracted"}},
		{name: "retract project.close gives the project its money back",
			given: []string{withID("pc", ch("project.close", "project", "legacy-crm"))},
			when:  retract("pc"),
			then:  []string{"budget:2026 funding.allocated", "project:legacy-crm project.reopened", "decision:pc decision.retracted"}},
		{name: "retract mandate.grant revokes it", given: []string{withID("g", ch("mandate.grant", "id", "m-x", "holder", "p-0042", "kinds", `["kpi.*"]`, "scope", "*"))},
			when: retract("g"), then: []string{"mandate:m-x mandate.revoked", "decision:g decision.retracted"}},
		{name: "retract mandate.revoke reinstates it",
			given: []string{grants, withID("rv", ch("mandate.revoke", "mandate", "m-loans"))},
			when:  retract("rv"), then: []string{"mandate:m-loans mandate.reinstated", "decision:rv decision.retracted"}},
		{name: "retract budget.open closes the period",
			given: []string{withID("bo", ch("budget.open", "period", "2027", "amount", "10", "currency", "EUR"))},
			when:  retract("bo"), then: []string{"budget:2027 budget.closed", "decision:bo decision.retracted"}},
		{name: "retract budget.open refuses while funds are allocated",
			given: []string{withID("bo", ch("budget.open", "period", "2027", "amount", "10", "currency", "EUR")),
				dec(ch("funding.allocate", "period", "2027", "to", "product:loans", "amount", "1"))},
			when: retract("bo"), errAs: isA[*StateError](), msg: "product:loans still holds 1.00 (release it first)"},
		{name: "retract refuses an allocation already released by hand",
			given: []string{withID("al", ch("funding.allocate", "period", "2026", "to", "product:loans", "amount", "1")),
				dec(ch("funding.release", "period", "2026", "from", "product:loans", "amount", "1"))},
			when: retract("al"), errAs: isA[*InsufficientFundsError](), msg: "the funds were moved on"},
		{name: "retract budget.adjust refuses when the pool was spent",
			given: []string{withID("adj", ch("budget.adjust", "period", "2026", "amount", "1000.00")),
				dec(ch("funding.allocate", "period", "2026", "to", "product:loans", "amount", "451000.00"))},
			when: retract("adj"), errAs: isA[*InsufficientFundsError](), msg: "pool holds 0.00, cannot take 1000.00"},
		{name: "retract kpi.record",
			given: []string{dec(ch("kpi.define", "product", "loans", "kpi", "nps", "unit", "score")), withID("k", ch("kpi.record", "product", "loans", "kpi", "nps", "value", "7"))},
			when:  retract("k"), then: []string{"product:loans product.kpi-record-retracted", "decision:k decision.retracted"}},
		{name: "retract needs authority over the retracted changes", given: []string{grants, move},
			when: retract("mv", "by=p-0042", "authority=m-lending"), errAs: isA[*AuthorityError](), msg: "retract mv: p-0042 under mandate \"m-lending\": does not cover kind person.move"},
	})
}

func TestRetractBudgetOpenRefusedWhileAllocated(t *testing.T) {
	l := orgFixture(t)
	l.must(withID("bo", ch("budget.open", "period", "2027", "amount", "10", "currency", "EUR"),
		ch("funding.allocate", "period", "2027", "to", "product:loans", "amount", "1")))
	l.must(dec(ch("funding.shift", "period", "2027", "from", "product:loans", "to", "valuestream:lending", "amount", "1")))
	_, err := l.try(retract("bo"))
	var ie *InsufficientFundsError
	if !errors.As(err, &ie) || ie.Account != "product:loans" {
		t.Fatalf("want insufficient funds on product:loans, got %v", err)
	}
}

func TestDuplicateDecision(t *testing.T) {
	l := orgFixture(t)
	d := withID("once", ch("person.move", "person", "p-0042", "to", "t-empty"))
	l.must(d)
	_, err := l.try(d)
	var de *DuplicateDecisionError
	if !errors.As(err, &de) || de.ID != "once" {
		t.Fatalf("want DuplicateDecisionError{once}, got %v", err)
	}
}

func TestDecideNeedsAndPurity(t *testing.T) {
	l := orgFixture(t)
	d := l.parse(dec(ch("person.move", "person", "p-0042", "to", "t-empty")))
	w := World{}
	for _, r := range Plan(d) {
		w[r] = l.state(r)
	}
	_, err := Decide(w, d, day0)
	var ne *NeedError
	if !errors.As(err, &ne) || len(ne.Refs) != 1 || ne.Refs[0] != (Ref{Kind: KindTeam, ID: "t-lending"}) {
		t.Fatalf("want a need for team:t-lending (the team left), got %v", err)
	}
	w[ne.Refs[0]] = l.state(ne.Refs[0])
	before := w[Ref{Kind: KindTeam, ID: "t-lending"}].Team.Members
	evs, err := Decide(w, d, day0)
	if err != nil {
		t.Fatal(err)
	}
	if got := w[Ref{Kind: KindTeam, ID: "t-lending"}].Team.Members; len(got) != len(before) || len(got) != 2 {
		t.Fatalf("Decide changed the world: members %v", got)
	}
	again, _ := Decide(w, d, day0)
	for i := range evs {
		if string(evs[i].Data) != string(again[i].Data) {
			t.Fatalf("Decide is not deterministic at event %d:\n%s\n%s", i, evs[i].Data, again[i].Data)
		}
	}
}
