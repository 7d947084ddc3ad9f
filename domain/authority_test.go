package domain

import (
	"errors"
	"strings"
	"testing"
)

// grants: m-lending (p-0042: funding.*, product.*, kpi.*, mandate.grant on
// valuestream:lending, limit 100000) and m-loans (p-owner: kpi.* on
// product:loans).
var grants = grantsOn("2026-01-01")

func grantsOn(effective string) string {
	return decOpts([]string{"effective=" + effective},
		ch("mandate.grant", "id", "m-lending", "holder", "p-0042", "kinds", `["funding.*","product.*","kpi.*","mandate.grant","decision.retract"]`,
			"scope", "valuestream:lending", "limit", "100000"),
		ch("mandate.grant", "id", "m-loans", "holder", "p-owner", "kinds", `["kpi.*"]`, "scope", "product:loans"),
	)
}

func as(by, mandate string) []string { return []string{"by=" + by, "authority=" + mandate} }

func TestDecideAuthority(t *testing.T) {
	runDecideCases(t, []decideCase{
		{name: "mandate.grant", when: grants,
			then: []string{"mandate:m-lending mandate.granted", "mandate:m-loans mandate.granted"}},
		{name: "mandate.grant refuses a taken id", given: []string{grants},
			when: dec(ch("mandate.grant", "id", "m-loans", "holder", "p-owner", "kinds", `["*"]`, "scope", "*")), errAs: isA[*ExistsError]()},
		{name: "mandate.revoke", given: []string{grants}, when: dec(ch("mandate.revoke", "mandate", "m-loans")),
			then: []string{"mandate:m-loans mandate.revoked"}},
		{name: "mandate.revoke refuses a revoked mandate", given: []string{grants, dec(ch("mandate.revoke", "mandate", "m-loans"))},
			when: dec(ch("mandate.revoke", "mandate", "m-loans")), errAs: isA[*InactiveError]()},

		{name: "scoped mandate shifts within its value stream", given: []string{grants},
			when: decOpts(lending, ch("funding.shift", "period", "2026", "from", "valuestream:lending", "to", "product:loans", "amount", "100000")),
			then: []string{"budget:2026 funding.shifted"}},
		{name: "scoped mandate covers the project accounts of its value stream", given: []string{grants},
			when: decOpts(lending, ch("funding.shift", "period", "2026", "from", "project:legacy-crm", "to", "product:loans", "amount", "1")),
			then: []string{"budget:2026 funding.shifted"}},
		{name: "unknown mandate", when: decOpts(as("p-0042", "m-ghost"), ch("kpi.define", "product", "loans", "kpi", "nps", "unit", "score")),
			errAs: isA[*AuthorityError](), errIs: ErrUnauthorized, msg: `p-0042 under mandate "m-ghost": the mandate does not exist`},
		{name: "actor does not hold the mandate", given: []string{grants},
			when:  decOpts(as("p-0043", "m-lending"), ch("kpi.define", "product", "loans", "kpi", "nps", "unit", "score")),
			errAs: isA[*AuthorityError](), msg: `held by "p-0042"`},
		{name: "revoked mandate authorises nothing", given: []string{grants, dec(ch("mandate.revoke", "mandate", "m-lending"))},
			when:  decOpts(lending, ch("kpi.define", "product", "loans", "kpi", "nps", "unit", "score")),
			errAs: isA[*NotInForceError](), errIs: ErrUnauthorized, msg: `the mandate was revoked on 2026-01-01T00:00:00Z; ask p-0001, who holds mandate "root"`},
		{name: "kind not covered", given: []string{grants},
			when:  decOpts(lending, ch("person.move", "person", "p-0042", "to", "t-empty")),
			errAs: isA[*AuthorityError](), msg: `does not cover kind person.move (covers funding.*, product.*, kpi.*, mandate.grant, decision.retract); ask p-0001, who holds mandate "root"`},
		{name: "scope does not cover another value stream", given: []string{grants},
			when:  decOpts(lending, ch("funding.shift", "period", "2026", "from", "valuestream:lending", "to", "valuestream:payments", "amount", "1")),
			errAs: isA[*AuthorityError](), msg: "scope valuestream:lending does not cover valuestream:payments"},
		{name: "scope does not cover a product of another value stream", given: []string{grants},
			when:  decOpts(lending, ch("kpi.define", "product", "payments-app", "kpi", "nps", "unit", "score")),
			errAs: isA[*AuthorityError](), msg: "does not cover product:payments-app"},
		{name: "scope does not cover the pool", given: []string{grants},
			when:  decOpts(lending, ch("funding.allocate", "period", "2026", "to", "product:loans", "amount", "1")),
			errAs: isA[*AuthorityError](), msg: "does not cover the whole organisation"},
		{name: "amount above the limit", given: []string{grants},
			when:  decOpts(lending, ch("funding.shift", "period", "2026", "from", "valuestream:lending", "to", "product:loans", "amount", "100000.01")),
			errAs: isA[*LimitError](), errIs: ErrUnauthorized,
			msg: `the decision moves 100000.01 EUR in total, above the mandate's limit of 100000 per decision; ask p-0001, who holds mandate "root"`},
		{name: "product scope covers its product", given: []string{grants},
			when: decOpts(as("p-owner", "m-loans"), ch("kpi.define", "product", "loans", "kpi", "nps", "unit", "score")),
			then: []string{"product:loans product.kpi-defined"}},
		{name: "product scope covers no other product", given: []string{grants},
			when:  decOpts(as("p-owner", "m-loans"), ch("kpi.define", "product", "payments-app", "kpi", "nps", "unit", "score")),
			errAs: isA[*AuthorityError]()},
		{name: "scope of another value stream does not cover a product", given: []string{grants, dec(ch("mandate.grant", "id", "m-pay", "holder", "p-0043",
			"kinds", `["product.*","kpi.*"]`, "scope", "valuestream:payments"))},
			when: decOpts(as("p-0043", "m-pay"), ch("kpi.define", "product", "loans", "kpi", "nps", "unit", "score")), errAs: isA[*AuthorityError]()},

		{name: "grant within the grantor's mandate", given: []string{grants},
			when: decOpts(lending, ch("mandate.grant", "id", "m-sub", "holder", "p-owner", "kinds", `["funding.shift"]`, "scope", "product:loans", "limit", "5000")),
			then: []string{"mandate:m-sub mandate.granted"}},
		{name: "grant refuses a wider scope", given: []string{grants},
			when:  decOpts(lending, ch("mandate.grant", "id", "m-sub", "holder", "p-owner", "kinds", `["funding.shift"]`, "scope", "*", "limit", "5")),
			errAs: isA[*EscalationError](), errIs: ErrUnauthorized, msg: "scope * is not within valuestream:lending"},
		{name: "grant refuses wider kinds", given: []string{grants},
			when:  decOpts(lending, ch("mandate.grant", "id", "m-sub", "holder", "p-owner", "kinds", `["team.*"]`, "scope", "product:loans", "limit", "5")),
			errAs: isA[*EscalationError](), msg: "kind team.* is not within"},
		{name: "grant refuses * kinds from a narrower grantor", given: []string{grants},
			when:  decOpts(lending, ch("mandate.grant", "id", "m-sub", "holder", "p-owner", "kinds", `["*"]`, "scope", "product:loans", "limit", "5")),
			errAs: isA[*EscalationError]()},
		{name: "grant refuses a higher limit", given: []string{grants},
			when:  decOpts(lending, ch("mandate.grant", "id", "m-sub", "holder", "p-owner", "kinds", `["funding.*"]`, "scope", "product:loans", "limit", "100000.50")),
			errAs: isA[*EscalationError](), msg: "limit 100000.50 exceeds the grantor's 100000"},
		{name: "grant refuses no limit from a limited grantor", given: []string{grants},
			when:  decOpts(lending, ch("mandate.grant", "id", "m-sub", "holder", "p-owner", "kinds", `["funding.*"]`, "scope", "product:loans")),
			errAs: isA[*EscalationError](), msg: "no amount limit"},
		{name: "grant refuses a product of another value stream", given: []string{grants},
			when:  decOpts(lending, ch("mandate.grant", "id", "m-sub", "holder", "p-owner", "kinds", `["funding.*"]`, "scope", "product:payments-app", "limit", "1")),
			errAs: isA[*EscalationError]()},
	})
}

