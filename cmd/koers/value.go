package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"koers/api"
	"koers/domain"
	"koers/projections"
)

// subjectFlags are --product and --valuestream: whose KPIs.
func subjectRef(product, vs string) (domain.Ref, error) {
	switch {
	case product != "" && vs != "":
		return domain.Ref{}, fmt.Errorf("--product and --valuestream: give one of them")
	case product != "":
		if err := domain.ValidID(product); err != nil {
			return domain.Ref{}, fmt.Errorf("--product: %w", err)
		}
		return domain.Ref{Kind: domain.KindProduct, ID: product}, nil
	case vs != "":
		if err := domain.ValidID(vs); err != nil {
			return domain.Ref{}, fmt.Errorf("--valuestream: %w", err)
		}
		return domain.Ref{Kind: domain.KindValueStream, ID: vs}, nil
	}
	return domain.Ref{}, nil
}

func kpiCmd(s *settings) *cobra.Command {
	var product, vs, kpi, from, to string
	var tf timeFlags
	var pf pageFlags
	var ff formatFlag
	cmd := &cobra.Command{
		Use:   "kpi [--product P | --valuestream V] [--kpi K] [--from DATE] [--to DATE] [--as-of] [--known-at] [--json | --format csv]",
		Short: "KPI values over time against their targets, of products and value streams",
		Long: `The measurements of KPIs (kpi.record, or koers import kpis.csv) with the KPI's
category, unit and direction, and the target of the measurement's quarter (the
quarter's own target, else the default): ON TARGET says whether the value meets
it in the KPI's direction. --from and --to bound the measurements' dates
(--to exclusive); --as-of and --known-at are the valid and recorded time the
answer is for (default now). Paged like every list.`,
		Example: `  koers kpi --product pay-app
  koers kpi --valuestream payments --kpi lead-time --from 2026-01-01 --to 2026-07-01
  koers kpi --format csv > kpis.csv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			subject, err := subjectRef(product, vs)
			if err != nil {
				return err
			}
			format, err := ff.value()
			if err != nil {
				return err
			}
			f := projections.KPIFilter{Subject: subject, KPI: kpi}
			if kpi != "" {
				if err := domain.ValidID(kpi); err != nil {
					return fmt.Errorf("--kpi: %w", err)
				}
			}
			if f.From, err = parseOptionalTime(from, s.timezone); err != nil {
				return fmt.Errorf("--from: %w", err)
			}
			if f.To, err = parseOptionalTime(to, s.timezone); err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
				return fmt.Errorf("--to %s is not after --from %s", to, from)
			}
			at, err := tf.at(s.timezone)
			if err != nil {
				return err
			}
			page, err := pf.page()
			if err != nil {
				return err
			}
			return withReadModels(cmd, s, func(db *projections.DB) error {
				p, err := db.KPIValues(cmd.Context(), f, at, page)
				if err != nil {
					return flagError(err)
				}
				if format == "json" {
					return printJSON(cmd.OutOrStdout(), api.KPIsAnswer(p))
				}
				sh, err := newShow(cmd.Context(), s, db, nil)
				if err != nil {
					return err
				}
				return printKPIValues(cmd.OutOrStdout(), p, at, format, sh)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&product, "product", "", "the KPIs of this product")
	fl.StringVar(&vs, "valuestream", "", "the KPIs of this value stream")
	fl.StringVar(&kpi, "kpi", "", "only this KPI")
	fl.StringVar(&from, "from", "", "measured on or after this date")
	fl.StringVar(&to, "to", "", "measured before this date")
	tf.add(cmd)
	pf.add(cmd, "values")
	ff.add(cmd)
	return cmd
}

// targetText shows a target with the way that meets it: ≥ 5, ≤ 10.
func targetText(target, direction string) string {
	if target == "" {
		return "-"
	}
	if direction == domain.DirectionLower {
		return "≤ " + target
	}
	return "≥ " + target
}

func yesNo(b *bool) string {
	switch {
	case b == nil:
		return "-"
	case *b:
		return "yes"
	}
	return "no"
}

func printKPIValues(w io.Writer, p projections.KPIPage, at projections.At, format string, sh show) error {
	switch format {
	case "csv":
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"kind", "id", "kpi", "category", "unit", "direction", "date", "quarter", "value", "target", "on_target",
			"note", "decision", "sequence"})
		for _, v := range p.Values {
			on := ""
			if v.OnTarget != nil {
				on = strconv.FormatBool(*v.OnTarget)
			}
			_ = cw.Write([]string{string(v.Kind), v.ID, v.KPI, v.Category, v.Unit, v.Direction, sh.day(v.Effective), v.Quarter, v.Value,
				v.Target, on, v.Note, v.Decision, strconv.FormatUint(v.Sequence, 10)})
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return err
		}
		if p.Next != "" {
			// On standard output a CSV stays a CSV; the cursor goes where
			// a reader of the table would look for it, after the rows.
			fmt.Fprintf(w, "# more: --cursor %s\n", p.Next)
		}
		return nil
	}
	fmt.Fprintf(w, "KPI values as of %s, as known at %s (through sequence %d)\n\n", sh.whenOrNow(at.AsOf), sh.whenOrNow(at.KnownAt), p.Sequence)
	tw := table(w)
	fmt.Fprintln(tw, "SUBJECT\tKPI\tCATEGORY\tDATE\tVALUE\tUNIT\tTARGET\tON TARGET\tNOTE")
	for _, v := range p.Values {
		fmt.Fprintf(tw, "%s:%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Kind, v.ID, v.KPI, v.Category, sh.day(v.Effective), v.Value, v.Unit,
			targetText(v.Target, v.Direction), yesNo(v.OnTarget), orDash(clip(v.Note, 40)))
	}
	tw.Flush()
	if len(p.Values) == 0 {
		fmt.Fprintln(w, "(no values)")
	}
	printMore(w, p.Next)
	return nil
}

func reviewCmd(s *settings) *cobra.Command {
	var quarter, knownAt string
	var ff formatFlag
	cmd := &cobra.Command{
		Use:   "review --quarter 2026-Q2 [--known-at DATE] [--json | --format csv]",
		Short: "The quarterly portfolio review: money, owners, teams, KPIs and decisions per value stream and product",
		Long: `The page a portfolio board reads each quarter. Per value stream and each of its
products active in the quarter: the money (allocated from the pool, shifted in
and out, released, the balance at the quarter's end, over every budget period),
the accountable owner at the start and the end and how often it changed, the
teams serving it at the end and how many of their people at the start stayed
in the same team, the KPIs' last value in the quarter against the quarter's
target with the trend from the value before, and the decisions effective in
the quarter that touched it; then the value stream's totals. --json gives all
of it (every decision listed, up to 20 per product); --format csv one row per
product or value stream and currency.`,
		Example: `  koers report review --quarter 2026-Q2
  koers report review --quarter 2026-Q2 --known-at 2026-07-01 --json
  koers report review --quarter 2026-Q2 --format csv > review-2026-Q2.csv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if quarter == "" {
				quarter = domain.QuarterOf(time.Now()).Name
			}
			if _, err := domain.ParseQuarter(quarter); err != nil {
				return fmt.Errorf("--quarter: %w", err)
			}
			format, err := ff.value()
			if err != nil {
				return err
			}
			ka, err := parseOptionalTime(knownAt, s.timezone)
			if err != nil {
				return fmt.Errorf("--known-at: %w", err)
			}
			return withReadModels(cmd, s, func(db *projections.DB) error {
				r, err := db.Review(cmd.Context(), quarter, ka)
				if err != nil {
					return err
				}
				if format == "json" {
					return printJSON(cmd.OutOrStdout(), api.ReviewAnswer(r))
				}
				var refs []domain.Ref
				for _, v := range r.ValueStreams {
					for _, p := range v.Products {
						for _, o := range []string{p.OwnerStart, p.OwnerEnd} {
							if o != "" {
								refs = append(refs, domain.Ref{Kind: domain.KindPerson, ID: o})
							}
						}
					}
				}
				sh, err := newShow(cmd.Context(), s, db, refs)
				if err != nil {
					return err
				}
				return printReview(cmd.OutOrStdout(), r, format, sh)
			})
		},
	}
	cmd.Flags().StringVar(&quarter, "quarter", "", "the quarter, e.g. 2026-Q2 (default: the current one)")
	cmd.Flags().StringVar(&knownAt, "known-at", "", "recorded time: what the ledger knew then (default now)")
	ff.add(cmd)
	return cmd
}

