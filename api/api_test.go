package api_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"koers/api"
	"koers/domain"
	"koers/eventstore"
	"koers/internal/ledgertest"
	"koers/internal/pgtest"
	"koers/projections"
)

// env is a running API on a real ledger, real read models and a projector
// following the stream.
type env struct {
	ledger *ledgertest.Ledger
	db     *projections.DB
	proj   *projections.Projector
	srv    *httptest.Server
	dbURL  string

	mu         sync.Mutex
	checkpoint uint64
	committed  chan struct{} // closed and replaced on every commit
	stopped    chan struct{} // closed when the projector returned
	projErr    error         // what it returned, once stopped is closed
}

// newEnv starts an env of its own for tb, on an empty ledger (only the
// root mandate) and empty read models; everything stops when tb ends.
func newEnv(tb testing.TB) *env {
	tb.Helper()
	e := &env{ledger: ledgertest.New(tb), dbURL: pgtest.Fresh(tb), committed: make(chan struct{}),
		stopped: make(chan struct{})}
	ctx := context.Background()
	var err error
	e.db, err = projections.Open(ctx, e.dbURL, projections.Options{})
	if err != nil {
		tb.Fatalf("open read models: %v", err)
	}
	tb.Cleanup(e.db.Close)
	e.proj, err = projections.NewProjector(e.db, e.ledger.Store, projections.ProjectorOptions{
		FlushInterval: 5 * time.Millisecond,
		OnCommit: func(cp uint64) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.checkpoint = cp
			close(e.committed)
			e.committed = make(chan struct{})
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	go func() {
		defer close(e.stopped)
		e.projErr = e.proj.Run(runCtx)
	}()
	tb.Cleanup(func() {
		stop()
		<-e.stopped
		if e.projErr != nil {
			tb.Errorf("projector: %v", e.projErr)
		}
	})
	h, err := api.New(api.Config{Ledger: e.ledger.Handler, Log: e.ledger.Store, ReadModels: e.db, Projector: e.proj,
		Now: func() time.Time { return ledgertest.Clock }})
	if err != nil {
		tb.Fatal(err)
	}
	e.srv = httptest.NewServer(h)
	tb.Cleanup(e.srv.Close)
	return e
}

// waitApplied waits until the projector committed seq, on its commit
// signal.
func (e *env) waitApplied(tb testing.TB, seq uint64) {
	tb.Helper()
	timeout := time.NewTimer(20 * time.Second)
	defer timeout.Stop()
	for {
		e.mu.Lock()
		cp, ch := e.checkpoint, e.committed
		e.mu.Unlock()
		if cp >= seq {
			return
		}
		select {
		case <-ch:
		case <-e.stopped:
			tb.Fatalf("projector stopped at %d, waiting for %d: %v", cp, seq, e.projErr)
		case <-timeout.C:
			tb.Fatalf("projector at %d after 20s, waiting for %d", cp, seq)
		}
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		tb.Fatalf("answer %s: %v", r.body, err)
	}
}

// problem decodes a problem answer and checks its status and media type.
func (r response) problem(tb testing.TB, status int) map[string]any {
	tb.Helper()
	if r.status != status {
		tb.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		tb.Fatalf("content type %q, want application/problem+json: %s", ct, r.body)
	}
	var p map[string]any
	r.json(tb, &p)
	if d, _ := p["detail"].(string); d == "" || strings.Contains(d, "\n") {
		tb.Fatalf("detail %q: want one line", d)
	}
	if s, _ := p["status"].(float64); int(s) != status {
		tb.Fatalf("problem status %v, want %d", p["status"], status)
	}
	return p
}

func (e *env) do(tb testing.TB, method, path string, body io.Reader, header ...string) response {
	tb.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	r := response{status: res.StatusCode, header: res.Header, body: b}
	checkAnswer(tb, method, req.URL.Path, r)
	return r
}

func (e *env) get(tb testing.TB, path string) response {
	tb.Helper()
	return e.do(tb, "GET", path, nil)
}

func (e *env) post(tb testing.TB, decision string, header ...string) response {
	tb.Helper()
	return e.do(tb, "POST", "/v1/decisions", strings.NewReader(decision), append([]string{"Content-Type", "application/json"}, header...)...)
}

type result struct {
	ID        string   `json:"id"`
	Sequences []uint64 `json:"sequences"`
	Duplicate bool     `json:"duplicate"`
}

// record posts a decision that must be recorded and waits until the read
// models have it.
func (e *env) record(tb testing.TB, decision string, header ...string) result {
	tb.Helper()
	r := e.post(tb, decision, header...)
	if r.status != http.StatusCreated {
		tb.Fatalf("status %d, want 201: %s", r.status, r.body)
	}
	var res result
	r.json(tb, &res)
	if res.ID == "" || len(res.Sequences) == 0 || res.Duplicate {
		tb.Fatalf("result %s", r.body)
	}
	if loc := r.header.Get("Location"); loc != "/v1/decisions/"+res.ID {
		tb.Fatalf("Location %q", loc)
	}
	e.waitApplied(tb, slices.Max(res.Sequences))
	return res
}

const structure = `{"id":"d-structure","by":"p-root","authority":"root","reason":"the organisation as it stands","effective":"2026-01-01",
 "changes":[{"kind":"valuestream.define","id":"payments","name":"Payments"},
  {"kind":"team.form","id":"t-core","name":"Core","type":"stream-aligned"},
  {"kind":"person.join","id":"p-0001","name":"Anne","team":"t-core"},
  {"kind":"product.launch","id":"pay-app","name":"Pay app","valuestream":"payments","owner":"p-0001"},
  {"kind":"team.assign","team":"t-core","product":"pay-app"}]}`

const funding = `{"id":"d-budget","by":"p-root","authority":"root","reason":"budget 2026","effective":"2026-01-01",
 "changes":[{"kind":"budget.open","period":"2026","amount":"1000000.00","currency":"EUR"},
  {"kind":"funding.allocate","period":"2026","to":"product:pay-app","amount":"250000.00"}]}`

// Each test below starts an env of its own and records what it needs, so
// that every one of them runs alone (go test -run '^TestName$') and in any
// order.

func TestRecordADecisionThenSeeItInTheOrganisation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	first := e.record(t, structure)
	if first.ID != "d-structure" {
		t.Fatalf("id %q", first.ID)
	}
	r := e.get(t, "/v1/org")
	if r.status != http.StatusOK {
		t.Fatalf("org: %d %s", r.status, r.body)
	}
	var org struct {
		Sequence     uint64
		ValueStreams []struct {
			ID       string
			Products []struct{ ID, Owner string }
		} `json:"value_streams"`
	}
	r.json(t, &org)
	if len(org.ValueStreams) != 1 || org.ValueStreams[0].ID != "payments" ||
		len(org.ValueStreams[0].Products) != 1 || org.ValueStreams[0].Products[0].Owner != "p-0001" {
		t.Fatalf("org %s", r.body)
	}
	if org.Sequence != slices.Max(first.Sequences) {
		t.Fatalf("org sequence %d, want %d", org.Sequence, slices.Max(first.Sequences))
	}
	// Before the decision took effect there was nothing.
	r = e.get(t, "/v1/org?as_of=2025-12-31")
	var before struct {
		ValueStreams []any `json:"value_streams"`
	}
	r.json(t, &before)
	if r.status != http.StatusOK || len(before.ValueStreams) != 0 {
		t.Fatalf("org as of 2025-12-31: %d %s", r.status, r.body)
	}
	r = e.get(t, "/v1/decisions/d-structure")
	if r.status != http.StatusOK || !bytes.Contains(r.body, []byte(`"by":"p-root"`)) {
		t.Fatalf("decision: %d %s", r.status, r.body)
	}
	e.get(t, "/v1/decisions/d-nothing").problem(t, http.StatusNotFound)
}

func TestARepeatedDecisionIDAnswersTheFirstResult(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	first := e.record(t, structure)
	r := e.post(t, structure)
	if r.status != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", r.status, r.body)
	}
	var again result
	r.json(t, &again)
	if !again.Duplicate || again.ID != first.ID || !slices.Equal(again.Sequences, first.Sequences) {
		t.Fatalf("repeat %+v, first %+v", again, first)
	}
}