func TestKindCovers(t *testing.T) {
	for _, tc := range []struct {
		p, q string
		want bool
	}{
		{"*", "funding.shift", true}, {"*", "*", true}, {"funding.*", "funding.shift", true},
		{"funding.*", "funding.*", true}, {"funding.*", "fundingx.shift", false}, {"funding.*", "*", false},
		{"funding.shift", "funding.shift", true}, {"funding.shift", "funding.*", false}, {"product.*", "product.assign-owner", true},
	} {
		if got := kindCovers(tc.p, tc.q); got != tc.want {
			t.Errorf("kindCovers(%q, %q) = %v, want %v", tc.p, tc.q, got, tc.want)
		}
	}
}

// The rules of authority (see the package documentation), each as given
// decisions / when a decision is recorded / then events or a refusal.
var (
	lending = as("p-0042", "m-lending")
	kpi     = ch("kpi.define", "product", "loans", "kpi", "nps", "unit", "score")
	kpiOK   = []string{"product:loans product.kpi-defined"}
	// m-sub: p-owner under m-lending; m-subsub: p-owner under m-sub.
	sub = decOpts(lending, ch("mandate.grant", "id", "m-sub", "holder", "p-owner",
		"kinds", `["kpi.*","funding.shift","mandate.grant"]`, "scope", "valuestream:lending", "limit", "50000"))
	subsub = decOpts(as("p-owner", "m-sub"), ch("mandate.grant", "id", "m-subsub", "holder", "p-owner",
		"kinds", `["kpi.*"]`, "scope", "product:loans", "limit", "10"))
	revoke = func(m string, opts ...string) string {
		return decOpts(append([]string{"id=revoke-" + m}, opts...), ch("mandate.revoke", "mandate", m))
	}
	leave = func(p string, opts ...string) string {
		return decOpts(append([]string{"id=leave-" + p}, opts...), ch("person.leave", "person", p))
	}
	shift = func(amount string) string {
		return ch("funding.shift", "period", "2026", "from", "valuestream:lending", "to", "product:loans", "amount", amount)
	}
)

