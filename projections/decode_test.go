package projections

import (
	"encoding/json"
	"reflect"
	"testing"

	"koers/domain"
)

// TestDecisionLogKeepsChangesAsDecoded: the decision log stores a
// decision's changes and effects as recorded, which must be the JSON its
// domain decoding encodes again (jsonb compares values, not bytes), with
// the same change kinds and aggregates, for every decision of a history
// with every read model's kinds of change in it.
func TestDecisionLogKeepsChangesAsDecoded(t *testing.T) {
	e := newLog(t)
	e.play(t, script...)
	e.play(t, `{"id":"undo-kpis","by":"p-root","authority":"root","reason":"wrong figures","effective":"2026-06-02","changes":[
		 {"kind":"decision.retract","decision":"kpis"}]}`)
	generate(t, e, 2_000)
	same := func(what string, got string, want any) {
		t.Helper()
		b, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		var g, w any
		if err := json.Unmarshal([]byte(got), &g); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if err := json.Unmarshal(b, &w); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("%s:\n%s\nwant:\n%s", what, got, b)
		}
	}
	decisions := 0
	for _, u := range unitsOf(t, e.st) {
		last := u.Messages[len(u.Messages)-1]
		if last.Rejected != nil || last.Event.Type != domain.EventDecisionRecorded {
			continue
		}
		decisions++
		v, err := domain.DecodeEventData(last.Event)
		if err != nil {
			t.Fatal(err)
		}
		want := v.(*domain.DecisionRecorded)
		got, err := decodeDecision(last.Event)
		if err != nil {
			t.Fatal(err)
		}
		same(want.ID+" changes", jsonOrNull(got.Changes), want.Changes)
		same(want.ID+" effects", jsonOrNull(got.Effects), want.Effects)
		var kinds []string
		for _, c := range want.Changes {
			if !contains(kinds, c.Kind) {
				kinds = append(kinds, c.Kind)
			}
		}
		aggs := []string{"decision:" + want.ID}
		for _, e := range want.Effects {
			if !contains(aggs, e.Aggregate) {
				aggs = append(aggs, e.Aggregate)
			}
		}
		if !reflect.DeepEqual(got.kinds, kinds) || !reflect.DeepEqual(got.aggregates, aggs) || got.ID != want.ID || got.By != want.By ||
			got.Retracts != want.Retracts || !got.Effective.Equal(want.Effective) || !reflect.DeepEqual(got.AuthorityChain, want.AuthorityChain) {
			t.Fatalf("%s: decoded %+v, want %+v", want.ID, got, want)
		}
	}
	if decisions < 10 {
		t.Fatalf("%d decisions in the history", decisions)
	}
}

// TestADecisionOfAnUnknownChangeIsUnreadable: a change kind this build
// does not know stops the projector, as the domain's decoding would.
func TestADecisionOfAnUnknownChangeIsUnreadable(t *testing.T) {
	r := domain.Recorded{Event: domain.Event{Aggregate: domain.Ref{Kind: domain.KindDecision, ID: "d-1"}, Type: domain.EventDecisionRecorded,
		SchemaVersion: domain.CurrentVersion(domain.EventDecisionRecorded),
		Data:          []byte(`{"id":"d-1","by":"p","authority":"root","reason":"r","effective":"2026-01-01T00:00:00Z","changes":[{"kind":"team.teleport"}],"effects":[]}`)}}
	if _, err := domain.DecodeEventData(r); err == nil {
		t.Fatal("the domain decodes a change of unknown kind")
	}
	if _, err := decodeDecision(r); err == nil {
		t.Fatal("decodeDecision accepts a change of unknown kind")
	}
}

// BenchmarkProjectorDecode decodes every payload of a generated history of
// 10,000 events as the projector does (decision.recorded for the decision
// log, the other events into their domain payloads) and reports the time
// and the bytes allocated per event.
func BenchmarkProjectorDecode(b *testing.B) {
	e := newLog(b)
	generate(b, e, 10_000)
	var events []domain.Recorded
	for _, u := range unitsOf(b, e.st) {
		for _, m := range u.Messages {
			if m.Rejected == nil {
				events = append(events, m.Event)
			}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, r := range events {
			if _, err := decodePayload(r); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	n := float64(b.N) * float64(len(events))
	b.ReportMetric(b.Elapsed().Seconds()*1e9/n, "ns/event")
	b.ReportMetric(float64(len(events)), "events")
}
