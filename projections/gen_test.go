package projections

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"koers/domain"
)

// generate records decisions of about 400 events each until the log holds at
// least events events: each forms a team and hires domain.MaxChanges-1
// people into it; every fourth also moves a few people of the previous team
// into the new one, retracts an earlier hire, records KPIs or shifts
// funding, so that every read model gets rows.
func generate(tb testing.TB, e env, events uint64) {
	tb.Helper()
	ctx := context.Background()
	e.play(tb, bootstrap, `{"id":"gen-kpi","by":"p-root","authority":"root","reason":"measure","effective":"2026-01-02","changes":[
		 {"kind":"kpi.define","product":"pay-app","kpi":"conversion","unit":"%","target":"5"}]}`)
	var d strings.Builder
	for n := 0; n < 10_000; n++ {
		last, err := e.st.LastSequence(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		if last >= events {
			return
		}
		d.Reset()
		team := fmt.Sprintf("t-%d", n)
		at := time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Hour)
		fmt.Fprintf(&d, `{"id":"gen-%d","by":"p-root","authority":"root","reason":"grow","effective":%q,"changes":[`,
			n, at.Format(time.RFC3339))
		fmt.Fprintf(&d, `{"kind":"team.form","id":%q,"name":"Team %d","type":"stream-aligned"}`, team, n)
		changes := 1
		if n > 0 && n%4 == 0 {
			for i := 0; i < 5; i++ {
				fmt.Fprintf(&d, `,{"kind":"person.move","person":"p-%d-%d","to":%q}`, n-1, i, team)
				changes++
			}
			fmt.Fprintf(&d, `,{"kind":"kpi.record","product":"pay-app","kpi":"conversion","value":"%d.%d"}`, n%7, n%10)
			fmt.Fprintf(&d, `,{"kind":"funding.shift","period":"2026","from":"pool","to":"valuestream:payments","amount":"1.00"}`)
			changes += 2
		}
		for i := 0; changes < domain.MaxChanges; i++ {
			fmt.Fprintf(&d, `,{"kind":"person.join","id":"p-%d-%d","name":"Person %d %d","team":%q}`, n, i, n, i, team)
			changes++
		}
		d.WriteString(`]}`)
		e.submit(tb, d.String())
		switch {
		case n > 0 && n%10 == 0:
			e.submit(tb, fmt.Sprintf(`{"id":"move-%d","by":"p-root","authority":"root","reason":"help","effective":%q,"changes":[
				{"kind":"person.move","person":"p-%d-20","to":%q}]}`, n, at.Add(30*time.Minute).Format(time.RFC3339), n-1, team))
		case n > 5 && n%10 == 5:
			e.submit(tb, fmt.Sprintf(`{"id":"undo-%d","by":"p-root","authority":"root","reason":"mistake","effective":%q,"changes":[
				{"kind":"decision.retract","decision":"move-%d"}]}`, n, at.Format(time.RFC3339), n-5))
		}
	}
	tb.Fatalf("generate: %d events not reached", events)
}
