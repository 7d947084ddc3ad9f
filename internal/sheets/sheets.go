// Package sheets maps spreadsheets (CSV with a header row) of the
// organisation's current structure onto decisions in the public JSON
// format: value streams, teams, people and products, one decision per row.
package sheets

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"path/filepath"
	"slices"
	"strings"
)

// A sheet is one kind of spreadsheet import understands: its columns and
// how a row becomes the changes of one decision.
type sheet struct {
	required, optional []string
	changes            func(row map[string]string) []map[string]any
}

// MaxRows bounds one imported file.
const MaxRows = 100_000

var sheets = map[string]sheet{
	"valuestreams": {
		required: []string{"id", "name"},
		changes: func(r map[string]string) []map[string]any {
			return []map[string]any{{"kind": "valuestream.define", "id": r["id"], "name": r["name"]}}
		},
	},
	"teams": {
		required: []string{"id", "name", "type"},
		changes: func(r map[string]string) []map[string]any {
			return []map[string]any{{"kind": "team.form", "id": r["id"], "name": r["name"], "type": r["type"]}}
		},
	},
	"people": {
		required: []string{"id", "name", "team"},
		changes: func(r map[string]string) []map[string]any {
			return []map[string]any{{"kind": "person.join", "id": r["id"], "name": r["name"], "team": r["team"]}}
		},
	},
	"products": {
		required: []string{"id", "name", "valuestream", "owner"},
		optional: []string{"teams"},
		changes: func(r map[string]string) []map[string]any {
			cs := []map[string]any{{"kind": "product.launch", "id": r["id"], "name": r["name"], "valuestream": r["valuestream"], "owner": r["owner"]}}
			for _, t := range strings.Split(r["teams"], ";") {
				if t = strings.TrimSpace(t); t != "" {
					cs = append(cs, map[string]any{"kind": "team.assign", "team": t, "product": r["id"]})
				}
			}
			return cs
		},
	},
}

// Kinds are the sheets Decisions understands, sorted.
func Kinds() []string {
	var ks []string
	for k := range sheets {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// Row is one decision made of a sheet's row: its public JSON and the line
// of the file it came from.
type Row struct {
	Line     int
	Decision []byte
}

// Meta is what every decision of an import shares.
type Meta struct {
	By, Authority, Reason string
	Effective             string // as given; "" for now
}

// Name is the sheet a file holds: override when given, else the file's
// base name without its extension, lower case.
func Name(path, override string) (string, error) {
	name := override
	if name == "" {
		name = strings.TrimSuffix(strings.ToLower(filepath.Base(path)), strings.ToLower(filepath.Ext(path)))
	}
	if _, ok := sheets[name]; !ok {
		return "", fmt.Errorf("%s: %w %q (want one of %s, or name it with --sheet)", path, ErrUnknownSheet, name, strings.Join(Kinds(), ", "))
	}
	return name, nil
}

// ErrUnknownSheet is returned for a sheet name Decisions does not know.
var ErrUnknownSheet = errors.New("unknown sheet")

// Decisions turns the rows of sheet name, read from in, into decisions,
// one per row, with the id "import-<sheet>-<row id>" so that importing a
// file again records nothing new. A malformed file yields one error and
// stops.
func Decisions(in io.Reader, name string, meta Meta) iter.Seq2[Row, error] {
	sh, ok := sheets[name]
	return func(yield func(Row, error) bool) {
		if !ok {
			yield(Row{}, fmt.Errorf("%w %q", ErrUnknownSheet, name))
			return
		}
		r := csv.NewReader(in)
		r.TrimLeadingSpace = true
		r.ReuseRecord = false
		header, err := r.Read()
		if errors.Is(err, io.EOF) {
			yield(Row{}, errors.New("the file is empty: want a header row"))
			return
		}
		if err != nil {
			yield(Row{}, fmt.Errorf("header: %w", err))
			return
		}
		col := map[string]int{}
		for i, h := range header {
			h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
			if !slices.Contains(sh.required, h) && !slices.Contains(sh.optional, h) {
				yield(Row{}, fmt.Errorf("line 1: unknown column %q for %s (want %s)", h, name, strings.Join(append(slices.Clone(sh.required), sh.optional...), ", ")))
				return
			}
			if _, dup := col[h]; dup {
				yield(Row{}, fmt.Errorf("line 1: column %q appears twice", h))
				return
			}
			col[h] = i
		}
		for _, req := range sh.required {
			if _, ok := col[req]; !ok {
				yield(Row{}, fmt.Errorf("line 1: %s needs a column %q", name, req))
				return
			}
		}
		for rows := 0; ; rows++ {
			rec, err := r.Read()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				// A *csv.ParseError names its line itself; FieldPos would
				// panic, as there is no record to point into.
				yield(Row{}, err)
				return
			}
			line, _ := r.FieldPos(0)
			if rows == MaxRows {
				yield(Row{}, fmt.Errorf("line %d: more than %d rows in one file", line, MaxRows))
				return
			}
			row := map[string]string{}
			for name, i := range col {
				row[name] = strings.TrimSpace(rec[i])
			}
			d := map[string]any{"id": "import-" + name + "-" + row["id"], "by": meta.By, "authority": meta.Authority,
				"reason": meta.Reason, "changes": sh.changes(row)}
			if meta.Effective != "" {
				d["effective"] = meta.Effective
			}
			body, err := json.Marshal(d)
			if err != nil {
				yield(Row{}, err)
				return
			}
			if !yield(Row{Line: line, Decision: body}, nil) {
				return
			}
		}
	}
}
