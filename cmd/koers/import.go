package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// A sheet is one kind of spreadsheet import understands: its columns and
// how a row becomes the changes of one decision.
type sheet struct {
	required, optional []string
	changes            func(row map[string]string) []map[string]any
}

// maxImportRows bounds one imported file.
const maxImportRows = 100_000

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

func sheetKinds() []string {
	var ks []string
	for k := range sheets {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func importCmd(s *settings) *cobra.Command {
	var by, authority, reason, effective, kind string
	var keepGoing, asJSON bool
	cmd := &cobra.Command{
		Use:   "import FILE.csv... --by ACTOR --authority MANDATE --reason TEXT",
		Short: "Bootstrap the organisation's current structure from spreadsheets (CSV)",
		Long: `Record the organisation as it stands from CSV files with a header row, one
decision per row (id "import-<sheet>-<row id>", so importing a file again records
nothing new). The sheet is named by --sheet or by the file name (people.csv,
teams.csv, products.csv, valuestreams.csv). Columns, in any order:

  valuestreams.csv  id,name
  teams.csv         id,name,type        (stream-aligned, platform, enabling, complicated-subsystem)
  people.csv        id,name,team
  products.csv      id,name,valuestream,owner[,teams]   (teams separated by ;)

Import value streams and teams before people and products, which refer to them.
A refused row stops the import with its line number, nothing after it recorded,
unless --keep-going.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withApp(cmd, s, func(a *app) error {
				var total applySummary
				for _, path := range args {
					sheetName := kind
					if sheetName == "" {
						sheetName = strings.TrimSuffix(strings.ToLower(filepath.Base(path)), filepath.Ext(path))
					}
					sh, ok := sheets[sheetName]
					if !ok {
						return fmt.Errorf("%s: unknown sheet %q (want one of %s, or name it with --sheet)", path, sheetName, strings.Join(sheetKinds(), ", "))
					}
					f, err := os.Open(path)
					if err != nil {
						return err
					}
					meta := map[string]string{"by": by, "authority": authority, "reason": reason, "effective": effective}
					sum, err := submitEach(cmd, a.handler, csvDecisions(f, sheetName, sh, meta), keepGoing)
					f.Close()
					total.Applied += sum.Applied
					total.Duplicates += sum.Duplicates
					total.Refused += sum.Refused
					total.Problems = append(total.Problems, sum.Problems...)
					if err != nil {
						return fmt.Errorf("%s: %w", path, err)
					}
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), total)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "imported %d, already recorded %d, refused %d\n", total.Applied, total.Duplicates, total.Refused)
				if total.Refused > 0 {
					return exitError{code: 1, err: fmt.Errorf("%d rows refused", total.Refused)}
				}
				return nil
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&by, "by", "", "the actor recording the structure (required)")
	fl.StringVar(&authority, "authority", "", "the mandate it is recorded under (required)")
	fl.StringVar(&reason, "reason", "", "why (required), e.g. \"bootstrap from the HR sheet of 2026-07\"")
	fl.StringVar(&effective, "effective", "", "since when the structure holds (date or RFC 3339; default now)")
	fl.StringVar(&kind, "sheet", "", "the sheet kind of every file: "+strings.Join(sheetKinds(), ", "))
	fl.BoolVar(&keepGoing, "keep-going", false, "report a refused row and go on")
	fl.BoolVar(&asJSON, "json", false, "print the summary as JSON")
	for _, r := range []string{"by", "authority", "reason"} {
		_ = cmd.MarkFlagRequired(r)
	}
	return cmd
}

// csvDecisions turns the rows of a sheet into decisions.
func csvDecisions(in io.Reader, name string, sh sheet, meta map[string]string) iter.Seq2[numbered, error] {
	return func(yield func(numbered, error) bool) {
		r := csv.NewReader(in)
		r.TrimLeadingSpace = true
		r.ReuseRecord = false
		header, err := r.Read()
		if errors.Is(err, io.EOF) {
			yield(numbered{}, errors.New("the file is empty: want a header row"))
			return
		}
		if err != nil {
			yield(numbered{}, fmt.Errorf("header: %w", err))
			return
		}
		col := map[string]int{}
		for i, h := range header {
			h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
			if !slices.Contains(sh.required, h) && !slices.Contains(sh.optional, h) {
				yield(numbered{}, fmt.Errorf("line 1: unknown column %q for %s (want %s)", h, name, strings.Join(append(slices.Clone(sh.required), sh.optional...), ", ")))
				return
			}
			if _, dup := col[h]; dup {
				yield(numbered{}, fmt.Errorf("line 1: column %q appears twice", h))
				return
			}
			col[h] = i
		}
		for _, req := range sh.required {
			if _, ok := col[req]; !ok {
				yield(numbered{}, fmt.Errorf("line 1: %s needs a column %q", name, req))
				return
			}
		}
		for rows := 0; ; rows++ {
			rec, err := r.Read()
			if errors.Is(err, io.EOF) {
				return
			}
			line, _ := r.FieldPos(0)
			if err != nil {
				yield(numbered{}, fmt.Errorf("line %d: %w", line, err))
				return
			}
			if rows == maxImportRows {
				yield(numbered{}, fmt.Errorf("line %d: more than %d rows in one file", line, maxImportRows))
				return
			}
			row := map[string]string{}
			for name, i := range col {
				row[name] = strings.TrimSpace(rec[i])
			}
			d := map[string]any{"id": "import-" + name + "-" + row["id"], "by": meta["by"], "authority": meta["authority"],
				"reason": meta["reason"], "changes": sh.changes(row)}
			if meta["effective"] != "" {
				d["effective"] = meta["effective"]
			}
			body, err := json.Marshal(d)
			if err != nil {
				yield(numbered{}, err)
				return
			}
			if !yield(numbered{line: line, body: body}, nil) {
				return
			}
		}
	}
}