func TestIdempotencyKeyNamesTheDecision(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	noID := `{"by":"p-root","authority":"root","reason":"r","effective":"2026-01-01","changes":[{"kind":"valuestream.define","id":"payments","name":"Payments"}]}`
	first := e.record(t, noID, "Idempotency-Key", `"k-payments"`)
	if first.ID != "k-payments" {
		t.Fatalf("id %q, want the Idempotency-Key k-payments", first.ID)
	}
	// The same request again (its answer lost, say) is the first result.
	r := e.post(t, noID, "Idempotency-Key", "k-payments")
	var again result
	r.json(t, &again)
	if r.status != http.StatusOK || !again.Duplicate || !slices.Equal(again.Sequences, first.Sequences) {
		t.Fatalf("again: %d %s, want 200 with the first sequences %v", r.status, r.body, first.Sequences)
	}
	// The body's id and the header agreeing is fine; differing is a 422
	// that names both.
	withID := `{"id":"k-lending","by":"p-root","authority":"root","reason":"r","effective":"2026-01-01","changes":[{"kind":"valuestream.define","id":"lending","name":"Lending"}]}`
	p := e.post(t, withID, "Idempotency-Key", "k-other").problem(t, http.StatusUnprocessableEntity)
	if p["field"] != "id" || p["parameter"] != "Idempotency-Key" ||
		!strings.Contains(p["detail"].(string), "k-other") || !strings.Contains(p["detail"].(string), "k-lending") {
		t.Fatalf("differing key and id: %v", p)
	}
	if res := e.record(t, withID, "Idempotency-Key", "k-lending"); res.ID != "k-lending" {
		t.Fatalf("id %q", res.ID)
	}
	// A key that cannot be a decision id, or two of them, is a 400.
	for _, keys := range [][]string{{"Idempotency-Key", "Not An Id"}, {"Idempotency-Key", "k-1", "Idempotency-Key", "k-2"}} {
		p := e.post(t, noID, keys...).problem(t, http.StatusBadRequest)
		if p["parameter"] != "Idempotency-Key" {
			t.Fatalf("%q: %v", keys, p)
		}
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.record(t, structure) // t-core has members: disbanding it is refused
	for _, tc := range []struct {
		name, body, contentType string
		status                  int
		member, value           string
	}{
		{name: "bad effective", body: `{"by":"p-root","authority":"root","reason":"r","effective":"someday",
			"changes":[{"kind":"valuestream.define","id":"x","name":"X"}]}`,
			status: 422, member: "field", value: "effective"},
		{name: "bad amount in a change", body: `{"by":"p-root","authority":"root","reason":"r","effective":"2026-02-01",
			"changes":[{"kind":"budget.open","period":"2027","amount":"lots","currency":"EUR"}]}`,
			status: 422, member: "field", value: "changes[0].amount"},
		{name: "unknown field", body: `{"by":"p-root","authority":"root","reason":"r","colour":"red",
			"changes":[{"kind":"valuestream.define","id":"x","name":"X"}]}`,
			status: 422, member: "field", value: "colour"},
		{name: "no mandate", body: `{"by":"p-0001","authority":"root","reason":"r","effective":"2026-02-01",
			"changes":[{"kind":"valuestream.define","id":"lending","name":"Lending"}]}`,
			status: 403, member: "type", value: "urn:koers:problem:unauthorized"},
		{name: "refused by state", body: `{"by":"p-root","authority":"root","reason":"r","effective":"2026-02-01",
			"changes":[{"kind":"team.disband","team":"t-core"}]}`,
			status: 409, member: "type", value: "urn:koers:problem:refused"},
		{name: "malformed JSON", body: `{"by":"p-root",`, status: 400, member: "type", value: "urn:koers:problem:malformed"},
		{name: "not JSON", body: `by=p-root`, contentType: "application/x-www-form-urlencoded",
			status: 415, member: "type", value: "urn:koers:problem:unsupported-media-type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ct := tc.contentType
			if ct == "" {
				ct = "application/json"
			}
			p := e.do(t, "POST", "/v1/decisions", strings.NewReader(tc.body), "Content-Type", ct).problem(t, tc.status)
			if p[tc.member] != tc.value {
				t.Fatalf("%s %v, want %q: %v", tc.member, p[tc.member], tc.value, p)
			}
		})
	}
}