func printReview(w io.Writer, r projections.Review, format string, sh show) error {
	switch format {
	case "csv":
		return reviewCSV(w, r)
	}
	fmt.Fprintf(w, "Portfolio review %s (%s to %s, UTC), as known at %s (through sequence %d)\n", r.Quarter, r.From.Format(time.DateOnly),
		r.To.AddDate(0, 0, -1).Format(time.DateOnly), sh.whenOrNow(r.KnownAt), r.Sequence)
	if len(r.ValueStreams) == 0 {
		fmt.Fprintln(w, "\n(no value streams or products in the quarter)")
	}
	for _, v := range r.ValueStreams {
		t := v.Totals
		fmt.Fprintf(w, "\nVALUE STREAM %s %q: %d active products, %d owned; KPIs on target %d of %d\n", v.ID, v.Name,
			t.ActiveProducts, t.OwnedProducts, t.KPIsOnTarget, t.KPIsWithTarget)
		tw := table(w)
		fmt.Fprintln(tw, "\tSTATUS\tOWNER\tCHANGES\tTEAMS\tSTAYED\tALLOCATED\tSHIFTED IN\tSHIFTED OUT\tRELEASED\tBALANCE\tDECISIONS")
		row := func(name string, s projections.ReviewSubject) {
			owner := sh.name(domain.KindPerson, s.OwnerEnd)
			if s.OwnerStart != s.OwnerEnd && s.OwnerStart != "" {
				owner = sh.name(domain.KindPerson, s.OwnerStart) + " → " + sh.name(domain.KindPerson, s.OwnerEnd)
			}
			if s.Kind == domain.KindValueStream {
				owner = "-"
			}
			status := orDash(s.StatusEnd)
			if s.StatusStart != s.StatusEnd {
				status = orDash(s.StatusStart) + " → " + status
			}
			stayed := "-"
			if s.PeopleAtStart > 0 {
				stayed = fmt.Sprintf("%d/%d", s.StayedInTeam, s.PeopleAtStart)
			}
			money := []string{"-", "-", "-", "-", "-"}
			for i, f := range s.Funding {
				vals := []domain.Amount{f.Allocated, f.ShiftedIn, f.ShiftedOut, f.Released, f.Balance}
				for j, a := range vals {
					text := a.Format(f.Currency) + " " + string(f.Currency)
					if i == 0 {
						money[j] = text
					} else {
						money[j] += ", " + text
					}
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", name, status, owner, s.OwnerChanges,
				orDash(strings.Join(s.Teams, ",")), stayed, money[0], money[1], money[2], money[3], money[4], s.DecisionCount)
		}
		row(v.ID+" (value stream)", v.ReviewSubject)
		for _, p := range v.Products {
			row("  "+p.ID, p)
		}
		for _, f := range t.Funding {
			fmt.Fprintf(tw, "  total\t\t\t\t\t\t%s %s\t%s %s\t%s %s\t%s %s\t%s %s\t\n", f.Allocated.Format(f.Currency), f.Currency,
				f.ShiftedIn.Format(f.Currency), f.Currency, f.ShiftedOut.Format(f.Currency), f.Currency,
				f.Released.Format(f.Currency), f.Currency, f.Balance.Format(f.Currency), f.Currency)
		}
		tw.Flush()
		var kpis [][]string
		for _, s := range append([]projections.ReviewSubject{v.ReviewSubject}, products(v)...) {
			for _, k := range s.KPIs {
				kpis = append(kpis, []string{s.ID, k.KPI + " (" + k.Unit + ")", k.Category, targetText(k.Target, k.Direction),
					orDash(k.Last), orDash(k.Previous), orDash(k.Trend), yesNo(k.OnTarget)})
			}
		}
		if len(kpis) > 0 {
			fmt.Fprintln(w)
			tw = table(w)
			fmt.Fprintln(tw, "\tKPI\tCATEGORY\tTARGET\tLAST\tBEFORE\tTREND\tON TARGET")
			for _, k := range kpis {
				fmt.Fprintln(tw, strings.Join(k, "\t"))
			}
			tw.Flush()
		}
		var decided []string
		seen := map[string]bool{}
		for _, s := range append([]projections.ReviewSubject{v.ReviewSubject}, products(v)...) {
			for _, d := range s.Decisions {
				if seen[d.ID] {
					continue
				}
				seen[d.ID] = true
				text := d.ID
				if d.Retracted {
					text += " (retracted)"
				}
				decided = append(decided, text)
			}
		}
		if len(decided) > 0 {
			fmt.Fprintf(w, "\ndecided: %s\n", strings.Join(decided, ", "))
		}
	}
	return nil
}

func products(v projections.ReviewValueStream) []projections.ReviewSubject { return v.Products }

func reviewCSV(w io.Writer, r projections.Review) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"quarter", "valuestream", "kind", "id", "name", "status_start", "status_end", "owner_start", "owner_end",
		"owner_changes", "teams", "people_at_start", "stayed_in_team", "currency", "allocated", "shifted_in", "shifted_out", "released",
		"balance", "kpis", "kpis_with_target", "kpis_on_target", "decisions"})
	row := func(s projections.ReviewSubject) {
		withTarget, onTarget := 0, 0
		for _, k := range s.KPIs {
			if k.OnTarget != nil {
				withTarget++
				if *k.OnTarget {
					onTarget++
				}
			}
		}
		base := []string{r.Quarter, s.ValueStream, string(s.Kind), s.ID, s.Name, s.StatusStart, s.StatusEnd, s.OwnerStart, s.OwnerEnd,
			strconv.Itoa(s.OwnerChanges), strings.Join(s.Teams, ";"), strconv.Itoa(s.PeopleAtStart), strconv.Itoa(s.StayedInTeam)}
		tail := []string{strconv.Itoa(len(s.KPIs)), strconv.Itoa(withTarget), strconv.Itoa(onTarget), strconv.Itoa(s.DecisionCount)}
		if len(s.Funding) == 0 {
			_ = cw.Write(append(append(base, "", "", "", "", "", ""), tail...))
		}
		for _, f := range s.Funding {
			money := []string{string(f.Currency), f.Allocated.Format(f.Currency), f.ShiftedIn.Format(f.Currency),
				f.ShiftedOut.Format(f.Currency), f.Released.Format(f.Currency), f.Balance.Format(f.Currency)}
			_ = cw.Write(append(append(append([]string(nil), base...), money...), tail...))
		}
	}
	for _, v := range r.ValueStreams {
		row(v.ReviewSubject)
		for _, p := range v.Products {
			row(p)
		}
	}
	cw.Flush()
	return cw.Error()
}

