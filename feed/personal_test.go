package feed_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"koers/feed"
	"koers/internal/ledgertest"
	"koers/internal/pgtest"
	"koers/keyring"
	"koers/ledger"
)

// A feed delivers names in clear (they leave Koers' keeping there), then
// the erasure as koers.person.erased; from then on, no delivery — a new
// feed replaying the log included — carries the name again.
func TestFeedsDeliverTheErasureAndNeverTheNameAgain(t *testing.T) {
	ctx := context.Background()
	l := ledgertest.New(t)
	k, err := keyring.Open(ctx, l.JS, keyring.Config{Ledger: "KOERS", NamesKey: bytes.Repeat([]byte{3}, keyring.KeyBytes)})
	if err != nil {
		t.Fatal(err)
	}
	h, err := ledger.New(l.Store, ledger.Options{Now: func() time.Time { return ledgertest.Clock }, Names: k})
	if err != nil {
		t.Fatal(err)
	}
	submit := func(js string) {
		t.Helper()
		if _, err := h.Submit(ctx, []byte(js)); err != nil {
			t.Fatal(err)
		}
	}
	submit(smallHistory) // Ada, Bob and Cy join
	db := pgtest.Package(t)
	rc, url := webhook(t, nil)
	cfg := fastRetries(feed.Config{Name: uniqueName(t, "erase"), Target: url, Ledger: "KOERS", Names: k})
	r := start(t, l, db, cfg)
	caughtUp(t, l, r)
	r.stop()
	before := bodies(rc.arrived(t))
	// person.joined and decision.recorded (its change and its effect).
	if strings.Count(before, `"Ada"`) != 3 || strings.Contains(before, "pd1:") {
		t.Fatalf("before the erasure Ada is delivered %d times, sealed names %v:\n%s", strings.Count(before, `"Ada"`), strings.Contains(before, "pd1:"), before)
	}

	submit(`{"id":"erase-ada","by":"p-root","authority":"root","reason":"erasure request","effective":"2026-02-01","changes":[{"kind":"person.erase","person":"p-1"}]}`)
	r = start(t, l, db, cfg)
	caughtUp(t, l, r)
	r.stop()
	after := strings.TrimPrefix(bodies(rc.arrived(t)), before)
	if !strings.Contains(after, `"type":"koers.person.erased"`) || !strings.Contains(after, `"subject":"person:p-1"`) || strings.Contains(after, "Ada") {
		t.Fatalf("after the erasure:\n%s", after)
	}

	rc2, url2 := webhook(t, nil)
	replay := fastRetries(feed.Config{Name: uniqueName(t, "replay"), Target: url2, Ledger: "KOERS", Names: k})
	r = start(t, l, db, replay)
	caughtUp(t, l, r)
	r.stop()
	all := bodies(rc2.arrived(t))
	if strings.Contains(all, "Ada") || strings.Count(all, "erased person (p-1)") != 3 || strings.Count(all, `"Bob"`) != 3 {
		t.Fatalf("a replay after the erasure:\n%s", all)
	}
}

func bodies(got []arrived) string {
	var b strings.Builder
	for _, a := range got {
		b.Write(a.body)
		b.WriteByte('\n')
	}
	return b.String()
}
