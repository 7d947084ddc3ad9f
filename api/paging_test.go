package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// pagedOrg is an organisation of three value streams, four teams, five
// people, two projects and a budget with five accounts.
const pagedOrg = `{"id":"d-paged","by":"p-root","authority":"root","reason":"an organisation to page","effective":"2026-01-01",
 "changes":[{"kind":"valuestream.define","id":"payments","name":"Payments"},
  {"kind":"valuestream.define","id":"lending","name":"Lending"},
  {"kind":"valuestream.define","id":"savings","name":"Savings"},
  {"kind":"team.form","id":"t-core","name":"Core","type":"stream-aligned"},
  {"kind":"team.form","id":"t-edge","name":"Edge","type":"platform"},
  {"kind":"team.form","id":"t-loan","name":"Loans","type":"stream-aligned"},
  {"kind":"team.form","id":"t-save","name":"Save","type":"enabling"},
  {"kind":"person.join","id":"p-0001","name":"Anne","team":"t-core"},
  {"kind":"person.join","id":"p-0002","name":"Bas","team":"t-edge"},
  {"kind":"person.join","id":"p-0003","name":"Cor","team":"t-loan"},
  {"kind":"person.join","id":"p-0004","name":"Dirk","team":"t-save"},
  {"kind":"person.join","id":"p-0005","name":"Eva","team":"t-core"},
  {"kind":"product.launch","id":"pay-app","name":"Pay app","valuestream":"payments","owner":"p-0001"},
  {"kind":"team.assign","team":"t-core","product":"pay-app"},
  {"kind":"project.start","id":"proj-a","name":"A","valuestream":"lending"},
  {"kind":"project.start","id":"proj-b","name":"B","valuestream":"savings"},
  {"kind":"budget.open","period":"2026","amount":"1000000.00","currency":"EUR"},
  {"kind":"funding.allocate","period":"2026","to":"product:pay-app","amount":"250000.00"},
  {"kind":"funding.allocate","period":"2026","to":"valuestream:lending","amount":"100000.00"},
  {"kind":"funding.allocate","period":"2026","to":"project:proj-a","amount":"50000.00"},
  {"kind":"funding.shift","period":"2026","from":"product:pay-app","to":"project:proj-b","amount":"1000.00"}]}`

// page is what every paged answer has besides its items.
type page struct {
	Next string `json:"next"`
}

// items renders a paged answer's items, whatever the list.
func items(t *testing.T, body []byte) []string {
	t.Helper()
	var a struct {
		ValueStreams []struct{ ID string } `json:"value_streams"`
		Teams        []struct{ ID string } `json:"teams"`
		Projects     []struct{ ID string } `json:"projects"`
		Unassigned   []struct{ ID string } `json:"unassigned"`
		Facts        []struct {
			Attribute string `json:"attribute"`
			Value     string `json:"value"`
			Sequence  uint64 `json:"recorded_sequence"`
		} `json:"facts"`
		Balances []struct{ Account, Amount string } `json:"balances"`
		Journal  []struct {
			Sequence uint64 `json:"sequence"`
			Line     int    `json:"line"`
		} `json:"journal"`
	}
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatalf("answer %s: %v", body, err)
	}
	var out []string
	for _, x := range a.ValueStreams {
		out = append(out, "vs "+x.ID)
	}
	for _, x := range a.Teams {
		out = append(out, "team "+x.ID)
	}
	for _, x := range a.Projects {
		out = append(out, "project "+x.ID)
	}
	for _, x := range a.Unassigned {
		out = append(out, "unassigned "+x.ID)
	}
	for _, x := range a.Facts {
		out = append(out, fmt.Sprintf("%s=%s@%d", x.Attribute, x.Value, x.Sequence))
	}
	for _, x := range a.Balances {
		out = append(out, x.Account+" "+x.Amount)
	}
	for _, x := range a.Journal {
		out = append(out, fmt.Sprintf("%d/%d", x.Sequence, x.Line))
	}
	return out
}

// with adds query parameters to a path that may have some.
func with(path string, params ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(params); i += 2 {
		q.Set(params[i], params[i+1])
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return path + sep + q.Encode()
}

func TestListRoutesPage(t *testing.T) {
	e := newEnv(t)
	e.record(t, pagedOrg)
	routes := []string{"/v1/org", "/v1/history/person/p-0001?all=true", "/v1/funding/2026", "/v1/funding/2026?account=pool"}
	for _, route := range routes {
		t.Run(route, func(t *testing.T) {
			r := e.get(t, with(route, "limit", "1000"))
			if r.status != http.StatusOK {
				t.Fatalf("%d %s", r.status, r.body)
			}
			whole := items(t, r.body)
			var p page
			r.json(t, &p)
			if p.Next != "" || len(whole) < 3 {
				t.Fatalf("the whole list: %v, next %q; want 3 items or more and no next", whole, p.Next)
			}
			for _, limit := range []int{1, 2, len(whole) - 1, len(whole)} {
				var got []string
				cursor := ""
				for pages := 0; ; pages++ {
					if pages > len(whole) {
						t.Fatalf("limit %d: more than %d pages", limit, len(whole))
					}
					params := []string{"limit", fmt.Sprint(limit)}
					if cursor != "" {
						params = append(params, "cursor", cursor)
					}
					r := e.get(t, with(route, params...))
					if r.status != http.StatusOK {
						t.Fatalf("limit %d, page %d: %d %s", limit, pages+1, r.status, r.body)
					}
					its := items(t, r.body)
					var p page
					r.json(t, &p)
					if len(its) > limit || (p.Next != "" && len(its) != limit) {
						t.Fatalf("limit %d, page %d: %d items, next %q", limit, pages+1, len(its), p.Next)
					}
					got = append(got, its...)
					if p.Next == "" {
						break
					}
					cursor = p.Next
				}
				if !slices.Equal(got, whole) {
					t.Fatalf("limit %d: pages concatenate to %v, want %v", limit, got, whole)
				}
			}
		})
	}

	var org page
	e.get(t, "/v1/org?limit=1").json(t, &org)
	var journal page
	e.get(t, "/v1/funding/2026?account=pool&limit=1").json(t, &journal)
	if org.Next == "" || journal.Next == "" {
		t.Fatalf("first pages of one: next %q and %q", org.Next, journal.Next)
	}
	bad := []struct {
		name, path, param string
	}{
		{"limit 0", "/v1/org?limit=0", "limit"},
		{"limit over the maximum", "/v1/history/person/p-0001?limit=1001", "limit"},
		{"limit not a number", "/v1/funding/2026?limit=many", "limit"},
		{"cursor not a cursor", "/v1/org?cursor=nonsense", "cursor"},
		{"cursor of another list", "/v1/funding/2026?cursor=" + url.QueryEscape(org.Next), "cursor"},
		{"cursor of the same list for another account", "/v1/funding/2026?account=valuestream:lending&cursor=" + url.QueryEscape(journal.Next), "cursor"},
		{"cursor of the same list at another time", "/v1/org?as_of=2026-02-01&cursor=" + url.QueryEscape(org.Next), "cursor"},
		{"cursor too long", "/v1/history/person/p-0001?cursor=" + strings.Repeat("x", 2000), "cursor"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			p := e.get(t, c.path).problem(t, http.StatusBadRequest)
			if p["parameter"] != c.param || !strings.Contains(p["detail"].(string), c.param) {
				t.Fatalf("problem %v, want one naming %s", p, c.param)
			}
		})
	}
}
