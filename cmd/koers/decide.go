package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"koers/api"
	"koers/domain"
	"koers/ledger"
)

// allChangeFields is every field name of every change kind: each becomes a
// flag of `koers decide`, and the kind's own fields are checked per call.
func allChangeFields() []string {
	seen := map[string]bool{}
	for _, k := range domain.ChangeKinds() {
		fields, _ := domain.ChangeFields(k)
		for _, f := range fields {
			seen[f.Name] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func kindUsage() string {
	var b strings.Builder
	for _, k := range domain.ChangeKinds() {
		fields, _ := domain.ChangeFields(k)
		var fs []string
		for _, f := range fields {
			s := "--" + f.Name
			if f.Optional {
				s = "[" + s + "]"
			}
			fs = append(fs, s)
		}
		fmt.Fprintf(&b, "  %-22s %s\n", k, strings.Join(fs, " "))
	}
	return b.String()
}

func decideCmd(s *settings) *cobra.Command {
	var by, authority, reason, effective, decisionID, expires, keyFile string
	var refs []string
	var asJSON bool
	values := map[string]*string{}
	cmd := &cobra.Command{
		Use:   "decide KIND --by ACTOR --authority MANDATE --reason TEXT [--FIELD VALUE]...",
		Short: "Record one decision with one change",
		Long: `Record one decision with one change of KIND, its fields given as flags.
--decision-id names the decision (default: generated); it is the idempotency key,
so repeating a call with the same --decision-id records it once.
Amounts are decimal strings in the period's currency; --kinds takes a
comma-separated list. koers decide KIND --help explains one kind's fields, with
an example. Kinds and their fields:

` + kindUsage(),
		Example: `  koers decide team.form --by p-root --authority root --reason 'new platform team' \
    --id t-core --name Core --type platform
  koers decide person.join --help`,
		Args: cobra.ExactArgs(1),
		ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return domain.ChangeKinds(), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			kind := args[0]
			if err := checkKind("change kind", kind); err != nil {
				return err
			}
			fields, _ := domain.ChangeFields(kind)
			allowed := map[string]bool{}
			for _, f := range fields {
				allowed[f.Name] = true
			}
			for name := range values {
				if cmd.Flags().Changed(name) && !allowed[name] {
					var own []string
					for _, f := range fields {
						own = append(own, f.Name)
					}
					return fmt.Errorf("--%s is not a field of %s%s; its fields: --%s (see koers decide %s --help)",
						name, kind, didYouMean(name, own, "--"), strings.Join(own, ", --"), kind)
				}
			}
			change := map[string]any{"kind": kind}
			for _, f := range fields {
				if !cmd.Flags().Changed(f.Name) {
					if !f.Optional {
						return fmt.Errorf("%s needs --%s", kind, f.Name)
					}
					continue
				}
				v := *values[f.Name]
				if f.List {
					change[f.Name] = strings.Split(v, ",")
				} else {
					change[f.Name] = v
				}
			}
			d := map[string]any{"by": by, "authority": authority, "reason": reason, "changes": []any{change}}
			if decisionID != "" {
				d["id"] = decisionID
			}
			if effective != "" {
				d["effective"] = effective
			}
			if len(refs) > 0 {
				d["refs"] = refs
			}
			body, err := json.Marshal(d)
			if err != nil {
				return err
			}
			ttl, err := parseTTL(expires)
			if err != nil {
				return err
			}
			return withApp(cmd, s, func(a *app) error {
				body, err := newSigner(keyFile).sign(a.handler, body)
				if err != nil {
					return err
				}
				res, err := a.handler.Submit(cmd.Context(), body, ledger.Expires(ttl))
				if err != nil {
					return err
				}
				return printResult(cmd, res, asJSON)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&by, "by", "", "the actor taking the decision (required)")
	fl.StringVar(&authority, "authority", "", "the mandate it is taken under (required)")
	fl.StringVar(&reason, "reason", "", "why (required)")
	fl.StringVar(&effective, "effective", "", "when it takes effect: date or RFC 3339 (default now)")
	fl.StringArrayVar(&refs, "ref", nil, "a link to minutes or documents (repeatable)")
	fl.StringVar(&decisionID, "decision-id", "", "the decision's id, its idempotency key (default generated)")
	fl.BoolVar(&asJSON, "json", false, "print the result as JSON")
	fl.StringVar(&expires, "expires", "", expiresHelp)
	fl.StringVar(&keyFile, "key", "", "the actor's signing key (default: <config>/koers/keys/<actor>.key when it exists)")
	for _, name := range allChangeFields() {
		values[name] = fl.String(name, "", "change field "+name+": "+fieldHelp[name][0])
		_ = cmd.RegisterFlagCompletionFunc(name, completeField(s, name))
	}
	_ = cmd.RegisterFlagCompletionFunc("by", completeField(s, "person"))
	_ = cmd.RegisterFlagCompletionFunc("authority", completeField(s, "mandate"))
	// decide KIND --help explains that kind.
	defaultHelp := cmd.HelpFunc()
	cmd.SetHelpFunc(func(c *cobra.Command, args []string) {
		if pos := c.Flags().Args(); len(pos) == 1 {
			if _, ok := domain.ChangeFields(pos[0]); ok {
				fmt.Fprint(c.OutOrStdout(), kindHelp(pos[0]))
				return
			}
			if err := checkKind("change kind", pos[0]); err != nil {
				fmt.Fprintln(c.OutOrStdout(), err)
				fmt.Fprintln(c.OutOrStdout())
			}
		}
		defaultHelp(c, args)
	})
	for _, r := range []string{"by", "authority", "reason"} {
		_ = cmd.MarkFlagRequired(r)
	}
	return cmd
}

// seqRange writes consecutive sequences as "3-4", others as a list.
func seqRange(seqs []uint64) string {
	if len(seqs) == 1 {
		return fmt.Sprint(seqs[0])
	}
	if n := len(seqs); n > 1 && seqs[n-1]-seqs[0] == uint64(n-1) {
		return fmt.Sprintf("%d-%d", seqs[0], seqs[n-1])
	}
	return fmt.Sprint(seqs)
}

func printResult(cmd *cobra.Command, res ledger.Result, asJSON bool) error {
	if asJSON {
		return printJSON(cmd.OutOrStdout(), api.ResultAnswer(res))
	}
	if res.Proposal != nil {
		fmt.Fprintln(cmd.OutOrStdout(), proposalLine(res))
		return nil
	}
	seqs := seqRange(res.Sequences)
	if res.Duplicate {
		fmt.Fprintf(cmd.OutOrStdout(), "decision %s was already recorded (sequences %s); nothing new written\n", res.DecisionID, seqs)
		return nil
	}
	fmt.Fprintf(cmd.OutOrStdout(), "decision %s recorded (sequences %s)\n", res.DecisionID, seqs)
	return nil
}
