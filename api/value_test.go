package api_test

import (
	"net/http"
	"strings"
	"testing"

	"koers/internal/valuetest"
)

func TestKPIsAndTheReview(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, d := range valuetest.Decisions {
		e.record(t, d)
	}

	r := e.get(t, "/v1/kpis?product=pay-app&from=2026-04-01")
	var kp struct {
		Values []struct {
			Kind, ID, KPI, Value, Target, Quarter string
			OnTarget                              *bool `json:"on_target"`
		}
		Next string
	}
	r.json(t, &kp)
	if r.status != http.StatusOK || len(kp.Values) != 2 || kp.Values[1].Value != "4.5" || kp.Values[1].Target != "4" ||
		kp.Values[1].OnTarget == nil || !*kp.Values[1].OnTarget || kp.Values[1].Quarter != "2026-Q2" {
		t.Fatalf("kpis: %d %s", r.status, r.body)
	}
	r = e.get(t, "/v1/kpis?limit=2")
	r.json(t, &kp)
	if len(kp.Values) != 2 || kp.Next == "" {
		t.Fatalf("first page: %s", r.body)
	}
	r = e.get(t, "/v1/kpis?limit=2&cursor="+kp.Next)
	if r.status != http.StatusOK {
		t.Fatalf("second page: %d %s", r.status, r.body)
	}
	for path, param := range map[string]string{
		"/v1/kpis?product=a&valuestream=b":   "valuestream",
		"/v1/kpis?cursor=nope":               "cursor",
		"/v1/kpis?product=Bad!":              "product",
		"/v1/reports/review":                 "quarter",
		"/v1/reports/review?quarter=2026-Q9": "quarter",
	} {
		p := e.get(t, path).problem(t, http.StatusBadRequest)
		if !strings.Contains(p["detail"].(string), param) {
			t.Errorf("%s: %v, want it to name %s", path, p, param)
		}
	}

	r = e.get(t, "/v1/reports/review?quarter=2026-Q2")
	var rv struct {
		Quarter      string
		ValueStreams []struct {
			ID      string
			Funding []struct {
				Balance      string
				BalanceMinor int64 `json:"balance_minor"`
			}
			Products []struct {
				ID           string
				OwnerStart   string `json:"owner_start"`
				OwnerEnd     string `json:"owner_end"`
				OwnerChanges int    `json:"owner_changes"`
				KPIs         []struct{ KPI, Last, Previous, Target, Trend string }
			}
			Totals struct {
				KPIsOnTarget   int `json:"kpis_on_target"`
				KPIsWithTarget int `json:"kpis_with_target"`
			}
		} `json:"value_streams"`
	}
	r.json(t, &rv)
	if r.status != http.StatusOK || rv.Quarter != "2026-Q2" || len(rv.ValueStreams) != 2 {
		t.Fatalf("review: %d %s", r.status, r.body)
	}
	pay := rv.ValueStreams[1]
	app := pay.Products[0]
	if pay.ID != "payments" || pay.Funding[0].Balance != "150000.00" || pay.Funding[0].BalanceMinor != 15000000 ||
		app.OwnerStart != "p-1" || app.OwnerEnd != "p-3" || app.OwnerChanges != 1 ||
		app.KPIs[0].Last != "4.5" || app.KPIs[0].Trend != "improving" || pay.Totals.KPIsOnTarget != 1 || pay.Totals.KPIsWithTarget != 2 {
		t.Fatalf("review: %s", r.body)
	}
}
