package domain

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDecideKPIs(t *testing.T) {
	vsKPI := dec(ch("kpi.define", "valuestream", "lending", "kpi", "lead-time", "unit", "days", "direction", "lower", "category", "flow", "target", "10"))
	runDecideCases(t, []decideCase{
		{name: "kpi.define on a value stream", when: vsKPI, then: []string{"valuestream:lending valuestream.kpi-defined"}},
		{name: "kpi.define needs a subject", when: dec(ch("kpi.define", "kpi", "nps", "unit", "score")),
			errIs: ErrInvalid, msg: "give product or valuestream: whose KPI it is"},
		{name: "kpi.define refuses both subjects", when: dec(ch("kpi.define", "product", "loans", "valuestream", "lending", "kpi", "nps", "unit", "score")),
			errIs: ErrInvalid, msg: "not both"},
		{name: "kpi.define refuses a retired value stream",
			given: []string{dec(ch("product.retire", "product", "payments-app"), ch("valuestream.retire", "valuestream", "payments"))},
			when:  dec(ch("kpi.define", "valuestream", "payments", "kpi", "nps", "unit", "score")), errAs: isA[*InactiveError]()},
		{name: "kpi.record on a value stream", given: []string{vsKPI},
			when: dec(ch("kpi.record", "valuestream", "lending", "kpi", "lead-time", "value", "12.5", "note", "from the tracker")),
			then: []string{"valuestream:lending valuestream.kpi-recorded"}},
		{name: "kpi.record in the KPI's unit", given: []string{vsKPI},
			when: dec(ch("kpi.record", "valuestream", "lending", "kpi", "lead-time", "value", "12", "unit", "days")),
			then: []string{"valuestream:lending valuestream.kpi-recorded"}},
		{name: "kpi.record refuses another unit", given: []string{vsKPI},
			when:  dec(ch("kpi.record", "valuestream", "lending", "kpi", "lead-time", "value", "12", "unit", "%")),
			errAs: isA[*KPIUnitError](), errIs: ErrRefused, msg: `valuestream:lending KPI "lead-time" is measured in "days", not "%"`},
		{name: "kpi.record refuses a KPI of another subject", given: []string{vsKPI},
			when:  dec(ch("kpi.record", "product", "loans", "kpi", "lead-time", "value", "12")),
			errAs: isA[*UnknownKPIError](), msg: `product:loans has no KPI "lead-time"`},
		{name: "kpi.target of a quarter", given: []string{vsKPI},
			when: dec(ch("kpi.target", "valuestream", "lending", "kpi", "lead-time", "quarter", "2026-Q2", "target", "8")),
			then: []string{"valuestream:lending valuestream.kpi-target-set"}},
		{name: "kpi.target refuses the target it has", given: []string{vsKPI},
			when:  dec(ch("kpi.target", "valuestream", "lending", "kpi", "lead-time", "target", "10.0")),
			errAs: isA[*StateError](), msg: `KPI "lead-time": the default target is 10 already`},
		{name: "kpi.target refuses an undefined KPI",
			when:  dec(ch("kpi.target", "product", "loans", "kpi", "nps", "target", "1")),
			errAs: isA[*UnknownKPIError]()},
		{name: "retract kpi.target restores the previous target",
			given: []string{vsKPI, withID("tg", ch("kpi.target", "valuestream", "lending", "kpi", "lead-time", "target", "7"))},
			when:  retract("tg"),
			then:  []string{"valuestream:lending valuestream.kpi-target-set", "decision:tg decision.retracted"}},
		{name: "retract a value-stream measurement",
			given: []string{vsKPI, withID("m1", ch("kpi.record", "valuestream", "lending", "kpi", "lead-time", "value", "12"))},
			when:  retract("m1"),
			then:  []string{"valuestream:lending valuestream.kpi-record-retracted", "decision:m1 decision.retracted"}},
		{name: "retract a value-stream KPI definition", given: []string{withID("def", ch("kpi.define", "valuestream", "lending", "kpi", "nps", "unit", "score"))},
			when: retract("def"), then: []string{"valuestream:lending valuestream.kpi-removed", "decision:def decision.retracted"}},
	})
}

