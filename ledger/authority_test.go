package ledger_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"koers/domain"
	"koers/internal/ledgertest"
	"koers/ledger"
)

// The five holes of issue 11, each reproduced through the real log and
// refused without writing anything; and the backdated decision by the root
// holder that used to be refused, accepted.

const authorityOrg = `{"id":"org","by":"p-root","authority":"root","reason":"start","effective":"2026-01-01","changes":[
 {"kind":"valuestream.define","id":"payments","name":"Payments"},
 {"kind":"team.form","id":"t-core","name":"Core","type":"stream-aligned"},
 {"kind":"person.join","id":"p-1","name":"Ada","team":"t-core"},
 {"kind":"person.join","id":"p-2","name":"Bo","team":"t-core"},
 {"kind":"person.join","id":"p-3","name":"Cy","team":"t-core"},
 {"kind":"product.launch","id":"pay-app","name":"Pay app","valuestream":"payments","owner":"p-1"},
 {"kind":"budget.open","period":"2026","amount":"1000000.00","currency":"EUR"},
 {"kind":"funding.allocate","period":"2026","to":"valuestream:payments","amount":"500000.00"},
 {"kind":"mandate.grant","id":"m-lead","holder":"p-2","kinds":["funding.*","mandate.grant"],"scope":"valuestream:payments","limit":"100000.00"}]}`

// clock is a handler clock the test moves on.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

func authoritySetup(t *testing.T) (*ledgertest.Ledger, *ledger.Handler, *clock) {
	t.Helper()
	l := ledgertest.New(t)
	c := &clock{now: ledgertest.Clock}
	h, err := ledger.New(l.Store, ledger.Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	l.Submit(t, authorityOrg)
	return l, h, c
}

// refused submits decision and checks it is refused with an error of type
// T mentioning msg, and that the log did not grow.
func refused[T error](t *testing.T, l *ledgertest.Ledger, h *ledger.Handler, decision, msg string) T {
	t.Helper()
	ctx := context.Background()
	before, err := l.Store.LastSequence(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.Submit(ctx, []byte(decision))
	var want T
	if !errors.As(err, &want) || !strings.Contains(err.Error(), msg) {
		t.Fatalf("decision %s:\n got %v (%T)\n want a %T mentioning %q", decision, err, err, want, msg)
	}
	if after, _ := l.Store.LastSequence(ctx); after != before {
		t.Fatalf("a refused decision wrote: stream %d -> %d", before, after)
	}
	return want
}

func TestHoleLimitPerChange(t *testing.T) {
	l, h, _ := authoritySetup(t)
	shift := `{"kind":"funding.shift","period":"2026","from":"valuestream:payments","to":"product:pay-app","amount":"90000.00"}`
	e := refused[*domain.LimitError](t, l, h, `{"by":"p-2","authority":"m-lead","reason":"three in one","changes":[`+shift+`,`+shift+`,`+shift+`]}`,
		"the decision moves 270000.00 EUR in total, above the mandate's limit of 100000.00 per decision; ask p-root")
	if e.Total.String() != "270000.00" || e.Currency != "EUR" {
		t.Fatalf("limit error data: %+v", e)
	}
	if _, err := h.Submit(context.Background(), []byte(`{"by":"p-2","authority":"m-lead","reason":"one","changes":[`+shift+`]}`)); err != nil {
		t.Fatalf("one shift within the limit: %v", err)
	}
}

func TestHoleRevokedGrantorsGrantsStayUsable(t *testing.T) {
	l, h, _ := authoritySetup(t)
	l.Submit(t, `{"by":"p-2","authority":"m-lead","reason":"a deputy","changes":[{"kind":"mandate.grant","id":"m-deputy","holder":"p-3","kinds":["funding.shift"],"scope":"valuestream:payments","limit":"50000.00"}]}`)
	l.Submit(t, `{"by":"p-root","authority":"root","reason":"lead steps back","changes":[{"kind":"mandate.revoke","mandate":"m-lead"}]}`)
	e := refused[*domain.NotInForceError](t, l, h,
		`{"by":"p-3","authority":"m-deputy","reason":"still?","changes":[{"kind":"funding.shift","period":"2026","from":"valuestream:payments","to":"product:pay-app","amount":"1000.00"}]}`,
		`mandate "m-lead", under which it was granted, was revoked`)
	if e.Link != "m-lead" || e.AskHolder != "p-root" {
		t.Fatalf("not-in-force data: %+v", e)
	}
}

func TestHoleDepartedHolderDecides(t *testing.T) {
	l, h, _ := authoritySetup(t)
	l.Submit(t, `{"by":"p-root","authority":"root","reason":"leaves","changes":[{"kind":"person.leave","person":"p-2"}]}`)
	refused[*domain.NotInForceError](t, l, h,
		`{"by":"p-2","authority":"m-lead","reason":"after leaving","changes":[{"kind":"funding.shift","period":"2026","from":"valuestream:payments","to":"product:pay-app","amount":"1000.00"}]}`,
		"the mandate is suspended: its holder p-2 left the organisation")
}

func TestHoleGrantsToNobodyAndWithoutEnd(t *testing.T) {
	l, h, c := authoritySetup(t)
	refused[*domain.HolderError](t, l, h,
		`{"by":"p-root","authority":"root","reason":"to nobody","changes":[{"kind":"mandate.grant","id":"m-ghost","holder":"p-ghost","kinds":["*"],"scope":"*"}]}`,
		`holder "p-ghost" cannot hold a mandate`)
	if _, err := h.Submit(context.Background(), []byte(`{"by":"p-root","authority":"root","reason":"for the summer","changes":[
		{"kind":"mandate.grant","id":"m-summer","holder":"p-3","kinds":["funding.shift"],"scope":"valuestream:payments","limit":"10.00","valid_until":"2026-09-01"}]}`)); err != nil {
		t.Fatalf("grant with valid_until: %v", err)
	}
	use := `{"by":"p-3","authority":"m-summer","reason":"r","changes":[{"kind":"funding.shift","period":"2026","from":"valuestream:payments","to":"product:pay-app","amount":"1.00"}]}`
	if _, err := h.Submit(context.Background(), []byte(use)); err != nil {
		t.Fatalf("before it expires: %v", err)
	}
	c.Set(time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC))
	refused[*domain.NotInForceError](t, l, h, use, "the mandate expired on 2026-09-01T00:00:00Z; ask p-root")
}

func TestHoleBackdatedDecisionByTheRootHolder(t *testing.T) {
	_, h, _ := authoritySetup(t)
	// The ledger starts on ledgertest.Genesis (2025-01-01); the root holder
	// records something that took effect before it, today.
	res, err := h.Submit(context.Background(), []byte(`{"by":"p-root","authority":"root","reason":"history from before the ledger","effective":"2024-06-01","changes":[
		{"kind":"valuestream.define","id":"legacy","name":"Legacy"}]}`))
	if err != nil || len(res.Sequences) == 0 {
		t.Fatalf("backdated decision by the root holder: %+v, %v", res, err)
	}
	// A mandate in force today covers a backdated change too.
	if _, err := h.Submit(context.Background(), []byte(`{"by":"p-2","authority":"m-lead","reason":"correction","effective":"2026-02-01","changes":[
		{"kind":"funding.shift","period":"2026","from":"valuestream:payments","to":"product:pay-app","amount":"1.00"}]}`)); err != nil {
		t.Fatalf("backdated decision under a mandate in force now: %v", err)
	}
}
