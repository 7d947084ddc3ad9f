package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"koers/internal/pgtest"
)

// Issue 14, point 3: one question, one JSON, whether asked of the CLI or of
// the HTTP API.
func TestCLIAndAPIAnswerInTheSameJSON(t *testing.T) {
	p := proc{data: t.TempDir(), db: pgtest.Fresh(t)}
	steps := [][]string{
		{"init", "--root", "p-root", "--effective", "2025-01-01"},
		{"decide", "valuestream.define", "--by", "p-root", "--authority", "root", "--reason", "r", "--effective", "2025-01-01", "--id", "payments", "--name", "Payments"},
		{"decide", "team.form", "--by", "p-root", "--authority", "root", "--reason", "r", "--effective", "2025-01-01", "--id", "t-core", "--name", "Core", "--type", "stream-aligned"},
		{"decide", "person.join", "--by", "p-root", "--authority", "root", "--reason", "r", "--effective", "2025-01-01", "--id", "p-ada", "--name", "Ada Jansen", "--team", "t-core"},
		{"decide", "product.launch", "--by", "p-root", "--authority", "root", "--reason", "one owner", "--ref", "https://wiki/minutes/1", "--effective", "2025-02-01", "--id", "pay-app", "--name", "Pay app", "--valuestream", "payments", "--owner", "p-ada", "--decision-id", "launch"},
		{"decide", "team.assign", "--by", "p-root", "--authority", "root", "--reason", "r", "--effective", "2025-02-01", "--team", "t-core", "--product", "pay-app"},
		{"decide", "budget.open", "--by", "p-root", "--authority", "root", "--reason", "r", "--effective", "2025-01-01", "--period", "2025", "--amount", "1000.00", "--currency", "EUR"},
		{"decide", "funding.allocate", "--by", "p-root", "--authority", "root", "--reason", "r", "--effective", "2025-02-02", "--period", "2025", "--to", "product:pay-app", "--amount", "250.50", "--decision-id", "alloc"},
		{"decide", "decision.retract", "--by", "p-root", "--authority", "root", "--reason", "wrong amount", "--decision", "alloc"},
	}
	for _, s := range steps {
		if code, out, errOut := p.run(t, "", s...); code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", s, code, out, errOut)
		}
	}
	_, line := p.start(t, "serve", "--listen", "127.0.0.1:0")
	base := regexp.MustCompile(`http://\S+`).FindString(line)
	knownAt := time.Now().Add(time.Minute).UTC().Format(time.RFC3339)

	cases := []struct {
		cli  []string
		path string
	}{
		{[]string{"org", "--as-of", "2025-06-01", "--known-at", knownAt, "--json"}, "/v1/org?as_of=2025-06-01&known_at=" + knownAt},
		{[]string{"org", "--as-of", "2025-06-01", "--known-at", knownAt, "--format", "json", "--limit", "1"}, "/v1/org?as_of=2025-06-01&known_at=" + knownAt + "&limit=1"},
		{[]string{"history", "person", "p-ada", "--json"}, "/v1/history/person/p-ada"},
		{[]string{"history", "product", "pay-app", "--all", "--known-at", knownAt, "--json"}, "/v1/history/product/pay-app?all=true&known_at=" + knownAt},
		{[]string{"audit", "--json"}, "/v1/audit"},
		{[]string{"audit", "--format", "json", "--kind", "decision.retract"}, "/v1/audit?kind=decision.retract"},
		{[]string{"funding", "2025", "--as-of", "2025-12-31", "--known-at", knownAt, "--json"}, "/v1/funding/2025?as_of=2025-12-31&known_at=" + knownAt},
		{[]string{"funding", "2025", "--account", "product:pay-app", "--json"}, "/v1/funding/2025?account=product:pay-app"},
		{[]string{"report", "transition", "--from", "2025-Q1", "--to", "2025-Q2", "--known-at", knownAt, "--json"}, "/v1/reports/transition?from=2025-Q1&to=2025-Q2&known_at=" + knownAt},
	}
	for _, c := range cases {
		code, out, errOut := p.run(t, "", c.cli...)
		if code != 0 {
			t.Fatalf("%v: exit %d %s", c.cli, code, errOut)
		}
		resp, err := http.Get(base + c.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s %s", c.path, resp.Status, body)
		}
		var cli, web any
		if err := json.Unmarshal([]byte(out), &cli); err != nil {
			t.Fatalf("%v: not JSON: %v\n%s", c.cli, err, out)
		}
		if err := json.Unmarshal(body, &web); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(cli, web) {
			t.Errorf("%v and GET %s answer differently:\nCLI %s\nAPI %s", c.cli, c.path, out, body)
		}
		for _, zero := range []string{"0001-01-01", ": null", `"KnownAt"`, `"KPIs"`} {
			if strings.Contains(out, zero) {
				t.Errorf("%v prints %s:\n%s", c.cli, zero, out)
			}
		}
	}

	// The same decision sent again, by the CLI and by the API: one answer.
	retract := `{"id":"launch","by":"p-root","authority":"root","reason":"one owner","effective":"2025-02-01","refs":["https://wiki/minutes/1"],"changes":[{"kind":"product.launch","id":"pay-app","name":"Pay app","valuestream":"payments","owner":"p-ada"}]}`
	code, out, errOut := p.run(t, "", append(steps[4], "--json")...)
	resp, err := http.Post(base+"/v1/decisions", "application/json", strings.NewReader(retract))
	if err != nil || code != 0 {
		t.Fatalf("decide again: %d %s %v", code, errOut, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var cli, web any
	_ = json.Unmarshal([]byte(out), &cli)
	_ = json.Unmarshal(body, &web)
	if !reflect.DeepEqual(cli, web) {
		t.Errorf("decide --json and POST /v1/decisions answer differently:\nCLI %s\nAPI %s", out, body)
	}

	// The journal names the other side of each movement and keeps a
	// running balance; the audit shows refs and what a retraction did.
	code, out, _ = p.run(t, "", "funding", "2025", "--account", "product:pay-app")
	if code != 0 || !regexp.MustCompile(`funding.allocated\s+pool\s+250.50 EUR\s+250.50 EUR`).MatchString(out) ||
		!regexp.MustCompile(`pool\s+-250.50 EUR\s+0.00 EUR`).MatchString(out) {
		t.Errorf("journal without counter-account or running balance:\n%s", out)
	}
	code, out, _ = p.run(t, "", "audit")
	if code != 0 || !strings.Contains(out, "launch") || !strings.Contains(out, "https://wiki/minutes/1") ||
		!strings.Contains(out, "alloc (retracted by ") || !strings.Contains(out, "(retracts alloc)") {
		t.Errorf("audit without refs or retractions:\n%s", out)
	}
	if code, out, _ = p.run(t, "", "org"); code != 0 || !strings.Contains(out, "Ada Jansen (p-ada)") {
		t.Errorf("org without the owner's name:\n%s", out)
	}
	for _, args := range [][]string{{"org", "--format", "csv"}, {"funding", "2025", "--format", "csv"}, {"funding", "2025", "--account", "pool", "--format", "csv"}, {"history", "person", "p-ada", "--format", "csv"}} {
		code, out, errOut := p.run(t, "", args...)
		first, _, _ := strings.Cut(out, "\n")
		if code != 0 || strings.Count(first, ",") < 3 || strings.Count(out, "\n") < 2 {
			t.Errorf("%v: exit %d, not CSV:\n%s%s", args, code, out, errOut)
		}
	}
}

// Issue 14, point 4: dates given in a time zone are shown in it, as dates.
func TestTimesAreShownInTheTimeZone(t *testing.T) {
	data := t.TempDir()
	ams := []string{"--timezone", "Europe/Amsterdam"}
	for _, args := range [][]string{
		{"init", "--root", "p-root", "--effective", "2026-01-01"},
		{"decide", "valuestream.define", "--by", "p-root", "--authority", "root", "--reason", "r", "--effective", "2026-06-01", "--id", "payments", "--name", "Payments"},
	} {
		if code, _, errOut := koers(t, data, "", append(ams, args...)...); code != 0 {
			t.Fatal(errOut)
		}
	}
	_, out, _ := koers(t, data, "", append(ams, "history", "valuestream", "payments")...)
	if !regexp.MustCompile(`name\s+Payments\s+2026-06-01\s`).MatchString(out) || strings.Contains(out, "22:00") {
		t.Errorf("history in Amsterdam: want the valid-from date 2026-06-01:\n%s", out)
	}
	if !regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d CE[S]?T`).MatchString(out) {
		t.Errorf("history in Amsterdam: recorded times not in Amsterdam time:\n%s", out)
	}
	_, out, _ = koers(t, data, "", append(ams, "audit")...)
	if !regexp.MustCompile(`2026-06-01\s+d-`).MatchString(out) {
		t.Errorf("audit in Amsterdam: want the effective date 2026-06-01:\n%s", out)
	}
	_, out, _ = koers(t, data, "", "--timezone", "UTC", "history", "valuestream", "payments")
	if !strings.Contains(out, "2026-05-31 22:00:00 UTC") {
		t.Errorf("history in UTC: want the moment 2026-05-31 22:00:00 UTC:\n%s", out)
	}
}

// Issue 14, point 5: SIGINT stops apply after the decision in flight, with
// exit 130; the same command again resumes and records each decision once.
func TestInterruptedApplyResumes(t *testing.T) {
	p := proc{data: t.TempDir(), db: pgtest.Fresh(t)}
	if code, _, errOut := p.run(t, "", "init", "--root", "p-root"); code != 0 {
		t.Fatal(errOut)
	}
	const n = 1500
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"id":"form-%d","by":"p-root","authority":"root","reason":"r","changes":[{"kind":"team.form","id":"t-%d","name":"T","type":"platform"}]}`+"\n", i, i)
	}
	file := filepath.Join(t.TempDir(), "decisions.jsonl")
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	// A long-running holder of the folder's embedded server, so that the
	// status polls below never hand it over under the apply.
	p.start(t, "serve", "--listen", "127.0.0.1:0")
	cmd := p.command(t.Context(), "apply", "-f", file)
	var out, errOut safeBuffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupted once it is under way (genesis is 2 messages, each
	// decision 2 more), however fast this machine is.
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		_, st, _ := p.run(t, "", "status", "--json")
		var status struct {
			LastSequence uint64 `json:"last_sequence"`
		}
		if json.Unmarshal([]byte(st), &status) == nil && status.LastSequence > 2+2*20 {
			break
		}
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	_ = cmd.Wait()
	m := regexp.MustCompile(`interrupted after (\d+) decisions; run the same command again to resume`).FindStringSubmatch(errOut.String())
	if cmd.ProcessState.ExitCode() != 130 || m == nil || strings.Contains(errOut.String(), "context canceled") {
		t.Fatalf("apply interrupted: exit %d\n%s%s", cmd.ProcessState.ExitCode(), out.String(), errOut.String())
	}
	var done int
	fmt.Sscan(m[1], &done)
	code, again, errAgain := p.run(t, "", "apply", "-f", file)
	if want := fmt.Sprintf("applied %d, already recorded %d, refused 0", n-done, done); code != 0 || !strings.Contains(again, want) {
		t.Fatalf("apply again after %d: exit %d, want %q\n%s%s", done, code, want, again, errAgain)
	}
}
