package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"koers/api"
	"koers/projections"
)

// walkCase is one request of TestContractWalk and the status it must get.
type walkCase struct {
	method, path, body string
	header             []string
	status             int
}

// TestContractWalk drives every operation of the document on a real ledger
// and read models to its answers, the errors included (400, 401, 403, 404,
// 405, 409, 412, 413, 415, 422, 503), and holds each answer to the
// document (env.do does). An operation of the document without a 2xx case
// here fails the test: a new route adds its cases below.
func TestContractWalk(t *testing.T) {
	e := newEnv(t)
	e.record(t, structure)
	e.record(t, funding)
	e.record(t, boardStructure)
	tag, _ := e.etagOf(t, "team", "t-core")
	json := []string{"Content-Type", "application/json"}
	shift := func(id string) string {
		return `{"id":"` + id + `","by":"p-0001","authority":"m-board","reason":"fund","changes":[
		 {"kind":"funding.shift","period":"2026","from":"product:pay-app","to":"valuestream:payments","amount":"100.00"}]}`
	}
	join := func(id string) string {
		return `{"id":"d-` + id + `","by":"p-root","authority":"root","reason":"hire","changes":[{"kind":"person.join","id":"` + id + `","name":"X","team":"t-core"}]}`
	}
	cases := []walkCase{
		{"POST", "/v1/decisions", join("p-0101"), json, 201},
		{"POST", "/v1/decisions", join("p-0101"), json, 200},
		{"POST", "/v1/decisions", shift("d-walk"), json, 202},
		{"POST", "/v1/decisions", shift("d-walk-2"), json, 202},
		{"POST", "/v1/decisions", shift("d-walk-3"), json, 202},
		{"POST", "/v1/decisions", `{"by":`, json, 400},
		{"POST", "/v1/decisions", join("p-0102"), append([]string{"If-Match", "W/\"x\""}, json...), 400},
		{"POST", "/v1/decisions", `{"by":"p-0001","authority":"root","reason":"r","changes":[{"kind":"team.disband","team":"t-core"}]}`, json, 403},
		{"POST", "/v1/decisions", `{"by":"p-root","authority":"root","reason":"r","changes":[{"kind":"team.form","id":"t-core","name":"Again","type":"platform"}]}`, json, 409},
		{"POST", "/v1/decisions", join("p-0103"), append([]string{"If-Match", strings.Replace(tag, "@", "@9", 1)}, json...), 412},
		{"POST", "/v1/decisions", `{"reason":"` + strings.Repeat("x", 2<<20) + `"}`, json, 413},
		{"POST", "/v1/decisions", join("p-0104"), []string{"Content-Type", "text/plain"}, 415},
		{"POST", "/v1/decisions", join("p-0105"), nil, 415},
		{"POST", "/v1/decisions", `[{"by":"p-root"}]`, json, 422},
		{"POST", "/v1/decisions", `{"by":"p-root","authority":"root","reason":"r","changes":[]}`, json, 422},
		{"GET", "/v1/decisions/d-structure", "", nil, 200},
		{"GET", "/v1/decisions/d-none", "", nil, 404},
		{"GET", "/v1/decisions/D!", "", nil, 400},
		{"GET", "/v1/aggregates/team/t-core", "", nil, 200},
		{"GET", "/v1/aggregates/team/t-none", "", nil, 404},
		{"GET", "/v1/aggregates/teams/t-core", "", nil, 400},
		{"GET", "/v1/org?limit=1", "", nil, 200},
		{"GET", "/v1/org?as_of=1000-01-01", "", nil, 422},
		{"GET", "/v1/org?limit=x", "", nil, 400},
		{"GET", "/v1/history/person/p-0001", "", nil, 200},
		{"GET", "/v1/history/decision/d-structure", "", nil, 400},
		{"GET", "/v1/history/person/p-0001?known_at=1000-01-01", "", nil, 422},
		{"GET", "/v1/audit?limit=2", "", nil, 200},
		{"GET", "/v1/audit?axis=sideways", "", nil, 400},
		{"GET", "/v1/audit?from=0001-01-01", "", nil, 422},
		{"GET", "/v1/funding/2026", "", nil, 200},
		{"GET", "/v1/funding/2026?account=product:pay-app", "", nil, 200},
		{"GET", "/v1/funding/2026?account=nowhere", "", nil, 400},
		{"GET", "/v1/funding/2026?as_of=1000-01-01", "", nil, 422},
		{"GET", "/v1/reports/transition?from=2026-Q1&to=2026-Q2", "", nil, 200},
		{"GET", "/v1/reports/transition", "", nil, 400},
		{"GET", "/v1/reports/transition?from=9999-Q4", "", nil, 422},
		{"GET", "/v1/proposals", "", nil, 200},
		{"GET", "/v1/proposals?state=sleeping", "", nil, 400},
		{"GET", "/v1/proposals/d-walk", "", nil, 200},
		{"GET", "/v1/proposals/d-none", "", nil, 404},
		{"GET", "/v1/proposals/D!", "", nil, 400},
		{"POST", "/v1/proposals/d-walk/approve", `{"by":"p-0002"}`, json, 200},
		{"POST", "/v1/proposals/d-walk/approve", `{"by":"p-0002"}`, json, 409},
		{"POST", "/v1/proposals/d-walk-2/approve", `{"by":"p-0003"}`, json, 403},
		{"POST", "/v1/proposals/d-none/approve", `{"by":"p-0002"}`, json, 404},
		{"POST", "/v1/proposals/d-walk-2/approve", `{"by":`, json, 400},
		{"POST", "/v1/proposals/d-walk-2/approve", `0`, json, 422},
		{"POST", "/v1/proposals/d-walk-2/approve", `{"by":1}`, json, 422},
		{"POST", "/v1/proposals/d-walk-2/approve", `{"by":"p-0002","when":"now"}`, json, 422},
		{"POST", "/v1/proposals/d-walk-2/approve", `{"by":"p-0002"}`, nil, 415},
		{"POST", "/v1/proposals/d-walk-2/approve", `{"by":"p-0002","reason":"` + strings.Repeat("x", 64<<10) + `"}`, json, 413},
		{"POST", "/v1/proposals/d-walk-2/reject", `{"by":"p-0002"}`, json, 422},
		{"POST", "/v1/proposals/d-walk-2/reject", `{"by":"p-0002","reason":"no"}`, json, 200},
		{"POST", "/v1/proposals/d-walk-2/reject", `{"by":"p-0002","reason":"no"}`, json, 409},
		{"POST", "/v1/proposals/d-walk-3/withdraw", `{"by":"p-0002"}`, json, 403},
		{"POST", "/v1/proposals/d-walk-3/withdraw", `{"by":"p-0001"}`, json, 200},
		{"GET", "/v1/mandates", "", nil, 200},
		{"GET", "/v1/mandates?holder=Board", "", nil, 400},
		{"GET", "/v1/mandates?as_of=1000-01-01", "", nil, 422},
		{"GET", "/v1/openapi.json", "", nil, 200},
		{"GET", "/v1/openapi.json?x=1", "", nil, 400},
		{"GET", "/metrics", "", nil, 200},
		{"GET", "/healthz", "", nil, 200},
		{"GET", "/healthz?x=1", "", nil, 400},
		// HEAD is GET without a body; other methods a path lacks are 405.
		{"HEAD", "/v1/org", "", nil, 200},
		{"HEAD", "/v1/decisions/d-none", "", nil, 404},
		{"DELETE", "/v1/org", "", nil, 405},
		{"GET", "/v1/decisions", "", nil, 405},
		{"PUT", "/v1/proposals/d-walk/approve", "", nil, 405},
		{"GET", "/v1/nothing", "", nil, 404},
		{"POST", "/v1/proposals//approve", "{}", json, 404},
		{"GET", "/v1//org", "", nil, 404},
	}
	answered := map[string]bool{} // operations with a 2xx
	for _, c := range cases {
		r := e.do(t, c.method, c.path, strings.NewReader(c.body), c.header...)
		if r.status != c.status {
			t.Errorf("%s %s: %d, want %d: %.300s", c.method, c.path, r.status, c.status, r.body)
		}
		if c.method == "HEAD" && len(r.body) != 0 {
			t.Errorf("HEAD %s answered a body", c.path)
		}
		if c.method == "HEAD" && r.status == 200 && r.header.Get("Content-Type") != "application/json" {
			t.Errorf("HEAD %s: Content-Type %q, want GET's", c.path, r.header.Get("Content-Type"))
		}
		if r.status == 405 && !strings.Contains(r.header.Get("Allow"), "HEAD") && strings.Contains(r.header.Get("Allow"), "GET") {
			t.Errorf("%s %s: Allow %q does not list HEAD", c.method, c.path, r.header.Get("Allow"))
		}
		if r.status < 300 && c.method != "HEAD" {
			answered[c.method+" "+templateOf(t, c.path)] = true
		}
	}

	// Under --tokens: 401 without a known token on every /v1 route but the
	// document; the open routes stay open.
	tokens, err := api.ParseTokens(strings.NewReader("p-root rootrootrootrootroot\np-0001 annesannesannesannes\n"))
	if err != nil {
		t.Fatal(err)
	}
	withTokens := e.with(t, func(cfg *api.Config) { cfg.Tokens = tokens })
	for _, op := range operations(t) {
		method, path, _ := strings.Cut(op, " ")
		path = strings.NewReplacer("{kind}", "person", "{id}", "p-0001", "{period}", "2026").Replace(path)
		r := withTokens.do(t, method, path, strings.NewReader("{}"), json...)
		open := path == "/v1/openapi.json" || !strings.HasPrefix(path, "/v1/")
		if open != (r.status != http.StatusUnauthorized) {
			t.Errorf("%s under --tokens without a token: %d (open: %v)", op, r.status, open)
		}
	}
	withTokens.post(t, join("p-0106"), "Authorization", "Bearer annesannesannesannes").problem(t, http.StatusForbidden)
	withTokens.do(t, "POST", "/v1/proposals/d-walk-3/approve", strings.NewReader(`{"by":"p-0002"}`),
		"Content-Type", "application/json", "Authorization", "Bearer annesannesannesannes").problem(t, http.StatusForbidden)

	// Read models that do not answer: 503 with Retry-After, and /healthz
	// names them.
	closed, err := projections.Open(context.Background(), e.dbURL, projections.Options{})
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	down := e.with(t, func(cfg *api.Config) { cfg.ReadModels = closed })
	for _, path := range []string{"/v1/org", "/v1/decisions/d-structure", "/v1/history/person/p-0001", "/v1/audit",
		"/v1/funding/2026", "/v1/reports/transition?from=2026-Q1", "/v1/proposals", "/v1/proposals/d-walk", "/v1/mandates", "/healthz"} {
		down.get(t, path).problem(t, http.StatusServiceUnavailable)
	}

	for _, op := range operations(t) {
		if !answered[op] {
			t.Errorf("%s: no case of TestContractWalk gets a 2xx from it: add one (and its error cases)", op)
		}
	}
}

// with is an env of the same ledger and read models whose API is built
// with cfg changed by change.
func (e *env) with(t *testing.T, change func(*api.Config)) *env {
	t.Helper()
	cfg := api.Config{Ledger: e.ledger.Handler, Log: e.ledger.Store, ReadModels: e.db, Projector: e.proj}
	change(&cfg)
	h, err := api.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{ledger: e.ledger, db: e.db, proj: e.proj, srv: srv, dbURL: e.dbURL}
}

// operations lists the document's operations as "METHOD /path".
func operations(t *testing.T) []string {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	var ops []string
	for path, methods := range doc.Paths {
		for m := range methods {
			if m != "parameters" && m != "summary" && m != "description" && m != "servers" {
				ops = append(ops, strings.ToUpper(m)+" "+path)
			}
		}
	}
	sort.Strings(ops)
	return ops
}

func templateOf(t *testing.T, path string) string {
	t.Helper()
	path, _, _ = strings.Cut(path, "?")
	tmpl, _ := theContract(t).match(path)
	if tmpl == "" {
		return fmt.Sprintf("(no template for %s)", path)
	}
	return tmpl
}
