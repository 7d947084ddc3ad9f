package domain

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

type decideCase struct {
	name string
	// given are decisions (JSON) taken after the org fixture; one prefixed
	// "@2026-03-01 " is recorded on that date (and the clock stays there).
	given []string
	when  string // the decision under test
	// now is the date the decision under test is recorded on (default:
	// where the given decisions left the clock, day0 at first).
	now  string
	then []string // "aggregate type" of the events, without decision.recorded
	// On refusal: the error must satisfy errAs (when set), wrap errIs
	// (when set) and contain msg (when set).
	errAs func(error) bool
	errIs error
	msg   string
}

func runDecideCases(t *testing.T, cases []decideCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := orgFixture(t)
			for _, g := range tc.given {
				if at, js, ok := strings.Cut(g, " "); ok && strings.HasPrefix(at, "@") {
					l.now, g = mustDate(t, at[1:]), js
				}
				l.must(g)
			}
			if tc.now != "" {
				l.now = mustDate(t, tc.now)
			}
			evs, err := l.try(tc.when)
			wantErr := tc.errAs != nil || tc.errIs != nil || tc.msg != ""
			if !wantErr {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if got := summary(t, evs); !slices.Equal(got, tc.then) {
					t.Fatalf("events:\n got  %q\n want %q", got, tc.then)
				}
				return
			}
			if err == nil {
				t.Fatalf("want an error, got events %q", summary(t, evs))
			}
			if tc.errAs != nil && !tc.errAs(err) {
				t.Errorf("error %v (%T) is not of the wanted type", err, err)
			}
			if tc.errIs != nil && !errors.Is(err, tc.errIs) {
				t.Errorf("error %v does not wrap %v", err, tc.errIs)
			}
			if tc.msg != "" && !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not mention %q", err, tc.msg)
			}
		})
	}
}

