package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"koers/internal/valuetest"
)

// valueLedger is a data folder holding the fixed scenario of
// internal/valuetest.
func valueLedger(t *testing.T) string {
	t.Helper()
	data := t.TempDir()
	if code, out, errOut := koers(t, data, "", "init", "--root", "p-root", "--effective", "2025-01-01"); code != 0 {
		t.Fatalf("init: %d %s %s", code, out, errOut)
	}
	var lines []string
	for _, d := range valuetest.Decisions {
		var b bytes.Buffer
		if err := json.Compact(&b, []byte(d)); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, b.String())
	}
	if code, out, errOut := koers(t, data, strings.Join(lines, "\n"), "apply", "-f", "-"); code != 0 {
		t.Fatalf("apply the scenario: %d %s %s", code, out, errOut)
	}
	return data
}

func TestKPIsReviewAndKPIImport(t *testing.T) {
	data := valueLedger(t)

	code, out, errOut := koers(t, data, "", "kpi", "--product", "pay-app", "--format", "csv")
	want := `kind,id,kpi,category,unit,direction,date,quarter,value,target,on_target,note,decision,sequence
product,pay-app,conversion,customer,%,higher,2026-03-20,2026-Q1,3.2,5,false,web analytics,m-conv-q1,`
	if code != 0 || !strings.HasPrefix(out, want) || strings.Count(out, "\n") != 4 {
		t.Fatalf("kpi csv: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = koers(t, data, "", "kpi", "--valuestream", "payments", "--to", "2026-04-01")
	if code != 0 || !strings.Contains(squeeze(out), "valuestream:payments lead-time flow 2026-03-31 14 days ≤ 10 no") {
		t.Fatalf("kpi table:\n%s", out)
	}
	if code, _, errOut := koers(t, data, "", "kpi", "--product", "a", "--valuestream", "b"); code != 1 || !strings.Contains(errOut, "give one of them") {
		t.Fatalf("kpi with two subjects: exit %d %s", code, errOut)
	}

	code, out, errOut = koers(t, data, "", "report", "review", "--quarter", "2026-Q2")
	for _, w := range []string{
		"Portfolio review 2026-Q2 (2026-04-01 to 2026-06-30, UTC)",
		`VALUE STREAM payments "Payments": 1 active products, 1 owned; KPIs on target 1 of 2`,
		"pay-app active Ada (p-1) → Cy (p-3) 1 t-core,t-edge 1/2 0.00 EUR 100000.00 EUR 0.00 EUR 0.00 EUR 100000.00 EUR 5",
		"total 0.00 EUR 100000.00 EUR 100000.00 EUR 0.00 EUR 250000.00 EUR",
		"payments lead-time (days) flow ≤ 10 12 14 improving no",
		"pay-app conversion (%) customer ≥ 4 4.5 3.2 improving yes",
		"decided: fund-app, m-lead-q2, target-q2, m-conv-apr, m-conv-may, owner-cy",
		"alloc-wrong (retracted)",
	} {
		if code != 0 || !strings.Contains(squeeze(out), w) {
			t.Fatalf("review lacks %q: exit %d\n%s%s", w, code, out, errOut)
		}
	}
	code, out, _ = koers(t, data, "", "report", "review", "--quarter", "2026-Q2", "--format", "csv")
	if code != 0 || !strings.Contains(out, "2026-Q2,payments,product,pay-app,Pay app,active,active,p-1,p-3,1,t-core;t-edge,2,1,EUR,0.00,100000.00,0.00,0.00,100000.00,1,1,1,5\n") {
		t.Fatalf("review csv:\n%s", out)
	}
	code, out, _ = koers(t, data, "", "report", "review", "--quarter", "2026-Q2", "--json")
	var r struct {
		ValueStreams []struct {
			ID     string
			Totals struct {
				Funding []struct{ Balance string }
			}
		} `json:"value_streams"`
	}
	if err := json.Unmarshal([]byte(out), &r); code != 0 || err != nil || len(r.ValueStreams) != 2 || r.ValueStreams[1].Totals.Funding[0].Balance != "250000.00" {
		t.Fatalf("review json: exit %d %v\n%s", code, err, out)
	}

	code, out, errOut = koers(t, data, "", "diff", "--from", "2026-03-31", "--to", "2026-06-30")
	for _, w := range []string{"product:pay-app owner p-1 p-3 owner-cy 2026-06-01",
		"2026 product:loans 0.00 EUR 25000.00 EUR +25000.00 launch-loans, alloc-wrong, undo-wrong, release-loans"} {
		if code != 0 || !strings.Contains(squeeze(out), w) {
			t.Fatalf("diff lacks %q: exit %d\n%s%s", w, code, out, errOut)
		}
	}
	if code, _, errOut := koers(t, data, "", "diff", "--from", "2026-06-30", "--to", "2026-03-31"); code != 1 || !strings.Contains(errOut, "is not after") {
		t.Fatalf("diff backwards: exit %d %s", code, errOut)
	}
	// Everything was recorded after 2026-Q2 ended: as known then, the
	// quarter was empty, and every figure is a restatement.
	code, out, errOut = koers(t, data, "", "report", "restatements", "--from", "2026-Q2", "--to", "2026-Q2", "--format", "csv")
	if code != 0 || !strings.Contains(out, "2026-Q2,product:pay-app,owner_end,,p-3,") {
		t.Fatalf("restatements: exit %d\n%s%s", code, out, errOut)
	}

	// Measurements from a BI export: idempotent per row.
	dir := t.TempDir()
	kpis := filepath.Join(dir, "kpis.csv")
	write := func(path, body string) {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(kpis, "subject,kpi,date,value,note\nproduct:pay-app,conversion,2026-07-15,5.1 %,BI export\nvaluestream:payments,lead-time,2026-07-31,9 days,\n")
	imp := []string{"import", "--by", "p-root", "--authority", "root", "--reason", "the BI export of July"}
	if code, out, errOut := koers(t, data, "", append(imp, kpis)...); code != 0 || !strings.Contains(out, "imported 2, already recorded 0") {
		t.Fatalf("kpi import: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := koers(t, data, "", append(imp, kpis)...); code != 0 || !strings.Contains(out, "imported 0, already recorded 2") {
		t.Fatalf("second kpi import: exit %d\n%s", code, out)
	}
	code, out, _ = koers(t, data, "", "kpi", "--from", "2026-07-01", "--format", "csv")
	if code != 0 || !strings.Contains(out, "product,pay-app,conversion,customer,%,higher,2026-07-15,2026-Q3,5.1,5,true,BI export,") ||
		!strings.Contains(out, "valuestream,payments,lead-time,flow,days,lower,2026-07-31,2026-Q3,9,10,true,,") {
		t.Fatalf("imported values:\n%s", out)
	}

	// Bad rows are refused with their line and column.
	for _, tc := range []struct{ name, row, want string }{
		{"unknown KPI", "product:pay-app,nps,2026-07-15,40", `line 2: column kpi: changes[0] kpi.record: product:pay-app has no KPI "nps" (it defines conversion; define it first with kpi.define)`},
		{"wrong unit", "product:pay-app,conversion,2026-07-15,5 days", `line 2: column value: changes[0] kpi.record: product:pay-app KPI "conversion" is measured in "%", not "days"`},
		{"not a number", "product:pay-app,conversion,2026-07-15,five", `line 2: column value: "five" is not a number`},
		{"decimal comma", "product:pay-app,conversion,2026-07-15,\"5,1\"", `line 2: column value: "5,1" is not a number (decimals after a point, no thousands separators)`},
		{"bad date", "product:pay-app,conversion,15-07-2026,5", `line 2: column date: "15-07-2026": want a date`},
		{"bad subject", "team:t-core,conversion,2026-07-15,5", `line 2: column subject: "team:t-core": want product:<id> or valuestream:<id>`},
		{"unknown product", "product:nope,conversion,2026-07-15,5", `line 2: column subject: changes[0] kpi.record: product:nope does not exist`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "kpis.csv")
			write(path, "subject,kpi,date,value\n"+tc.row+"\n")
			code, out, errOut := koers(t, data, "", append(imp, path)...)
			if code != 1 || !strings.Contains(errOut, tc.want) || !strings.Contains(out, "") {
				t.Fatalf("exit %d\nstdout %s\nstderr %s\nwant %s", code, out, errOut, tc.want)
			}
		})
	}
	path := filepath.Join(t.TempDir(), "kpis.csv")
	write(path, "subject,kpi,date,value,unit\nproduct:pay-app,nps,2026-08-01,40,score\nproduct:pay-app,conversion,2026-08-01,5.3,%\nproduct:pay-app,conversion,2026-08-02,5.4,days\n")
	code, out, errOut = koers(t, data, "", append(append(imp, "--keep-going"), path)...)
	if code != 1 || !strings.Contains(out, "imported 1, already recorded 0, refused 2") || !strings.Contains(errOut, "line 2: column kpi:") ||
		!strings.Contains(errOut, `line 4: column unit: changes[0] kpi.record: product:pay-app KPI "conversion" is measured in "%", not "days"`) {
		t.Fatalf("keep going: exit %d\n%s%s", code, out, errOut)
	}
}

// squeeze collapses the runs of spaces of a table, so that a test does
// not depend on column widths.
func squeeze(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}
