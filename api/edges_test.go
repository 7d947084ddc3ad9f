package api_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestInputEdges: what issue 13 found reaching a 500, a 403 or a silent
// rewrite is a 422 that says what to send instead.
func TestInputEdges(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.record(t, structure)
	e.record(t, funding)
	decision := func(effective, amount, reason string) string {
		return `{"by":"p-root","authority":"root","reason":"` + reason + `","effective":"` + effective + `",
		 "changes":[{"kind":"funding.allocate","period":"2026","to":"product:pay-app","amount":"` + amount + `"}]}`
	}
	for _, tc := range []struct {
		name, body string
		typ, field string
		detail     string
	}{
		{"effective in the year 10000 in UTC", decision("9999-12-31T23:59:59-14:00", "5.00", "r"), "invalid", "effective", "outside the years 1900-9999 (in UTC)"},
		{"effective before 1900", decision("1899-12-31", "5.00", "r"), "invalid", "effective", "outside the years 1900-9999"},
		{"null", `null`, "invalid", "", "want a JSON object, got null"},
		{"array", `[1,2]`, "invalid", "", "want a JSON object, got an array"},
		{"number", `5`, "invalid", "", "want a JSON object, got a number"},
		{"a list where a string goes", `{"by":["p-root"],"authority":"root","reason":"r","changes":[]}`, "invalid", "", "by: want a string, got array"},
		{"invalid UTF-8 in the reason", decision("2026-02-01", "5.00", "caf\xe9"), "invalid", "", "invalid UTF-8 at byte"},
		{"a lone surrogate in the reason", decision("2026-02-01", "5.00", `caf\udce9`), "invalid", "reason", "contains U+FFFD"},
		{"amount with a plus sign", decision("2026-02-01", "+5", "r"), "invalid", "changes[0].amount", `write "5"`},
		{"amount with zeros past EUR's decimals", decision("2026-02-01", "5.000", "r"), "invalid", "changes[0].amount", `"5.000" has more decimals than EUR allows (2): write "5.00"`},
		{"amount with more decimals than EUR", decision("2026-02-01", "12.345", "r"), "invalid", "changes[0].amount", `"12.345" has more decimals than EUR allows (2)`},
		{"amount with leading zeros", decision("2026-02-01", "05", "r"), "invalid", "changes[0].amount", `write "5"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := e.post(t, tc.body).problem(t, http.StatusUnprocessableEntity)
			if p["type"] != "urn:koers:problem:"+tc.typ || (tc.field != "" && p["field"] != tc.field) {
				t.Fatalf("problem %v, want type %s field %s", p, tc.typ, tc.field)
			}
			if d, _ := p["detail"].(string); !strings.Contains(d, tc.detail) || !utf8.ValidString(d) {
				t.Fatalf("detail %q does not say %q", d, tc.detail)
			}
		})
	}
	// With tokens, null was a 403: TestWithTokensCallersAreWhoTheirTokenSays.
	for _, tc := range []struct{ name, path, param, detail string }{
		{"quarter ending in the year 10000", "/v1/reports/transition?from=9999-Q4", "from", "outside 1900-Q1 to 9999-Q3"},
		{"quarter before 1900", "/v1/reports/transition?from=1899-Q4&to=1900-Q1", "from", "outside 1900-Q1 to 9999-Q3"},
		{"as_of in the year 10000 in UTC", "/v1/org?as_of=" + url.QueryEscape("9999-12-31T23:59:59-14:00"), "as_of", "outside the years 1900-9999"},
		{"known_at before 1900", "/v1/history/person/p-0001?known_at=1000-01-01", "known_at", "outside the years 1900-9999"},
		{"audit from before 1900", "/v1/audit?from=0001-01-01T00:00:00Z", "from", "outside the years 1900-9999"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := e.get(t, tc.path).problem(t, http.StatusUnprocessableEntity)
			if p["type"] != "urn:koers:problem:out-of-range" || p["parameter"] != tc.param {
				t.Fatalf("problem %v, want out-of-range on %s", p, tc.param)
			}
			if d, _ := p["detail"].(string); !strings.Contains(d, tc.detail) {
				t.Fatalf("detail %q does not say %q", d, tc.detail)
			}
		})
	}
	// The edges themselves are served.
	for _, path := range []string{"/v1/reports/transition?from=9999-Q3", "/v1/reports/transition?from=1900-Q1",
		"/v1/org?as_of=9999-12-31T23:59:59Z", "/v1/org?as_of=1900-01-01"} {
		if r := e.get(t, path); r.status != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, r.status, r.body)
		}
	}
}
