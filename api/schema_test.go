package api

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"koers/domain"
	"koers/ledger"
	"koers/projections"
)

// answerTypes are the Go types each answer schema of openapi.json is
// written from. The document is the source of truth of the contract; this
// test keeps its properties and `required` lists true to what encoding/json
// makes of these types (a field without omitempty is always present, so
// required), under whatever edits either side gets.
var answerTypes = map[string]any{
	"Problem":              problem{},
	"DecisionResult":       decisionResult{},
	"AggregateVersion":     aggregateVersion{},
	"LoggedDecision":       decisionLogOut{},
	"AuditPage":            auditOut{},
	"Organisation":         orgOutT{},
	"History":              historyOut{},
	"Funding":              fundingOut{},
	"TransitionReport":     transitionReportOut{},
	"ProposalState":        ledger.Proposal{},
	"ProposalActionResult": actionResult{},
	"Proposal":             projections.ProposalView{},
	"ProposalPage":         projections.ProposalPage{},
	"Mandates":             mandatesOut{},
	"ChainLink":            domain.ChainLink{},
	"Person":               personOut{},
	"Team":                 teamOut{},
	"Product":              productOut{},
	"Health":               health{},
}

// TestSchemasMatchTheGoTypes: every answer schema has exactly the Go
// type's JSON members, and requires exactly those always present.
func TestSchemasMatchTheGoTypes(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	resolve := func(s map[string]any) map[string]any {
		for range 8 {
			ref, ok := s["$ref"].(string)
			if !ok {
				return s
			}
			next, ok := schemas[strings.TrimPrefix(ref, "#/components/schemas/")].(map[string]any)
			if !ok {
				t.Fatalf("$ref %s: no such schema", ref)
			}
			s = next
		}
		return s
	}
	// Every schema an operation answers with is held to its Go type.
	paths, _ := doc["paths"].(map[string]any)
	for path, v := range paths {
		ops, _ := v.(map[string]any)
		for method, o := range ops {
			op, _ := o.(map[string]any)
			responses, _ := op["responses"].(map[string]any)
			for status, r := range responses {
				resp, _ := r.(map[string]any)
				content, _ := resp["content"].(map[string]any)
				for mt, m := range content {
					media, _ := m.(map[string]any)
					sch, _ := media["schema"].(map[string]any)
					ref, _ := sch["$ref"].(string)
					name := strings.TrimPrefix(ref, "#/components/schemas/")
					if ref != "" && strings.HasPrefix(status, "2") && answerTypes[name] == nil {
						t.Errorf("%s %s answers %s %s with components.schemas.%s: add it and its Go type to answerTypes in api/schema_test.go",
							strings.ToUpper(method), path, status, mt, name)
					}
				}
			}
		}
	}
	names := make([]string, 0, len(answerTypes))
	for name := range answerTypes {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s, ok := schemas[name].(map[string]any)
		if !ok {
			t.Errorf("components.schemas.%s: missing (it is the answer of %T)", name, answerTypes[name])
			continue
		}
		checkSchema(t, "components.schemas."+name, s, reflect.TypeOf(answerTypes[name]), resolve)
	}
}

var rawJSON = reflect.TypeFor[json.RawMessage]()

func checkSchema(t *testing.T, where string, s map[string]any, typ reflect.Type, resolve func(map[string]any) map[string]any) {
	t.Helper()
	s = resolve(s)
	props, _ := s["properties"].(map[string]any)
	var required []string
	for _, r := range s["required"].([]any) {
		required = append(required, r.(string))
	}
	if s["required"] == nil {
		required = nil
	}
	var wantRequired []string
	seen := map[string]bool{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		seen[name] = true
		omit := strings.Contains(","+opts+",", ",omitempty,")
		if !omit {
			wantRequired = append(wantRequired, name)
		}
		p, ok := props[name].(map[string]any)
		if !ok {
			t.Errorf("%s.properties: add %q (%s.%s)", where, name, typ, f.Name)
			continue
		}
		ft, path := f.Type, where+".properties."+name
		for ft.Kind() == reflect.Pointer || ((ft.Kind() == reflect.Slice || ft.Kind() == reflect.Map) && ft != rawJSON) {
			ft = ft.Elem()
			if ps := resolve(p); ps["type"] == "array" {
				p, _ = ps["items"].(map[string]any)
				path += ".items"
			}
		}
		if ft.Kind() == reflect.Struct && ft != reflect.TypeFor[time.Time]() && p != nil {
			checkSchema(t, path, p, ft, resolve)
		}
	}
	for name := range props {
		if !seen[name] {
			t.Errorf("%s.properties.%s: %s has no such JSON member; remove it or add the field", where, name, typ)
		}
	}
	sort.Strings(required)
	sort.Strings(wantRequired)
	if !slices.Equal(required, wantRequired) {
		t.Errorf("%s.required: %q, want %q (the members of %s without omitempty)", where, required, wantRequired, typ)
	}
}

// TestProblemTypesAreDeclared: every problem type the package's code
// answers is in the document's enum, so that a client can switch on it.
func TestProblemTypesAreDeclared(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas struct {
				Problem struct {
					Properties struct {
						Type struct {
							Enum []string `json:"enum"`
						} `json:"type"`
					} `json:"properties"`
				} `json:"Problem"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	typ := regexp.MustCompile(`problem\{Type: "([a-z-]+)"`)
	found := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range typ.FindAllSubmatch(src, -1) {
			found++
			if !slices.Contains(doc.Components.Schemas.Problem.Properties.Type.Enum, problemTypePrefix+string(m[1])) {
				t.Errorf(`%s answers problem type %s: add "%s%s" to components.schemas.Problem.properties.type.enum and to the response of its status in components.responses`,
					f, m[1], problemTypePrefix, m[1])
			}
		}
	}
	if found < 15 {
		t.Fatalf("found %d problem types in the source; the pattern no longer matches how problems are written", found)
	}
}
