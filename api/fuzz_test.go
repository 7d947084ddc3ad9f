package api_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// fuzzRoutes are the paths FuzzAPI calls, {} standing for the generated
// path segment; the last ones are no route at all.
var fuzzRoutes = []struct{ method, path string }{
	{"POST", "/v1/decisions"},
	{"GET", "/v1/decisions/{}"},
	{"GET", "/v1/aggregates/person/{}"},
	{"GET", "/v1/aggregates/{}/p-0001"},
	{"GET", "/v1/org"},
	{"GET", "/v1/history/person/{}"},
	{"GET", "/v1/history/{}/pay-app"},
	{"GET", "/v1/audit"},
	{"GET", "/v1/funding/{}"},
	{"GET", "/v1/funding/2026"},
	{"GET", "/v1/reports/transition"},
	{"GET", "/v1/proposals"},
	{"GET", "/v1/proposals/{}"},
	{"GET", "/v1/mandates"},
	{"POST", "/v1/proposals/{}/approve"},
	{"GET", "/v1/openapi.json"},
	{"GET", "/healthz"},
	{"PUT", "/v1/decisions"},
	{"GET", "/v1/{}"},
}

// FuzzAPI drives the API over HTTP, on a real ledger (embedded JetStream)
// and real read models (PostgreSQL), with generated bodies, path segments
// and query strings: whatever a client sends, the answer is never a 5xx
// other than 503 (storage not answering), a problem is one line of JSON,
// and no answer carries a storage engine's words.
//
// go test ./api -run '^$' -fuzz FuzzAPI -fuzztime 5m -parallel 1
func FuzzAPI(f *testing.F) {
	e := newEnv(f)
	e.record(f, structure)
	e.record(f, funding)
	// The inputs of issue 13, and what each route takes.
	f.Add(uint8(0), "", "", []byte(`{"by":"p-root","authority":"root","reason":"r","effective":"9999-12-31T23:59:59-14:00","changes":[{"kind":"team.disband","team":"t-core"}]}`))
	f.Add(uint8(0), "", "", []byte(`null`))
	f.Add(uint8(0), "", "", []byte(`[{"by":"p-root"}]`))
	f.Add(uint8(0), "", "", []byte("{\"by\":\"p-root\",\"authority\":\"root\",\"reason\":\"caf\xe9\",\"changes\":[{\"kind\":\"team.disband\",\"team\":\"t-core\"}]}"))
	f.Add(uint8(0), "", "", []byte(`{"by":"p-root","authority":"root","reason":"r","changes":[{"kind":"funding.allocate","period":"2026","to":"product:pay-app","amount":"+5"}]}`))
	f.Add(uint8(0), "", "", []byte(`{"by":"p-root","authority":"root","reason":"r","changes":[{"kind":"funding.allocate","period":"2026","to":"product:pay-app","amount":"5.000"}]}`))
	f.Add(uint8(0), "", "", []byte(`{"id":"d-structure","by":"p-root","authority":"root","reason":"again","changes":[{"kind":"team.form","id":"t-core","name":"Core","type":"platform"}]}`))
	f.Add(uint8(0), "", "", []byte(`{"by":"p-root","authority":"root","reason":"r","effective":"2026-03-01","changes":[{"kind":"person.join","id":"p-0002","name":"Bo","team":"t-core","role":"tester"}]}`))
	f.Add(uint8(1), "d-structure", "", []byte(nil))
	f.Add(uint8(2), "p-0001", "", []byte(nil))
	f.Add(uint8(4), "", "as_of=2026-02-01&known_at=9999-12-31T23:59:59Z&limit=1", []byte(nil))
	f.Add(uint8(4), "", "cursor=AAAA&limit=1000", []byte(nil))
	f.Add(uint8(5), "p-0001", "all=true&known_at=1900-01-01", []byte(nil))
	f.Add(uint8(7), "", "by=p-root&kind=person.move&from=2026-01-01&to=2027-01-01&axis=effective&before=5&limit=2", []byte(nil))
	f.Add(uint8(9), "", "account=product:pay-app&as_of=2026-06-01", []byte(nil))
	f.Add(uint8(9), "", "account=budget:2026&cursor=x", []byte(nil))
	f.Add(uint8(10), "", "from=9999-Q4", []byte(nil))
	f.Add(uint8(10), "", "from=2026-Q1&to=2035-Q4&known_at=2026-01-01", []byte(nil))
	client := e.srv.Client()
	f.Fuzz(func(t *testing.T, route uint8, segment, query string, body []byte) {
		rt := fuzzRoutes[int(route)%len(fuzzRoutes)]
		// Escaped, so that every generated segment and query reaches the
		// API as generated rather than being refused by the client.
		path := strings.ReplaceAll(rt.path, "{}", url.PathEscape(segment))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, rt.method, e.srv.URL+path, bytes.NewReader(body))
		if err != nil {
			return // not a request a client can send
		}
		req.URL.RawQuery = encodeQuery(query)
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if ctx.Err() != nil {
			t.Fatalf("%s %q?%q with %q: no answer in 30s", rt.method, path, query, body)
		}
		if err != nil {
			return // refused by the client or the HTTP server before the API
		}
		defer res.Body.Close()
		answer, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
		if err != nil {
			t.Fatalf("%s %s?%s: read answer: %v", rt.method, path, query, err)
		}
		// Whatever was generated, the answer is one the document declares.
		checkAnswer(t, rt.method, req.URL.EscapedPath(), response{status: res.StatusCode, header: res.Header, body: answer})
		if res.StatusCode >= 500 && res.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("%s %q?%q with %q: %d %s", rt.method, path, query, body, res.StatusCode, answer)
		}
		if res.Header.Get("Content-Type") == "application/problem+json" {
			if bytes.Count(bytes.TrimSpace(answer), []byte("\n")) > 0 || !utf8.Valid(answer) {
				t.Fatalf("%s %q?%q: problem is not one line of UTF-8: %q", rt.method, path, query, answer)
			}
		}
		low := strings.ToLower(string(answer))
		for _, engine := range []string{"nats:", "nats server", "sqlstate", "pgx", "jetstream"} {
			if strings.Contains(low, engine) {
				t.Fatalf("%s %q?%q: the answer carries the engine's words (%s): %s", rt.method, path, query, engine, answer)
			}
		}
	})
}

// encodeQuery reads query as name=value pairs separated by '&', taken
// literally, and encodes them: the API receives exactly the generated
// names and values, whatever bytes they hold.
func encodeQuery(query string) string {
	var b strings.Builder
	for i, pair := range strings.Split(query, "&") {
		if i > 0 {
			b.WriteByte('&')
		}
		name, value, hasValue := strings.Cut(pair, "=")
		b.WriteString(url.QueryEscape(name))
		if hasValue {
			b.WriteByte('=')
			b.WriteString(url.QueryEscape(value))
		}
	}
	return b.String()
}
