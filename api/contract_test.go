package api_test

import (
	"bytes"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	pathpkg "path"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"koers/api"
)

// The contract: every answer any test of this package receives through
// env.do (all of them but the fuzzer's) is held to api/openapi.json, the
// API's one source of truth:
//
//   - the request's path is a documented path, or the answer is the 404
//     of no route;
//   - the method is documented for the path (HEAD for a documented GET),
//     or the answer is a 405 that every operation of the path declares;
//   - the operation declares the status it answered;
//   - the body validates against the schema the operation declares for
//     that status and media type (JSON Schema 2020-12, `required`
//     enforced, formats asserted);
//   - no answer names a Go type.
//
// A failure says what to add where in api/openapi.json.

// contractURL names the document in the validator's schema registry.
const contractURL = "koers:api/openapi.json"

// contract is the OpenAPI document the answers are held to.
type contract struct {
	doc      map[string]any
	compiler *jsonschema.Compiler

	mu      sync.Mutex
	schemas map[string]*jsonschema.Schema // by JSON pointer
}

var loadContract = sync.OnceValues(func() (*contract, error) {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(api.OpenAPI()))
	if err != nil {
		return nil, fmt.Errorf("api/openapi.json: %w", err)
	}
	doc, ok := inst.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("api/openapi.json: not a JSON object")
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(contractURL, doc); err != nil {
		return nil, fmt.Errorf("api/openapi.json as a schema resource: %w", err)
	}
	return &contract{doc: doc, compiler: c, schemas: map[string]*jsonschema.Schema{}}, nil
})

func theContract(tb testing.TB) *contract {
	tb.Helper()
	c, err := loadContract()
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// problemComponent is the response component each problem status refers
// to, for the failure messages.
var problemComponent = map[int]string{
	400: "BadRequest", 401: "Unauthenticated", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
	409: "Conflict", 412: "StaleVersion", 413: "TooLarge", 415: "UnsupportedMediaType", 422: "Unprocessable",
	503: "Unavailable",
}

func suggestion(status int) string {
	if name, ok := problemComponent[status]; ok {
		return fmt.Sprintf(`"%d": {"$ref": "#/components/responses/%s"}`, status, name)
	}
	return fmt.Sprintf(`"%d": {"description": "...", "content": {...}}`, status)
}

// pointer escapes one JSON pointer token (RFC 6901).
func pointer(token string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(token)
}

// match finds the documented path template of a request path: literal
// segments match themselves, {param} any one segment but "", "." and ".."; of several,
// the one with the most literal segments wins.
func (c *contract) match(path string) (template string, ops map[string]any) {
	paths, _ := c.doc["paths"].(map[string]any)
	got := strings.Split(path, "/")
	best := -1
	for tmpl, v := range paths {
		want := strings.Split(tmpl, "/")
		if len(want) != len(got) {
			continue
		}
		literal, ok := 0, true
		for i := range want {
			switch {
			case strings.HasPrefix(want[i], "{") && strings.HasSuffix(want[i], "}"):
				ok = ok && got[i] != "" && got[i] != "." && got[i] != ".." // such paths name no resource
			case want[i] == got[i]:
				literal++
			default:
				ok = false
			}
		}
		if ok && literal > best {
			best, template = literal, tmpl
			ops, _ = v.(map[string]any)
		}
	}
	return template, ops
}

// resolve follows a local $ref ("#/components/responses/X"), returning the
// object and its pointer.
func (c *contract) resolve(obj map[string]any, ptr string) (map[string]any, string) {
	for range 8 { // a bound: refs do not chain deeper in this document
		ref, ok := obj["$ref"].(string)
		if !ok || !strings.HasPrefix(ref, "#/") {
			return obj, ptr
		}
		var cur any = c.doc
		for _, tok := range strings.Split(ref[2:], "/") {
			tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
			m, _ := cur.(map[string]any)
			cur = m[tok]
		}
		next, ok := cur.(map[string]any)
		if !ok {
			return nil, ref[1:]
		}
		obj, ptr = next, ref[1:]
	}
	return obj, ptr
}

func (c *contract) schema(ptr string) (*jsonschema.Schema, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.schemas[ptr]; ok {
		return s, nil
	}
	s, err := c.compiler.Compile(contractURL + "#" + ptr)
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", ptr, err)
	}
	c.schemas[ptr] = s
	return s, nil
}

