package domain

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// ledger is an in-memory log for tests: it plays the command handler
// (Plan, load, Decide, retry on NeedError) and the event store (append
// with sequences, fold on load).
type ledger struct {
	tb   testing.TB
	logs map[Ref][]Recorded
	seq  uint64
	n    int
	// now is the recording clock: when the next decision is recorded and
	// its authority judged. Tests move it on; it starts at day0.
	now time.Time
}

const rootActor = "p-0001"

var day0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newLedger(tb testing.TB) *ledger {
	tb.Helper()
	l := &ledger{tb: tb, logs: map[Ref][]Recorded{}, now: day0}
	d, evs, err := Genesis(rootActor, day0.AddDate(-1, 0, 0))
	if err != nil {
		tb.Fatalf("genesis: %v", err)
	}
	l.append(d, evs)
	return l
}

func (l *ledger) append(d Decision, evs []Event) {
	for _, e := range evs {
		l.seq++
		l.logs[e.Aggregate] = append(l.logs[e.Aggregate], Recorded{Event: e, Meta: d.Meta(),
			EventID: fmt.Sprintf("e%d", l.seq), Sequence: l.seq, RecordedAt: l.now})
	}
}

func (l *ledger) state(r Ref) Aggregate {
	l.tb.Helper()
	a, err := Fold(r, l.logs[r])
	if err != nil {
		l.tb.Fatalf("fold %s: %v", r, err)
	}
	return a
}

// decide runs d like the command handler would, without appending.
func (l *ledger) decide(d Decision) ([]Event, error) {
	l.tb.Helper()
	w := World{}
	refs := Plan(d)
	for attempt := 0; attempt < 8; attempt++ {
		for _, r := range refs {
			if _, ok := w[r]; !ok {
				w[r] = l.state(r)
			}
		}
		evs, err := Decide(w, d, l.now)
		var ne *NeedError
		if errors.As(err, &ne) {
			refs = ne.Refs
			continue
		}
		for _, e := range evs {
			if _, ok := w[e.Aggregate]; !ok {
				l.tb.Fatalf("event %s on %s, which is not in the world", e.Type, e.Aggregate)
			}
		}
		return evs, err
	}
	l.tb.Fatalf("decide %s: still needs more after 8 rounds", d.ID)
	return nil, nil
}

// parse decodes a decision in the public JSON format.
func (l *ledger) parse(js string) Decision {
	l.tb.Helper()
	l.n++
	n := l.n
	d, err := DecodeDecision([]byte(js), DecodeOptions{
		Now:   func() time.Time { return day0 },
		NewID: func() string { return fmt.Sprintf("d-%04d", n) },
	})
	if err != nil {
		l.tb.Fatalf("decode %s: %v", js, err)
	}
	return d
}

func (l *ledger) try(js string) ([]Event, error) {
	l.tb.Helper()
	d := l.parse(js)
	evs, err := l.decide(d)
	if err == nil {
		l.append(d, evs)
	}
	return evs, err
}

func (l *ledger) must(js string) []Event {
	l.tb.Helper()
	evs, err := l.try(js)
	if err != nil {
		l.tb.Fatalf("decision %s: %v", js, err)
	}
	return evs
}

// dec builds decision JSON by the root actor under the root mandate on
// day0 (or on the date in opts "effective=2026-03-01", "by=x",
// "authority=y", "id=z").
func dec(changes ...string) string { return decOpts(nil, changes...) }

func decOpts(opts []string, changes ...string) string {
	fields := map[string]string{"by": rootActor, "authority": RootMandate, "effective": "2026-01-01"}
	for _, o := range opts {
		k, v, _ := strings.Cut(o, "=")
		fields[k] = v
	}
	s := `{`
	if id, ok := fields["id"]; ok {
		s += fmt.Sprintf(`"id":%q,`, id)
	}
	s += fmt.Sprintf(`"by":%q,"authority":%q,"reason":"test","effective":%q,"changes":[%s]}`,
		fields["by"], fields["authority"], fields["effective"], strings.Join(changes, ","))
	return s
}

// ch builds one change: ch("person.move", "person", "p-1", "to", "t-x").
func ch(kind string, kv ...string) string {
	s := fmt.Sprintf(`{"kind":%q`, kind)
	for i := 0; i+1 < len(kv); i += 2 {
		v := kv[i+1]
		if strings.HasPrefix(v, "[") {
			s += fmt.Sprintf(`,%q:%s`, kv[i], v)
		} else {
			s += fmt.Sprintf(`,%q:%q`, kv[i], v)
		}
	}
	return s + "}"
}

// summary renders events as "aggregate type" lines, without the final
// decision.recorded, which every successful decision has.
func summary(tb testing.TB, evs []Event) []string {
	tb.Helper()
	if len(evs) == 0 || evs[len(evs)-1].Type != EventDecisionRecorded {
		tb.Fatalf("last event is not %s: %v", EventDecisionRecorded, evs)
	}
	var out []string
	for _, e := range evs[:len(evs)-1] {
		out = append(out, e.Aggregate.String()+" "+e.Type)
	}
	return out
}

// orgFixture is a small organisation on day0:
// value streams lending, payments; teams t-lending, t-payments-core,
// t-empty (no members); people p-0042 and p-owner in t-lending, p-0043 in
// t-payments-core; products loans (lending, owner p-owner) and payments-app
// (payments, owner p-0043); budget 2026 EUR 1000000.00 with 300000.00 to
// valuestream:lending, 200000.00 to valuestream:payments, 50000.00 to
// project:legacy-crm (a project in lending).
func orgFixture(tb testing.TB) *ledger {
	tb.Helper()
	l := newLedger(tb)
	l.must(dec(
		ch("valuestream.define", "id", "lending", "name", "Lending"),
		ch("valuestream.define", "id", "payments", "name", "Payments"),
		ch("team.form", "id", "t-lending", "name", "Lending", "type", "stream-aligned"),
		ch("team.form", "id", "t-payments-core", "name", "Payments core", "type", "stream-aligned"),
		ch("team.form", "id", "t-empty", "name", "Empty", "type", "platform"),
		ch("person.join", "id", "p-0042", "name", "Ada", "team", "t-lending"),
		ch("person.join", "id", "p-owner", "name", "Owen", "team", "t-lending"),
		ch("person.join", "id", "p-0043", "name", "Grace", "team", "t-payments-core"),
		ch("product.launch", "id", "loans", "name", "Loans", "valuestream", "lending", "owner", "p-owner"),
		ch("product.launch", "id", "payments-app", "name", "Payments app", "valuestream", "payments", "owner", "p-0043"),
		ch("project.start", "id", "legacy-crm", "name", "CRM replacement", "valuestream", "lending"),
		ch("budget.open", "period", "2026", "amount", "1000000.00", "currency", "EUR"),
		ch("funding.allocate", "period", "2026", "to", "valuestream:lending", "amount", "300000.00"),
		ch("funding.allocate", "period", "2026", "to", "valuestream:payments", "amount", "200000"),
		ch("funding.allocate", "period", "2026", "to", "project:legacy-crm", "amount", "50000.00"),
	))
	return l
}

func isA[T error]() func(error) bool {
	return func(err error) bool {
		var t T
		return errors.As(err, &t)
	}
}