func diffCmd(s *settings) *cobra.Command {
	var from, to, knownAt string
	var pf pageFlags
	var ff formatFlag
	cmd := &cobra.Command{
		Use:   "diff --from DATE --to DATE [--known-at DATE] [--limit N] [--cursor C] [--format table|json|csv]",
		Short: "What changed in the organisation and in funding between two dates, each change with its decision",
		Long: `Compares the organisation (value streams, products, teams, people, projects:
every attribute) and the funding accounts as of --from with the same as of --to,
as known at --known-at (default now). Each changed attribute shows its value
then and now and the last decision effective in between that set it; each
account whose balance changed shows the decisions that moved money on it. A
change made and undone in between is no change. The changes are paged; the
accounts come with the first page.`,
		Example: `  koers diff --from 2026-03-31 --to 2026-06-30
  koers diff --from 2026-01-01 --to 2026-07-01 --known-at 2026-07-01 --format csv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := parseOptionalTime(from, s.timezone)
			if err != nil || f.IsZero() {
				return fmt.Errorf("--from: a date is required (%v)", err)
			}
			t, err := parseOptionalTime(to, s.timezone)
			if err != nil || t.IsZero() {
				return fmt.Errorf("--to: a date is required (%v)", err)
			}
			if !f.Before(t) {
				return fmt.Errorf("--to %s is not after --from %s", to, from)
			}
			ka, err := parseOptionalTime(knownAt, s.timezone)
			if err != nil {
				return fmt.Errorf("--known-at: %w", err)
			}
			page, err := pf.page()
			if err != nil {
				return err
			}
			format, err := ff.value()
			if err != nil {
				return err
			}
			return withReadModels(cmd, s, func(db *projections.DB) error {
				d, err := db.Diff(cmd.Context(), f, t, ka, page)
				if err != nil {
					return flagError(err)
				}
				if format == "json" {
					return printJSON(cmd.OutOrStdout(), d)
				}
				sh, err := newShow(cmd.Context(), s, db, nil)
				if err != nil {
					return err
				}
				return printDiff(cmd.OutOrStdout(), d, format, sh)
			})
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the earlier valid date (required)")
	cmd.Flags().StringVar(&to, "to", "", "the later valid date (required)")
	cmd.Flags().StringVar(&knownAt, "known-at", "", "recorded time: what the ledger knew then (default now)")
	pf.add(cmd, "changes")
	ff.add(cmd)
	return cmd
}

func optValue(v *string) string {
	if v == nil {
		return "-"
	}
	return clip(*v, 40)
}

func printDiff(w io.Writer, d projections.Diff, format string, sh show) error {
	if format == "csv" {
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"section", "subject", "attribute", "before", "after", "decisions", "effective"})
		for _, c := range d.Changes {
			var before, after string
			if c.Before != nil {
				before = *c.Before
			}
			if c.After != nil {
				after = *c.After
			}
			_ = cw.Write([]string{"organisation", string(c.Kind) + ":" + c.ID, c.Attribute, before, after, c.Decision, sh.stamp(c.Effective)})
		}
		for _, f := range d.Funding {
			_ = cw.Write([]string{"funding", f.Account, f.Period + " " + string(f.Currency), f.Before.Format(f.Currency),
				f.After.Format(f.Currency), strings.Join(f.Decisions, " "), ""})
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return err
		}
		if d.Next != "" {
			fmt.Fprintf(w, "# more: --cursor %s\n", d.Next)
		}
		return nil
	}
	fmt.Fprintf(w, "Changes from %s to %s, as known at %s (through sequence %d)\n\n", sh.day(d.From), sh.day(d.To), sh.whenOrNow(d.KnownAt), d.Sequence)
	tw := table(w)
	fmt.Fprintln(tw, "SUBJECT\tATTRIBUTE\tBEFORE\tAFTER\tDECISION\tEFFECTIVE")
	for _, c := range d.Changes {
		fmt.Fprintf(tw, "%s:%s\t%s\t%s\t%s\t%s\t%s\n", c.Kind, c.ID, c.Attribute, optValue(c.Before), optValue(c.After), orDash(c.Decision), sh.day(c.Effective))
	}
	tw.Flush()
	if len(d.Changes) == 0 {
		fmt.Fprintln(w, "(no changes in the organisation)")
	}
	if len(d.Funding) > 0 {
		fmt.Fprintln(w)
		tw = table(w)
		fmt.Fprintln(tw, "PERIOD\tACCOUNT\tBEFORE\tAFTER\tCHANGE\tDECISIONS")
		for _, f := range d.Funding {
			fmt.Fprintf(tw, "%s\t%s\t%s %s\t%s %s\t%s\t%s\n", f.Period, f.Account, f.Before.Format(f.Currency), f.Currency,
				f.After.Format(f.Currency), f.Currency, signedAmount(f.After-f.Before, f.Currency), strings.Join(f.Decisions, ", "))
		}
		tw.Flush()
	}
	printMore(w, d.Next)
	return nil
}

func signedAmount(a domain.Amount, c domain.Currency) string {
	if a > 0 {
		return "+" + a.Format(c)
	}
	return a.Format(c)
}

func restatementsCmd(s *settings) *cobra.Command {
	var from, to, knownAt string
	var ff formatFlag
	cmd := &cobra.Command{
		Use:   "restatements --from 2026-Q1 --to 2026-Q4 [--format table|json|csv]",
		Short: "Each quarter's figures as known at its end versus as known now, with the decisions that restated them",
		Long: `For each quarter from --from to --to: the transition metrics and the portfolio
review as the ledger knew them at the quarter's end, compared figure by figure
with what it knows now, and the decisions recorded since that changed them —
backdated decisions effective before the quarter's end and retractions of
decisions effective before it. A figure of a product or value stream names the
decisions that touched it; the transition's figures name them all. --known-at
compares with what was known at that time instead of at each quarter's end
(what changed since the last board meeting, say).`,
		Example: `  koers report restatements --from 2026-Q1 --to 2026-Q4
  koers report restatements --from 2026-Q2 --to 2026-Q2 --known-at 2026-11-03T10:00:00Z --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			loc, err := s.location()
			if err != nil {
				return err
			}
			quarters, err := quarterRange(from, to, time.Now().In(loc))
			if err != nil {
				return err
			}
			format, err := ff.value()
			if err != nil {
				return err
			}
			then, err := parseOptionalTime(knownAt, s.timezone)
			if err != nil {
				return fmt.Errorf("--known-at: %w", err)
			}
			return withReadModels(cmd, s, func(db *projections.DB) error {
				out := []projections.Restatement{}
				for _, q := range quarters {
					r, err := db.Restatement(cmd.Context(), q, then)
					if err != nil {
						return err
					}
					out = append(out, r)
				}
				switch format {
				case "json":
					return printJSON(cmd.OutOrStdout(), out)
				case "csv":
					cw := csv.NewWriter(cmd.OutOrStdout())
					_ = cw.Write([]string{"quarter", "subject", "figure", "then", "now", "decisions"})
					for _, r := range out {
						for _, f := range r.Differences {
							_ = cw.Write([]string{r.Quarter, f.Subject, f.Figure, f.Then, f.Now, strings.Join(f.Decisions, " ")})
						}
					}
					cw.Flush()
					return cw.Error()
				}
				sh, err := newShow(cmd.Context(), s, db, nil)
				if err != nil {
					return err
				}
				w := cmd.OutOrStdout()
				for i, r := range out {
					if i > 0 {
						fmt.Fprintln(w)
					}
					fmt.Fprintf(w, "%s as known at %s (through sequence %d) and now (through %d)\n", r.Quarter, sh.clock(r.Then), r.ThenSequence, r.NowSequence)
					if len(r.Differences) == 0 {
						fmt.Fprintln(w, "  no restatements")
						continue
					}
					tw := table(w)
					fmt.Fprintln(tw, "  SUBJECT\tFIGURE\tTHEN\tNOW\tDECISIONS")
					for _, f := range r.Differences {
						subject := f.Subject
						if subject == "" {
							subject = "(transition)"
						}
						fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", subject, f.Figure, orDash(f.Then), orDash(f.Now), clip(strings.Join(f.Decisions, ", "), 60))
					}
					tw.Flush()
					for _, d := range r.Decisions {
						what := strings.Join(d.Kinds, ",")
						if d.Retracts != "" {
							what = "retracts " + d.Retracts
						}
						fmt.Fprintf(w, "  %s by %s, effective %s, recorded %s: %s\n", d.ID, d.Actor, sh.day(d.Effective), sh.clock(d.RecordedAt), what)
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "first quarter, e.g. 2026-Q1 (default: the quarter three before --to)")
	cmd.Flags().StringVar(&to, "to", "", "last quarter (default: the current one)")
	cmd.Flags().StringVar(&knownAt, "known-at", "", "compare with what was known at this time (default: at each quarter's end)")
	ff.add(cmd)
	return cmd
}