// goTypeName finds a Go package-qualified name in an answer.
// (what a client sent and the answer quotes back, such as a kind
// "funding.X", is no Go type).
var goTypeName = regexp.MustCompile(`\b(domain|ledger|projections|eventstore|api|feed|json|strconv|time|http|url|reflect)\.[A-Za-z_]+\b|\bGo (value|struct field|type)\b`)

// checkAnswer holds one answer to the contract; it reports with tb.Errorf
// and returns the operation ("GET /v1/org") it was held to, "" for none.
func checkAnswer(tb testing.TB, method, path string, r response) string {
	tb.Helper()
	c := theContract(tb)
	where := fmt.Sprintf("%s %s answered %d", method, path, r.status)
	if m := goTypeName.Find(r.body); m != nil && r.header.Get("Content-Type") == "application/problem+json" {
		tb.Errorf("%s naming a Go type (%s), where the answer should be in the API's words: %.300s", where, m, r.body)
	}
	template, ops := c.match(path)
	if p, err := url.PathUnescape(path); err != nil || (p != "/" && pathpkg.Clean(p) != strings.TrimSuffix(p, "/")) {
		template = "" // the mux answers a path it would clean as no route
	}
	if template == "" {
		if r.status != http.StatusNotFound {
			tb.Errorf("%s, but api/openapi.json has no path matching %s: add it under \"paths\" with its operations", where, path)
			return ""
		}
		c.validate(tb, where, r, false, "#/components/responses/NotFound")
		return ""
	}
	op, _ := ops[strings.ToLower(method)].(map[string]any)
	head := false
	if op == nil && method == http.MethodHead {
		op, _ = ops["get"].(map[string]any)
		head = op != nil
	}
	if op == nil {
		if r.status != http.StatusMethodNotAllowed {
			tb.Errorf("%s: api/openapi.json does not declare %s for %s; declare the operation under paths[%q].%s, or answer 405",
				where, method, template, template, strings.ToLower(method))
			return ""
		}
		if r.header.Get("Allow") == "" {
			tb.Errorf("%s without an Allow header", where)
		}
		var methods []string
		for m := range ops {
			methods = append(methods, m)
		}
		sort.Strings(methods)
		for _, m := range methods {
			if o, ok := ops[m].(map[string]any); ok {
				if resp, _ := o["responses"].(map[string]any); resp["405"] == nil {
					tb.Errorf("%s: add %s to paths[%q].%s.responses (a method the path does not serve)", where, suggestion(405), template, m)
				}
			}
		}
		c.validate(tb, where, r, false, "#/components/responses/MethodNotAllowed")
		return ""
	}
	opName := strings.ToUpper(method) + " " + template
	if head {
		opName = "GET " + template
	}
	responses, _ := op["responses"].(map[string]any)
	if _, ok := responses[fmt.Sprint(r.status)].(map[string]any); !ok {
		tb.Errorf("%s, which api/openapi.json does not declare: add %s to paths[%q].%s.responses (body: %.300s)",
			where, suggestion(r.status), template, strings.ToLower(strings.Fields(opName)[0]), r.body)
		return opName
	}
	c.validate(tb, where, r, head, "/paths/"+pointer(template)+"/"+strings.ToLower(strings.Fields(opName)[0])+"/responses/"+fmt.Sprint(r.status))
	return opName
}