func TestOversizedBody(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	big := `{"by":"p-root","authority":"root","reason":"` + strings.Repeat("x", api.DefaultMaxBodyBytes) + `"}`
	e.post(t, big).problem(t, http.StatusRequestEntityTooLarge)
	// Without a Content-Length the limit is met while reading.
	r := e.do(t, "POST", "/v1/decisions", io.MultiReader(strings.NewReader(big)), "Content-Type", "application/json")
	r.problem(t, http.StatusRequestEntityTooLarge)
}

// join is a decision that hires id into t-core.
func join(id string) string {
	return fmt.Sprintf(`{"id":"d-join-%s","by":"p-root","authority":"root","reason":"hire","effective":"2026-03-01",
		"changes":[{"kind":"person.join","id":"%s","name":"Someone","team":"t-core"}]}`, id, id)
}

// etagOf returns the ETag and the version GET /v1/aggregates answers for
// kind and id.
func (e *env) etagOf(tb testing.TB, kind, id string) (string, uint64) {
	tb.Helper()
	r := e.get(tb, "/v1/aggregates/"+kind+"/"+id)
	if r.status != http.StatusOK {
		tb.Fatalf("aggregate: %d %s", r.status, r.body)
	}
	var agg struct {
		Version uint64
		ETag    string
	}
	r.json(tb, &agg)
	tag := r.header.Get("ETag")
	if want := fmt.Sprintf(`"%s:%s@%d"`, kind, id, agg.Version); tag != want || agg.ETag != want || agg.Version == 0 {
		tb.Fatalf("ETag %q, body %s, want %s", tag, r.body, want)
	}
	return tag, agg.Version
}

func TestIfMatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.record(t, structure)
	tag, version := e.etagOf(t, "team", "t-core")
	stale := fmt.Sprintf(`"team:t-core@%d"`, version-1)
	// Both tags are stale (payments exists); either may be named.
	p := e.post(t, join("p-0002"), "If-Match", `"valuestream:payments@0", `+stale).problem(t, http.StatusPreconditionFailed)
	if a := p["aggregate"]; a != "team:t-core" && a != "valuestream:payments" {
		t.Fatalf("problem %v", p)
	}
	p = e.post(t, join("p-0002"), "If-Match", stale).problem(t, http.StatusPreconditionFailed)
	if p["aggregate"] != "team:t-core" || p["current"] != float64(version) || p["expected"] != float64(version-1) {
		t.Fatalf("problem %v", p)
	}
	e.record(t, join("p-0002"), "If-Match", tag)
	// The team moved on: the tag it had is stale now.
	e.post(t, join("p-0003"), "If-Match", tag).problem(t, http.StatusPreconditionFailed)
	// A retry of the recorded decision is still answered with its result.
	if r := e.post(t, join("p-0002"), "If-Match", tag); r.status != http.StatusOK {
		t.Fatalf("retry: %d %s", r.status, r.body)
	}
	for _, bad := range []string{`team:t-core@1`, `W/"team:t-core@1"`, `*`, `"team:t-core"`, `"team:T@1"`, `"team:t-core@x"`, `"team:t-core@1", "team:t-core@2"`} {
		p := e.post(t, join("p-0003"), "If-Match", bad).problem(t, http.StatusBadRequest)
		if p["parameter"] != "If-Match" {
			t.Fatalf("If-Match %s: %v", bad, p)
		}
	}
	e.get(t, "/v1/aggregates/team/t-nobody").problem(t, http.StatusNotFound)
	if p := e.get(t, "/v1/aggregates/teams/t-core").problem(t, http.StatusBadRequest); p["parameter"] != "kind" {
		t.Fatalf("problem %v", p)
	}
}

func TestFunding(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.record(t, structure)
	e.record(t, funding)
	r := e.get(t, "/v1/funding/2026")
	var f struct {
		Balances []struct{ Account, Currency, Amount string }
	}
	r.json(t, &f)
	got := map[string]string{}
	for _, b := range f.Balances {
		got[b.Account] = b.Amount
	}
	if r.status != http.StatusOK || got["pool"] != "750000.00" || got["product:pay-app"] != "250000.00" {
		t.Fatalf("funding: %d %s", r.status, r.body)
	}
	r = e.get(t, "/v1/funding/2026?account=product:pay-app&known_at=2099-01-01T00:00:00Z")
	var j struct {
		Journal []struct {
			Decision, Amount string
		}
	}
	r.json(t, &j)
	if r.status != http.StatusOK || len(j.Journal) != 1 || j.Journal[0].Decision != "d-budget" || j.Journal[0].Amount != "250000.00" {
		t.Fatalf("journal: %d %s", r.status, r.body)
	}
	// Before the budget opened there was nothing.
	r = e.get(t, "/v1/funding/2026?as_of=2025-06-01")
	if r.status != http.StatusOK || bytes.Contains(r.body, []byte("pool")) {
		t.Fatalf("funding as of 2025-06-01: %d %s", r.status, r.body)
	}
}