func TestAuthorityIsJudgedWhenRecorded(t *testing.T) {
	runDecideCases(t, []decideCase{
		{name: "the root holder records a decision effective before the ledger's start",
			when: decOpts([]string{"effective=2024-06-01"}, ch("valuestream.define", "id", "savings", "name", "Savings")),
			then: []string{"valuestream:savings valuestream.defined"}},
		{name: "a grant is not in force before its effective date",
			given: []string{grantsOn("2026-06-01")}, now: "2026-05-31",
			when:  decOpts(append(as("p-0042", "m-lending"), "effective=2026-05-01"), kpi),
			errAs: isA[*NotInForceError](), errIs: ErrUnauthorized, msg: `the mandate takes effect only on 2026-06-01T00:00:00Z; ask p-0001`},
		{name: "once in force a grant covers a change effective before it",
			given: []string{grantsOn("2026-06-01")}, now: "2026-07-01",
			when: decOpts(append(as("p-0042", "m-lending"), "effective=2026-05-01"), kpi), then: kpiOK},
		{name: "a mandate revoked yesterday cannot be used today for a change effective last month",
			given: []string{grants, "@2026-03-01 " + revoke("m-lending", "effective=2026-03-01")}, now: "2026-03-02",
			when:  decOpts(append(as("p-0042", "m-lending"), "effective=2026-02-01"), kpi),
			errAs: isA[*NotInForceError](), msg: "the mandate was revoked on 2026-03-01"},
		{name: "a backdated revocation applies from its recording on",
			given: []string{grants, "@2026-03-01 " + revoke("m-lending", "effective=2026-01-15")},
			when:  decOpts(append(as("p-0042", "m-lending"), "effective=2026-01-10"), kpi),
			errAs: isA[*NotInForceError](), msg: "revoked"},
		{name: "a revocation effective later leaves the mandate in force until then",
			given: []string{grants, revoke("m-lending", "effective=2026-04-01")}, now: "2026-03-31",
			when: decOpts(lending, kpi), then: kpiOK},
		{name: "a revocation effective later ends the mandate then",
			given: []string{grants, revoke("m-lending", "effective=2026-04-01")}, now: "2026-04-01",
			when: decOpts(lending, kpi), errAs: isA[*NotInForceError]()},
		{name: "a retracted revocation puts the mandate back in force",
			given: []string{grants, revoke("m-lending"), dec(ch("decision.retract", "decision", "revoke-m-lending"))},
			when:  decOpts(lending, kpi), then: kpiOK},
		{name: "the root mandate cannot be revoked", when: dec(ch("mandate.revoke", "mandate", "root")),
			errAs: isA[*StateError](), errIs: ErrRefused, msg: "the root mandate cannot be revoked"},
	})
}

