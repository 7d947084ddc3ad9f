package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"koers/domain"
	"koers/internal/sheets"
	"koers/projections"
)

// historyKinds are the aggregates `koers history` shows.
var historyKinds = []string{"valuestream", "product", "team", "person", "project", "mandate", "budget"}

// suggest returns the candidates closest to typed (at most two edits, or
// sharing its prefix), nearest first.
func suggest(typed string, candidates []string) []string {
	type scored struct {
		s string
		d int
	}
	var out []scored
	for _, c := range candidates {
		d := editDistance(strings.ToLower(typed), strings.ToLower(c))
		if d <= 2 || len(typed) >= 3 && strings.HasPrefix(c, typed) {
			out = append(out, scored{c, d})
		}
	}
	slices.SortStableFunc(out, func(a, b scored) int { return a.d - b.d })
	var names []string
	for _, s := range out {
		if len(names) == 3 {
			break
		}
		names = append(names, s.s)
	}
	return names
}

// editDistance is the Levenshtein distance, over runes; bounded by the
// lengths of two short names.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// didYouMean is ` (did you mean person.join?)` or "".
func didYouMean(typed string, candidates []string, prefix string) string {
	s := suggest(typed, candidates)
	if len(s) == 0 {
		return ""
	}
	for i := range s {
		s[i] = prefix + s[i]
	}
	return " (did you mean " + strings.Join(s, " or ") + "?)"
}

// checkKind refuses an unknown change kind, suggesting the nearest.
func checkKind(what, kind string) error {
	if slices.Contains(domain.ChangeKinds(), kind) {
		return nil
	}
	return fmt.Errorf("%s %q: unknown change kind%s; kinds: %s", what, kind, didYouMean(kind, domain.ChangeKinds(), ""),
		strings.Join(domain.ChangeKinds(), ", "))
}

func checkHistoryKind(kind string) error {
	if slices.Contains(historyKinds, kind) {
		return nil
	}
	return fmt.Errorf("unknown kind %q%s; want one of %s", kind, didYouMean(kind, historyKinds, ""), strings.Join(historyKinds, ", "))
}

func checkSheet(name string) error {
	if name == "" || slices.Contains(sheets.Kinds(), name) {
		return nil
	}
	return fmt.Errorf("--sheet %q: unknown sheet%s; want one of %s", name, didYouMean(name, sheets.Kinds(), ""), strings.Join(sheets.Kinds(), ", "))
}

// flagError adds "did you mean" to an unknown flag.
func unknownFlag(cmd *cobra.Command, err error) error {
	msg := err.Error()
	name, ok := strings.CutPrefix(msg, "unknown flag: --")
	if !ok {
		return err
	}
	var names []string
	cmd.Flags().VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
	cmd.InheritedFlags().VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
	return fmt.Errorf("%w%s; see koers %s --help", err, didYouMean(name, names, "--"), strings.TrimPrefix(cmd.CommandPath(), "koers "))
}

// fieldHelp is what a change field holds and a value to show in an
// example: presentation of the domain's fields for `decide KIND --help`.
var fieldHelp = map[string][2]string{
	"id":           {"the new aggregate's id (lower case, digits, -)", ""},
	"name":         {"its name, for people; a person's name is personal data, sealed in the log and erasable (person.erase)", ""},
	"type":         {"team type: " + strings.Join(domain.TeamTypes, ", "), "stream-aligned"},
	"valuestream":  {"a value stream's id", "payments"},
	"product":      {"a product's id", "pay-app"},
	"owner":        {"the accountable owner, a person's id", "p-0041"},
	"team":         {"a team's id", "t-core"},
	"person":       {"a person's id", "p-0041"},
	"to":           {"where to: a team (person.move) or a funding account", ""},
	"from":         {"a funding account: pool, valuestream:ID, product:ID or project:ID", "pool"},
	"project":      {"a project's id", "prj-crm"},
	"period":       {"a budget period's id", "2026"},
	"amount":       {"a decimal amount in the period's currency", "250000.00"},
	"currency":     {"ISO 4217 currency code", "EUR"},
	"holder":       {"who holds the mandate, a person's id", "p-0041"},
	"kinds":        {"comma-separated change kinds it covers (e.g. funding.*, person.move)", "funding.*"},
	"scope":        {"what it covers: *, valuestream:ID or product:ID", "valuestream:payments"},
	"limit":        {"the most one decision under it may move", "50000.00"},
	"period_limit": {"the most all decisions under it may move in one period", "200000.00"},
	"valid_until":  {"when it lapses (date or RFC 3339)", "2026-12-31"},
	"mandate":      {"a mandate's id", "m-lead-payments"},
	"kpi":          {"a KPI's id", "conversion"},
	"unit":         {"the KPI's unit", "%"},
	"target":       {"the KPI's target, a decimal", "3.5"},
	"value":        {"a measured value, a decimal", "3.2"},
	"decision":     {"the id of the decision to retract", "d-3f2a"},
	"name_salt":    {"the salt of the name's commitment (64 hex digits); a signer adds it, leave it out", ""},
}