func TestHistory(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.record(t, structure)
	r := e.get(t, "/v1/history/product/pay-app")
	var h struct {
		Facts []struct{ Attribute, Value, Decision string }
	}
	r.json(t, &h)
	if r.status != http.StatusOK || !slices.ContainsFunc(h.Facts, func(f struct{ Attribute, Value, Decision string }) bool {
		return f.Attribute == "owner" && f.Value == "p-0001" && f.Decision == "d-structure"
	}) {
		t.Fatalf("history: %d %s", r.status, r.body)
	}
	e.get(t, "/v1/history/product/nothing").problem(t, http.StatusNotFound)
}

func TestAuditPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// With the root mandate's grant, five decisions: pages of two end on a
	// short one.
	for _, d := range []string{structure, funding, join("p-0002"), join("p-0003")} {
		e.record(t, d)
	}
	var all struct {
		Decisions []struct{ ID string }
		Next      uint64
	}
	r := e.get(t, "/v1/audit?limit=1000")
	r.json(t, &all)
	if r.status != http.StatusOK || len(all.Decisions) < 5 || all.Next != 0 {
		t.Fatalf("audit: %d %s", r.status, r.body)
	}
	var paged []string
	path := "/v1/audit?limit=2"
	for pages := 0; pages < 10; pages++ {
		var page struct {
			Decisions []struct{ ID string }
			Next      uint64
		}
		r := e.get(t, path)
		r.json(t, &page)
		if r.status != http.StatusOK || len(page.Decisions) > 2 {
			t.Fatalf("page %s: %d %s", path, r.status, r.body)
		}
		for _, d := range page.Decisions {
			paged = append(paged, d.ID)
		}
		if page.Next == 0 {
			break
		}
		path = fmt.Sprintf("/v1/audit?limit=2&before=%d", page.Next)
	}
	var want []string
	for _, d := range all.Decisions {
		want = append(want, d.ID)
	}
	if !slices.Equal(paged, want) {
		t.Fatalf("paged %v, want %v", paged, want)
	}
	var by struct{ Decisions []struct{ ID, By string } }
	r = e.get(t, "/v1/audit?by=p-root&kind=budget.open&subject=budget:2026&axis=effective&from=2026-01-01&to=2026-12-31")
	r.json(t, &by)
	if r.status != http.StatusOK || len(by.Decisions) != 1 || by.Decisions[0].ID != "d-budget" {
		t.Fatalf("filtered audit: %d %s", r.status, r.body)
	}
}

func TestTransition(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.record(t, structure)
	r := e.get(t, "/v1/reports/transition?from=2026-Q1&to=2026-Q4")
	var tr struct {
		Quarters []struct {
			Quarter        string
			ActiveProducts int `json:"active_products"`
			OwnedProducts  int `json:"owned_products"`
		}
	}
	r.json(t, &tr)
	if r.status != http.StatusOK || len(tr.Quarters) != 4 || tr.Quarters[0].Quarter != "2026-Q1" || tr.Quarters[3].Quarter != "2026-Q4" ||
		tr.Quarters[0].ActiveProducts != 1 || tr.Quarters[0].OwnedProducts != 1 {
		t.Fatalf("transition: %d %s", r.status, r.body)
	}
}