func TestAuthorityFollowsTheGrantChain(t *testing.T) {
	runDecideCases(t, []decideCase{
		{name: "a grant records its chain", given: []string{grants, sub}, when: subsub,
			then: []string{"mandate:m-subsub mandate.granted"}},
		{name: "a mandate granted under one in force is in force", given: []string{grants, sub, subsub},
			when: decOpts(as("p-owner", "m-subsub"), kpi), then: kpiOK},
		{name: "revoking a mandate suspends what was granted under it", given: []string{grants, sub, revoke("m-lending")},
			when: decOpts(as("p-owner", "m-sub"), kpi), errAs: isA[*NotInForceError](), errIs: ErrUnauthorized,
			msg: `p-owner under mandate "m-sub": mandate "m-lending", under which it was granted, was revoked on 2026-01-01T00:00:00Z, which suspends every mandate granted under it; ask p-0001, who holds mandate "root"`},
		{name: "the suspension is transitive", given: []string{grants, sub, subsub, revoke("m-lending")},
			when: decOpts(as("p-owner", "m-subsub"), kpi), errAs: isA[*NotInForceError](), msg: `mandate "m-lending", under which`},
		{name: "the highest mandate not in force is named, with who is above it", given: []string{grants, sub, subsub, revoke("m-sub")},
			when: decOpts(as("p-owner", "m-subsub"), kpi), errAs: isA[*NotInForceError](),
			msg: `mandate "m-sub", under which it was granted, was revoked on 2026-01-01T00:00:00Z, which suspends every mandate granted under it; ask p-0042, who holds mandate "m-lending"`},
		{name: "a holder who left decides nothing", given: []string{grants, leave("p-0042")},
			when: decOpts(lending, kpi), errAs: isA[*NotInForceError](),
			msg: `the mandate is suspended: its holder p-0042 left the organisation on 2026-01-01T00:00:00Z; ask p-0001`},
		{name: "a grantor leaving suspends what they granted", given: []string{grants, sub, leave("p-0042")},
			when: decOpts(as("p-owner", "m-sub"), kpi), errAs: isA[*NotInForceError](), msg: `mandate "m-lending", under which it was granted, is suspended: its holder p-0042 left`},
		{name: "a departure effective later suspends from then", given: []string{grants, leave("p-0042", "effective=2026-05-01")}, now: "2026-04-30",
			when: decOpts(lending, kpi), then: kpiOK},
		{name: "a retracted departure puts the mandates back in force",
			given: []string{grants, leave("p-0042"), dec(ch("decision.retract", "decision", "leave-p-0042"))},
			when:  decOpts(lending, kpi), then: kpiOK},
	})
}

