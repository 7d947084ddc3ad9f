package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"koers/domain"
	"koers/eventstore"
	"koers/internal/ledgertest"
	"koers/ledger"
)

func setup(t *testing.T) (*ledger.Handler, *eventstore.Store) {
	t.Helper()
	l := ledgertest.New(t)
	return l.Handler, l.Store
}

func submit(t *testing.T, h *ledger.Handler, decision string) ledger.Result {
	t.Helper()
	res, err := h.Submit(context.Background(), []byte(decision))
	if err != nil {
		t.Fatalf("decision %s: %v", decision, err)
	}
	return res
}

const org = `{"id":"bootstrap","by":"p-root","authority":"root","reason":"start","effective":"2026-01-01","changes":[
 {"kind":"valuestream.define","id":"payments","name":"Payments"},
 {"kind":"team.form","id":"t-core","name":"Core","type":"stream-aligned"},
 {"kind":"team.form","id":"t-edge","name":"Edge","type":"platform"},
 {"kind":"person.join","id":"p-1","name":"Ada","team":"t-core"},
 {"kind":"product.launch","id":"pay-app","name":"Pay app","valuestream":"payments","owner":"p-1"},
 {"kind":"budget.open","period":"2026","amount":"1000000.00","currency":"EUR"},
 {"kind":"funding.allocate","period":"2026","to":"valuestream:payments","amount":"250000.00"}]}`

func TestADecisionLandsAtomicallyAndIsFoldedBack(t *testing.T) {
	h, st := setup(t)
	res := submit(t, h, org)
	if res.DecisionID != "bootstrap" || len(res.Sequences) < 7 || res.Duplicate {
		t.Fatalf("bootstrap: %+v", res)
	}
	for i := 1; i < len(res.Sequences); i++ {
		if res.Sequences[i] != res.Sequences[i-1]+1 {
			t.Fatalf("sequences of one decision are not consecutive: %v", res.Sequences)
		}
	}
	hist, err := st.Load(context.Background(), domain.Ref{Kind: domain.KindProduct, ID: "pay-app"})
	if err != nil {
		t.Fatal(err)
	}
	agg, err := domain.Fold(domain.Ref{Kind: domain.KindProduct, ID: "pay-app"}, hist.Events)
	if err != nil {
		t.Fatal(err)
	}
	if agg.Product == nil || agg.Product.Owner != "p-1" || agg.Product.ValueStream != "payments" {
		t.Fatalf("product after bootstrap: %+v", agg.Product)
	}
}

func TestResubmittingADecisionReturnsTheFirstResult(t *testing.T) {
	h, st := setup(t)
	first := submit(t, h, org)
	last, _ := st.LastSequence(context.Background())
	again := submit(t, h, org)
	if !again.Duplicate || !slices.Equal(again.Sequences, first.Sequences) {
		t.Fatalf("resubmit: %+v, want %v marked duplicate", again, first.Sequences)
	}
	if now, _ := st.LastSequence(context.Background()); now != last {
		t.Fatalf("resubmit wrote: stream %d -> %d", last, now)
	}
	init, err := h.Init(context.Background(), "p-root", time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil || !init.Duplicate {
		t.Fatalf("second init: %+v, %v; want the genesis result marked duplicate", init, err)
	}
}

func TestConcurrentDecisionsOnOneTeamAllLandThroughRetries(t *testing.T) {
	h, st := setup(t)
	submit(t, h, org)
	const joiners = 6
	var wg sync.WaitGroup
	errs := make([]error, joiners)
	for i := range joiners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = h.Submit(context.Background(), []byte(fmt.Sprintf(
				`{"id":"join-%d","by":"p-root","authority":"root","reason":"hire","changes":[{"kind":"person.join","id":"p-new-%d","name":"N","team":"t-edge"}]}`, i, i)))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("joiner %d: %v", i, err)
		}
	}
	hist, err := st.Load(context.Background(), domain.Ref{Kind: domain.KindTeam, ID: "t-edge"})
	if err != nil {
		t.Fatal(err)
	}
	agg, _ := domain.Fold(domain.Ref{Kind: domain.KindTeam, ID: "t-edge"}, hist.Events)
	if len(agg.Team.Members) != joiners {
		t.Fatalf("team has %d members, want %d", len(agg.Team.Members), joiners)
	}
}