func TestBadParametersNameTheParameter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.record(t, structure) // the paths name what exists, so only the parameter is at fault
	for _, tc := range []struct{ path, param string }{
		{"/v1/org?as_of=yesterday", "as_of"},
		{"/v1/org?known_at=2026-13-01", "known_at"},
		{"/v1/org?asof=2026-01-01", "asof"},
		{"/v1/org?as_of=2026-01-01&as_of=2026-02-01", "as_of"},
		{"/v1/history/product/pay-app?all=maybe", "all"},
		{"/v1/history/product/Pay", "id"},
		{"/v1/audit?limit=0", "limit"},
		{"/v1/audit?limit=1001", "limit"},
		{"/v1/audit?before=-1", "before"},
		{"/v1/audit?axis=sideways", "axis"},
		{"/v1/audit?subject=product", "subject"},
		{"/v1/audit?by=P", "by"},
		{"/v1/audit?kind=person.teleport", "kind"},
		{"/v1/audit?from=2026-02-01&to=2026-01-01", "to"},
		{"/v1/funding/2026?account=wallet", "account"},
		{"/v1/funding/20%2026", "period"},
		{"/v1/reports/transition", "from"},
		{"/v1/reports/transition?from=2026-Q5", "from"},
		{"/v1/reports/transition?from=2026-Q3&to=2026-Q1", "to"},
		{"/v1/reports/transition?from=2000-Q1&to=2026-Q1", "to"},
		{"/v1/aggregates/team/t-core?x=1", "x"},
	} {
		p := e.get(t, tc.path).problem(t, http.StatusBadRequest)
		if p["parameter"] != tc.param {
			t.Errorf("%s: parameter %v, want %s: %v", tc.path, p["parameter"], tc.param, p)
		}
	}
	e.get(t, "/v1/nothing").problem(t, http.StatusNotFound)
	r := e.do(t, "PUT", "/v1/org", nil)
	r.problem(t, http.StatusMethodNotAllowed)
	if allow := r.header.Get("Allow"); !strings.Contains(allow, "GET") {
		t.Fatalf("Allow %q", allow)
	}
}