func TestDecodeKPIChanges(t *testing.T) {
	for _, tc := range []struct{ change, want string }{
		{ch("kpi.define", "product", "loans", "kpi", "nps", "unit", "score", "direction", "up"), `changes[0].direction: "up": want higher or lower`},
		{ch("kpi.define", "product", "loans", "kpi", "nps", "unit", "score", "category", "scope"),
			`changes[0].category: "scope" is not a KPI category (value, customer, flow, sustainability, team)`},
		{ch("kpi.record", "valuestream", "lending", "kpi", "lead-time", "value", "twelve"), `changes[0].value: "twelve" is not a decimal number`},
		{ch("kpi.target", "valuestream", "lending", "kpi", "lead-time", "quarter", "2026-Q5", "target", "8"), `changes[0].quarter: quarter "2026-Q5": want YYYY-Qn`},
	} {
		_, err := DecodeDecision([]byte(`{"id":"d","by":"p","authority":"root","reason":"r","effective":"2026-01-01","changes":[`+tc.change+`]}`),
			DecodeOptions{Now: func() time.Time { return day0 }, NewID: func() string { return "x" }})
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.change, err, tc.want)
		}
	}
}

func TestKPIStateFollowsItsEvents(t *testing.T) {
	l := orgFixture(t)
	l.must(dec(ch("kpi.define", "valuestream", "lending", "kpi", "lead-time", "unit", "days", "direction", "lower", "category", "flow", "target", "10")))
	l.must(dec(ch("kpi.define", "product", "loans", "kpi", "nps", "unit", "score")))
	l.must(dec(ch("kpi.target", "valuestream", "lending", "kpi", "lead-time", "quarter", "2026-Q2", "target", "8")))
	l.must(dec(ch("kpi.record", "valuestream", "lending", "kpi", "lead-time", "value", "9.5")))

	vs := l.state(ref(KindValueStream, "lending")).ValueStream
	k := vs.KPIs["lead-time"]
	if k.Unit != "days" || k.Direction != DirectionLower || k.Category != "flow" || k.Last == nil || k.Last.String() != "9.5" {
		t.Fatalf("lead-time %+v", k)
	}
	if got := k.TargetFor("2026-Q2"); got == nil || got.String() != "8" {
		t.Fatalf("target of 2026-Q2 %v, want 8", got)
	}
	if got := k.TargetFor("2026-Q3"); got == nil || got.String() != "10" {
		t.Fatalf("target of 2026-Q3 %v, want the default 10", got)
	}
	if got := vs.Products; len(got) != 1 || got[0] != "loans" {
		t.Fatalf("lending's products %v, want [loans]", got)
	}
	nps := l.state(ref(KindProduct, "loans")).Product.KPIs["nps"]
	if nps.Direction != DirectionHigher || nps.Category != "value" {
		t.Fatalf("nps %+v: want the defaults higher and value", nps)
	}
}

func TestParseQuarter(t *testing.T) {
	for _, tc := range []struct {
		in   string
		ok   bool
		from string
	}{
		{"2026-Q1", true, "2026-01-01"}, {"2026-Q4", true, "2026-10-01"}, {"2026-Q0", false, ""}, {"26-Q1", false, ""},
		{"2026-Q12", false, ""}, {"2026Q1", false, ""},
	} {
		q, err := ParseQuarter(tc.in)
		if (err == nil) != tc.ok {
			t.Fatalf("%s: err %v", tc.in, err)
		}
		if tc.ok && (q.From.Format("2006-01-02") != tc.from || QuarterOf(q.From).Name != tc.in || QuarterOf(q.To.Add(-1)).Name != tc.in) {
			t.Fatalf("%s: %+v", tc.in, q)
		}
	}
}