func TestRefusedDecisionsWriteNothing(t *testing.T) {
	h, st := setup(t)
	submit(t, h, org)
	before, _ := st.LastSequence(context.Background())
	cases := []struct {
		name     string
		decision string
		want     error
	}{
		{"actor without the mandate", `{"by":"p-1","authority":"root","reason":"x","changes":[{"kind":"team.disband","team":"t-edge"}]}`, domain.ErrUnauthorized},
		{"overdrawn account", `{"by":"p-root","authority":"root","reason":"x","changes":[{"kind":"funding.shift","period":"2026","from":"valuestream:payments","to":"product:pay-app","amount":"250000.01"}]}`, domain.ErrRefused},
		{"one bad change among good ones", `{"by":"p-root","authority":"root","reason":"x","changes":[{"kind":"team.form","id":"t-new","name":"New","type":"enabling"},{"kind":"person.move","person":"p-1","to":"t-nowhere"}]}`, domain.ErrRefused},
		{"unknown kind", `{"by":"p-root","authority":"root","reason":"x","changes":[{"kind":"team.explode","team":"t-edge"}]}`, domain.ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := h.Submit(context.Background(), []byte(c.decision))
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want an error wrapping %v", err, c.want)
			}
		})
	}
	if after, _ := st.LastSequence(context.Background()); after != before {
		t.Fatalf("refused decisions wrote: stream %d -> %d", before, after)
	}
}

func TestRetractionUndoesADecisionAndKeepsBoth(t *testing.T) {
	h, st := setup(t)
	submit(t, h, org)
	submit(t, h, `{"id":"move-ada","by":"p-root","authority":"root","reason":"help edge","effective":"2026-03-01","changes":[{"kind":"person.move","person":"p-1","to":"t-edge"}]}`)
	submit(t, h, `{"id":"undo-move","by":"p-root","authority":"root","reason":"mistake","effective":"2026-03-02","changes":[{"kind":"decision.retract","decision":"move-ada"}]}`)
	hist, err := st.Load(context.Background(), domain.Ref{Kind: domain.KindPerson, ID: "p-1"})
	if err != nil {
		t.Fatal(err)
	}
	agg, _ := domain.Fold(domain.Ref{Kind: domain.KindPerson, ID: "p-1"}, hist.Events)
	if agg.Person.Team != "t-core" || len(hist.Events) < 3 {
		t.Fatalf("after retraction: team %q with %d events; want back in t-core with the move and its undo kept", agg.Person.Team, len(hist.Events))
	}
	_, err = h.Submit(context.Background(), []byte(`{"by":"p-root","authority":"root","reason":"again","changes":[{"kind":"decision.retract","decision":"move-ada"}]}`))
	if !errors.Is(err, domain.ErrRefused) {
		t.Fatalf("second retraction: %v, want refused", err)
	}
}

func TestExpectedVersionsMakeADecisionConditional(t *testing.T) {
	h, st := setup(t)
	submit(t, h, org)
	team := domain.Ref{Kind: domain.KindTeam, ID: "t-edge"}
	seen, err := st.Load(context.Background(), team)
	if err != nil {
		t.Fatal(err)
	}
	rename := `{"by":"p-root","authority":"root","reason":"x","changes":[{"kind":"person.join","id":"p-9","name":"N","team":"t-edge"}]}`
	if _, err := h.Submit(context.Background(), []byte(rename), ledger.ExpectVersions(map[domain.Ref]uint64{team: seen.Version})); err != nil {
		t.Fatalf("with the version seen: %v", err)
	}
	other := `{"by":"p-root","authority":"root","reason":"x","changes":[{"kind":"person.join","id":"p-10","name":"M","team":"t-edge"}]}`
	_, err = h.Submit(context.Background(), []byte(other), ledger.ExpectVersions(map[domain.Ref]uint64{team: seen.Version}))
	var mismatch *ledger.VersionMismatchError
	if !errors.Is(err, domain.ErrConflict) || !errors.As(err, &mismatch) || mismatch.Expected != seen.Version || mismatch.Current <= seen.Version {
		t.Fatalf("with a stale version: %v, want a VersionMismatchError wrapping ErrConflict", err)
	}
}

