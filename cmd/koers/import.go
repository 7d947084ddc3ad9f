package main

import (
	"errors"
	"fmt"
	"iter"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"koers/internal/sheets"
)

func importCmd(s *settings) *cobra.Command {
	var by, authority, reason, effective, kind, keyFile string
	var keepGoing, asJSON bool
	cmd := &cobra.Command{
		Use:   "import FILE.csv... --by ACTOR --authority MANDATE --reason TEXT",
		Short: "Bootstrap the organisation's structure, or record KPI measurements, from spreadsheets (CSV)",
		Long: `Record the organisation as it stands from CSV files with a header row, one
decision per row (id "import-<sheet>-<row id>", so importing a file again records
nothing new). The sheet is named by --sheet or by the file name (people.csv,
teams.csv, products.csv, valuestreams.csv). Columns, in any order:

  valuestreams.csv  id,name
  teams.csv         id,name,type        (stream-aligned, platform, enabling, complicated-subsystem)
  people.csv        id,name,team
  products.csv      id,name,valuestream,owner[,teams]   (teams separated by ;)
  kpis.csv          subject,kpi,date,value[,note][,unit]
                    (subject product:<id> or valuestream:<id>; date the day measured;
                     value a decimal, its unit after it or in unit: "12.5 days", "95%")

Import value streams and teams before people and products, which refer to them.
A kpis.csv row records one measurement (kpi.record) effective on its date, with
an id of its subject, KPI, date and value: importing the file again records
nothing new. A refused row stops the import with its line number (and, for a
bad value, unknown KPI or wrong unit, its column), nothing after it recorded,
unless --keep-going. The delimiter (comma, semicolon or tab) is detected from
the header row. SIGINT or SIGTERM stops it after the decision in flight (exit
130): running the same command again resumes.`,
		Example: `  koers import valuestreams.csv teams.csv people.csv products.csv \
    --by p-0041 --authority root --reason "bootstrap from the HR sheet of 2026-07"
  koers import hr-export.csv --sheet people --by p-0041 --authority root --reason bootstrap
  koers import kpis.csv --by p-0041 --authority root --reason "BI export of 2026-07"`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkSheet(kind); err != nil {
				return err
			}
			return withApp(cmd, s, func(a *app) error {
				bar := newBar(cmd.ErrOrStderr(), -1, "importing", "decisions")
				defer bar.Finish()
				var total applySummary
				sg := newSigner(keyFile)
				for _, path := range args {
					sheetName, err := sheets.Name(path, kind)
					if err != nil {
						return err
					}
					f, err := os.Open(path)
					if err != nil {
						return err
					}
					meta := sheets.Meta{By: by, Authority: authority, Reason: reason, Effective: effective}
					sum, err := submitEach(cmd, a.handler, signed(a.handler, sg, sheetRows(sheets.Decisions(f, sheetName, meta))), keepGoing, bar)
					f.Close()
					total.Applied += sum.Applied
					total.Duplicates += sum.Duplicates
					total.Refused += sum.Refused
					total.Proposed += sum.Proposed
					total.Problems = append(total.Problems, sum.Problems...)
					var intr interruptedError
					if errors.As(err, &intr) {
						intr.done = total.Applied + total.Duplicates + total.Proposed
						return intr
					}
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
	fl.StringVar(&kind, "sheet", "", "the sheet kind of every file: "+strings.Join(sheets.Kinds(), ", "))
	fl.BoolVar(&keepGoing, "keep-going", false, "report a refused row and go on")
	fl.StringVar(&keyFile, "key", "", "the signing key of --by (default: its key in the user's configuration folder, <config>/koers/keys/<actor>.key, when it exists)")
	fl.BoolVar(&asJSON, "json", false, "print the summary as JSON")
	_ = cmd.RegisterFlagCompletionFunc("sheet", fixedCompletions(sheets.Kinds()...))
	_ = cmd.RegisterFlagCompletionFunc("by", completeField(s, "person"))
	_ = cmd.RegisterFlagCompletionFunc("authority", completeField(s, "mandate"))
	for _, r := range []string{"by", "authority", "reason"} {
		_ = cmd.MarkFlagRequired(r)
	}
	return cmd
}

// sheetRows numbers a sheet's decisions for submitEach.
func sheetRows(rows iter.Seq2[sheets.Row, error]) iter.Seq2[numbered, error] {
	return func(yield func(numbered, error) bool) {
		for r, err := range rows {
			if !yield(numbered{line: r.Line, body: r.Decision, problem: r.Problem, explain: r.Explain}, err) {
				return
			}
		}
	}
}