// validate holds an answer to the response object at ptr (a pointer into
// the document, or a "#/components/responses/..." ref).
func (c *contract) validate(tb testing.TB, where string, r response, head bool, ptr string) {
	tb.Helper()
	var obj any = c.doc
	for _, tok := range strings.Split(strings.TrimPrefix(strings.TrimPrefix(ptr, "#"), "/"), "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		m, _ := obj.(map[string]any)
		obj = m[tok]
	}
	resp, ok := obj.(map[string]any)
	if !ok {
		tb.Errorf("%s: api/openapi.json has no response object at %s", where, ptr)
		return
	}
	resp, ptr = c.resolve(resp, strings.TrimPrefix(ptr, "#"))
	if resp == nil {
		tb.Errorf("%s: api/openapi.json: a $ref to nothing at %s", where, ptr)
		return
	}
	headers, _ := resp["headers"].(map[string]any)
	for name, h := range headers {
		if hm, _ := h.(map[string]any); hm["required"] == true && r.header.Get(name) == "" {
			tb.Errorf("%s without the %s header the document declares required", where, name)
		}
	}
	content, _ := resp["content"].(map[string]any)
	if head || len(content) == 0 {
		if len(r.body) != 0 {
			tb.Errorf("%s with a body, where the document declares none (or the request was HEAD): %.300s", where, r.body)
		}
		return
	}
	mt, _, err := mime.ParseMediaType(r.header.Get("Content-Type"))
	if err != nil {
		tb.Errorf("%s with Content-Type %q: %v", where, r.header.Get("Content-Type"), err)
		return
	}
	media, ok := content[mt].(map[string]any)
	if !ok {
		var declared []string
		for k := range content {
			declared = append(declared, k)
		}
		sort.Strings(declared)
		tb.Errorf("%s with Content-Type %s; the document declares %v at %s.content", where, mt, declared, ptr)
		return
	}
	if !strings.HasSuffix(mt, "json") {
		return // Prometheus' text: its own tests hold it
	}
	if _, ok := media["schema"]; !ok {
		tb.Errorf("%s: no schema at %s.content[%q]", where, ptr, mt)
		return
	}
	sch, err := c.schema(ptr + "/content/" + pointer(mt) + "/schema")
	if err != nil {
		tb.Errorf("%s: %v", where, err)
		return
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.body))
	if err != nil {
		tb.Errorf("%s with a body that is not JSON: %v: %.300s", where, err, r.body)
		return
	}
	if err := sch.Validate(inst); err != nil {
		tb.Errorf("%s with a body that does not match its schema (%s.content[%q].schema): %v\nbody: %.2000s", where, ptr, mt, err, r.body)
	}
}

// errorsOf records what a check reports instead of failing the test.
type errorsOf struct {
	testing.TB
	got []string
}

func (e *errorsOf) Errorf(format string, a ...any) { e.got = append(e.got, fmt.Sprintf(format, a...)) }
func (e *errorsOf) Helper()                        {}

