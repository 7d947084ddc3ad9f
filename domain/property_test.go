package domain

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// TestFundingConservesTotals takes random funding decisions (allocations,
// shifts, releases, adjustments and retractions, some of them too large)
// and checks after each one that no account is negative and the accounts
// sum to the period total. Refused decisions must change nothing.
func TestFundingConservesTotals(t *testing.T) {
	rng := rand.New(rand.NewSource(20260701))
	l := orgFixture(t)
	accounts := []string{"pool", "valuestream:lending", "valuestream:payments", "product:loans", "product:payments-app", "project:legacy-crm"}
	budget := Ref{Kind: KindBudget, ID: "2026"}
	var taken []string
	const iterations = 400
	accepted, refused := 0, 0
	for i := 0; i < iterations; i++ {
		b := l.state(budget).Budget
		pick := func() string { return accounts[rng.Intn(len(accounts))] }
		amount := func(from string) string {
			bal := int64(b.Balance(Account(from)))
			n := rng.Int63n(bal + 2) // sometimes one cent too many
			if rng.Intn(10) == 0 {
				n = bal + 1 + rng.Int63n(1000)
			}
			if n == 0 {
				n = 1
			}
			return Amount(n).Format("EUR")
		}
		id := fmt.Sprintf("f-%04d", i)
		var change string
		switch op := rng.Intn(6); {
		case op == 0:
			change = ch("funding.allocate", "period", "2026", "to", accounts[1+rng.Intn(len(accounts)-1)], "amount", amount("pool"))
		case op == 1:
			from := accounts[1+rng.Intn(len(accounts)-1)]
			change = ch("funding.release", "period", "2026", "from", from, "amount", amount(from))
		case op == 2:
			amt := Amount(rng.Int63n(1_000_000) + 1)
			if rng.Intn(2) == 0 {
				amt = -amt
			}
			change = ch("budget.adjust", "period", "2026", "amount", amt.Format("EUR"))
		case op == 3 && len(taken) > 0:
			change = ch("decision.retract", "decision", taken[rng.Intn(len(taken))])
		default:
			from, to := pick(), pick()
			change = ch("funding.shift", "period", "2026", "from", from, "to", to, "amount", amount(from))
		}
		before := l.state(budget)
		_, err := l.try(withID(id, change))
		if err != nil {
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("%s %s: unexpected kind of error %v", id, change, err)
			}
			refused++
			if after := l.state(budget); after.Version != before.Version {
				t.Fatalf("%s: a refused decision changed the budget", id)
			}
		} else {
			accepted++
			taken = append(taken, id)
		}
		after := l.state(budget).Budget
		var sum Amount
		for acc, bal := range after.Accounts {
			if bal < 0 {
				t.Fatalf("after %s %s: %s is negative (%s)", id, change, acc, bal.Format("EUR"))
			}
			sum += bal
		}
		if sum != after.Total {
			t.Fatalf("after %s %s: accounts sum to %s, total is %s", id, change, sum.Format("EUR"), after.Total.Format("EUR"))
		}
	}
	if accepted < iterations/3 || refused == 0 {
		t.Fatalf("poor coverage: %d accepted, %d refused", accepted, refused)
	}
}

// TestEventsDecodeAndAreDeterministic checks that every event the fixture
// and a few retractions produced decodes into its payload struct and
// encodes back to the same bytes.
func TestEventsDecodeAndAreDeterministic(t *testing.T) {
	l := orgFixture(t)
	l.must(grants)
	l.must(withID("mv", ch("person.move", "person", "p-0042", "to", "t-payments-core")))
	l.must(retract("mv"))
	l.must(dec(ch("kpi.define", "product", "loans", "kpi", "nps", "unit", "score", "target", "40.5")))
	seen := map[string]bool{}
	for ref, log := range l.logs {
		for _, e := range log {
			v, err := DecodeEventData(e)
			if err != nil {
				t.Fatalf("%s %s: %v", ref, e.Type, err)
			}
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != string(e.Data) {
				t.Errorf("%s %s: re-encoded\n%s\nwas\n%s", ref, e.Type, b, e.Data)
			}
			seen[e.Type] = true
		}
	}
	if len(seen) < 15 {
		t.Errorf("only %d event types exercised", len(seen))
	}
	rec := l.state(Ref{Kind: KindDecision, ID: "mv"}).Decision
	if rec.RetractedBy == "" || len(rec.Record.Changes) != 1 || rec.Record.Changes[0].To != "t-payments-core" || len(rec.Record.Effects) != 3 {
		t.Errorf("decision record: %+v", rec)
	}
	if _, err := DecodeEventData(Recorded{Event: Event{Aggregate: Ref{Kind: KindTeam, ID: "x"}, Type: EventFundingShifted, SchemaVersion: 1, Data: []byte(`{}`)}}); err == nil {
		t.Error("an event on the wrong aggregate kind decoded")
	}
}