func TestGrants(t *testing.T) {
	until := func(grantor, date string, extra ...string) string {
		kv := append([]string{"id", "m-temp", "holder", "p-owner", "kinds", `["kpi.*"]`, "scope", "product:loans", "limit", "10"}, extra...)
		if date != "" {
			kv = append(kv, "valid_until", date)
		}
		if grantor == "root" {
			return dec(ch("mandate.grant", kv...))
		}
		return decOpts(as("p-0042", grantor), ch("mandate.grant", kv...))
	}
	temp := decOpts(as("p-owner", "m-temp"), kpi)
	runDecideCases(t, []decideCase{
		{name: "a grant needs a person in the organisation",
			when:  dec(ch("mandate.grant", "id", "m-x", "holder", "p-ghost", "kinds", `["*"]`, "scope", "*")),
			errAs: isA[*HolderError](), errIs: ErrRefused, msg: `holder "p-ghost" cannot hold a mandate: it must be a person in the organisation (add them with person.join first): person:p-ghost does not exist`},
		{name: "a grant needs a person who has not left", given: []string{leave("p-0042")},
			when:  dec(ch("mandate.grant", "id", "m-x", "holder", "p-0042", "kinds", `["*"]`, "scope", "*")),
			errAs: isA[*HolderError](), msg: "person:p-0042 is gone"},
		{name: "a mandate is in force until valid_until", given: []string{until("root", "2026-03-01")}, now: "2026-02-28",
			when: temp, then: kpiOK},
		{name: "a mandate expires at valid_until", given: []string{until("root", "2026-03-01")}, now: "2026-03-01",
			when: temp, errAs: isA[*NotInForceError](), msg: "the mandate expired on 2026-03-01T00:00:00Z; ask p-0001"},
		{name: "expiry suspends what was granted under it",
			given: []string{dec(ch("mandate.grant", "id", "m-lending", "holder", "p-0042", "kinds", `["kpi.*","mandate.grant"]`, "scope", "*",
				"valid_until", "2026-03-01")), until("m-lending", "2026-02-01")}, now: "2026-01-15",
			when: decOpts(as("p-0042", "m-lending"), ch("mandate.grant", "id", "m-y", "holder", "p-0043", "kinds", `["kpi.*"]`, "scope", "*", "valid_until", "2026-03-01")),
			then: []string{"mandate:m-y mandate.granted"}},
		{name: "a grant that has expired already is refused", now: "2026-02-01", when: until("root", "2026-01-15"),
			errAs: isA[*StateError](), msg: "valid_until 2026-01-15T00:00:00Z is not after 2026-02-01T00:00:00Z"},
		{name: "no escalation: a grant under an expiring mandate expires too",
			given: []string{dec(ch("mandate.grant", "id", "m-lending", "holder", "p-0042", "kinds", `["kpi.*","mandate.grant"]`, "scope", "*", "valid_until", "2026-03-01"))},
			when:  until("m-lending", ""), errAs: isA[*EscalationError](), errIs: ErrUnauthorized, msg: "no expiry, the grantor's mandate expires 2026-03-01T00:00:00Z"},
		{name: "no escalation: a grant expires no later than its grantor",
			given: []string{dec(ch("mandate.grant", "id", "m-lending", "holder", "p-0042", "kinds", `["kpi.*","mandate.grant"]`, "scope", "*", "valid_until", "2026-03-01"))},
			when:  until("m-lending", "2026-03-02"), errAs: isA[*EscalationError](), msg: "after the grantor's"},
		{name: "no escalation: a grant under a period limit has one",
			given: []string{dec(ch("mandate.grant", "id", "m-lending", "holder", "p-0042", "kinds", `["kpi.*","mandate.grant"]`, "scope", "*", "period_limit", "1000"))},
			when:  until("m-lending", ""), errAs: isA[*EscalationError](), msg: "no period limit, the grantor's is 1000"},
		{name: "no escalation: a grant's period limit is no higher",
			given: []string{dec(ch("mandate.grant", "id", "m-lending", "holder", "p-0042", "kinds", `["kpi.*","mandate.grant"]`, "scope", "*", "period_limit", "1000"))},
			when:  until("m-lending", "", "period_limit", "1000.01"), errAs: isA[*EscalationError](), msg: "period limit 1000.01 exceeds the grantor's 1000"},
	})
}

