package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"koers/domain"
	"koers/projections"
)

// upToDate opens the read models and applies whatever the log holds that
// they do not, so that a query answers for everything recorded so far.
// Read models built from another ledger are never mixed with this one: the
// query is refused with what to do.
func (a *app) upToDate(ctx context.Context) (*projections.DB, error) {
	db, err := a.readModels(ctx)
	if err != nil {
		return nil, err
	}
	if err := a.sameLedger(ctx, db); err != nil {
		return nil, err
	}
	p, err := projections.NewProjector(db, a.store, projections.ProjectorOptions{})
	if err != nil {
		return nil, err
	}
	if err := p.CatchUp(ctx); err != nil {
		var mismatch *projections.LedgerMismatchError
		if errors.As(err, &mismatch) {
			return nil, mismatchError(mismatch)
		}
		return nil, fmt.Errorf("bring the read models up to date: %w", err)
	}
	return db, nil
}

// sameLedger refuses read models built from another ledger. The projector
// checks too, but only when it has something to apply.
func (a *app) sameLedger(ctx context.Context, db *projections.DB) error {
	have, err := db.LedgerIdentity(ctx)
	if err != nil {
		return err
	}
	want, err := projections.IdentityOf(ctx, a.store)
	if err != nil {
		return err
	}
	if !have.IsZero() && !have.Same(want) {
		return mismatchError(&projections.LedgerMismatchError{Have: have, Want: want})
	}
	return nil
}

func mismatchError(m *projections.LedgerMismatchError) error {
	return fmt.Errorf("the read models in this database were built from ledger %s, not from this one, %s: run `koers rebuild` to rebuild them for this ledger, or give another --database-url",
		m.Have, m.Want)
}

// withApp opens the ledger for one command and closes it afterwards.
func withApp(cmd *cobra.Command, s *settings, fn func(*app) error) error {
	a, err := openApp(cmd.Context(), *s)
	if err != nil {
		return err
	}
	defer a.Close()
	return fn(a)
}

// withReadModels opens the ledger and its read models, brought up to date,
// for one query.
func withReadModels(cmd *cobra.Command, s *settings, fn func(*projections.DB) error) error {
	return withApp(cmd, s.reading(), func(a *app) error {
		db, err := a.upToDate(cmd.Context())
		if err != nil {
			return err
		}
		return fn(db)
	})
}

// timeFlags are --as-of and --known-at.
type timeFlags struct{ asOf, knownAt string }

func (t *timeFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&t.asOf, "as-of", "", "valid time: what was true then (date or RFC 3339; default now)")
	cmd.Flags().StringVar(&t.knownAt, "known-at", "", "recorded time: what the ledger knew then (date or RFC 3339; default now)")
}

func (t *timeFlags) at(tz string) (projections.At, error) {
	asOf, err := parseOptionalTime(t.asOf, tz)
	if err != nil {
		return projections.At{}, fmt.Errorf("--as-of: %w", err)
	}
	knownAt, err := parseOptionalTime(t.knownAt, tz)
	if err != nil {
		return projections.At{}, fmt.Errorf("--known-at: %w", err)
	}
	return projections.At{AsOf: asOf, KnownAt: knownAt}, nil
}

// pageFlags are --limit and --cursor of the paged queries.
type pageFlags struct {
	limit  int
	cursor string
}

func (p *pageFlags) add(cmd *cobra.Command, what string) {
	cmd.Flags().IntVar(&p.limit, "limit", projections.DefaultPageLimit,
		fmt.Sprintf("%s per page (at most %d)", what, projections.MaxPageLimit))
	cmd.Flags().StringVar(&p.cursor, "cursor", "", "the next page: the cursor a page printed (more: --cursor …; next in JSON), with the same other flags")
}

func (p *pageFlags) page() (projections.Page, error) {
	if p.limit < 1 || p.limit > projections.MaxPageLimit {
		return projections.Page{}, fmt.Errorf("--limit %d: want 1 to %d", p.limit, projections.MaxPageLimit)
	}
	return projections.Page{Limit: p.limit, Cursor: p.cursor}, nil
}

// flagError names the flag of a page the read models refused.
func flagError(err error) error {
	var pe *projections.PageError
	if errors.As(err, &pe) {
		return fmt.Errorf("--%s: %s", pe.Param, pe.Problem)
	}
	return err
}

