package domain

import (
	"testing"
	"time"
)

func TestSmokeGenesisAndDecide(t *testing.T) {
	eff := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	_, evs, err := Genesis("p-0001", eff)
	if err != nil {
		t.Fatal(err)
	}
	w := World{}
	for i, e := range evs {
		a := w[e.Aggregate]
		a, err = Evolve(a, Recorded{Event: e, Meta: Meta{Effective: eff}, Sequence: uint64(i + 1)})
		if err != nil {
			t.Fatal(err)
		}
		w[e.Aggregate] = a
	}
	d, err := DecodeDecision([]byte(`{"id":"d1","by":"p-0001","authority":"root","reason":"r","effective":"2026-02-01",
	"changes":[{"kind":"valuestream.define","id":"lending","name":"Lending"}]}`), DecodeOptions{Now: func() time.Time { return eff }, NewID: func() string { return "x" }})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range Plan(d) {
		if _, ok := w[r]; !ok {
			w[r] = Aggregate{Ref: r}
		}
	}
	out, err := Decide(w, d)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 {
		t.Fatalf("got %d events", len(out))
	}
}
