package domain

import "testing"

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
	lending := as("p-0042", "m-lending")
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
			errAs: isA[*AuthorityError](), msg: "the mandate is revoked"},
		{name: "mandate not yet valid at the effective time",
			given: []string{grantsOn("2026-06-01")},
			when:  decOpts(append(lending, "effective=2026-05-01"), ch("kpi.define", "product", "loans", "kpi", "nps", "unit", "score")),
			errAs: isA[*AuthorityError](), msg: "only valid from 2026-06-01"},
		{name: "kind not covered", given: []string{grants},
			when:  decOpts(lending, ch("person.move", "person", "p-0042", "to", "t-empty")),
			errAs: isA[*AuthorityError](), msg: "does not cover kind person.move"},
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
			errAs: isA[*AuthorityError](), msg: "amount 100000.01 exceeds the mandate's limit 100000"},
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