// printMore tells a table's reader how to get the next page.
func printMore(w io.Writer, next string) {
	if next != "" {
		fmt.Fprintf(w, "\nmore: --cursor %s\n", next)
	}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func day(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	if t.Equal(t.Truncate(24 * time.Hour)) {
		return t.UTC().Format(time.DateOnly)
	}
	return t.UTC().Format(time.RFC3339)
}

func whenOrNow(t time.Time) string {
	if t.IsZero() {
		return "now"
	}
	return day(t)
}

func orgCmd(s *settings) *cobra.Command {
	var tf timeFlags
	var pf pageFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use: "org [--as-of DATE] [--known-at DATE] [--limit N] [--cursor C]",
		Long: `The organisation as of --as-of, as known at --known-at (both default now),
one page at a time: a page holds --limit entries, counted over value streams
(with their products), teams (with their members), projects and people in
teams that serve no product, in that order; the counts below it are of the
whole organisation.`,
		Short: "The organisation: value streams, products and owners, teams and members, projects",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			at, err := tf.at(s.timezone)
			if err != nil {
				return err
			}
			page, err := pf.page()
			if err != nil {
				return err
			}
			return withReadModels(cmd, s, func(db *projections.DB) error {
				org, err := db.Organisation(cmd.Context(), at, page)
				if err != nil {
					return flagError(err)
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), org)
				}
				printOrg(cmd.OutOrStdout(), org, at)
				return nil
			})
		},
	}
	tf.add(cmd)
	pf.add(cmd, "entries")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printOrg(w io.Writer, org projections.Organisation, at projections.At) {
	fmt.Fprintf(w, "Organisation as of %s, as known at %s (through sequence %d)\n\n", whenOrNow(at.AsOf), whenOrNow(at.KnownAt), org.Sequence)
	tw := table(w)
	fmt.Fprintln(tw, "VALUE STREAM\tPRODUCT\tOWNER\tTEAMS")
	for _, vs := range org.ValueStreams {
		if len(vs.Products) == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\t-\n", vs.ID)
		}
		for _, p := range vs.Products {
			var teams []string
			for _, t := range p.Teams {
				teams = append(teams, fmt.Sprintf("%s (%d)", t.ID, len(t.Members)))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", vs.ID, p.ID, orDash(p.Owner), orDash(strings.Join(teams, ", ")))
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = table(w)
	fmt.Fprintln(tw, "TEAM\tTYPE\tPRODUCTS\tMEMBERS")
	for _, t := range org.Teams {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", t.ID, t.Type, orDash(strings.Join(t.Products, ", ")), len(t.Members))
	}
	tw.Flush()
	if len(org.Projects) > 0 {
		fmt.Fprintln(w)
		tw = table(w)
		fmt.Fprintln(tw, "PROJECT\tVALUE STREAM\tSTATUS")
		for _, p := range org.Projects {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", p.ID, orDash(p.ValueStream), p.Status)
		}
		tw.Flush()
	}
	n := org.Totals
	fmt.Fprintf(w, "\n%d value streams, %d teams, %d people in teams, %d projects, %d people in teams that serve no product\n",
		n.ValueStreams, n.Teams, n.PeopleInTeams, n.Projects, n.Unassigned)
	printMore(w, org.Next)
}

func historyCmd(s *settings) *cobra.Command {
	var knownAt string
	var pf pageFlags
	var all, asJSON bool
	cmd := &cobra.Command{
		Use:   "history KIND ID [--known-at DATE] [--all] [--limit N] [--cursor C]",
		Short: "The history of one value stream, product, team, person, project, mandate or budget",
		Long: `The valid-time history of every attribute of one aggregate, as known at --known-at
(default now). --all also shows beliefs that were later superseded (retracted or
corrected), with the sequence that superseded them. One page at a time, by
attribute and valid time.
KIND is one of valuestream, product, team, person, project, mandate, budget.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := domain.ParseRef(args[0] + ":" + args[1])
			if err != nil {
				return err
			}
			ka, err := parseOptionalTime(knownAt, s.timezone)
			if err != nil {
				return fmt.Errorf("--known-at: %w", err)
			}
			page, err := pf.page()
			if err != nil {
				return err
			}
			return withReadModels(cmd, s, func(db *projections.DB) error {
				hist, err := db.History(cmd.Context(), ref, projections.HistoryOptions{KnownAt: ka, All: all}, page)
				if err != nil {
					return flagError(err)
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), hist)
				}
				tw := table(cmd.OutOrStdout())
				fmt.Fprintln(tw, "ATTRIBUTE\tVALUE\tVALID FROM\tVALID TO\tRECORDED\tDECISION\tSUPERSEDED")
				for _, f := range hist.Facts {
					to, val, sup := "-", f.Value, "-"
					if f.ValidTo != nil {
						to = day(*f.ValidTo)
					}
					if f.Unset {
						val = "(none)"
					}
					if f.SupersededSeq != 0 {
						sup = "at " + strconv.FormatUint(f.SupersededSeq, 10)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d %s\t%s\t%s\n", f.Attribute, val, day(f.ValidFrom), to,
						f.RecordedSeq, f.RecordedAt.UTC().Format(time.DateTime), f.Decision, sup)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				printMore(cmd.OutOrStdout(), hist.Next)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&knownAt, "known-at", "", "recorded time: the beliefs held then (default now)")
	cmd.Flags().BoolVar(&all, "all", false, "also show superseded beliefs")
	pf.add(cmd, "beliefs")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func auditCmd(s *settings) *cobra.Command {
	var f projections.AuditFilter
	var from, to, axis, format string
	cmd := &cobra.Command{
		Use:   "audit [--by ACTOR] [--authority MANDATE] [--kind CHANGE] [--subject KIND:ID] [--from] [--to]",
		Short: "Who decided what, when, on whose authority and why: the decision log, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if f.From, err = parseOptionalTime(from, s.timezone); err != nil {
				return fmt.Errorf("--from: %w", err)
			}
			if f.To, err = parseOptionalTime(to, s.timezone); err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			switch axis {
			case "recorded":
				f.Axis = projections.Recorded
			case "effective":
				f.Axis = projections.Effective
			default:
				return fmt.Errorf("--axis %q: want recorded or effective", axis)
			}
			if f.Aggregate != "" {
				if _, err := domain.ParseRef(f.Aggregate); err != nil {
					return fmt.Errorf("--subject: %w", err)
				}
			}
			if format != "table" && format != "json" && format != "csv" {
				return fmt.Errorf("--format %q: want table, json or csv", format)
			}
			if f.Limit < 1 || f.Limit > projections.MaxAuditLimit {
				return fmt.Errorf("--limit %d: want 1 to %d", f.Limit, projections.MaxAuditLimit)
			}
			return withReadModels(cmd, s, func(db *projections.DB) error {
				page, err := db.Audit(cmd.Context(), f)
				if err != nil {
					return err
				}
				return printAudit(cmd.OutOrStdout(), page, format)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.Actor, "by", "", "only decisions by this actor")
	fl.StringVar(&f.Mandate, "authority", "", "only decisions under this mandate")
	fl.StringVar(&f.ChangeKind, "kind", "", "only decisions with a change of this kind, e.g. person.move")
	fl.StringVar(&f.Aggregate, "subject", "", "only decisions that touched this aggregate, e.g. product:pay-app")
	fl.StringVar(&from, "from", "", "from this time on (inclusive; date or RFC 3339)")
	fl.StringVar(&to, "to", "", "before this time (exclusive)")
	fl.StringVar(&axis, "axis", "recorded", "which time --from and --to are on: recorded or effective")
	fl.IntVar(&f.Limit, "limit", 50, fmt.Sprintf("decisions per page (at most %d)", projections.MaxAuditLimit))
	fl.Uint64Var(&f.Before, "before", 0, "page cursor: decisions recorded before this sequence (printed as next)")
	fl.StringVar(&format, "format", "table", "table, json or csv")
	return cmd
}

func printAudit(w io.Writer, page projections.AuditPage, format string) error {
	switch format {
	case "json":
		return printJSON(w, page)
	case "csv":
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"id", "actor", "mandate", "reason", "effective", "recorded_at", "first_seq", "seq", "changes", "refs", "retracts", "retracted_by",
			"authority_chain", "approvers"})
		for _, d := range page.Decisions {
			_ = cw.Write([]string{d.ID, d.Actor, d.Mandate, d.Reason, d.Effective.UTC().Format(time.RFC3339), d.RecordedAt.UTC().Format(time.RFC3339Nano),
				strconv.FormatUint(d.FirstSequence, 10), strconv.FormatUint(d.Sequence, 10), string(d.Changes),
				strings.Join(d.Refs, " "), d.Retracts, d.RetractedBy, chainText(d.AuthorityChain), strings.Join(d.Approvers, " ")})
		}
		cw.Flush()
		return cw.Error()
	}
	tw := table(w)
	fmt.Fprintln(tw, "RECORDED\tEFFECTIVE\tDECISION\tBY\tAUTHORITY (CHAIN)\tAPPROVED BY\tCHANGES\tREASON")
	for _, d := range page.Decisions {
		id := d.ID
		if d.RetractedBy != "" {
			id += " (retracted by " + d.RetractedBy + ")"
		}
		authority := d.Mandate
		if len(d.AuthorityChain) > 1 {
			authority = chainMandates(d.AuthorityChain)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.RecordedAt.UTC().Format(time.DateTime), day(d.Effective), id, d.Actor, authority,
			orDash(strings.Join(d.Approvers, ", ")), changeKinds(d.Changes), clip(d.Reason, 60))
	}
	tw.Flush()
	if page.Next != 0 {
		fmt.Fprintf(w, "\nmore: --before %d\n", page.Next)
	}
	return nil
}

// changeKinds summarises a decision's changes as their kinds.
func changeKinds(changes json.RawMessage) string {
	var cs []struct {
		Kind string `json:"kind"`
	}
	if err := json.Unmarshal(changes, &cs); err != nil {
		return "?"
	}
	count := map[string]int{}
	var order []string
	for _, c := range cs {
		if count[c.Kind] == 0 {
			order = append(order, c.Kind)
		}
		count[c.Kind]++
	}
	parts := make([]string, len(order))
	for i, k := range order {
		parts[i] = k
		if count[k] > 1 {
			parts[i] = fmt.Sprintf("%s ×%d", k, count[k])
		}
	}
	return clip(strings.Join(parts, ", "), 60)
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func fundingCmd(s *settings) *cobra.Command {
	var tf timeFlags
	var pf pageFlags
	var account string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "funding PERIOD [--account ACCOUNT] [--limit N] [--cursor C]",
		Short: "Balances of a budget period, or the journal of one account",
		Long: `The balances of a budget period's accounts by account, or with --account the
journal of one account oldest first, as of --as-of and as known at --known-at
(both default now), one page at a time.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			period := args[0]
			if err := domain.ValidID(period); err != nil {
				return fmt.Errorf("period: %w", err)
			}
			if account != "" {
				if _, err := domain.ParseAccount(account); err != nil {
					return fmt.Errorf("--account: %w", err)
				}
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
				w := cmd.OutOrStdout()
				if account != "" {
					journal, err := db.Journal(cmd.Context(), period, account, at, page)
					if err != nil {
						return flagError(err)
					}
					if asJSON {
						return printJSON(w, journal)
					}
					tw := table(w)
					fmt.Fprintln(tw, "SEQ\tEFFECTIVE\tDECISION\tEVENT\tAMOUNT")
					for _, l := range journal.Lines {
						fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s %s\n", l.Sequence, day(l.Effective), l.Decision, l.EventType, l.Minor.Format(l.Currency), l.Currency)
					}
					if err := tw.Flush(); err != nil {
						return err
					}
					printMore(w, journal.Next)
					return nil
				}
				balances, err := db.Balances(cmd.Context(), period, at, page)
				if err != nil {
					return flagError(err)
				}
				bal := balances.Balances
				if asJSON {
					type row struct {
						Account, Currency, Amount string
						Minor                     int64
					}
					out := struct {
						Balances []row
						Next     string
					}{Balances: make([]row, len(bal)), Next: balances.Next}
					for i, b := range bal {
						out.Balances[i] = row{b.Account, string(b.Currency), b.Amount(), int64(b.Minor)}
					}
					return printJSON(w, out)
				}
				fmt.Fprintf(w, "Budget %s as of %s, as known at %s\n\n", period, whenOrNow(at.AsOf), whenOrNow(at.KnownAt))
				tw := table(w)
				fmt.Fprintln(tw, "ACCOUNT\tBALANCE")
				for _, b := range bal {
					if strings.HasPrefix(b.Account, "budget:") {
						continue // the period's source account: minus the total
					}
					fmt.Fprintf(tw, "%s\t%s %s\n", b.Account, b.Amount(), b.Currency)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				printMore(w, balances.Next)
				return nil
			})
		},
	}
	tf.add(cmd)
	pf.add(cmd, "accounts or journal lines")
	cmd.Flags().StringVar(&account, "account", "", "show this account's journal instead, e.g. valuestream:payments")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func reportCmd(s *settings) *cobra.Command {
	report := &cobra.Command{Use: "report", Short: "Reports"}
	var from, to, knownAt string
	var asJSON bool
	tr := &cobra.Command{
		Use:   "transition [--from 2026-Q1] [--to 2026-Q4]",
		Short: "Per quarter: funding on products vs projects, ownership, team stability, conversions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			quarters, err := quarterRange(from, to, time.Now())
			if err != nil {
				return err
			}
			ka, err := parseOptionalTime(knownAt, s.timezone)
			if err != nil {
				return fmt.Errorf("--known-at: %w", err)
			}
			return withReadModels(cmd, s, func(db *projections.DB) error {
				var out []projections.Transition
				for _, q := range quarters {
					t, err := db.Transition(cmd.Context(), q, ka)
					if err != nil {
						return err
					}
					out = append(out, t)
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), out)
				}
				printTransition(cmd.OutOrStdout(), out)
				return nil
			})
		},
	}
	tr.Flags().StringVar(&from, "from", "", "first quarter, e.g. 2025-Q1 (default: four quarters before --to)")
	tr.Flags().StringVar(&to, "to", "", "last quarter (default: the current one)")
	tr.Flags().StringVar(&knownAt, "known-at", "", "recorded time: what the ledger knew then (default now)")
	tr.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	report.AddCommand(tr)
	return report
}