func TestLimits(t *testing.T) {
	budget := func(id string, opts ...string) string {
		return decOpts(append(as("p-0042", "m-budget"), append([]string{"id=" + id}, opts...)...), shift("100000"))
	}
	mBudget := dec(ch("mandate.grant", "id", "m-budget", "holder", "p-0042", "kinds", `["funding.*","mandate.grant"]`,
		"scope", "valuestream:lending", "limit", "100000", "period_limit", "150000"))
	runDecideCases(t, []decideCase{
		{name: "the limit covers the whole decision", given: []string{grants},
			when:  decOpts(lending, shift("40000"), shift("40000"), shift("40000")),
			errAs: isA[*LimitError](), errIs: ErrUnauthorized, msg: "the decision moves 120000.00 EUR in total, above the mandate's limit of 100000 per decision"},
		{name: "changes within the limit together", given: []string{grants},
			when: decOpts(lending, shift("50000"), shift("50000")),
			then: []string{"budget:2026 funding.shifted", "budget:2026 funding.shifted"}},
		{name: "the limit is per currency",
			given: []string{grants, dec(ch("budget.open", "period", "2026-usd", "amount", "500000", "currency", "USD"),
				ch("funding.allocate", "period", "2026-usd", "to", "valuestream:lending", "amount", "200000"))},
			when: decOpts(lending, shift("60000"),
				ch("funding.shift", "period", "2026-usd", "from", "valuestream:lending", "to", "product:loans", "amount", "60000")),
			then: []string{"budget:2026 funding.shifted", "budget:2026-usd funding.shifted"}},
		{name: "a retraction counts the amounts it moves back",
			given: []string{grants, decOpts([]string{"id=big"}, shift("60000"), shift("60000"))},
			when:  decOpts(lending, ch("decision.retract", "decision", "big")),
			errAs: isA[*LimitError](), msg: "moves 120000.00 EUR in total"},
		{name: "the period limit caps what moves across decisions", given: []string{mBudget, budget("first")},
			when:  decOpts(as("p-0042", "m-budget"), shift("60000")),
			errAs: isA[*PeriodLimitError](), errIs: ErrUnauthorized,
			msg: `budget 2026: the mandate's period limit is 150000 EUR, 100000.00 used, the decision moves 60000.00: 50000.00 EUR headroom left; ask p-0001, who holds mandate "root"`},
		{name: "within the period limit's headroom", given: []string{mBudget, budget("first")},
			when: decOpts(as("p-0042", "m-budget"), shift("50000")), then: []string{"budget:2026 funding.shifted"}},
		{name: "the period limit is per budget period",
			given: []string{mBudget, budget("first"), dec(ch("budget.open", "period", "2027", "amount", "500000", "currency", "EUR"),
				ch("funding.allocate", "period", "2027", "to", "valuestream:lending", "amount", "200000"))},
			when: decOpts(as("p-0042", "m-budget"), ch("funding.shift", "period", "2027", "from", "valuestream:lending", "to", "product:loans", "amount", "100000")),
			then: []string{"budget:2027 funding.shifted"}},
		{name: "what is moved under a granted mandate counts against the grantor's period limit",
			given: []string{mBudget, budget("first"), decOpts(as("p-0042", "m-budget"), ch("mandate.grant", "id", "m-bsub", "holder", "p-owner",
				"kinds", `["funding.shift"]`, "scope", "valuestream:lending", "limit", "100000", "period_limit", "150000"))},
			when:  decOpts(as("p-owner", "m-bsub"), shift("60000")),
			errAs: isA[*PeriodLimitError](),
			msg:   `the period limit of mandate "m-budget", under which it was granted, is 150000 EUR, 100000.00 used, the decision moves 60000.00: 50000.00 EUR headroom left; ask p-0001`},
	})
}