func TestFoldRefusesACorruptLog(t *testing.T) {
	e, _ := newEvent(Ref{Kind: KindTeam, ID: "t"}, EventTeamDisbanded, Lifecycle{ID: "t"})
	if _, err := Fold(e.Aggregate, []Recorded{{Event: e, Sequence: 1}}); err == nil {
		t.Fatal("folded a disband of a team that was never formed")
	}
	f, _ := newEvent(Ref{Kind: KindTeam, ID: "t"}, EventTeamFormed, TeamFormed{ID: "t", Name: "T", Type: "platform"})
	a, err := Fold(f.Aggregate, []Recorded{{Event: f, Sequence: 7, Meta: Meta{Effective: day0}}, {Event: e, Sequence: 9}})
	if err != nil || a.Version != 9 || !a.Team.Disbanded || !a.Since.Equal(day0) {
		t.Fatalf("fold: %+v, %v", a, err)
	}
}

func TestGenesis(t *testing.T) {
	d, evs, err := Genesis("p-0001", day0)
	if err != nil {
		t.Fatal(err)
	}
	if d.ID != GenesisDecision || len(evs) != 2 || evs[0].Aggregate != (Ref{Kind: KindMandate, ID: RootMandate}) || evs[1].Type != EventDecisionRecorded {
		t.Fatalf("genesis: %+v %v", d, evs)
	}
	if _, _, err := Genesis("Root Actor", day0); err == nil {
		t.Fatal("genesis accepted an invalid actor")
	}
	if _, _, err := Genesis("p-1", time.Time{}); err == nil {
		t.Fatal("genesis accepted a zero time")
	}
}