// maxQuarters bounds one transition report.
const maxQuarters = 40

func quarterRange(from, to string, now time.Time) ([]string, error) {
	q := func(t time.Time) string { return fmt.Sprintf("%d-Q%d", t.Year(), (int(t.Month())-1)/3+1) }
	if to == "" {
		to = q(now.UTC())
	}
	toStart, _, err := projections.ParseQuarter(to)
	if err != nil {
		return nil, fmt.Errorf("--to: %w", err)
	}
	if from == "" {
		from = q(toStart.AddDate(0, -9, 0))
	}
	fromStart, _, err := projections.ParseQuarter(from)
	if err != nil {
		return nil, fmt.Errorf("--from: %w", err)
	}
	if fromStart.After(toStart) {
		return nil, fmt.Errorf("--from %s is after --to %s", from, to)
	}
	var out []string
	for t := fromStart; !t.After(toStart); t = t.AddDate(0, 3, 0) {
		if len(out) == maxQuarters {
			return nil, fmt.Errorf("%s to %s spans more than %d quarters", from, to, maxQuarters)
		}
		out = append(out, q(t))
	}
	return out, nil
}

func printTransition(w io.Writer, ts []projections.Transition) {
	tw := table(w)
	fmt.Fprintln(tw, "QUARTER\tFUNDING ON PRODUCTS\tOWNED PRODUCTS\tOWNER CHANGES\tTEAM STABILITY\tPROJECTS CONVERTED")
	for _, t := range ts {
		var shares []string
		for _, f := range t.Funding {
			shares = append(shares, fmt.Sprintf("%.0f%% (%s)", 100*f.ProductShare, f.Currency))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d (%.0f%%)\t%d\t%.0f%% of %d\t%d\n", t.Quarter, orDash(strings.Join(shares, ", ")),
			t.OwnedProducts, t.ActiveProducts, 100*t.OwnershipCoverage, t.OwnerChanges, 100*t.TeamStability, t.PeopleAtStart, t.ProjectsConverted)
	}
	tw.Flush()
}

// chainMandates writes a chain's mandates: "m-deputy → m-payments → root".
func chainMandates(chain []domain.ChainLink) string {
	parts := make([]string, len(chain))
	for i, l := range chain {
		parts[i] = l.Mandate
	}
	return strings.Join(parts, " → ")
}