func mustDate(tb testing.TB, s string) time.Time {
	tb.Helper()
	t, err := ParseEffective(s, time.UTC)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

func TestDecideStructure(t *testing.T) {
	runDecideCases(t, []decideCase{
		{name: "valuestream.define", when: dec(ch("valuestream.define", "id", "savings", "name", "Savings")),
			then: []string{"valuestream:savings valuestream.defined"}},
		{name: "valuestream.define refuses a taken id", when: dec(ch("valuestream.define", "id", "lending", "name", "Again")),
			errAs: isA[*ExistsError](), errIs: ErrRefused, msg: "valuestream:lending already exists"},
		{name: "valuestream.retire", given: []string{dec(ch("product.retire", "product", "payments-app"))},
			when: dec(ch("valuestream.retire", "valuestream", "payments")),
			then: []string{"valuestream:payments valuestream.retired"}},
		{name: "valuestream.retire refuses a value stream with active products", when: dec(ch("valuestream.retire", "valuestream", "payments")),
			errAs: isA[*ValueStreamHasProductsError](), errIs: ErrRefused,
			msg: `value stream "payments" still has active products payments-app: move them to another value stream (product.move) or retire them (product.retire) first`},
		{name: "valuestream.retire after its products moved away",
			given: []string{dec(ch("product.move", "product", "payments-app", "valuestream", "lending"))},
			when:  dec(ch("valuestream.retire", "valuestream", "payments")),
			then:  []string{"valuestream:payments valuestream.retired"}},
		{name: "valuestream.retire in one decision with its products' retirement",
			when: dec(ch("product.retire", "product", "payments-app"), ch("valuestream.retire", "valuestream", "payments")),
			then: []string{"product:payments-app product.retired", "valuestream:payments valuestream.product-removed",
				"person:p-0043 person.ownership-released", "valuestream:payments valuestream.retired"}},
		{name: "valuestream.retire refuses a retired one",
			given: []string{dec(ch("product.retire", "product", "payments-app"), ch("valuestream.retire", "valuestream", "payments"))},
			when:  dec(ch("valuestream.retire", "valuestream", "payments")),
			errAs: isA[*InactiveError](), msg: "valuestream:payments is retired"},
		{name: "valuestream.retire refuses an unknown one", when: dec(ch("valuestream.retire", "valuestream", "nope")),
			errAs: isA[*NotFoundError](), errIs: ErrNotFound},

		{name: "product.launch with owner", when: dec(ch("product.launch", "id", "cards", "name", "Cards", "valuestream", "payments", "owner", "p-0042")),
			then: []string{"product:cards product.launched", "valuestream:payments valuestream.product-added", "product:cards product.owner-assigned", "person:p-0042 person.ownership-taken"}},
		{name: "product.launch then assign-owner in one decision", when: dec(
			ch("product.launch", "id", "cards", "name", "Cards", "valuestream", "payments"),
			ch("product.assign-owner", "product", "cards", "owner", "p-0042")),
			then: []string{"product:cards product.launched", "valuestream:payments valuestream.product-added", "product:cards product.owner-assigned", "person:p-0042 person.ownership-taken"}},
		{name: "product.launch refuses a product without owner", when: dec(ch("product.launch", "id", "cards", "name", "Cards", "valuestream", "payments")),
			errAs: isA[*NoOwnerError](), msg: `product "cards" would have no accountable owner`},
		{name: "product.launch refuses a taken id", when: dec(ch("product.launch", "id", "loans", "name", "Loans", "valuestream", "payments", "owner", "p-0042")),
			errAs: isA[*ExistsError]()},
		{name: "product.launch refuses an unknown value stream", when: dec(ch("product.launch", "id", "cards", "name", "Cards", "valuestream", "nope", "owner", "p-0042")),
			errAs: isA[*NotFoundError](), msg: "valuestream:nope does not exist"},
		{name: "product.launch refuses a retired value stream",
			given: []string{dec(ch("product.retire", "product", "payments-app"), ch("valuestream.retire", "valuestream", "payments"))},
			when:  dec(ch("product.launch", "id", "cards", "name", "Cards", "valuestream", "payments", "owner", "p-0042")),
			errAs: isA[*InactiveError]()},
		{name: "product.launch refuses an owner who is not a person", when: dec(ch("product.launch", "id", "cards", "name", "Cards", "valuestream", "payments", "owner", "p-ghost")),
			errAs: isA[*NotFoundError](), msg: "owner must be a person in the organisation: person:p-ghost does not exist"},
		{name: "product.launch refuses an owner who left",
			given: []string{dec(ch("person.leave", "person", "p-0042"))},
			when:  dec(ch("product.launch", "id", "cards", "name", "Cards", "valuestream", "payments", "owner", "p-0042")),
			errAs: isA[*InactiveError](), msg: "person:p-0042 is gone"},
		{name: "product.launch refuses an effective time before its value stream exists",
			given: []string{decOpts([]string{"effective=2026-06-01"}, ch("valuestream.define", "id", "savings", "name", "Savings"))},
			when:  decOpts([]string{"effective=2026-05-01"}, ch("product.launch", "id", "sav", "name", "Sav", "valuestream", "savings", "owner", "p-0042")),
			errAs: isA[*TooEarlyError](), msg: "before valuestream:savings exists"},
		{name: "product.move", when: dec(ch("product.move", "product", "loans", "valuestream", "payments")),
			then: []string{"product:loans product.moved", "valuestream:lending valuestream.product-removed", "valuestream:payments valuestream.product-added"}},
		{name: "product.move refuses the same value stream", when: dec(ch("product.move", "product", "loans", "valuestream", "lending")),
			errAs: isA[*StateError](), msg: `already in value stream "lending"`},
		{name: "product.move refuses a retired product",
			given: []string{dec(ch("product.retire", "product", "loans"))},
			when:  dec(ch("product.move", "product", "loans", "valuestream", "payments")),
			errAs: isA[*InactiveError](), msg: "product:loans is retired"},
		{name: "product.assign-owner replaces the owner", when: dec(ch("product.assign-owner", "product", "loans", "owner", "p-0042")),
			then: []string{"product:loans product.owner-assigned", "person:p-owner person.ownership-released", "person:p-0042 person.ownership-taken"}},
		{name: "product.assign-owner refuses the current owner", when: dec(ch("product.assign-owner", "product", "loans", "owner", "p-owner")),
			errAs: isA[*StateError](), msg: `already owned by "p-owner"`},
		{name: "product.assign-owner refuses a retired product",
			given: []string{dec(ch("product.retire", "product", "loans"))},
			when:  dec(ch("product.assign-owner", "product", "loans", "owner", "p-0042")),
			errAs: isA[*InactiveError]()},
		{name: "product.retire releases the owner", when: dec(ch("product.retire", "product", "loans")),
			then: []string{"product:loans product.retired", "valuestream:lending valuestream.product-removed", "person:p-owner person.ownership-released"}},
		{name: "product.retire leaves its teams' lists",
			given: []string{dec(ch("team.assign", "team", "t-lending", "product", "loans"), ch("team.assign", "team", "t-empty", "product", "loans"))},
			when:  dec(ch("product.retire", "product", "loans")),
			then: []string{"team:t-empty team.product-unassigned", "product:loans product.team-removed",
				"team:t-lending team.product-unassigned", "product:loans product.team-removed",
				"product:loans product.retired", "valuestream:lending valuestream.product-removed", "person:p-owner person.ownership-released"}},
		{name: "product.retire refuses a retired product",
			given: []string{dec(ch("product.retire", "product", "loans"))},
			when:  dec(ch("product.retire", "product", "loans")), errAs: isA[*InactiveError]()},

		{name: "team.form", when: dec(ch("team.form", "id", "t-new", "name", "New", "type", "enabling")),
			then: []string{"team:t-new team.formed"}},
		{name: "team.form refuses a taken id", when: dec(ch("team.form", "id", "t-empty", "name", "Again", "type", "enabling")),
			errAs: isA[*ExistsError]()},
		{name: "team.assign", when: dec(ch("team.assign", "team", "t-lending", "product", "loans")),
			then: []string{"team:t-lending team.product-assigned", "product:loans product.team-added"}},
		{name: "team.assign refuses a product it serves",
			given: []string{dec(ch("team.assign", "team", "t-lending", "product", "loans"))},
			when:  dec(ch("team.assign", "team", "t-lending", "product", "loans")),
			errAs: isA[*StateError](), msg: `already serves product "loans"`},
		{name: "team.assign refuses a retired product",
			given: []string{dec(ch("product.retire", "product", "loans"))},
			when:  dec(ch("team.assign", "team", "t-lending", "product", "loans")), errAs: isA[*InactiveError]()},
		{name: "team.unassign",
			given: []string{dec(ch("team.assign", "team", "t-lending", "product", "loans"))},
			when:  dec(ch("team.unassign", "team", "t-lending", "product", "loans")),
			then:  []string{"team:t-lending team.product-unassigned", "product:loans product.team-removed"}},
		{name: "team.unassign refuses a product it does not serve", when: dec(ch("team.unassign", "team", "t-lending", "product", "loans")),
			errAs: isA[*StateError](), msg: `does not serve product "loans"`},
		{name: "team.disband", when: dec(ch("team.disband", "team", "t-empty")), then: []string{"team:t-empty team.disbanded"}},
		{name: "team.disband refuses a team with members", when: dec(ch("team.disband", "team", "t-lending")),
			errAs: isA[*TeamHasMembersError](), msg: `team "t-lending" still has members p-0042, p-owner`},
		{name: "team.disband after everyone moved out in the same decision", when: dec(
			ch("person.move", "person", "p-0043", "to", "t-empty"), ch("team.disband", "team", "t-payments-core")),
			then: []string{"person:p-0043 person.moved", "team:t-payments-core team.member-removed", "team:t-empty team.member-added", "team:t-payments-core team.disbanded"}},
		{name: "team.assign refuses a disbanded team",
			given: []string{dec(ch("team.disband", "team", "t-empty"))},
			when:  dec(ch("team.assign", "team", "t-empty", "product", "loans")), errAs: isA[*InactiveError](), msg: "team:t-empty is disbanded"},
	})
}

func TestDecidePeople(t *testing.T) {
	runDecideCases(t, []decideCase{
		{name: "person.join", when: dec(ch("person.join", "id", "p-new", "name", "New", "team", "t-empty")),
			then: []string{"person:p-new person.joined", "team:t-empty team.member-added"}},
		{name: "person.join refuses a taken id", when: dec(ch("person.join", "id", "p-0042", "name", "Again", "team", "t-empty")),
			errAs: isA[*ExistsError]()},
		{name: "person.join refuses a person who left (ids are never reused)",
			given: []string{dec(ch("person.leave", "person", "p-0042"))},
			when:  dec(ch("person.join", "id", "p-0042", "name", "Again", "team", "t-empty")), errAs: isA[*ExistsError]()},
		{name: "person.join refuses a disbanded team",
			given: []string{dec(ch("team.disband", "team", "t-empty"))},
			when:  dec(ch("person.join", "id", "p-new", "name", "New", "team", "t-empty")), errAs: isA[*InactiveError]()},
		{name: "person.join refuses an unknown team", when: dec(ch("person.join", "id", "p-new", "name", "New", "team", "t-ghost")),
			errAs: isA[*NotFoundError]()},
		{name: "person.move names the team left", when: dec(ch("person.move", "person", "p-0042", "to", "t-payments-core")),
			then: []string{"person:p-0042 person.moved", "team:t-lending team.member-removed", "team:t-payments-core team.member-added"}},
		{name: "person.move refuses the current team", when: dec(ch("person.move", "person", "p-0042", "to", "t-lending")),
			errAs: isA[*StateError](), msg: `already in team "t-lending"`},
		{name: "person.move refuses a disbanded team",
			given: []string{dec(ch("team.disband", "team", "t-empty"))},
			when:  dec(ch("person.move", "person", "p-0042", "to", "t-empty")), errAs: isA[*InactiveError]()},
		{name: "person.move refuses a person who left",
			given: []string{dec(ch("person.leave", "person", "p-0042"))},
			when:  dec(ch("person.move", "person", "p-0042", "to", "t-empty")), errAs: isA[*InactiveError]()},
		{name: "person.move refuses a team formed after the effective time",
			given: []string{decOpts([]string{"effective=2026-09-01"}, ch("team.form", "id", "t-later", "name", "Later", "type", "enabling"))},
			when:  decOpts([]string{"effective=2026-08-01"}, ch("person.move", "person", "p-0042", "to", "t-later")),
			errAs: isA[*TooEarlyError]()},
		{name: "person.move twice in one decision", when: dec(
			ch("person.move", "person", "p-0042", "to", "t-empty"), ch("person.move", "person", "p-0042", "to", "t-payments-core")),
			then: []string{"person:p-0042 person.moved", "team:t-lending team.member-removed", "team:t-empty team.member-added",
				"person:p-0042 person.moved", "team:t-empty team.member-removed", "team:t-payments-core team.member-added"}},
		{name: "person.leave", when: dec(ch("person.leave", "person", "p-0042")),
			then: []string{"person:p-0042 person.left", "team:t-lending team.member-removed"}},
		{name: "person.leave refuses an owner of an active product", when: dec(ch("person.leave", "person", "p-owner")),
			errAs: isA[*StillOwnsError](), msg: `person "p-owner" still owns loans`},
		{name: "person.leave after handing over ownership", when: dec(
			ch("product.assign-owner", "product", "loans", "owner", "p-0042"), ch("person.leave", "person", "p-owner")),
			then: []string{"product:loans product.owner-assigned", "person:p-owner person.ownership-released", "person:p-0042 person.ownership-taken",
				"person:p-owner person.left", "team:t-lending team.member-removed"}},
		{name: "person.leave refuses a person who left",
			given: []string{dec(ch("person.leave", "person", "p-0042"))},
			when:  dec(ch("person.leave", "person", "p-0042")), errAs: isA[*InactiveError]()},
		{name: "all changes fail together", when: dec(
			ch("person.move", "person", "p-0042", "to", "t-empty"), ch("person.move", "person", "p-ghost", "to", "t-empty")),
			errAs: isA[*ChangeError](), msg: "changes[1] person.move: person:p-ghost does not exist"},
	})
}

func TestDecideProjectsAndKPIs(t *testing.T) {
	runDecideCases(t, []decideCase{
		{name: "project.start", when: dec(ch("project.start", "id", "migration", "name", "Migration")),
			then: []string{"project:migration project.started"}},
		{name: "project.start refuses a taken id", when: dec(ch("project.start", "id", "legacy-crm", "name", "Again")),
			errAs: isA[*ExistsError]()},
		{name: "project.close releases what the project holds to the pool", when: dec(ch("project.close", "project", "legacy-crm")),
			then: []string{"project:legacy-crm project.closed", "budget:2026 funding.released"}},
		{name: "project.close of a project without money", when: dec(ch("project.start", "id", "p-x", "name", "X"), ch("project.close", "project", "p-x")),
			then: []string{"project:p-x project.started", "project:p-x project.closed"}},
		{name: "project.close refuses a closed project",
			given: []string{dec(ch("project.close", "project", "legacy-crm"))},
			when:  dec(ch("project.close", "project", "legacy-crm")), errAs: isA[*InactiveError](), msg: "project:legacy-crm is closed"},
		{name: "project.convert moves its funding", when: dec(ch("project.convert", "project", "legacy-crm", "product", "crm",
			"name", "CRM", "valuestream", "lending", "owner", "p-0042")),
			then: []string{"project:legacy-crm project.converted", "product:crm product.launched", "valuestream:lending valuestream.product-added",
				"product:crm product.owner-assigned", "person:p-0042 person.ownership-taken", "budget:2026 funding.shifted"}},
		{name: "project.convert refuses a second conversion",
			given: []string{dec(ch("project.convert", "project", "legacy-crm", "product", "crm", "name", "CRM", "valuestream", "lending", "owner", "p-0042"))},
			when:  dec(ch("project.convert", "project", "legacy-crm", "product", "crm2", "name", "CRM", "valuestream", "lending", "owner", "p-0042")),
			errAs: isA[*AlreadyConvertedError](), msg: `project "legacy-crm" was already converted into product "crm"`},
		{name: "project.convert refuses a closed project",
			given: []string{dec(ch("project.close", "project", "legacy-crm"))},
			when:  dec(ch("project.convert", "project", "legacy-crm", "product", "crm", "name", "CRM", "valuestream", "lending", "owner", "p-0042")),
			errAs: isA[*InactiveError]()},
		{name: "project.convert refuses a taken product id", when: dec(ch("project.convert", "project", "legacy-crm", "product", "loans",
			"name", "CRM", "valuestream", "lending", "owner", "p-0042")), errAs: isA[*ExistsError]()},
		{name: "project.convert needs an owner", when: dec(ch("project.convert", "project", "legacy-crm", "product", "crm",
			"name", "CRM", "valuestream", "lending")), errAs: isA[*NoOwnerError]()},
		{name: "kpi.define", when: dec(ch("kpi.define", "product", "loans", "kpi", "nps", "unit", "score", "target", "40")),
			then: []string{"product:loans product.kpi-defined"}},
		{name: "kpi.define refuses a defined KPI",
			given: []string{dec(ch("kpi.define", "product", "loans", "kpi", "nps", "unit", "score"))},
			when:  dec(ch("kpi.define", "product", "loans", "kpi", "nps", "unit", "score")), errAs: isA[*StateError](), msg: `already has KPI "nps"`},
		{name: "kpi.record",
			given: []string{dec(ch("kpi.define", "product", "loans", "kpi", "nps", "unit", "score"))},
			when:  dec(ch("kpi.record", "product", "loans", "kpi", "nps", "value", "-12.5")),
			then:  []string{"product:loans product.kpi-recorded"}},
		{name: "kpi.record refuses an undefined KPI", when: dec(ch("kpi.record", "product", "loans", "kpi", "nps", "value", "1")),
			errAs: isA[*UnknownKPIError](), errIs: ErrRefused, msg: `product:loans has no KPI "nps" (it defines none; define it first with kpi.define)`},
		{name: "kpi.record refuses a retired product",
			given: []string{dec(ch("kpi.define", "product", "loans", "kpi", "nps", "unit", "score")), dec(ch("product.retire", "product", "loans"))},
			when:  dec(ch("kpi.record", "product", "loans", "kpi", "nps", "value", "1")), errAs: isA[*InactiveError]()},
	})
}

func TestDecideFunding(t *testing.T) {
	runDecideCases(t, []decideCase{
		{name: "budget.open", when: dec(ch("budget.open", "period", "2027-h1", "amount", "10", "currency", "JPY")),
			then: []string{"budget:2027-h1 budget.opened"}},
		{name: "budget.open refuses an open period", when: dec(ch("budget.open", "period", "2026", "amount", "10", "currency", "EUR")),
			errAs: isA[*ExistsError]()},
		{name: "budget.adjust up", when: dec(ch("budget.adjust", "period", "2026", "amount", "5000.00")),
			then: []string{"budget:2026 budget.adjusted"}},
		{name: "budget.adjust down within the pool", when: dec(ch("budget.adjust", "period", "2026", "amount", "-450000.00")),
			then: []string{"budget:2026 budget.adjusted"}},
		{name: "budget.adjust refuses taking more than the pool holds", when: dec(ch("budget.adjust", "period", "2026", "amount", "-450000.01")),
			errAs: isA[*InsufficientFundsError](), msg: "budget 2026: pool holds 450000.00, cannot take 450000.01"},
		{name: "budget.adjust refuses a total beyond MaxTotal", when: dec(ch("budget.adjust", "period", "2026", "amount", "999999999999999.00")),
			errAs: isA[*StateError](), msg: "total would exceed"},
		{name: "budget.adjust refuses an unknown period", when: dec(ch("budget.adjust", "period", "2030", "amount", "1")),
			errAs: isA[*NotFoundError]()},
		{name: "funding.allocate", when: dec(ch("funding.allocate", "period", "2026", "to", "product:loans", "amount", "1000.50")),
			then: []string{"budget:2026 funding.allocated"}},
		{name: "funding.allocate refuses more than the pool holds", when: dec(ch("funding.allocate", "period", "2026", "to", "product:loans", "amount", "450000.01")),
			errAs: isA[*InsufficientFundsError]()},
		{name: "funding.allocate refuses more decimals than EUR has", when: dec(ch("funding.allocate", "period", "2026", "to", "product:loans", "amount", "12.345")),
			errAs: isA[*PrecisionError](), msg: `changes[0] funding.allocate: amount: "12.345" has more decimals than EUR allows`},
		{name: "funding.allocate refuses a retired product",
			given: []string{dec(ch("product.retire", "product", "loans"))},
			when:  dec(ch("funding.allocate", "period", "2026", "to", "product:loans", "amount", "1")), errAs: isA[*InactiveError]()},
		{name: "funding.allocate refuses an unknown value stream", when: dec(ch("funding.allocate", "period", "2026", "to", "valuestream:nope", "amount", "1")),
			errAs: isA[*NotFoundError]()},
		{name: "funding.allocate to a new project links it to the period",
			given: []string{dec(ch("project.start", "id", "migration", "name", "Migration"))},
			when:  dec(ch("funding.allocate", "period", "2026", "to", "project:migration", "amount", "1")),
			then:  []string{"budget:2026 funding.allocated", "project:migration project.budget-linked"}},
		{name: "funding.shift", when: dec(ch("funding.shift", "period", "2026", "from", "valuestream:lending", "to", "valuestream:payments", "amount", "125000.00")),
			then: []string{"budget:2026 funding.shifted"}},
		{name: "funding.shift refuses going below zero", when: dec(ch("funding.shift", "period", "2026", "from", "valuestream:lending", "to", "valuestream:payments", "amount", "300000.01")),
			errAs: isA[*InsufficientFundsError](), msg: "valuestream:lending holds 300000.00, cannot take 300000.01"},
		{name: "funding.shift refuses the same account", when: dec(ch("funding.shift", "period", "2026", "from", "product:loans", "to", "product:loans", "amount", "1")),
			errAs: isA[*StateError]()},
		{name: "funding.shift refuses a closed budget",
			given: []string{decOpts([]string{"id=open-2025"}, ch("budget.open", "period", "2025", "amount", "1", "currency", "EUR")),
				dec(ch("decision.retract", "decision", "open-2025"))},
			when:  dec(ch("funding.allocate", "period", "2025", "to", "product:loans", "amount", "1")),
			errAs: isA[*InactiveError](), msg: "budget:2025 is closed"},
		{name: "funding.release", when: dec(ch("funding.release", "period", "2026", "from", "valuestream:payments", "amount", "200000.00")),
			then: []string{"budget:2026 funding.released"}},
		{name: "funding.release refuses more than the account holds", when: dec(ch("funding.release", "period", "2026", "from", "product:loans", "amount", "1")),
			errAs: isA[*InsufficientFundsError]()},
	})
}

func TestOneNeedErrorNamesWhatEveryChangeNeeds(t *testing.T) {
	l := newLedger(t)
	var form, join, move []string
	for i := range 20 {
		form = append(form, ch("team.form", "id", fmt.Sprintf("t-%d", i), "name", "T", "type", "platform"))
		join = append(join, ch("person.join", "id", fmt.Sprintf("p-%d", i), "name", "P", "team", fmt.Sprintf("t-%d", i)))
		move = append(move, ch("person.move", "person", fmt.Sprintf("p-%d", i), "to", "t-new"))
	}
	l.must(dec(form...))
	l.must(dec(join...))
	l.must(dec(ch("team.form", "id", "t-new", "name", "New", "type", "enabling")))
	d := l.parse(dec(move...))
	w := World{}
	for _, r := range Plan(d) {
		w[r] = l.state(r)
	}
	_, err := Decide(w, d, day0)
	var ne *NeedError
	if !errors.As(err, &ne) || len(ne.Refs) != 20 {
		t.Fatalf("moving 20 people out of 20 teams: %v; want one NeedError naming the 20 teams they leave", err)
	}
	for _, r := range ne.Refs {
		w[r] = l.state(r)
	}
	evs, err := Decide(w, d, day0)
	if err != nil || len(evs) != 20*3+1 {
		t.Fatalf("second pass: %d events, %v", len(evs), err)
	}
}