func TestOpenAPIDocumentMatchesTheRoutes(t *testing.T) {
	t.Parallel()
	checkOpenAPI(t, newEnv(t))
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// One answer of each outcome the scrape must count.
	e.record(t, structure)
	if r := e.post(t, structure); r.status != http.StatusOK {
		t.Fatalf("duplicate: %d %s", r.status, r.body)
	}
	e.post(t, join("p-0002"), "If-Match", `"team:t-core@1"`).problem(t, http.StatusPreconditionFailed)
	r := e.get(t, "/metrics")
	if r.status != http.StatusOK {
		t.Fatalf("metrics: %d %s", r.status, r.body)
	}
	for _, want := range []string{
		api.MetricAppendSeconds + `_count{outcome="created"}`,
		api.MetricAppendSeconds + `_count{outcome="duplicate"}`,
		api.MetricAppendSeconds + `_count{outcome="stale-version"}`,
		api.MetricProjectorLag + " ",
		api.MetricEventsApplied + " ",
		api.MetricStreamSequence + " ",
	} {
		if !bytes.Contains(r.body, []byte(want)) {
			t.Errorf("metrics lack %q:\n%s", want, r.body)
		}
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.get(t, "/healthz")
	if r.status != http.StatusOK || !bytes.Contains(r.body, []byte(`"nats":"ok"`)) || !bytes.Contains(r.body, []byte(`"postgresql":"ok"`)) {
		t.Fatalf("healthz: %d %s", r.status, r.body)
	}
	// PostgreSQL gone: read models that are closed.
	closed, err := projections.Open(context.Background(), e.dbURL, projections.Options{})
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	// NATS gone: a store on a connection that was closed.
	nc, err := e.ledger.Server.Connect()
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	gone, err := eventstore.Open(context.Background(), js, eventstore.Config{SealKey: e.ledger.SealKey})
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	for _, tc := range []struct {
		name   string
		log    api.Log
		rm     api.ReadModels
		detail string
	}{
		{"postgresql", e.ledger.Store, closed, "postgresql not answering"},
		{"nats", gone, e.db, "nats not answering"},
		{"both", gone, closed, "nats and postgresql not answering"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := api.New(api.Config{Ledger: e.ledger.Handler, Log: tc.log, ReadModels: tc.rm, Projector: e.proj,
				Registerer: prometheus.NewRegistry(), CheckTimeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
			p := response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}.problem(t, http.StatusServiceUnavailable)
			if p["detail"] != tc.detail {
				t.Fatalf("detail %q, want %q", p["detail"], tc.detail)
			}
		})
	}
}

// A serve process's projector holds the read models' lease or stands by:
// /healthz shows which, healthy either way, and so does a gauge.
func TestHealthShowsWhetherTheProjectorIsActive(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var active atomic.Bool
	h, err := api.New(api.Config{Ledger: e.ledger.Handler, Log: e.ledger.Store, ReadModels: e.db, Projector: e.proj,
		ProjectorActive: active.Load, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec
	}
	for _, tc := range []struct {
		active       bool
		check, gauge string
	}{{false, `"projector":"standby"`, api.MetricProjectorActive + " 0"}, {true, `"projector":"active"`, api.MetricProjectorActive + " 1"}} {
		active.Store(tc.active)
		if r := get("/healthz"); r.Code != http.StatusOK || !strings.Contains(r.Body.String(), tc.check) {
			t.Errorf("active %v: healthz %d %s, want 200 with %s", tc.active, r.Code, r.Body, tc.check)
		}
		if r := get("/metrics"); !strings.Contains(r.Body.String(), tc.gauge+"\n") {
			t.Errorf("active %v: metrics lack %q", tc.active, tc.gauge)
		}
	}
	// Without ProjectorActive (a process that runs no projector), neither.
	if r := e.get(t, "/healthz"); bytes.Contains(r.body, []byte(`"projector"`)) {
		t.Errorf("healthz without ProjectorActive: %s", r.body)
	}
}

// checkOpenAPI holds the document to what the mux serves: the routes the mux
// is built from are the documented operations, every documented operation
// is routed (its answer is not the catch-all's), and anything else reaches
// the catch-all.
func checkOpenAPI(t testing.TB, e *env) {
	t.Helper()
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	sort.Strings(documented)
	served := api.Routes()
	sort.Strings(served)
	if !slices.Equal(documented, served) {
		t.Fatalf("documented %v\nserved     %v", documented, served)
	}
	// The mux routes each documented operation to its handler: none of
	// them reaches the catch-all, whatever the answer of the handler.
	for _, op := range documented {
		method, path, _ := strings.Cut(op, " ")
		path = strings.NewReplacer("{kind}", "product", "{id}", "x", "{period}", "2026").Replace(path)
		r := e.do(t, method, path, strings.NewReader("{}"), "Content-Type", "application/json")
		if bytes.Contains(r.body, []byte("no route")) || r.status == http.StatusMethodNotAllowed {
			t.Errorf("%s is documented but not routed: %d %s", op, r.status, r.body)
		}
	}
	// And something undocumented is not routed.
	e.get(t, "/v1/undocumented").problem(t, http.StatusNotFound)
	// The document served is the one checked.
	if r := e.get(t, "/v1/openapi.json"); r.status != http.StatusOK || !bytes.Equal(r.body, api.OpenAPI()) {
		t.Fatalf("openapi.json: %d", r.status)
	}
}

// A client signs its decision itself; an id recorded before with other
// content is a 409 naming that recording, the same content a duplicate.
func TestClientSignedDecisionsAndIDsKeptByContent(t *testing.T) {
	e := newEnv(t)
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	e.record(t, fmt.Sprintf(`{"id":"reg","by":"p-root","authority":"root","reason":"r","effective":"2026-01-01","changes":[{"kind":"actor.register-key","actor":"p-root","public_key":%q}]}`, hex.EncodeToString(pub)))
	d := `{"id":"vs","by":"p-root","authority":"root","reason":"r","effective":"2026-01-01","changes":[{"kind":"valuestream.define","id":"payments","name":"Payments"}]}`
	dec, err := e.ledger.Handler.Decode([]byte(d))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := domain.CanonicalDecision(dec)
	if err != nil {
		t.Fatal(err)
	}
	sig := hex.EncodeToString(ed25519.Sign(priv, msg))
	signed := strings.Replace(d, `"changes"`, `"signature":"`+sig+`","changes"`, 1)
	bad := strings.Replace(d, `"changes"`, `"signature":"`+strings.Repeat("0", 128)+`","changes"`, 1)
	if r := e.post(t, bad); r.status != http.StatusForbidden {
		t.Fatalf("a wrong signature: %d %s", r.status, r.body)
	}
	first := e.record(t, signed)
	if r := e.post(t, d); r.status != http.StatusOK || !strings.Contains(string(r.body), `"duplicate":true`) {
		t.Fatalf("the same content unsigned: %d %s", r.status, r.body)
	}
	r := e.post(t, strings.Replace(d, `"Payments"`, `"Payments 2"`, 1))
	p := r.problem(t, http.StatusConflict)
	if p["type"] != "urn:koers:problem:id-reused" || p["first_sequence"] != float64(first.Sequences[len(first.Sequences)-1]) || p["first_recorded_at"] == "" {
		t.Fatalf("other content under the same id: %s", r.body)
	}
}
