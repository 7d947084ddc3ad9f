package main

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"koers/domain"
	"koers/ledger"
	"koers/projections"
)

// parseTTL reads a proposal's life: a Go duration (72h, 90m) or days (14d).
func parseTTL(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 1 || days > 366 {
			return 0, fmt.Errorf("--expires %q: want 1d to 366d or a duration like 72h", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < domain.MinProposalTTL || d > domain.MaxProposalTTL {
		return 0, fmt.Errorf("--expires %q: want a duration like 72h or 14d, from %s to 366d", s, domain.MinProposalTTL)
	}
	return d, nil
}

const expiresHelp = "when the decision is under a board's mandate: how long its proposal waits for approvals (14d, 72h; default 14d)"

// proposalLine says what happened to a decision that became, or is, a proposal.
func proposalLine(res ledger.Result) string {
	p := res.Proposal
	if res.Duplicate {
		return fmt.Sprintf("decision %s is a proposal already (%s); nothing new written", res.DecisionID, describe(p))
	}
	return fmt.Sprintf("decision %s recorded as a proposal of board %s (sequences %s): it waits for %d more approvals (quorum %d), until %s; members approve it with `koers approve %s --by MEMBER`",
		p.ID, p.Board, seqRange(res.Sequences), p.Missing, p.Quorum, p.Expires.UTC().Format(time.RFC3339), p.ID)
}

func describe(p *ledger.Proposal) string {
	switch p.State {
	case domain.ProposalPending:
		return fmt.Sprintf("pending, waits for %d more approvals (quorum %d) until %s", p.Missing, p.Quorum, p.Expires.UTC().Format(time.RFC3339))
	case domain.ProposalExpired:
		return "expired " + p.Expires.UTC().Format(time.RFC3339)
	}
	if p.Reason != "" {
		return p.State + ": " + p.Reason
	}
	return p.State
}

func actCmd(s *settings, kind, use, short string) *cobra.Command {
	var by, reason, keyFile string
	var asJSON bool
	cmd := &cobra.Command{
		Use:     use,
		Short:   short,
		Example: "  koers " + kind + " p-2026-07-reorg --by p-0002 --reason 'as discussed in the board'",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if kind == domain.ActionReject && reason == "" {
				return errors.New("reject needs --reason")
			}
			return withApp(cmd, s, func(a *app) error {
				act := domain.Action{Proposal: args[0], Kind: kind, By: by, Reason: reason}
				key, err := newSigner(keyFile).keyFor(by)
				if err != nil {
					return err
				}
				if key != nil {
					act.Signature = ed25519.Sign(key, domain.CanonicalAction(act))
				}
				res, err := a.handler.Act(cmd.Context(), act)
				if err != nil {
					return err
				}
				if asJSON {
					if err := printJSON(cmd.OutOrStdout(), res); err != nil {
						return err
					}
				} else {
					printAct(cmd.OutOrStdout(), kind, by, res)
				}
				if res.State == domain.ProposalRefused {
					return exitError{code: 1, err: fmt.Errorf("proposal %s was refused when its quorum was reached, and is recorded as refused: %s",
						res.Proposal.ID, res.Proposal.Reason)}
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&by, "by", "", "the member who acts (required)")
	r := "why (optional)"
	if kind == domain.ActionReject {
		r = "why (required)"
	}
	cmd.Flags().StringVar(&reason, "reason", "", r)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	cmd.Flags().StringVar(&keyFile, "key", "", "the member's signing key (default: <config>/koers/keys/<member>.key when it exists)")
	_ = cmd.MarkFlagRequired("by")
	return cmd
}

func printAct(w io.Writer, kind, by string, res ledger.Result) {
	p := res.Proposal
	switch {
	case res.State == domain.ProposalDecided:
		fmt.Fprintf(w, "proposal %s approved by %s: quorum reached, decision %s recorded (sequences %s), approved by %s\n",
			p.ID, by, res.DecisionID, seqRange(res.Sequences), strings.Join(p.Approvers, ", "))
	case res.State == domain.ProposalPending:
		fmt.Fprintf(w, "proposal %s approved by %s (sequences %s): it waits for %d more approvals (quorum %d)\n", p.ID, by, seqRange(res.Sequences), p.Missing, p.Quorum)
	case res.State == domain.ProposalRefused:
		fmt.Fprintf(w, "proposal %s approved by %s (sequences %s), but refused at decision time\n", p.ID, by, seqRange(res.Sequences))
	default:
		fmt.Fprintf(w, "proposal %s %s by %s (sequences %s)\n", p.ID, res.State, by, seqRange(res.Sequences))
	}
}

func approveCmd(s *settings) *cobra.Command {
	return actCmd(s, domain.ActionApprove, "approve PROPOSAL --by MEMBER [--reason TEXT]",
		"Approve a proposal as a member of its board; the approval that completes the quorum records the decision")
}

func rejectCmd(s *settings) *cobra.Command {
	return actCmd(s, domain.ActionReject, "reject PROPOSAL --by MEMBER --reason TEXT", "Reject a proposal as a member of its board: it is closed")
}

func withdrawCmd(s *settings) *cobra.Command {
	return actCmd(s, domain.ActionWithdraw, "withdraw PROPOSAL --by PROPOSER [--reason TEXT]", "Withdraw your own proposal")
}

func proposalsCmd(s *settings) *cobra.Command {
	var f projections.ProposalFilter
	var asJSON bool
	cmd := &cobra.Command{
		Use: "proposals [--state pending|decided|refused|rejected|expired|withdrawn] [--json]",
		Example: `  koers proposals --state pending
  koers proposals --json`,
		Short: "Decisions under boards' mandates: waiting for approvals, or what became of them, newest first",
		Long: `Proposals, newest first. A proposal is pending until its board's quorum of members
approved it (then decided, or refused when the decision no longer fitted), a member
rejected it, its proposer withdrew it, or it expired: expiry is judged at the time
of the next action on it, and shown here once past.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.State != "" && !contains(domain.ProposalStates, f.State) {
				return fmt.Errorf("--state %q: want one of %s", f.State, strings.Join(domain.ProposalStates, ", "))
			}
			if f.Limit < 1 || f.Limit > projections.MaxProposalLimit {
				return fmt.Errorf("--limit %d: want 1 to %d", f.Limit, projections.MaxProposalLimit)
			}
			return withReadModels(cmd, s, func(db *projections.DB) error {
				page, err := db.Proposals(cmd.Context(), f)
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), page)
				}
				sh, err := newShow(cmd.Context(), s, nil, nil)
				if err != nil {
					return err
				}
				printProposals(cmd.OutOrStdout(), page, sh)
				return nil
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.State, "state", "", "only proposals in this state")
	fl.IntVar(&f.Limit, "limit", 50, fmt.Sprintf("proposals per page (at most %d)", projections.MaxProposalLimit))
	fl.Uint64Var(&f.Before, "before", 0, "page cursor: proposals opened before this sequence (printed as more)")
	fl.BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func printProposals(w io.Writer, page projections.ProposalPage, sh show) {
	tw := table(w)
	fmt.Fprintln(tw, "PROPOSAL\tSTATE\tBOARD\tMANDATE\tPROPOSED BY\tAPPROVED BY\tWAITS FOR\tEXPIRES\tCHANGES\tREASON")
	for _, p := range page.Proposals {
		var by []string
		for _, a := range p.Approvals {
			by = append(by, a.By)
		}
		waits := "-"
		if p.State == domain.ProposalPending {
			waits = fmt.Sprintf("%d of %d", p.Missing, p.Quorum)
		}
		var d struct {
			Reason  string          `json:"reason"`
			Changes json.RawMessage `json:"changes"`
		}
		_ = json.Unmarshal(p.Decision, &d)
		reason := d.Reason
		if p.Reason != "" {
			reason = p.State + ": " + p.Reason
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, p.State, p.Board, p.Mandate, p.ProposedBy, strings.Join(by, ", "),
			waits, sh.clock(p.Expires), changeKinds(d.Changes), clip(reason, 80))
	}
	tw.Flush()
	if page.Next != 0 {
		fmt.Fprintf(w, "\nmore: --before %d\n", page.Next)
	}
}

func mandatesCmd(s *settings) *cobra.Command {
	var f projections.MandateFilter
	var tf timeFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use: "mandates [--holder PERSON|board:ID] [--as-of] [--known-at] [--json]",
		Example: `  koers mandates
  koers mandates --holder board:portfolio --as-of 2026-03-31`,
		Short: "Who may decide what: every mandate's kinds, scope, limits, headroom, grant chain and state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			at, err := tf.at(s.timezone)
			if err != nil {
				return err
			}
			f.At = at
			return withReadModels(cmd, s, func(db *projections.DB) error {
				ms, err := db.Mandates(cmd.Context(), f)
				if err != nil {
					return err
				}
				if asJSON {
					if ms == nil {
						ms = []projections.Mandate{}
					}
					return printJSON(cmd.OutOrStdout(), ms)
				}
				sh, err := newShow(cmd.Context(), s, nil, nil)
				if err != nil {
					return err
				}
				printMandates(cmd.OutOrStdout(), ms, at, sh)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&f.Holder, "holder", "", "only the mandates of this person or board (board:<id>)")
	tf.add(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

// chainText writes a chain as "m-board (board:portfolio) → root (p-ceo)".
func chainText(chain []domain.ChainLink) string {
	parts := make([]string, len(chain))
	for i, l := range chain {
		parts[i] = l.Mandate
		if l.Holder != "" {
			parts[i] += " (" + l.Holder + ")"
		}
	}
	return strings.Join(parts, " → ")
}

func printMandates(w io.Writer, ms []projections.Mandate, at projections.At, sh show) {
	fmt.Fprintf(w, "Mandates as of %s, as known at %s\n\n", sh.whenOrNow(at.AsOf), sh.whenOrNow(at.KnownAt))
	tw := table(w)
	fmt.Fprintln(tw, "MANDATE\tHOLDER\tSTATE\tKINDS\tSCOPE\tLIMIT\tPERIOD LIMIT (LEFT)\tVALID UNTIL\tCHAIN")
	for _, m := range ms {
		holder := m.Holder
		if m.Quorum > 0 {
			holder += fmt.Sprintf(" (%d of %s)", m.Quorum, strings.Join(m.Members, ", "))
		}
		state := m.State
		if m.Why != "" && m.State == projections.MandateSuspended {
			state += ": " + m.Why
		}
		period := orDash(m.PeriodLimit)
		for _, h := range m.Headroom {
			period += fmt.Sprintf(" (%s: %s left)", h.Period, h.Left)
		}
		until := "-"
		if m.ValidUntil != nil {
			until = sh.day(*m.ValidUntil)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, holder, state, strings.Join(m.Kinds, ","), m.Scope, orDash(m.Limit),
			period, until, orDash(chainText(above(m.Chain))))
	}
	tw.Flush()
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// above is the chain without its first link (the mandate itself).
func above(chain []domain.ChainLink) []domain.ChainLink {
	if len(chain) == 0 {
		return nil
	}
	return chain[1:]
}
