package domain

import (
	"fmt"
	"testing"
)

func benchWorld(b *testing.B, l *ledger, d Decision) World {
	b.Helper()
	w := World{}
	refs := Plan(d)
	for attempt := 0; attempt < 8; attempt++ {
		for _, r := range refs {
			w[r] = l.state(r)
		}
		_, err := Decide(w, d, day0)
		ne, ok := err.(*NeedError)
		if !ok {
			if err != nil {
				b.Fatal(err)
			}
			return w
		}
		refs = ne.Refs
	}
	b.Fatal("world never complete")
	return nil
}

func benchDecide(b *testing.B, js string) {
	l := orgFixture(b)
	d := l.parse(js)
	w := benchWorld(b, l, d)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Decide(w, d, day0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecidePersonMove(b *testing.B) {
	benchDecide(b, dec(ch("person.move", "person", "p-0042", "to", "t-payments-core")))
}

func BenchmarkDecideFundingShift(b *testing.B) {
	benchDecide(b, dec(ch("funding.shift", "period", "2026", "from", "valuestream:lending", "to", "valuestream:payments", "amount", "125000.00")))
}

func BenchmarkDecideReorg50(b *testing.B) {
	l := orgFixture(b)
	var joins, moves []string
	for i := 0; i < 50; i++ {
		joins = append(joins, ch("person.join", "id", fmt.Sprintf("p-%03d", i), "name", "N", "team", "t-lending"))
		moves = append(moves, ch("person.move", "person", fmt.Sprintf("p-%03d", i), "to", "t-payments-core"))
	}
	l.must(dec(joins...))
	d := l.parse(dec(moves...))
	w := benchWorld(b, l, d)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Decide(w, d, day0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFoldBudget1000(b *testing.B) {
	l := orgFixture(b)
	for i := 0; i < 1000; i++ {
		from, to := "valuestream:lending", "valuestream:payments"
		if i%2 == 1 {
			from, to = to, from
		}
		l.must(dec(ch("funding.shift", "period", "2026", "from", from, "to", to, "amount", "1.00")))
	}
	r := Ref{Kind: KindBudget, ID: "2026"}
	hist := l.logs[r]
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Fold(r, hist); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeDecision(b *testing.B) {
	data := []byte(issueExample)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := DecodeDecision(data, testOpts); err != nil {
			b.Fatal(err)
		}
	}
}
