// Package sheets maps spreadsheets (CSV with a header row) of the
// organisation's current structure onto decisions in the public JSON
// format: value streams, teams, people and products, one decision per row.
package sheets

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"path/filepath"
	"slices"
	"strings"

	"koers/domain"
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
			// Teams are separated by ; or , (whichever the file's own
			// delimiter is not, or either inside quotes).
			for _, t := range strings.FieldsFunc(r["teams"], func(c rune) bool { return c == ';' || c == ',' }) {
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

// CellError is a value a sheet cannot take, named by its line, column
// and value. It wraps domain.ErrInvalid.
type CellError struct {
	Line   int
	Column string
	Value  string
	Err    error
}

func (e *CellError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("line %d, column %s: %v", e.Line, e.Column, e.Err)
	}
	return fmt.Sprintf("line %d, column %s, value %.60q: %v", e.Line, e.Column, e.Value, e.Err)
}

func (e *CellError) Unwrap() []error { return []error{e.Err, domain.ErrInvalid} }

// idColumns hold ids: checked here, so that a bad one is reported as the
// cell it is in, not through the decision id made from it.
var idColumns = map[string]bool{"id": true, "team": true, "valuestream": true, "owner": true}

func checkRow(sh sheet, row map[string]string, line int, col map[string]int) error {
	for _, name := range sh.required {
		if row[name] == "" {
			return &CellError{Line: line, Column: name, Err: errors.New("empty; the column is required")}
		}
	}
	for name, v := range row {
		if !idColumns[name] || v == "" {
			continue
		}
		if err := domain.ValidID(v); err != nil {
			if lower := strings.ToLower(v); lower != v && domain.ValidID(lower) == nil {
				err = fmt.Errorf("%w (ids are lower case: %s)", err, lower)
			}
			return &CellError{Line: line, Column: name, Value: v, Err: err}
		}
	}
	if teams := row["teams"]; teams != "" {
		for _, t := range strings.FieldsFunc(teams, func(c rune) bool { return c == ';' || c == ',' }) {
			if err := domain.ValidID(strings.TrimSpace(t)); err != nil {
				return &CellError{Line: line, Column: "teams", Value: strings.TrimSpace(t), Err: err}
			}
		}
	}
	return nil
}

// delimiter tells the file's delimiter from its first line: comma,
// semicolon (Excel in locales with a decimal comma) or tab, whichever
// occurs most outside quotes; a comma when none does.
func delimiter(br *bufio.Reader) rune {
	head, _ := br.Peek(64 << 10)
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		head = head[:i]
	}
	counts := map[rune]int{}
	quoted := false
	for _, c := range string(head) {
		switch {
		case c == '"':
			quoted = !quoted
		case !quoted && (c == ',' || c == ';' || c == '\t'):
			counts[c]++
		}
	}
	best := ','
	for _, c := range []rune{';', '\t'} {
		if counts[c] > counts[best] {
			best = c
		}
	}
	return best
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
		br := bufio.NewReader(in)
		r := csv.NewReader(br)
		r.Comma = delimiter(br)
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
				want := append(slices.Clone(sh.required), sh.optional...)
				hint := ""
				if strings.ContainsAny(h, ";,\t") {
					hint = "; is the delimiter one of , ; or tab throughout the header?"
				}
				yield(Row{}, fmt.Errorf("line 1: unknown column %q for %s (want %s)%s", h, name, strings.Join(want, ", "), hint))
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
			if err := checkRow(sh, row, line, col); err != nil {
				yield(Row{}, err)
				return
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
