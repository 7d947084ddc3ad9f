// Package sheets maps spreadsheets (CSV with a header row) onto decisions
// in the public JSON format, one decision per row: the organisation's
// current structure (value streams, teams, people and products) and KPI
// measurements as they arrive from BI and work-tracking tools.
package sheets

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"koers/domain"
)

// A sheet is one kind of spreadsheet import understands: its columns and
// how a row becomes the changes of one decision (changes, with the row's
// id column), or the whole decision (build).
type sheet struct {
	required, optional []string
	changes            func(row map[string]string) []map[string]any
	build              func(row map[string]string, columns map[string]bool) (built, error)
}

// built is what build makes of a row: the decision's id and effective
// time (empty: the import's), its changes, and which column each change
// field came from, so that a refusal can name it.
type built struct {
	id, effective string
	changes       []map[string]any
	columns       map[string]string
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
	"kpis": {
		required: []string{"subject", "kpi", "date", "value"},
		optional: []string{"note", "unit"},
		build:    kpiRow,
	},
}

// kpiValue is a measurement's value with an optional unit after it:
// "12.5", "12.5 days", "95%".
var kpiValue = regexp.MustCompile(`^([-+]?[0-9]+(?:\.[0-9]+)?)\s*(\S.*)?$`)

// kpiRow makes a kpi.record of a kpis.csv row: subject is
// product:<id> or valuestream:<id>, date the day it was measured (the
// decision's effective time), value a decimal with an optional unit after
// it, which must be the KPI's. The id hashes subject, KPI, date and value:
// importing the file again records nothing new, while a corrected value is
// a new measurement.
func kpiRow(r map[string]string, columns map[string]bool) (built, error) {
	ref, err := domain.ParseRef(r["subject"])
	if err != nil || (ref.Kind != domain.KindProduct && ref.Kind != domain.KindValueStream) {
		return built{}, &CellError{Column: "subject", Err: fmt.Errorf("%q: want product:<id> or valuestream:<id>", clip(r["subject"]))}
	}
	if err := domain.ValidID(r["kpi"]); err != nil {
		return built{}, &CellError{Column: "kpi", Err: err}
	}
	date, err := time.Parse(time.DateOnly, r["date"])
	if err != nil {
		if date, err = time.Parse(time.RFC3339, r["date"]); err != nil {
			return built{}, &CellError{Column: "date", Err: fmt.Errorf("%q: want a date like 2026-03-31 or an RFC 3339 time", clip(r["date"]))}
		}
	}
	m := kpiValue.FindStringSubmatch(r["value"])
	if m == nil || strings.ContainsAny(m[2][:min(1, len(m[2]))], ",.0123456789") {
		hint := ""
		if strings.Contains(r["value"], ",") {
			hint = " (decimals after a point, no thousands separators)"
		}
		return built{}, &CellError{Column: "value", Err: fmt.Errorf("%q is not a number%s", clip(r["value"]), hint)}
	}
	unit, unitColumn := strings.TrimSpace(m[2]), "value"
	if u := r["unit"]; u != "" {
		if unit != "" && unit != u {
			return built{}, &CellError{Column: "unit", Err: fmt.Errorf("%q, but the value says %q", clip(u), clip(unit))}
		}
		unit, unitColumn = u, "unit"
	}
	field := "product"
	if ref.Kind == domain.KindValueStream {
		field = "valuestream"
	}
	c := map[string]any{"kind": domain.ChangeKPIRecord, field: ref.ID, "kpi": r["kpi"], "value": m[1]}
	if unit != "" {
		c["unit"] = unit
	}
	if r["note"] != "" {
		c["note"] = r["note"]
	}
	sum := sha256.Sum256([]byte(strings.Join([]string{ref.String(), r["kpi"], r["date"], m[1]}, "\x00")))
	return built{
		id:        "import-kpis-" + date.UTC().Format("20060102") + "-" + hex.EncodeToString(sum[:8]),
		effective: r["date"],
		changes:   []map[string]any{c},
		columns: map[string]string{"product": "subject", "valuestream": "subject", "kpi": "kpi", "value": "value",
			"unit": unitColumn, "note": "note"},
	}, nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
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
// of the file it came from; or, when the row cannot become a decision (a
// value that is not a number, say), Problem, a *CellError naming the
// column.
type Row struct {
	Line     int
	Decision []byte
	Problem  error
	columns  map[string]string
}

// Explain names the column of the row that the ledger's refusal of its
// decision is about, when it can tell (an unknown KPI, a unit that is not
// the KPI's, a subject that does not exist): a *CellError wrapping err.
// Other refusals come back as they are.
func (r Row) Explain(err error) error {
	field := ""
	var fe interface{ Field() string }
	var bad *domain.FieldError
	var nf *domain.NotFoundError
	var in *domain.InactiveError
	switch {
	case errors.As(err, &fe):
		field = fe.Field()
	case errors.As(err, &bad):
		field = bad.Field[strings.LastIndex(bad.Field, ".")+1:]
	case errors.As(err, &nf) && (nf.Ref.Kind == domain.KindProduct || nf.Ref.Kind == domain.KindValueStream),
		errors.As(err, &in) && (in.Ref.Kind == domain.KindProduct || in.Ref.Kind == domain.KindValueStream):
		field = "product"
	}
	if col, ok := r.columns[field]; ok {
		return &CellError{Column: col, Err: err}
	}
	return err
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
// and value (Line 0 in a Row's Problem and Explain, which go with the
// row's line). It wraps domain.ErrInvalid, unless it names the column of
// a refused decision.
type CellError struct {
	Line   int
	Column string
	Value  string
	Err    error
}

func (e *CellError) Error() string {
	at := fmt.Sprintf("line %d, column %s", e.Line, e.Column)
	if e.Line == 0 {
		// A row's Problem or Explain: the caller names the line.
		at = "column " + e.Column
	}
	if e.Value == "" {
		return fmt.Sprintf("%s: %v", at, e.Err)
	}
	return fmt.Sprintf("%s, value %.60q: %v", at, e.Value, e.Err)
}

// Unwrap gives Err and domain.ErrInvalid, or only Err when it is the
// ledger's refusal of a well-formed row (Row.Explain).
func (e *CellError) Unwrap() []error {
	if errors.Is(e.Err, domain.ErrRefused) || errors.Is(e.Err, domain.ErrUnauthorized) {
		return []error{e.Err}
	}
	return []error{e.Err, domain.ErrInvalid}
}

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
			present := map[string]bool{}
			for name, i := range col {
				row[name] = strings.TrimSpace(rec[i])
				present[name] = true
			}
			if err := checkRow(sh, row, line, col); err != nil {
				yield(Row{}, err)
				return
			}
			b := built{id: "import-" + name + "-" + row["id"]}
			if sh.build != nil {
				var err error
				if b, err = sh.build(row, present); err != nil {
					if !yield(Row{Line: line, Problem: err}, nil) {
						return
					}
					continue
				}
			} else {
				b.changes = sh.changes(row)
			}
			d := map[string]any{"id": b.id, "by": meta.By, "authority": meta.Authority,
				"reason": meta.Reason, "changes": b.changes}
			if meta.Effective != "" {
				d["effective"] = meta.Effective
			}
			if b.effective != "" {
				d["effective"] = b.effective
			}
			body, err := json.Marshal(d)
			if err != nil {
				yield(Row{}, err)
				return
			}
			if !yield(Row{Line: line, Decision: body, columns: b.columns}, nil) {
				return
			}
		}
	}
}
