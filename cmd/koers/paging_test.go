package main

import (
	"regexp"
	"strings"
	"testing"
)

func TestQueriesPageWithLimitAndCursor(t *testing.T) {
	data := t.TempDir()
	steps := [][]string{
		{"init", "--root", "p-root", "--effective", "2025-01-01"},
		{"apply", "-f", "-"},
	}
	decisions := `{"by":"p-root","authority":"root","reason":"r","effective":"2025-01-01","changes":[
 {"kind":"valuestream.define","id":"payments","name":"Payments"},
 {"kind":"valuestream.define","id":"lending","name":"Lending"},
 {"kind":"team.form","id":"t-core","name":"Core","type":"stream-aligned"},
 {"kind":"person.join","id":"p-1","name":"Ada","team":"t-core"},
 {"kind":"budget.open","period":"2025","amount":"1000.00","currency":"EUR"},
 {"kind":"funding.allocate","period":"2025","to":"valuestream:payments","amount":"250.50"}]}`
	for i, s := range steps {
		stdin := ""
		if i == 1 {
			stdin = strings.ReplaceAll(decisions, "\n", "") + "\n"
		}
		if code, out, errOut := koers(t, data, stdin, s...); code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", s, code, out, errOut)
		}
	}
	more := regexp.MustCompile(`more: --cursor (\S+)`)

	// Two value streams, one team: three pages of one entry.
	var seen []string
	cursor := ""
	for page := 1; page <= 4; page++ {
		args := []string{"org", "--limit", "1"}
		if cursor != "" {
			args = append(args, "--cursor", cursor)
		}
		code, out, errOut := koers(t, data, "", args...)
		if code != 0 {
			t.Fatalf("org page %d: exit %d %s", page, code, errOut)
		}
		if !strings.Contains(out, "2 value streams, 1 teams, 1 people in teams") {
			t.Fatalf("org page %d: the counts are not the whole organisation's:\n%s", page, out)
		}
		for _, id := range []string{"lending", "payments", "t-core"} {
			if regexp.MustCompile(`(?m)^\S+ \(` + id + `\)\s`).MatchString(out) {
				seen = append(seen, id)
			}
		}
		m := more.FindStringSubmatch(out)
		if m == nil {
			break
		}
		cursor = m[1]
	}
	if strings.Join(seen, ",") != "lending,payments,t-core" {
		t.Fatalf("org pages showed %v, want lending, payments, t-core once each", seen)
	}

	code, out, _ := koers(t, data, "", "funding", "2025", "--limit", "1")
	m := more.FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("funding --limit 1: exit %d, no more: hint:\n%s", code, out)
	}
	for _, c := range []struct {
		args []string
		flag string
	}{
		{[]string{"org", "--limit", "0"}, "--limit"},
		{[]string{"history", "person", "p-1", "--limit", "1001"}, "--limit"},
		{[]string{"org", "--cursor", "nonsense"}, "--cursor"},
		{[]string{"org", "--cursor", m[1]}, "--cursor"}, // a cursor of the balances
	} {
		code, _, errOut := koers(t, data, "", c.args...)
		if code != 1 || !strings.HasPrefix(strings.TrimPrefix(errOut, "koers: "), c.flag) {
			t.Errorf("%v: exit %d %q, want 1 and a line naming %s", c.args, code, errOut, c.flag)
		}
	}
}