func TestCachedAggregatesSeeWhatOtherHandlersWrote(t *testing.T) {
	l := ledgertest.New(t)
	l.Submit(t, org)
	other, err := ledger.New(l.Store, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Both handlers have the team cached after a decision each.
	for i, h := range []*ledger.Handler{l.Handler, other, l.Handler, other} {
		d := fmt.Sprintf(`{"by":"p-root","authority":"root","reason":"x","changes":[{"kind":"person.join","id":"p-c%d","name":"C","team":"t-edge"}]}`, i)
		if _, err := h.Submit(context.Background(), []byte(d)); err != nil {
			t.Fatalf("handler %d: %v", i%2, err)
		}
	}
	// A disband must see all four members, whoever added them.
	_, err = l.Handler.Submit(context.Background(), []byte(`{"by":"p-root","authority":"root","reason":"x","changes":[{"kind":"team.disband","team":"t-edge"}]}`))
	var members *domain.TeamHasMembersError
	if !errors.As(err, &members) || len(members.Members) != 4 {
		t.Fatalf("disband: %v; want TeamHasMembersError naming the 4 members", err)
	}
}

// Decisions of one handler on the same aggregates queue for them: with
// two attempts (one stale read before queueing, one in the queue) every
// one of 24 concurrent shifts of one budget lands, where optimistic
// retries needed up to 10 and still gave up under load (issue 13).
func TestDecisionsOnTheSameAggregatesQueueInsteadOfRetrying(t *testing.T) {
	l := ledgertest.New(t)
	l.Submit(t, org)
	h, err := ledger.New(l.Store, ledger.Options{Now: func() time.Time { return ledgertest.Clock }, MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	const shifts = 24
	var wg sync.WaitGroup
	errs := make([]error, shifts)
	for i := range shifts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			from, to := "valuestream:payments", "product:pay-app"
			_, errs[i] = h.Submit(context.Background(), []byte(fmt.Sprintf(
				`{"id":"shift-%d","by":"p-root","authority":"root","reason":"r","changes":[{"kind":"funding.shift","period":"2026","from":%q,"to":%q,"amount":"1.00"}]}`, i, from, to)))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("shift %d: %v", i, err)
		}
	}
	if got := budgetAccounts(t, l.Store); got["product:pay-app"] != 24_00 || got["valuestream:payments"] != 250000_00-24_00 {
		t.Fatalf("accounts after 24 shifts of 1.00: %v", got)
	}
}

// Decisions taken into another's append are decided on the state the ones
// before them make: of ten concurrent shifts of 30,000.00 out of an account
// holding 100,000.00, three land and seven are refused, whoever appends.
func TestQueuedDecisionsAreDecidedOnTheStateBeforeThem(t *testing.T) {
	l := ledgertest.New(t)
	l.Submit(t, strings.Replace(org, `"amount":"250000.00"`, `"amount":"100000.00"`, 1))
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = l.Handler.Submit(context.Background(), []byte(fmt.Sprintf(
				`{"id":"big-%d","by":"p-root","authority":"root","reason":"r","changes":[{"kind":"funding.shift","period":"2026","from":"valuestream:payments","to":"product:pay-app","amount":"30000.00"}]}`, i)))
		}()
	}
	wg.Wait()
	landed, refused := 0, 0
	for i, err := range errs {
		switch {
		case err == nil:
			landed++
		case errors.Is(err, domain.ErrRefused):
			refused++
		default:
			t.Errorf("shift %d: %v", i, err)
		}
	}
	got := budgetAccounts(t, l.Store)
	if landed != 3 || refused != 7 || got["valuestream:payments"] != 10000_00 || got["product:pay-app"] != 90000_00 {
		t.Fatalf("%d landed, %d refused, accounts %v: want 3, 7, 10000.00 and 90000.00", landed, refused, got)
	}
}

func budgetAccounts(t *testing.T, st *eventstore.Store) map[domain.Account]domain.Amount {
	t.Helper()
	ref := domain.Ref{Kind: domain.KindBudget, ID: "2026"}
	hist, err := st.Load(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	agg, err := domain.Fold(ref, hist.Events)
	if err != nil || agg.Budget == nil {
		t.Fatalf("budget 2026: %v", err)
	}
	return agg.Budget.Accounts
}

func TestAQueueWaitTooLongIsBusy(t *testing.T) {
	l := ledgertest.New(t)
	l.Submit(t, org)
	h, err := ledger.New(l.Store, ledger.Options{Now: func() time.Time { return ledgertest.Clock }, QueueWait: time.Millisecond, MaxQueued: 1})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = h.Submit(context.Background(), []byte(fmt.Sprintf(
				`{"id":"busy-%d","by":"p-root","authority":"root","reason":"r","changes":[{"kind":"person.join","id":"p-b%d","name":"B","team":"t-edge"}]}`, i, i)))
		}()
	}
	wg.Wait()
	busy := 0
	for i, err := range errs {
		var b *ledger.BusyError
		switch {
		case errors.As(err, &b) && errors.Is(err, domain.ErrUnavailable):
			busy++
		case err != nil:
			t.Errorf("joiner %d: %v, want recorded or *BusyError", i, err)
		}
	}
	if busy == 0 {
		t.Error("16 joiners of one team with a queue of 1 and a 1ms wait: none was busy")
	}
}