// TestContractCatchesWhatItShould: the checker itself refuses a missing
// required member, an undeclared status, a wrong problem type, an
// undeclared path and a Go type name.
func TestContractCatchesWhatItShould(t *testing.T) {
	problem := func(status int, typ string) response {
		return response{status: status, header: http.Header{"Content-Type": {"application/problem+json"}},
			body: []byte(fmt.Sprintf(`{"type":"urn:koers:problem:%s","title":"x","status":%d,"detail":"x"}`, typ, status))}
	}
	jsonHeader := http.Header{"Content-Type": {"application/json"}}
	for _, tc := range []struct {
		name, method, path string
		r                  response
		want               string
	}{
		{"a required member missing", "GET", "/v1/org", response{status: 200, header: jsonHeader, body: []byte(`{"as_of":"2026-01-01T00:00:00Z"}`)}, "missing propert"},
		{"a date-time that is none", "GET", "/v1/decisions/d-1", response{status: 200, header: jsonHeader, body: []byte(`{"id":"d-1","by":"p","authority":"root","reason":"r","refs":[],"effective":"yesterday","recorded_at":"2026-01-01T00:00:00Z","first_sequence":1,"sequence":1,"changes":[],"effects":[],"authority_chain":[],"approvers":[]}`)}, "date-time"},
		{"null for a list", "GET", "/v1/proposals", response{status: 200, header: jsonHeader, body: []byte(`{"proposals":null}`)}, "want array"},
		{"an undeclared status", "GET", "/v1/org", problem(409, "conflict"), `add "409": {"$ref": "#/components/responses/Conflict"} to paths["/v1/org"].get.responses`},
		{"a problem type of another status", "POST", "/v1/decisions", problem(409, "invalid"), "does not match its schema"},
		{"an undeclared path", "GET", "/v1/kpis", response{status: 200, header: jsonHeader, body: []byte(`{}`)}, `no path matching /v1/kpis`},
		{"a Go type name", "POST", "/v1/decisions", response{status: 422, header: http.Header{"Content-Type": {"application/problem+json"}},
			body: []byte(`{"type":"urn:koers:problem:invalid","title":"x","status":422,"detail":"want domain.rawDecision, got array"}`)}, "naming a Go type"},
		{"a 405 without Allow", "DELETE", "/v1/org", problem(405, "method-not-allowed"), "without an Allow header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &errorsOf{TB: t}
			checkAnswer(rec, tc.method, tc.path, tc.r)
			if !strings.Contains(strings.Join(rec.got, "\n"), tc.want) {
				t.Fatalf("reported %q, want it to say %q", rec.got, tc.want)
			}
		})
	}
}

// TestContractExamples: every request body and every 2xx answer of the
// document has an example, and every example validates against the schema
// beside it, as an answer does.
func TestContractExamples(t *testing.T) {
	c := theContract(t)
	paths, _ := c.doc["paths"].(map[string]any)
	check := func(where, ptr string, media map[string]any) {
		ex, ok := media["example"]
		if !ok {
			return
		}
		if _, ok := media["schema"]; !ok {
			t.Errorf("%s: an example without a schema", where)
			return
		}
		sch, err := c.schema(ptr + "/schema")
		if err != nil {
			t.Errorf("%s: %v", where, err)
			return
		}
		if err := sch.Validate(ex); err != nil {
			t.Errorf("%s: the example does not match its schema: %v", where, err)
		}
	}
	for path, v := range paths {
		ops, _ := v.(map[string]any)
		for method, o := range ops {
			op, ok := o.(map[string]any)
			if !ok {
				continue
			}
			base := "/paths/" + pointer(path) + "/" + method
			name := strings.ToUpper(method) + " " + path
			if body, ok := op["requestBody"].(map[string]any); ok {
				content, _ := body["content"].(map[string]any)
				for mt, m := range content {
					media, _ := m.(map[string]any)
					if _, ok := media["example"]; !ok {
						t.Errorf("%s: add an \"example\" to paths[%q].%s.requestBody.content[%q]", name, path, method, mt)
					}
					check(name+" request", base+"/requestBody/content/"+pointer(mt), media)
				}
			}
			responses, _ := op["responses"].(map[string]any)
			for status, r := range responses {
				resp, rptr := c.resolve(r.(map[string]any), base+"/responses/"+status)
				content, _ := resp["content"].(map[string]any)
				for mt, m := range content {
					media, _ := m.(map[string]any)
					if _, ok := media["example"]; !ok && strings.HasPrefix(status, "2") {
						t.Errorf("%s: add an \"example\" to paths[%q].%s.responses[%q].content[%q]", name, path, method, status, mt)
					}
					if strings.HasSuffix(mt, "json") {
						check(fmt.Sprintf("%s %s", name, status), rptr+"/content/"+pointer(mt), media)
					}
				}
			}
		}
	}
}