// exampleFor is a value of field in an example of kind.
func exampleFor(kind, field string) string {
	if field == "id" {
		switch strings.SplitN(kind, ".", 2)[0] {
		case "valuestream":
			return "payments"
		case "product":
			return "pay-app"
		case "team":
			return "t-core"
		case "person":
			return "p-0041"
		case "project":
			return "prj-crm"
		case "mandate":
			return "m-lead-payments"
		}
	}
	if field == "name" {
		switch strings.SplitN(kind, ".", 2)[0] {
		case "person":
			return "Ada Jansen"
		case "team":
			return "Core"
		case "valuestream":
			return "Payments"
		}
		return "Pay app"
	}
	if field == "to" {
		if kind == domain.ChangePersonMove {
			return "t-core"
		}
		return "product:pay-app"
	}
	if field == "from" && kind == domain.ChangeFundingShift {
		return "valuestream:payments"
	}
	return fieldHelp[field][1]
}

func quoteArg(s string) string {
	if strings.ContainsAny(s, " *%") {
		return "'" + s + "'"
	}
	return s
}

// kindHelp is the help of `koers decide KIND`: its fields and an example.
func kindHelp(kind string) string {
	fields, _ := domain.ChangeFields(kind)
	var b strings.Builder
	fmt.Fprintf(&b, "koers decide %s: record one decision with one change of kind %s.\n\nFields:\n", kind, kind)
	for _, f := range fields {
		req := "required"
		if f.Optional {
			req = "optional"
		}
		fmt.Fprintf(&b, "  --%-14s %s (%s)\n", f.Name, fieldHelp[f.Name][0], req)
	}
	fmt.Fprintf(&b, "\nEvery decision also takes --by ACTOR --authority MANDATE --reason TEXT, and\n[--effective DATE] [--ref URL]... [--decision-id ID] [--json].\n\nExample:\n  koers decide %s --by p-root --authority root --reason 'as agreed' \\\n    ", kind)
	var parts []string
	for _, f := range fields {
		if f.Optional {
			continue
		}
		parts = append(parts, "--"+f.Name+" "+quoteArg(exampleFor(kind, f.Name)))
	}
	b.WriteString(strings.Join(parts, " ") + "\n")
	return b.String()
}

// Completions.

func fixedCompletions(vals ...string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return vals, cobra.ShellCompDirectiveNoFileComp
	}
}

func completeKinds(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return domain.ChangeKinds(), cobra.ShellCompDirectiveNoFileComp
}

// completeIDs lists the ids of kind in the read models, when a ledger is
// where the flags say: completion never creates one.
func completeIDs(cmd *cobra.Command, s *settings, kind domain.AggregateKind, prefix string) []string {
	var out []string
	_ = withCompletionDB(cmd, s, func(ctx context.Context, db *projections.DB) error {
		ids, err := db.IDs(ctx, kind, prefix, 200)
		out = ids
		return err
	})
	return out
}

func withCompletionDB(cmd *cobra.Command, s *settings, fn func(context.Context, *projections.DB) error) error {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	a, err := openApp(ctx, *s.reading())
	if err != nil {
		return err
	}
	defer a.Close()
	db, err := a.readModels(ctx)
	if err != nil {
		return err
	}
	return fn(ctx, db)
}

func completeHistory(s *settings) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, typed string) ([]string, cobra.ShellCompDirective) {
		switch len(args) {
		case 0:
			return historyKinds, cobra.ShellCompDirectiveNoFileComp
		case 1:
			if args[0] == "budget" {
				return completePeriodList(cmd, s), cobra.ShellCompDirectiveNoFileComp
			}
			return completeIDs(cmd, s, domain.AggregateKind(args[0]), typed), cobra.ShellCompDirectiveNoFileComp
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
}

func completePeriodList(cmd *cobra.Command, s *settings) []string {
	var out []string
	_ = withCompletionDB(cmd, s, func(ctx context.Context, db *projections.DB) error {
		p, err := db.Periods(ctx, 200)
		out = p
		return err
	})
	return out
}

func completePeriods(s *settings) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return completePeriodList(cmd, s), cobra.ShellCompDirectiveNoFileComp
	}
}

// completeField completes a decide field flag: ids of the aggregate it
// names, team types, periods.
func completeField(s *settings, field string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, _ []string, typed string) ([]string, cobra.ShellCompDirective) {
		switch field {
		case "type":
			return domain.TeamTypes, cobra.ShellCompDirectiveNoFileComp
		case "period":
			return completePeriodList(cmd, s), cobra.ShellCompDirectiveNoFileComp
		case "person", "holder", "owner":
			return completeIDs(cmd, s, domain.KindPerson, typed), cobra.ShellCompDirectiveNoFileComp
		case "mandate":
			return completeIDs(cmd, s, domain.KindMandate, typed), cobra.ShellCompDirectiveNoFileComp
		case "kinds":
			return domain.ChangeKinds(), cobra.ShellCompDirectiveNoFileComp
		}
		if k, ok := refOfAttribute(field); ok {
			return completeIDs(cmd, s, k, typed), cobra.ShellCompDirectiveNoFileComp
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
}
