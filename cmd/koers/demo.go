package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"koers/domain"
	"koers/eventstore"
	"koers/internal/sample"
	"koers/ledger"
	"koers/projections"
)

func demoCmd(s *settings) *cobra.Command {
	var seed int64
	var serveAfter bool
	var listen string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Record three years of a mid-size organisation moving from projects to products, then tour it",
		Example: `  koers --data ./demo-data demo
  koers --data ./demo-seed7 --ledger DEMO7 demo --seed 7`,
		Long: `Create the ledger and record a generated but realistic history: 8 value streams,
60 teams, 500 people, 40 products (many converted from projects), yearly budgets
with quarterly shifts by value-stream leads under limited mandates, owner
changes, team moves, joiners and leavers, retractions and backdated
corrections, from 2024 to late 2026. Then bring the read models up to date and
show a short tour: the organisation today and three years ago, the latest
decisions, funding, the transition report, and a verify of the whole log.
Running it again records nothing new. With --serve it then serves the web app
and the API, as koers serve does, until interrupted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := sample.Options{Seed: seed}
			lines, err := sample.History(opts)
			if err != nil {
				return err
			}
			// The ledger is closed before serving: serve opens its own.
			err = func() error {
				a, err := createApp(cmd.Context(), *s)
				if err != nil {
					return err
				}
				defer a.Close()
				out := cmd.OutOrStdout()
				start := time.Now()
				// Checked before anything is written: the demo records only
				// into a ledger of its own, new or made by the same demo.
				if err := demoOwns(cmd.Context(), a, lines[0]); err != nil {
					return err
				}
				res, err := a.handler.Init(cmd.Context(), sample.Root, sample.Genesis(opts))
				if err != nil {
					return fmt.Errorf("%w; the demo records only into a new ledger or its own: give another --data or --ledger", err)
				}
				if res.Duplicate {
					fmt.Fprintf(out, "ledger %s exists in %s\n", s.ledger, s.dataDir)
				} else {
					fmt.Fprintf(out, "ledger %s created in %s (root mandate held by %s)\n", s.ledger, s.dataDir, sample.Root)
				}
				bar := newBar(cmd.ErrOrStderr(), int64(len(lines)), "recording decisions", "decisions")
				sum, err := recordSample(cmd, a.handler, numberedLines(lines), bar)
				_ = bar.Finish()
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "sample history: %d decisions recorded, %d already there (%s)\n", sum.Applied, sum.Duplicates, time.Since(start).Round(time.Millisecond))
				db, err := a.readModels(cmd.Context())
				if err != nil {
					return err
				}
				// The demo owns its read models: ones left by another demo
				// ledger (another --data folder) are rebuilt, never mixed.
				have, err := db.LedgerIdentity(cmd.Context())
				if err != nil {
					return err
				}
				want, err := projections.IdentityOf(cmd.Context(), a.store)
				if err != nil {
					return err
				}
				if !have.IsZero() && !have.Same(want) {
					fmt.Fprintf(out, "the database held read models of ledger %s; rebuilding them for %s\n", have, want)
					if err := db.Rebuild(cmd.Context(), a.store, projections.ProjectorOptions{Names: a.names}, nil); err != nil {
						return err
					}
				}
				if db, err = a.upToDate(cmd.Context()); err != nil {
					return err
				}
				return tour(cmd, a, db, sample.Genesis(opts).AddDate(0, 2, -1), serveAfter, listen)
			}()
			if err != nil || !serveAfter {
				return err
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "koers: no --tokens: whoever reaches this address may record decisions in any actor's name")
			return serve(cmd.Context(), *s, listen, nil, nil, serveWatchInterval, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().Int64Var(&seed, "seed", 0, "seed of the generated history (another seed, another organisation; use another --data and --ledger)")
	cmd.Flags().BoolVar(&serveAfter, "serve", false, "then serve the web app and the API (as koers serve) until interrupted")
	cmd.Flags().StringVar(&listen, "listen", envOr("KOERS_LISTEN", "127.0.0.1:8080"), "with --serve: the address to serve on (env KOERS_LISTEN)")
	return cmd
}

// demoOwns refuses a ledger the demo did not make: one with decisions
// but not the demo's first (another seed, or a ledger of its own). The
// root is checked by Init, before it writes.
func demoOwns(ctx context.Context, a *app, first string) error {
	var d struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(first), &d); err != nil {
		return fmt.Errorf("sample: %w", err)
	}
	last, err := a.store.LastSequence(ctx)
	if err != nil {
		return err
	}
	genesis, found, err := a.store.Lookup(ctx, domain.GenesisDecision)
	if err != nil {
		return err
	}
	if last == 0 || found && len(genesis.Sequences) > 0 && last == genesis.Sequences[len(genesis.Sequences)-1] {
		return nil // new, or only created
	}
	if _, found, err = a.store.Lookup(ctx, d.ID); err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("ledger %s in %s holds %d messages but not the demo's first decision %s (another --seed, or not a demo ledger): nothing written; give the demo another --data or --ledger",
			a.settings.ledger, a.settings.where(), last, d.ID)
	}
	return nil
}

// recordSample records the sample history. Decisions under the portfolio
// board's mandate become proposals, which the board's second member
// approves at once (the chair proposed them): the sample is minutes of
// meetings where the quorum was there.
//
// SIGINT or SIGTERM stops it after the decision in flight (and its
// approval) with an interruptedError: the demo run again resumes.
func recordSample(cmd *cobra.Command, h *ledger.Handler, lines iter.Seq2[numbered, error], bar *progressbar.ProgressBar) (applySummary, error) {
	var sum applySummary
	ctx := cmd.Context()
	for d, err := range lines {
		if ctx.Err() != nil {
			return sum, interrupted(sum.Applied + sum.Duplicates)
		}
		if err != nil {
			return sum, err
		}
		// Not cut off by the interrupt: the decision in flight finishes.
		subCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), inFlightMax)
		res, err := h.Submit(subCtx, d.body)
		cancel()
		_ = bar.Add(1)
		if err != nil {
			return sum, fmt.Errorf("sample decision %d: %w", d.line, err)
		}
		if res.Proposal != nil && res.State == domain.ProposalPending {
			subCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), inFlightMax)
			res, err = h.Act(subCtx, domain.Action{Proposal: res.Proposal.ID, Kind: domain.ActionApprove, By: sample.Approver,
				Reason: "approved in the board meeting"})
			cancel()
			if err != nil {
				return sum, fmt.Errorf("sample decision %d: %w", d.line, err)
			}
			if res.State != domain.ProposalDecided {
				return sum, fmt.Errorf("sample decision %d: the board's approval left it %s: %s", d.line, res.State, res.Proposal.Reason)
			}
		}
		if res.Duplicate {
			sum.Duplicates++
		} else {
			sum.Applied++
		}
	}
	if ctx.Err() != nil {
		return sum, interrupted(sum.Applied + sum.Duplicates)
	}
	return sum, nil
}

func numberedLines(lines []string) iter.Seq2[numbered, error] {
	return func(yield func(numbered, error) bool) {
		for i, l := range lines {
			if !yield(numbered{line: i + 1, body: []byte(l)}, nil) {
				return
			}
		}
	}
}

func heading(w io.Writer, s string) { fmt.Fprintf(w, "\n== %s ==\n\n", s) }

// tour shows what the ledger answers; then is a day early in its history.
func tour(cmd *cobra.Command, a *app, db *projections.DB, then time.Time, serving bool, listen string) error {
	ctx, w := cmd.Context(), cmd.OutOrStdout()
	now := time.Now().UTC()
	sh, err := newShow(ctx, &a.settings, nil, nil)
	if err != nil {
		return err
	}
	for _, at := range []time.Time{{}, then} {
		// The demo's organisation (8 value streams, 60 teams, some dozens of
		// projects and people in no product team) fits in one page.
		org, err := db.Organisation(ctx, projections.At{AsOf: at}, projections.Page{Limit: projections.MaxPageLimit})
		if err != nil {
			return err
		}
		heading(w, "The organisation as of "+sh.whenOrNow(at))
		printOrgSummary(w, org)
	}

	heading(w, "The ten latest decisions: who, on whose authority, why")
	page, err := db.Audit(ctx, projections.AuditFilter{Limit: 10})
	if err != nil {
		return err
	}
	if sh, err = newShow(ctx, &a.settings, db, actorRefs(page.Decisions)); err != nil {
		return err
	}
	if err := printAudit(w, projections.AuditPage{Decisions: page.Decisions}, "table", sh); err != nil {
		return err
	}

	period := fmt.Sprint(now.Year())
	heading(w, "Funding "+period+" as of now")
	// The demo's period has some 70 accounts: one page.
	bal, err := db.Balances(ctx, period, projections.At{}, projections.Page{Limit: projections.MaxPageLimit})
	if err != nil {
		return err
	}
	printFundingSummary(w, bal.Balances)

	heading(w, "Is it really product steering? (koers report transition)")
	quarters, err := quarterRange("2024-Q1", "", now)
	if err != nil {
		return err
	}
	var ts []projections.Transition
	for i, q := range quarters {
		if i%2 == 1 && i != len(quarters)-1 {
			continue // every other quarter keeps the tour short
		}
		t, err := db.Transition(ctx, q, time.Time{})
		if err != nil {
			return err
		}
		ts = append(ts, t)
	}
	printTransition(w, ts)

	if err := tourProposals(cmd, a); err != nil {
		return err
	}

	if db, err = tourErasure(cmd, a, db); err != nil {
		return err
	}

	heading(w, "Verify: every event's hash, seal and chain")
	r, err := a.store.Verify(ctx, eventstore.VerifyOptions{})
	if err != nil {
		return err
	}
	printReport(w, r, false)
	if !r.OK() {
		return exitError{code: 2, err: fmt.Errorf("verify found %d problems", len(r.Problems)+r.MoreProblems)}
	}
	if err := tourReview(cmd, a, db, sample.LastReviewQuarter(sample.Options{})); err != nil {
		return err
	}
	fmt.Fprintf(w, `
Try next:
  koers kpi --valuestream payments        KPI values against their targets, quarter by quarter
  koers diff --from 2026-03-31 --to 2026-06-30   what changed between two dates, and which decisions did it
  koers report restatements --from 2026-Q1 --to 2026-Q3   figures known then versus now
  koers org --as-of 2025-06-30            the organisation on a date
  koers audit --kind decision.retract     what was retracted, by whom
  koers history person p-0042 --all       one person's teams, superseded beliefs too
  koers mandates --holder board:portfolio who may decide what, and how much headroom is left
  koers proposals --state pending         what waits for the portfolio board's approvals
  koers funding %s --account valuestream:payments
  koers verify --at %d --digest %s
`, period, r.DigestAt, r.Digest)
	if serving {
		fmt.Fprintf(w, "\nThe web app is starting: open http://%s/ in a browser (Ctrl-C stops it).\n", listen)
		return nil
	}
	fmt.Fprintf(w, `
Look at it in a browser: run
  koers serve                             (or koers demo --serve)
and open http://%s/ — the organisation through time, the decision trail,
funding flows and the transition as charts.
`, listen)
	return nil
}

func printOrgSummary(w io.Writer, org projections.Organisation) {
	tw := table(w)
	fmt.Fprintln(tw, "VALUE STREAM\tPRODUCTS\tWITH OWNER\tTEAMS ON PRODUCTS\tPEOPLE ON PRODUCTS")
	for _, vs := range org.ValueStreams {
		owned, teams, people := 0, map[string]bool{}, map[string]bool{}
		for _, p := range vs.Products {
			if p.Owner != "" {
				owned++
			}
			for _, t := range p.Teams {
				teams[t.ID] = true
				for _, m := range t.Members {
					people[m.ID] = true
				}
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\n", vs.Name, len(vs.Products), owned, len(teams), len(people))
	}
	tw.Flush()
	running := 0
	for _, p := range org.Projects {
		if p.Status == "active" {
			running++
		}
	}
	fmt.Fprintf(w, "%d teams, %d people in teams, %d running projects\n", org.Totals.Teams, org.Totals.PeopleInTeams, running)
}

func printFundingSummary(w io.Writer, bal []projections.Balance) {
	type group struct {
		name     string
		accounts int
		minor    int64
		cur      string
	}
	groups := map[string]*group{}
	var order []string
	for _, b := range bal {
		kind, _, _ := strings.Cut(b.Account, ":")
		if kind == "budget" {
			continue
		}
		g, ok := groups[kind]
		if !ok {
			g = &group{name: kind, cur: string(b.Currency)}
			groups[kind] = g
			order = append(order, kind)
		}
		g.accounts++
		g.minor += int64(b.Minor)
	}
	slices.Sort(order)
	tw := table(w)
	fmt.Fprintln(tw, "ACCOUNTS\tHOW MANY\tBALANCE")
	for _, k := range order {
		g := groups[k]
		fmt.Fprintf(tw, "%s\t%d\t%d.%02d %s\n", g.name, g.accounts, g.minor/100, g.minor%100, g.cur)
	}
	tw.Flush()
}

// tourProposals shows the portfolio board deciding with its quorum: one
// proposal approved by a second member, one left alone until it expires
// (its expiry is judged when someone acts on it next; no timer runs).
func tourProposals(cmd *cobra.Command, a *app) error {
	ctx, w := cmd.Context(), cmd.OutOrStdout()
	heading(w, fmt.Sprintf("The portfolio board decides with a quorum of %d of %s", sample.BoardQuorum, strings.Join(sample.BoardMembers, ", ")))
	period := sample.LastPeriod(sample.Options{})
	shift := func(id, reason string) ([]byte, error) {
		return json.Marshal(map[string]any{"id": id, "by": sample.Board, "authority": sample.BoardMandate, "reason": reason,
			"changes": []map[string]any{{"kind": "funding.allocate", "period": period, "to": "valuestream:payments", "amount": "1000.00"}}})
	}
	body, err := shift("demo-board-approved", "a last top-up for payments")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "$ koers decide funding.allocate --by %s --authority %s --decision-id demo-board-approved ...\n", sample.Board, sample.BoardMandate)
	res, err := a.handler.Submit(ctx, body)
	if err != nil {
		return err
	}
	if res.Proposal != nil {
		fmt.Fprintln(w, proposalLine(res))
		if res.State == domain.ProposalPending {
			fmt.Fprintf(w, "$ koers approve demo-board-approved --by %s\n", sample.Approver)
			res, err = a.handler.Act(ctx, domain.Action{Proposal: "demo-board-approved", Kind: domain.ActionApprove, By: sample.Approver})
			if err != nil {
				return err
			}
			printAct(w, domain.ActionApprove, sample.Approver, res)
		}
	} else {
		printResultTo(w, res)
	}

	body, err = shift("demo-board-expires", "nobody seconded this one")
	if err != nil {
		return err
	}
	const ttl = time.Second
	fmt.Fprintf(w, "$ koers decide funding.allocate --by %s --authority %s --decision-id demo-board-expires --expires %s ...\n", sample.Board, sample.BoardMandate, ttl)
	res, err = a.handler.Submit(ctx, body, ledger.Expires(ttl))
	if err != nil {
		return err
	}
	if res.Proposal != nil {
		fmt.Fprintln(w, proposalLine(res))
		// Wait out its life (a second), then act on it.
		if wait := time.Until(res.Proposal.Expires); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		fmt.Fprintf(w, "$ koers approve demo-board-expires --by %s\n", sample.Approver)
		if _, err := a.handler.Act(ctx, domain.Action{Proposal: "demo-board-expires", Kind: domain.ActionApprove, By: sample.Approver}); err != nil {
			fmt.Fprintf(w, "koers: %s\n(exit 1)\n", oneLine(err))
		}
	}
	fresh, err := a.upToDate(ctx)
	if err != nil {
		return err
	}
	page, err := fresh.Proposals(ctx, projections.ProposalFilter{Limit: 4})
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "$ koers proposals --limit 4")
	sh, err := newShow(ctx, &a.settings, nil, nil)
	if err != nil {
		return err
	}
	printProposals(w, projections.ProposalPage{Proposals: page.Proposals}, sh)
	return nil
}

// printResultTo writes what a decision's result says, as decide does.
func printResultTo(w io.Writer, res ledger.Result) {
	if res.Duplicate {
		fmt.Fprintf(w, "decision %s was already recorded (sequences %s); nothing new written\n", res.DecisionID, seqRange(res.Sequences))
		return
	}
	fmt.Fprintf(w, "decision %s recorded (sequences %s)\n", res.DecisionID, seqRange(res.Sequences))
}

// tourReview ends the tour with the portfolio review of the history's last
// quarter: every value stream's totals, then one value stream in full.
func tourReview(cmd *cobra.Command, a *app, db *projections.DB, quarter string) error {
	ctx, w := cmd.Context(), cmd.OutOrStdout()
	heading(w, "The portfolio review of "+quarter+" (koers report review --quarter "+quarter+")")
	r, err := db.Review(ctx, quarter, time.Time{})
	if err != nil {
		return err
	}
	tw := table(w)
	fmt.Fprintln(tw, "VALUE STREAM\tPRODUCTS\tWITH OWNER\tALLOCATED\tSHIFTED IN\tBALANCE\tKPIS ON TARGET\tDECISIONS")
	for _, v := range r.ValueStreams {
		t := v.Totals
		money := []string{"-", "-", "-"}
		if len(t.Funding) > 0 {
			f := t.Funding[0]
			money = []string{f.Allocated.Format(f.Currency) + " " + string(f.Currency), f.ShiftedIn.Format(f.Currency) + " " + string(f.Currency),
				f.Balance.Format(f.Currency) + " " + string(f.Currency)}
		}
		decisions := v.DecisionCount
		for _, p := range v.Products {
			decisions += p.DecisionCount
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%d of %d\t%d\n", v.Name, t.ActiveProducts, t.OwnedProducts, money[0], money[1], money[2],
			t.KPIsOnTarget, t.KPIsWithTarget, decisions)
	}
	tw.Flush()
	for _, v := range r.ValueStreams {
		if v.ID != "payments" {
			continue
		}
		var refs []domain.Ref
		for _, p := range v.Products {
			for _, o := range []string{p.OwnerStart, p.OwnerEnd} {
				if o != "" {
					refs = append(refs, domain.Ref{Kind: domain.KindPerson, ID: o})
				}
			}
		}
		sh, err := newShow(ctx, &a.settings, db, refs)
		if err != nil {
			return err
		}
		one := r
		one.ValueStreams = []projections.ReviewValueStream{v}
		fmt.Fprintf(w, "\nOne value stream in full (the others: koers report review --quarter %s):\n", quarter)
		return printReview(w, one, "table", sh)
	}
	return nil
}

// demoErased is the sample person the demo erases.
const demoErased = "p-0017"

// tourErasure erases one person's name (GDPR art. 17) and shows what is
// left: the person, their team and history, under the erased label.
func tourErasure(cmd *cobra.Command, a *app, db *projections.DB) (*projections.DB, error) {
	ctx, w := cmd.Context(), cmd.OutOrStdout()
	heading(w, "Personal data: a person's name is erased on request")
	ref := domain.Ref{Kind: domain.KindPerson, ID: demoErased}
	name := func(db *projections.DB) (string, error) {
		h, err := db.History(ctx, ref, projections.HistoryOptions{}, projections.Page{Limit: projections.MaxPageLimit})
		if err != nil {
			return "", err
		}
		for _, f := range h.Facts {
			if f.Attribute == "name" {
				return f.Value, nil
			}
		}
		return "", fmt.Errorf("demo: %s has no name in the read models", ref)
	}
	before, err := name(db)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "%s is %q in the read models; the log holds the name only encrypted under %s's own key.\n", demoErased, before, demoErased)
	fmt.Fprintf(w, "$ koers decide person.erase --person %s --by %s --authority root --decision-id demo-erase --reason \"erasure request\"\n", demoErased, sample.Root)
	body, err := json.Marshal(map[string]any{"id": "demo-erase", "by": sample.Root, "authority": "root", "reason": "erasure request (GDPR art. 17)",
		"changes": []map[string]any{{"kind": domain.ChangePersonErase, "person": demoErased}}})
	if err != nil {
		return nil, err
	}
	res, err := a.handler.Submit(ctx, body)
	if err != nil {
		return nil, err
	}
	printResultTo(w, res)
	if db, err = a.upToDate(ctx); err != nil {
		return nil, err
	}
	after, err := name(db)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "%s is now %q: their key is destroyed, the log and its hashes are untouched, their team and history stay.\n", demoErased, after)
	return db, nil
}