// TestPeriodUseIsFolded checks that the budget remembers what moved under
// each period-limited mandate of the chain, and that a retraction neither
// gives headroom back nor takes more.
func TestPeriodUseIsFolded(t *testing.T) {
	l := orgFixture(t)
	l.must(dec(ch("mandate.grant", "id", "m-budget", "holder", "p-0042", "kinds", `["funding.*","mandate.grant","decision.retract"]`,
		"scope", "valuestream:lending", "period_limit", "150000")))
	l.must(decOpts(as("p-0042", "m-budget"), ch("mandate.grant", "id", "m-bsub", "holder", "p-owner",
		"kinds", `["funding.shift"]`, "scope", "valuestream:lending", "period_limit", "100000")))
	l.must(decOpts(append(as("p-owner", "m-bsub"), "id=s1"), shift("30000")))
	l.must(decOpts(as("p-0042", "m-budget"), ch("funding.shift", "period", "2026", "from", "valuestream:lending", "to", "project:legacy-crm", "amount", "20000")))
	l.must(decOpts(as("p-0042", "m-budget"), ch("decision.retract", "decision", "s1")))
	used := l.state(Ref{Kind: KindBudget, ID: "2026"}).Budget.Used
	if used["m-budget"] != 50000_00 || used["m-bsub"] != 30000_00 || len(used) != 2 {
		t.Fatalf("use per mandate: %v; want m-budget 50000.00, m-bsub 30000.00", used)
	}
}

// TestMandatesFromBeforeChains folds mandate.granted events as ledgers
// wrote them before valid_until, period_limit and chain existed (the same
// SchemaVersion 1), and judges decisions under them by walking Grantor.
func TestMandatesFromBeforeChains(t *testing.T) {
	l := orgFixture(t)
	old := func(id, holder, grantor string) {
		l.append(Decision{ID: "old-" + id, By: rootActor, Authority: grantor, Reason: "old", Effective: day0},
			[]Event{{Aggregate: Ref{Kind: KindMandate, ID: id}, Type: EventMandateGranted, SchemaVersion: 1,
				Data: []byte(`{"id":"` + id + `","holder":"` + holder + `","kinds":["kpi.*","mandate.grant"],"scope":"*","grantor":"` + grantor + `"}`)}})
	}
	old("m-old", "p-0042", "root")
	old("m-old2", "p-owner", "m-old")
	old("m-ghost", "someone", "root") // granted to an actor that never existed
	if _, err := l.try(decOpts(as("p-owner", "m-old2"), kpi)); err != nil {
		t.Fatalf("decision under an old grant: %v", err)
	}
	evs := l.must(decOpts(as("p-owner", "m-old2"), ch("mandate.grant", "id", "m-new", "holder", "p-0043", "kinds", `["kpi.*"]`, "scope", "*")))
	v, err := decodeData(evs[0])
	if err != nil {
		t.Fatal(err)
	}
	if g := v.(*MandateGranted); strings.Join(g.Chain, ",") != "root,m-old,m-old2" {
		t.Fatalf("chain of a grant under an old one: %v", g.Chain)
	}
	_, err = l.try(decOpts(as("someone", "m-ghost"), kpi))
	var nf *NotInForceError
	if !errors.As(err, &nf) || nf.Reason != ReasonHolderAbsent {
		t.Fatalf("decision under a mandate held by no person: %v", err)
	}
	l.must(revoke("m-old"))
	_, err = l.try(decOpts(as("p-0043", "m-new"), ch("kpi.define", "product", "loans", "kpi", "x", "unit", "u")))
	if !errors.As(err, &nf) || nf.Link != "m-old" || nf.AskHolder != rootActor {
		t.Fatalf("after revoking an old grant: %v; want m-old named and the root holder asked", err)
	}
}