func FuzzDecodeDecision(f *testing.F) {
	f.Add([]byte(issueExample))
	f.Add([]byte(`{"by":"p-1","authority":"root","reason":"r","changes":[{"kind":"mandate.grant","id":"m","holder":"p","kinds":["funding.*"],"scope":"valuestream:x","limit":"10.5"}]}`))
	f.Add([]byte(`{"by":"p-1","authority":"root","reason":"r","effective":"2026-01-01T10:00:00+02:00","changes":[{"kind":"budget.open","period":"2026","amount":"0.001","currency":"BHD"}]}`))
	f.Add([]byte(`{"by":"p-1","authority":"root","reason":"r","changes":[{"kind":"kpi.record","product":"x","kpi":"nps","value":"-0.0"}]}`))
	f.Add([]byte(`{"changes":[{"kind":null}]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"by":"p-1","authority":"root","reason":"r","changes":[{"kind":"funding.shift","period":"2026","from":"pool","to":"product:a","amount":"99999999999999999"}]}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"by":"p-1","authority":"root","reason":"caf\xe9","effective":"9999-12-31T23:59:59-14:00","changes":[{"kind":"budget.open","period":"2026","amount":"+5.000","currency":"EUR"}]}`))
	f.Add([]byte(`{"by":"p-1","authority":"root","reason":"\ud800","changes":[{"kind":"team.form","id":"t","name":"\udfff","type":"platform"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := DecodeDecision(data, testOpts)
		if err != nil {
			if !errors.Is(err, ErrInvalid) || err.Error() == "" {
				t.Fatalf("error %q does not wrap ErrInvalid", err)
			}
			return
		}
		if len(d.Changes) == 0 || len(d.Changes) > MaxChanges || ValidID(d.ID) != nil {
			t.Fatalf("accepted an out-of-bounds decision: %+v", d)
		}
		if !utf8.Valid(data) {
			t.Fatalf("accepted invalid UTF-8: %q", data)
		}
		if d.Effective.Before(MinTime) || d.Effective.After(MaxTime) || d.Effective.Location() != time.UTC {
			t.Fatalf("accepted effective %v outside %v..%v in UTC", d.Effective, MinTime, MaxTime)
		}
		for _, text := range append([]string{d.Reason}, d.Refs...) {
			if strings.ContainsRune(text, utf8.RuneError) {
				t.Fatalf("accepted text with U+FFFD: %q", text)
			}
		}
		for _, c := range d.Changes {
			if strings.ContainsRune(c.Name+c.Unit, utf8.RuneError) {
				t.Fatalf("accepted a change with U+FFFD: %+v", c)
			}
			if !c.ValidUntil.IsZero() && (c.ValidUntil.Before(MinTime) || c.ValidUntil.After(MaxTime)) {
				t.Fatalf("accepted valid_until %v", c.ValidUntil)
			}
			if c.Kind == ChangeBudgetOpen {
				if dec, _ := c.Currency.Decimals(); c.Amount.exp > dec {
					t.Fatalf("accepted %s %s with more decimals than the currency", c.Amount, c.Currency)
				}
			}
		}
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("accepted decision does not encode: %v", err)
		}
		d2, err := DecodeDecision(b, testOpts)
		if err != nil {
			t.Fatalf("re-encoded decision %s does not decode: %v", b, err)
		}
		b2, _ := json.Marshal(d2)
		if string(b) != string(b2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", b, b2)
		}
	})
}

// FuzzParseDecimal: an accepted number is written in its canonical form
// (it renders back to what was sent), is within the digits bound, and a
// refused one names the canonical form when it has one.
func FuzzParseDecimal(f *testing.F) {
	for _, s := range []string{"0", "5", "5.00", "-1.25", "+5", "007", "-0", "0.000", "12.345", "99999999999999999", "1e3", ".5", "5.", "--1", "9223372036854775808"} {
		f.Add(s, "EUR")
	}
	f.Add("12.00", "JPY")
	f.Add("0.001", "BHD")
	f.Fuzz(func(t *testing.T, s, cur string) {
		d, err := ParseDecimal(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("%q: error %v does not wrap ErrInvalid", s, err)
			}
			var nc *NonCanonicalError
			if errors.As(err, &nc) {
				back, err := ParseDecimal(nc.Canonical)
				if err != nil || back.Cmp(MustDecimal(nc.Canonical)) != 0 {
					t.Fatalf("%q: the canonical form %q it suggests is refused: %v", s, nc.Canonical, err)
				}
			}
			return
		}
		if d.String() != s {
			t.Fatalf("accepted %q, which renders %q", s, d.String())
		}
		if len(strings.TrimLeft(strings.NewReplacer("-", "", ".", "").Replace(s), "0")) > maxDecimalDigits {
			t.Fatalf("accepted %q with more than %d significant digits", s, maxDecimalDigits)
		}
		a, err := d.Exact(Currency(cur))
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("%q %s: error %v does not wrap ErrInvalid", s, cur, err)
			}
			var pe *PrecisionError
			if errors.As(err, &pe) && pe.Canonical != "" {
				if c, err := MustDecimal(pe.Canonical).Exact(Currency(cur)); err != nil || d.Cmp(MustDecimal(pe.Canonical)) != 0 || c == 0 && !d.IsZero() {
					t.Fatalf("%q %s: the suggested %q is refused or another amount: %v", s, cur, pe.Canonical, err)
				}
			}
			return
		}
		if a.Decimal(Currency(cur)).Cmp(d) != 0 {
			t.Fatalf("%q %s: %d minor units are another amount", s, cur, a)
		}
	})
}
