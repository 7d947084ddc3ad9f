package projections

import (
	"regexp"
	"strings"
	"testing"
)

// TestBatchedWritesMatchOneStatementPerFact projects the same history with
// the batched writer (at two batch sizes) and with the reference writer, one
// statement per fact and row, and wants the same rows.
func TestBatchedWritesMatchOneStatementPerFact(t *testing.T) {
	e := newLog(t)
	e.play(t, script...)
	e.play(t,
		`{"id":"open-2027","by":"p-root","authority":"root","reason":"plan","effective":"2026-06-01","changes":[
		 {"kind":"budget.open","period":"2027","amount":"500.00","currency":"EUR"},
		 {"kind":"funding.allocate","period":"2027","to":"product:pay-app","amount":"200.00"}]}`,
		`{"id":"undo-kpis","by":"p-root","authority":"root","reason":"wrong figures","effective":"2026-06-02","changes":[
		 {"kind":"decision.retract","decision":"kpis"}]}`,
		`{"id":"undo-2027","by":"p-root","authority":"root","reason":"too early","effective":"2026-06-03","changes":[
		 {"kind":"decision.retract","decision":"open-2027"}]}`,
		`{"id":"owner-back","by":"p-root","authority":"root","reason":"backdated owner change","effective":"2026-02-10","changes":[
		 {"kind":"product.assign-owner","product":"pay-app","owner":"p-2"}]}`)
	generate(t, e, 3_000)

	ref := newDB(t)
	ref.referenceWrites = true
	catchUp(t, ref, e.st)
	want := dump(t, ref)
	for _, w := range []string{`"event_type": "budget.closed"`, `"kpi": "conversion", "seq": `, `"retracted_by": "undo-kpis"`, `"superseded_seq": 1`} {
		if !strings.Contains(want, w) {
			t.Fatalf("the history lacks %s", w)
		}
	}
	if !regexp.MustCompile(`"kpi": "conversion", "seq": \d+, "kind": "product", "note": null, "value": "3.2", "subject": "pay-app", "decision": "kpis", "effective": "[^"]+", "recorded_at": "[^"]+", "retracted_seq": \d+`).MatchString(want) {
		t.Fatalf("the kpi measurement of kpis is not retracted:\n%s", want)
	}
	for _, n := range []int{7, 1000} {
		db := newDB(t)
		if err := newProjector(t, db, e.st, ProjectorOptions{BatchEvents: n}).CatchUp(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := dump(t, db); got != want {
			t.Fatalf("batches of %d events: the batched writer differs from one statement per fact:\n%s\nwant:\n%s", n, got, want)
		}
	}
}
