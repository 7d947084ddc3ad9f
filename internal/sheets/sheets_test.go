package sheets

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

var meta = Meta{By: "p-root", Authority: "root", Reason: "bootstrap", Effective: "2026-01-01"}

func collect(t *testing.T, name, csv string) ([]map[string]any, error) {
	t.Helper()
	var out []map[string]any
	for row, err := range Decisions(strings.NewReader(csv), name, meta) {
		if err != nil {
			return out, err
		}
		var d map[string]any
		if err := json.Unmarshal(row.Decision, &d); err != nil {
			t.Fatalf("line %d: not JSON: %v", row.Line, err)
		}
		d["line"] = row.Line
		out = append(out, d)
	}
	return out, nil
}

func TestEachRowBecomesOneIdempotentDecision(t *testing.T) {
	got, err := collect(t, "products", "\ufeffName, id ,valuestream,owner,teams\nPay app,pay-app,payments,p-ada,t-core; t-web\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("%d decisions, want 1", len(got))
	}
	d := got[0]
	if d["id"] != "import-products-pay-app" || d["by"] != "p-root" || d["effective"] != "2026-01-01" || d["line"] != 2 {
		t.Fatalf("decision %v", d)
	}
	changes := d["changes"].([]any)
	if len(changes) != 3 || changes[0].(map[string]any)["owner"] != "p-ada" || changes[2].(map[string]any)["team"] != "t-web" {
		t.Fatalf("changes %v: want the launch and one assignment per team", changes)
	}
}

func TestMalformedSheetsAreRefusedWithTheLine(t *testing.T) {
	for _, tc := range []struct {
		name, sheet, csv, want string
	}{
		{"empty file", "teams", "", "empty"},
		{"unknown column", "teams", "id,name,type,colour\n", `unknown column "colour"`},
		{"column twice", "teams", "id,name,type,id\n", `"id" appears twice`},
		{"required column missing", "people", "id,name\n", `needs a column "team"`},
		{"ragged row", "teams", "id,name,type\nt-1,One\n", "line 2"},
		{"unknown sheet", "budgets", "id\n", "unknown sheet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := collect(t, tc.sheet, tc.csv)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestTheSheetIsNamedByTheFileUnlessGiven(t *testing.T) {
	if n, err := Name("/tmp/People.CSV", ""); err != nil || n != "people" {
		t.Fatalf("People.CSV: %q %v", n, err)
	}
	if n, err := Name("hr-export.csv", "people"); err != nil || n != "people" {
		t.Fatalf("--sheet people: %q %v", n, err)
	}
	if _, err := Name("hr-export.csv", ""); !errors.Is(err, ErrUnknownSheet) {
		t.Fatalf("hr-export.csv: %v, want ErrUnknownSheet", err)
	}
}

// FuzzDecisions: any file yields decisions that are JSON objects, or one
// error, and never panics.
func FuzzDecisions(f *testing.F) {
	f.Add("id,name,type\nt-1,One,platform\n")
	f.Add("id,name,valuestream,owner,teams\np,P,v,o,\"a;b\"\n")
	f.Add("\"unterminated\n")
	f.Fuzz(func(t *testing.T, csv string) {
		for _, sheet := range Kinds() {
			errs := 0
			for row, err := range Decisions(strings.NewReader(csv), sheet, meta) {
				if err != nil {
					errs++
					continue
				}
				if errs > 0 {
					t.Fatal("a decision after an error")
				}
				var d map[string]any
				if err := json.Unmarshal(row.Decision, &d); err != nil {
					t.Fatalf("line %d: %v", row.Line, err)
				}
			}
			if errs > 1 {
				t.Fatalf("%d errors, want at most one", errs)
			}
		}
	})
}

func TestTheDelimiterIsDetected(t *testing.T) {
	for name, csv := range map[string]string{
		"comma":     "id,name,team\np-1,Ada Jansen,t-core\n",
		"semicolon": "id;name;team\np-1;Ada Jansen;t-core\n",
		"tab":       "id\tname\tteam\np-1\tAda Jansen\tt-core\n",
		"quoted":    "\"id\";\"name, full\";team\np-1;\"Jansen, Ada\";t-core\n",
	} {
		t.Run(name, func(t *testing.T) {
			if name == "quoted" {
				csv = strings.Replace(csv, `"name, full"`, "name", 1)
			}
			got, err := collect(t, "people", csv)
			if err != nil || len(got) != 1 {
				t.Fatalf("%d decisions, %v", len(got), err)
			}
			ch := got[0]["changes"].([]any)[0].(map[string]any)
			if ch["id"] != "p-1" || ch["team"] != "t-core" || !strings.Contains(ch["name"].(string), "Ada") {
				t.Fatalf("change %v", ch)
			}
		})
	}
}

func TestABadCellIsNamedByLineColumnAndValue(t *testing.T) {
	for _, c := range []struct{ csv, want string }{
		{"id;name;team\np-1;Ada;t-core\nP-2;Bob;t-core\n", `line 3, column id, value "P-2"`},
		{"id,name,team\np-1,,t-core\n", "line 2, column name: empty"},
		{"id,name,team\np-1,Ada,t core\n", `line 2, column team, value "t core"`},
	} {
		_, err := collect(t, "people", c.csv)
		var cell *CellError
		if !errors.As(err, &cell) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want a CellError naming %s", c.csv, err, c.want)
		}
	}
}
