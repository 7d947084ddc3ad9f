package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"koers/api"
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
	// One projector at a time writes the read models: while another
	// process's holds the lease (a serve), wait for it to apply what the
	// log holds rather than write beside it.
	lctx, cancel := context.WithTimeout(ctx, leaseAttemptTimeout)
	lease, err := db.TakeLease(lctx)
	cancel()
	switch {
	case err == nil:
		defer lease.Release()
	case errors.Is(err, projections.ErrLeaseHeld):
		if caughtUp(ctx, db, a.store) {
			return db, nil
		}
		// A holder that does not keep up (its NATS or database trouble):
		// catching up beside it is safe, batches are checked against the
		// checkpoint.
	}
	p, err := projections.NewProjector(db, a.store, projections.ProjectorOptions{Names: a.names})
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

// holderWait bounds how long a command waits for another process's
// projector to apply what the log holds before it catches up itself.
var holderWait = 10 * time.Second

// caughtUp waits, at most holderWait, until the read models' checkpoint
// reaches the log's last sequence as it was when called; it reports
// whether it did.
func caughtUp(ctx context.Context, db *projections.DB, src projections.Source) bool {
	last, err := src.LastSequence(ctx)
	if err != nil {
		return false
	}
	deadline := time.Now().Add(holderWait)
	for {
		cp, err := db.Checkpoint(ctx)
		if err != nil {
			return false
		}
		if cp >= last {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
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
	return fmt.Errorf("the read models in this database were built from ledger %s, not from this one, %s: run `koers rebuild` with the same --data and --database-url to replace them with this ledger's, or give another --database-url",
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

func (f *formatFlag) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.format, "format", "table", "table, json or csv")
	cmd.Flags().BoolVar(&f.json, "json", false, "print JSON, the HTTP API's shape (same as --format json)")
}

func orgCmd(s *settings) *cobra.Command {
	var tf timeFlags
	var pf pageFlags
	var ff formatFlag
	cmd := &cobra.Command{
		Use: "org [--as-of DATE] [--known-at DATE] [--limit N] [--cursor C] [--format table|json|csv]",
		Long: `The organisation as of --as-of, as known at --known-at (both default now),
one page at a time: a page holds --limit entries, counted over value streams
(with their products), teams (with their members), projects and people in
teams that serve no product, in that order; the counts below it are of the
whole organisation.`,
		Example: `  koers org
  koers org --as-of 2025-06-30 --known-at 2025-07-01
  koers org --format csv > org.csv`,
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
			format, err := ff.value()
			if err != nil {
				return err
			}
			return withReadModels(cmd, s, func(db *projections.DB) error {
				org, err := db.Organisation(cmd.Context(), at, page)
				if err != nil {
					return flagError(err)
				}
				if format == "json" {
					return printJSON(cmd.OutOrStdout(), api.OrgAnswer(org))
				}
				var refs []domain.Ref
				for _, vs := range org.ValueStreams {
					for _, p := range vs.Products {
						if p.Owner != "" {
							refs = append(refs, domain.Ref{Kind: domain.KindPerson, ID: p.Owner})
						}
					}
				}
				sh, err := newShow(cmd.Context(), s, db, refs)
				if err != nil {
					return err
				}
				if format == "csv" {
					return printOrgCSV(cmd.OutOrStdout(), org, sh)
				}
				printOrg(cmd.OutOrStdout(), org, at, sh)
				return nil
			})
		},
	}
	tf.add(cmd)
	pf.add(cmd, "entries")
	ff.add(cmd)
	return cmd
}

func printOrg(w io.Writer, org projections.Organisation, at projections.At, sh show) {
	fmt.Fprintf(w, "Organisation as of %s, as known at %s (through sequence %d)\n\n", sh.whenOrNow(at.AsOf), sh.whenOrNow(at.KnownAt), org.Sequence)
	tw := table(w)
	fmt.Fprintln(tw, "VALUE STREAM\tPRODUCT\tOWNER\tTEAMS (MEMBERS)")
	for _, vs := range org.ValueStreams {
		vsName := named(vs.Name, vs.ID)
		if len(vs.Products) == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\t-\n", vsName)
		}
		for _, p := range vs.Products {
			var teams []string
			for _, t := range p.Teams {
				teams = append(teams, fmt.Sprintf("%s (%d)", named(t.Name, t.ID), len(t.Members)))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", vsName, named(p.Name, p.ID), sh.name(domain.KindPerson, p.Owner), orDash(strings.Join(teams, ", ")))
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = table(w)
	fmt.Fprintln(tw, "TEAM\tTYPE\tPRODUCTS\tMEMBERS")
	for _, t := range org.Teams {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", named(t.Name, t.ID), t.Type, orDash(strings.Join(t.Products, ", ")), len(t.Members))
	}
	tw.Flush()
	if len(org.Projects) > 0 {
		fmt.Fprintln(w)
		tw = table(w)
		fmt.Fprintln(tw, "PROJECT\tVALUE STREAM\tSTATUS")
		for _, p := range org.Projects {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", named(p.Name, p.ID), orDash(p.ValueStream), p.Status)
		}
		tw.Flush()
	}
	n := org.Totals
	fmt.Fprintf(w, "\n%d value streams, %d teams, %d people in teams, %d projects, %d people in teams that serve no product\n",
		n.ValueStreams, n.Teams, n.PeopleInTeams, n.Projects, n.Unassigned)
	printMore(w, org.Next)
}

// named is "Pay app (pay-app)", or the id alone.
func named(name, id string) string {
	if name == "" || name == id {
		return id
	}
	return name + " (" + id + ")"
}

func printOrgCSV(w io.Writer, org projections.Organisation, sh show) error {
	var rows [][]string
	person := func(p projections.Person, team string) {
		rows = append(rows, []string{"person", p.ID, p.Name, p.Status, team, "", "", "", ""})
	}
	for _, vs := range org.ValueStreams {
		rows = append(rows, []string{"valuestream", vs.ID, vs.Name, vs.Status, "", "", "", "", ""})
		for _, p := range vs.Products {
			var teams []string
			for _, t := range p.Teams {
				teams = append(teams, t.ID)
			}
			owner := sh.names[domain.Ref{Kind: domain.KindPerson, ID: p.Owner}]
			rows = append(rows, []string{"product", p.ID, p.Name, p.Status, vs.ID, p.Owner, owner, strings.Join(teams, " "), ""})
		}
	}
	for _, t := range org.Teams {
		rows = append(rows, []string{"team", t.ID, t.Name, t.Status, "", "", "", strings.Join(t.Products, " "), fmt.Sprint(len(t.Members))})
		for _, m := range t.Members {
			person(m, t.ID)
		}
	}
	for _, p := range org.Projects {
		rows = append(rows, []string{"project", p.ID, p.Name, p.Status, p.ValueStream, "", "", p.Product, ""})
	}
	for _, p := range org.Unassigned {
		person(p, p.Team)
	}
	// products: a team's products, a product's teams, a project's product.
	return writeCSV(w, []string{"kind", "id", "name", "status", "in", "owner", "owner_name", "products_or_teams", "members"}, rows)
}

func historyCmd(s *settings) *cobra.Command {
	var knownAt string
	var pf pageFlags
	var ff formatFlag
	var all bool
	cmd := &cobra.Command{
		Use:   "history KIND ID [--known-at DATE] [--all] [--limit N] [--cursor C] [--format table|json|csv]",
		Short: "The history of one value stream, product, team, person, project, mandate or budget",
		Long: `The valid-time history of every attribute of one aggregate, as known at --known-at
(default now). --all also shows beliefs that were later superseded (retracted or
corrected), with the sequence that superseded them. One page at a time, by
attribute and valid time. SEQ is the stream sequence that recorded a belief,
RECORDED AT when.
KIND is one of ` + strings.Join(historyKinds, ", ") + `.`,
		Example: `  koers history person p-0042
  koers history product payments-app --all
  koers history team t-core --known-at 2025-06-30 --format csv`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: completeHistory(s),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkHistoryKind(args[0]); err != nil {
				return err
			}
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
			format, err := ff.value()
			if err != nil {
				return err
			}
			return withReadModels(cmd, s, func(db *projections.DB) error {
				hist, err := db.History(cmd.Context(), ref, projections.HistoryOptions{KnownAt: ka, All: all}, page)
				if err != nil {
					return flagError(err)
				}
				w := cmd.OutOrStdout()
				if format == "json" {
					return printJSON(w, api.HistoryAnswer(ref, hist))
				}
				var refs []domain.Ref
				for _, f := range hist.Facts {
					if k, ok := refOfAttribute(f.Attribute); ok && f.Value != "" {
						refs = append(refs, domain.Ref{Kind: k, ID: f.Value})
					}
				}
				sh, err := newShow(cmd.Context(), s, db, refs)
				if err != nil {
					return err
				}
				value := func(f projections.Fact) string {
					if f.Unset {
						return "(none)"
					}
					if k, ok := refOfAttribute(f.Attribute); ok {
						return sh.name(k, f.Value)
					}
					return f.Value
				}
				if format == "csv" {
					var rows [][]string
					for _, f := range hist.Facts {
						to, sup := "", ""
						if f.ValidTo != nil {
							to = sh.stamp(*f.ValidTo)
						}
						if f.SupersededSeq != 0 {
							sup = strconv.FormatUint(f.SupersededSeq, 10)
						}
						name := ""
						if k, ok := refOfAttribute(f.Attribute); ok {
							name = sh.names[domain.Ref{Kind: k, ID: f.Value}]
						}
						rows = append(rows, []string{f.Attribute, f.Value, name, strconv.FormatBool(f.Unset), sh.stamp(f.ValidFrom), to,
							strconv.FormatUint(f.RecordedSeq, 10), sh.stamp(f.RecordedAt), f.Decision, sup})
					}
					return writeCSV(w, []string{"attribute", "value", "value_name", "unset", "valid_from", "valid_to",
						"recorded_sequence", "recorded_at", "decision", "superseded_sequence"}, rows)
				}
				tw := table(w)
				fmt.Fprintln(tw, "ATTRIBUTE\tVALUE\tVALID FROM\tVALID TO\tSEQ\tRECORDED AT\tDECISION\tSUPERSEDED AT SEQ")
				for _, f := range hist.Facts {
					to, sup := "-", "-"
					if f.ValidTo != nil {
						to = sh.day(*f.ValidTo)
					}
					if f.SupersededSeq != 0 {
						sup = strconv.FormatUint(f.SupersededSeq, 10)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", f.Attribute, value(f), sh.day(f.ValidFrom), to,
						f.RecordedSeq, sh.clock(f.RecordedAt), f.Decision, sup)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				printMore(w, hist.Next)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&knownAt, "known-at", "", "recorded time: the beliefs held then (default now)")
	cmd.Flags().BoolVar(&all, "all", false, "also show superseded beliefs")
	pf.add(cmd, "beliefs")
	ff.add(cmd)
	return cmd
}

func auditCmd(s *settings) *cobra.Command {
	var f projections.AuditFilter
	var from, to, axis string
	var ff formatFlag
	cmd := &cobra.Command{
		Use:   "audit [--by ACTOR] [--authority MANDATE] [--kind CHANGE] [--subject KIND:ID] [--from] [--to] [--format table|json|csv]",
		Short: "Who decided what, when, on whose authority and why: the decision log, newest first",
		Long: `The decision log, newest first: when each decision was recorded (SEQ is its
last stream sequence), when it takes effect, who took it under which mandate,
its changes, reason and refs; a retracted decision names the decision that
retracted it, and a retraction the decision it retracts.`,
		Example: `  koers audit --kind decision.retract
  koers audit --by p-0001 --from 2026-01-01 --to 2026-04-01
  koers audit --subject product:payments-app --format csv > audit.csv`,
		Args: cobra.NoArgs,
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
			if f.ChangeKind != "" {
				if err := checkKind("--kind", f.ChangeKind); err != nil {
					return err
				}
			}
			format, err := ff.value()
			if err != nil {
				return err
			}
			if f.Limit < 1 || f.Limit > projections.MaxAuditLimit {
				return fmt.Errorf("--limit %d: want 1 to %d", f.Limit, projections.MaxAuditLimit)
			}
			return withReadModels(cmd, s, func(db *projections.DB) error {
				page, err := db.Audit(cmd.Context(), f)
				if err != nil {
					return err
				}
				var sh show
				if format != "json" {
					if sh, err = newShow(cmd.Context(), s, db, actorRefs(page.Decisions)); err != nil {
						return err
					}
				}
				return printAudit(cmd.OutOrStdout(), page, format, sh)
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
	ff.add(cmd)
	_ = cmd.RegisterFlagCompletionFunc("kind", completeKinds)
	_ = cmd.RegisterFlagCompletionFunc("axis", fixedCompletions("recorded", "effective"))
	return cmd
}

func actorRefs(ds []projections.Decision) []domain.Ref {
	var refs []domain.Ref
	for _, d := range ds {
		refs = append(refs, domain.Ref{Kind: domain.KindPerson, ID: d.Actor})
		for _, a := range d.Approvers {
			refs = append(refs, domain.Ref{Kind: domain.KindPerson, ID: a})
		}
	}
	return refs
}

func printAudit(w io.Writer, page projections.AuditPage, format string, sh show) error {
	switch format {
	case "json":
		return printJSON(w, api.AuditAnswer(page))
	case "csv":
		var rows [][]string
		for _, d := range page.Decisions {
			rows = append(rows, []string{d.ID, d.Actor, sh.names[domain.Ref{Kind: domain.KindPerson, ID: d.Actor}], d.Mandate, d.Reason,
				sh.stamp(d.Effective), sh.stamp(d.RecordedAt),
				strconv.FormatUint(d.FirstSequence, 10), strconv.FormatUint(d.Sequence, 10), string(d.Changes),
				strings.Join(d.Refs, " "), d.Retracts, d.RetractedBy, chainText(d.AuthorityChain), strings.Join(d.Approvers, " ")})
		}
		return writeCSV(w, []string{"id", "actor", "actor_name", "mandate", "reason", "effective", "recorded_at", "first_seq", "seq", "changes", "refs", "retracts", "retracted_by",
			"authority_chain", "approvers"}, rows)
	}
	tw := table(w)
	fmt.Fprintln(tw, "SEQ\tRECORDED AT\tEFFECTIVE\tDECISION\tBY\tAUTHORITY (CHAIN)\tAPPROVED BY\tCHANGES\tREASON\tREFS")
	for _, d := range page.Decisions {
		id := d.ID
		if d.Retracts != "" {
			id += " (retracts " + d.Retracts + ")"
		}
		if d.RetractedBy != "" {
			id += " (retracted by " + d.RetractedBy + ")"
		}
		authority := d.Mandate
		if len(d.AuthorityChain) > 1 {
			authority = chainMandates(d.AuthorityChain)
		}
		approvers := make([]string, len(d.Approvers))
		for i, a := range d.Approvers {
			approvers[i] = sh.name(domain.KindPerson, a)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Sequence, sh.clock(d.RecordedAt), sh.day(d.Effective), id,
			sh.name(domain.KindPerson, d.Actor), authority, orDash(strings.Join(approvers, ", ")), changeKinds(d.Changes), clip(d.Reason, 60),
			orDash(clip(strings.Join(d.Refs, " "), 60)))
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
	var ff formatFlag
	var account string
	cmd := &cobra.Command{
		Use:   "funding PERIOD [--account ACCOUNT] [--limit N] [--cursor C] [--format table|json|csv]",
		Short: "Balances of a budget period, or the journal of one account",
		Long: `The balances of a budget period's accounts by account, or with --account the
journal of one account oldest first, each movement with its counter-account and
the running balance, as of --as-of and as known at --known-at (both default
now), one page at a time. The account budget:PERIOD is where the period's total
comes from: its balance is minus the total.`,
		Example: `  koers funding 2026
  koers funding 2026 --account valuestream:payments
  koers funding 2026 --as-of 2026-03-31 --format csv`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completePeriods(s),
		RunE: func(cmd *cobra.Command, args []string) error {
			period := args[0]
			if err := domain.ValidID(period); err != nil {
				return fmt.Errorf("period: %w", err)
			}
			if account != "" && account != "budget:"+period {
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
			format, err := ff.value()
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
					if format == "json" {
						return printJSON(w, api.JournalAnswer(period, account, at, journal))
					}
					var refs []domain.Ref
					for _, l := range journal.Lines {
						for _, c := range strings.Split(l.Counter, ", ") {
							if r, ok := accountRef(c); ok {
								refs = append(refs, r)
							}
						}
					}
					if r, ok := accountRef(account); ok {
						refs = append(refs, r)
					}
					sh, err := newShow(cmd.Context(), s, db, refs)
					if err != nil {
						return err
					}
					if format == "csv" {
						var rows [][]string
						for _, l := range journal.Lines {
							rows = append(rows, []string{strconv.FormatUint(l.Sequence, 10), strconv.Itoa(l.Line), sh.stamp(l.Effective), sh.stamp(l.RecordedAt),
								l.Decision, l.EventType, l.Account, l.Counter, string(l.Currency), l.Minor.Format(l.Currency), l.Balance.Format(l.Currency)})
						}
						return writeCSV(w, []string{"sequence", "line", "effective", "recorded_at", "decision", "event_type", "account",
							"counter_account", "currency", "amount", "balance"}, rows)
					}
					fmt.Fprintf(w, "Journal of %s in budget %s as of %s, as known at %s\n\n", sh.account(account), period, sh.whenOrNow(at.AsOf), sh.whenOrNow(at.KnownAt))
					tw := table(w)
					fmt.Fprintln(tw, "SEQ\tEFFECTIVE\tDECISION\tEVENT\tCOUNTER-ACCOUNT\tAMOUNT\tBALANCE")
					for _, l := range journal.Lines {
						var counters []string
						for _, c := range strings.Split(l.Counter, ", ") {
							counters = append(counters, sh.account(c))
						}
						fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s %s\t%s %s\n", l.Sequence, sh.day(l.Effective), l.Decision, l.EventType,
							orDash(clip(strings.Join(counters, ", "), 60)), l.Minor.Format(l.Currency), l.Currency, l.Balance.Format(l.Currency), l.Currency)
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
				if format == "json" {
					return printJSON(w, api.BalancesAnswer(period, at, balances))
				}
				var refs []domain.Ref
				for _, b := range balances.Balances {
					if r, ok := accountRef(b.Account); ok {
						refs = append(refs, r)
					}
				}
				sh, err := newShow(cmd.Context(), s, db, refs)
				if err != nil {
					return err
				}
				if format == "csv" {
					var rows [][]string
					for _, b := range balances.Balances {
						name := ""
						if r, ok := accountRef(b.Account); ok {
							name = sh.names[r]
						}
						rows = append(rows, []string{b.Account, name, string(b.Currency), b.Amount(), strconv.FormatInt(int64(b.Minor), 10)})
					}
					return writeCSV(w, []string{"account", "name", "currency", "amount", "minor"}, rows)
				}
				fmt.Fprintf(w, "Budget %s as of %s, as known at %s\n\n", period, sh.whenOrNow(at.AsOf), sh.whenOrNow(at.KnownAt))
				tw := table(w)
				fmt.Fprintln(tw, "ACCOUNT\tBALANCE")
				for _, b := range balances.Balances {
					acc := sh.account(b.Account)
					if strings.HasPrefix(b.Account, "budget:") {
						acc += " (where the total comes from)"
					}
					fmt.Fprintf(tw, "%s\t%s %s\n", acc, b.Amount(), b.Currency)
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
	ff.add(cmd)
	cmd.Flags().StringVar(&account, "account", "", "show this account's journal instead, e.g. valuestream:payments")
	return cmd
}

func reportCmd(s *settings) *cobra.Command {
	report := &cobra.Command{Use: "report", Short: "Reports", Example: "  koers report transition --from 2025-Q1"}
	var from, to, knownAt string
	var asJSON bool
	tr := &cobra.Command{
		Use:   "transition [--from 2026-Q1] [--to 2026-Q4]",
		Short: "Per quarter: funding on products vs projects, ownership, team stability, conversions",
		Example: `  koers report transition
  koers report transition --from 2024-Q1 --to 2026-Q4 --json`,
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
					return printJSON(cmd.OutOrStdout(), api.TransitionAnswer(quarters[0], quarters[len(quarters)-1], ka, out))
				}
				printTransition(cmd.OutOrStdout(), out)
				return nil
			})
		},
	}
	tr.Flags().StringVar(&from, "from", "", "first quarter, e.g. 2025-Q1 (default: the quarter three before --to, so four quarters in all)")
	tr.Flags().StringVar(&to, "to", "", "last quarter (default: the current one)")
	tr.Flags().StringVar(&knownAt, "known-at", "", "recorded time: what the ledger knew then (default now)")
	tr.Flags().BoolVar(&asJSON, "json", false, "print JSON, the HTTP API's shape")
	report.AddCommand(tr, reviewCmd(s), restatementsCmd(s))
	return report
}

// maxQuarters bounds one transition report.
const maxQuarters = 40

func quarterRange(from, to string, now time.Time) ([]string, error) {
	q := func(t time.Time) string { return fmt.Sprintf("%d-Q%d", t.Year(), (int(t.Month())-1)/3+1) }
	if to == "" {
		to = q(now)
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
	// The relapse signals: sliding back into steering by projects.
	fmt.Fprintln(w)
	tw = table(w)
	fmt.Fprintln(tw, "QUARTER\tON CLOSED PROJECTS\tTEAMS DISBANDED AFTER A CLOSE\tDECISIONS ROOT/DELEGATED/BOARD\tKPI COVERAGE")
	for _, t := range ts {
		var closed []string
		for _, f := range t.Funding {
			closed = append(closed, f.ClosedProjects.Format(f.Currency)+" "+string(f.Currency))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d/%d/%d\t%d/%d (%.0f%%)\n", t.Quarter, orDash(strings.Join(closed, ", ")), t.TeamsDisbandedAfterClose,
			t.DecisionsRoot, t.DecisionsDelegated, t.DecisionsBoard, t.KPISubjectsCovered, t.KPISubjects, 100*t.KPICoverage)
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
