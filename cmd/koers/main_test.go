package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"koers/internal/pgtest"
)

var dbs = struct {
	sync.Mutex
	m map[string]string
}{m: map[string]string{}}

// koers runs the command as a user would and returns its exit code and output.
func koers(t *testing.T, data string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	// Each data folder is its own ledger: it gets its own read-model database.
	dbs.Lock()
	db, ok := dbs.m[data]
	if !ok {
		db = pgtest.Fresh(t)
		dbs.m[data] = db
	}
	dbs.Unlock()
	code := run(context.Background(), append([]string{"--data", data, "--database-url", db}, args...), strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestDemoRecordsTheSampleHistoryOnceAndVerifies(t *testing.T) {
	data := t.TempDir()
	code, out, errOut := koers(t, data, "", "demo")
	if code != 0 || !regexp.MustCompile(`sample history: \d{3,} decisions recorded, 0 already there`).MatchString(out) ||
		!strings.Contains(out, "problems          0") || !strings.Contains(out, "The ten latest decisions") {
		t.Fatalf("demo: exit %d\n%s%s", code, out, errOut)
	}
	// The tour: the portfolio board's proposals, one approved by its
	// quorum, one expired.
	if !strings.Contains(out, "approved by p-0002: quorum reached, decision demo-board-approved recorded") ||
		!strings.Contains(out, "proposal demo-board-expires is expired since") ||
		!regexp.MustCompile(`demo-board-expires\s+expired`).MatchString(out) || !strings.Contains(out, "m-portfolio-board → root") {
		t.Fatalf("demo tour of the board's proposals:\n%s", out)
	}
	if fi, err := os.Stat(filepath.Join(data, "seal.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("seal key: %v, mode %v; want a file only its owner can read", err, fi.Mode())
	}
	code, out, errOut = koers(t, data, "", "demo")
	if code != 0 || !strings.Contains(out, " 0 decisions recorded") {
		t.Fatalf("second demo: exit %d\n%s%s", code, out, errOut)
	}
}

func TestApplyStopsAtARefusedLineAndNamesIt(t *testing.T) {
	data := t.TempDir()
	if code, out, errOut := koers(t, data, "", "init", "--root", "p-root", "--effective", "2025-01-01"); code != 0 {
		t.Fatalf("init: %d %s %s", code, out, errOut)
	}
	lines := strings.Join([]string{
		`{"id":"form","by":"p-root","authority":"root","reason":"r","changes":[{"kind":"team.form","id":"t-1","name":"One","type":"platform"}]}`,
		``,
		`# a comment`,
		`{"id":"bad","by":"p-root","authority":"root","reason":"r","changes":[{"kind":"person.join","id":"p-1","name":"A","team":"t-missing"}]}`,
		`{"id":"after","by":"p-root","authority":"root","reason":"r","changes":[{"kind":"team.form","id":"t-2","name":"Two","type":"platform"}]}`,
	}, "\n")
	code, out, errOut := koers(t, data, lines, "apply", "-f", "-")
	if code != 1 || !strings.Contains(errOut, "line 4:") || !strings.Contains(errOut, "t-missing") ||
		!strings.Contains(errOut, "nothing after line 4 was applied") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Fatalf("apply with a bad line 4: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	if !strings.Contains(out, "applied 1, already recorded 0, refused 1") {
		t.Fatalf("summary: %s", out)
	}

	code, out, errOut = koers(t, data, lines, "apply", "-f", "-", "--keep-going")
	if code != 1 || !strings.Contains(out, "applied 1, already recorded 1, refused 1") {
		t.Fatalf("apply --keep-going: exit %d\n%s%s", code, out, errOut)
	}
}

func TestVerifyComparesAKeptDigest(t *testing.T) {
	data := t.TempDir()
	if code, _, errOut := koers(t, data, "", "demo"); code != 0 {
		t.Fatal(errOut)
	}
	code, out, _ := koers(t, data, "", "verify", "--at", "10")
	digest := regexp.MustCompile(`digest at 10\s+([0-9a-f]{64})`).FindStringSubmatch(out)
	if code != 0 || digest == nil {
		t.Fatalf("verify --at 10: exit %d\n%s", code, out)
	}
	if code, out, errOut := koers(t, data, "", "verify", "--at", "10", "--digest", digest[1]); code != 0 {
		t.Fatalf("verify with the kept digest: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut := koers(t, data, "", "verify", "--at", "10", "--digest", strings.Repeat("0", 64))
	if code != 2 || !strings.Contains(out, "auditor") || !strings.Contains(errOut, "1 problems") {
		t.Fatalf("verify with a wrong digest: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := koers(t, data, "", "verify", "--digest", "abc"); code != 1 || !strings.Contains(errOut, "--at") {
		t.Fatalf("--digest without --at: exit %d %s", code, errOut)
	}
}

func TestBadSettingsAreRefusedWithOneLine(t *testing.T) {
	data := t.TempDir()
	if code, _, errOut := koers(t, data, "", "init", "--root", "p-root"); code != 0 {
		t.Fatal(errOut)
	}
	os.WriteFile(filepath.Join(data, "seal.key"), []byte("nothex"), 0o600)
	code, _, errOut := koers(t, data, "", "apply", "-f", "-")
	if code != 1 || !strings.Contains(errOut, "seal key") {
		t.Fatalf("bad seal key: exit %d %s", code, errOut)
	}
	// Secrets that others may read are refused, with the command that
	// fixes it (issue 13).
	exposed := t.TempDir()
	key := filepath.Join(exposed, "seal.key")
	os.WriteFile(key, []byte(strings.Repeat("ab", 32)+"\n"), 0o600)
	os.Chmod(key, 0o644)
	code, _, errOut = koers(t, exposed, "", "apply", "-f", "-") // a writer: verify reads no key

	if code != 1 || !strings.Contains(errOut, "seal key "+key+" has mode 0644") || !strings.Contains(errOut, "chmod 600 "+key) ||
		strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Fatalf("seal key readable by others: exit %d %s", code, errOut)
	}
	os.Chmod(key, 0o600)
	tokens := filepath.Join(exposed, "tokens")
	os.WriteFile(tokens, []byte("p-root rootrootrootrootroot\n"), 0o600)
	os.Chmod(tokens, 0o640)
	code, _, errOut = koers(t, exposed, "", "serve", "--listen", "127.0.0.1:0", "--tokens", tokens)
	if code != 1 || !strings.Contains(errOut, "tokens file "+tokens+" has mode 0640") || !strings.Contains(errOut, "chmod 600 "+tokens) {
		t.Fatalf("tokens file readable by the group: exit %d %s", code, errOut)
	}
	code, _, errOut = koers(t, t.TempDir(), "", "--timezone", "Mars/Olympus", "verify")
	if code != 1 || !strings.Contains(errOut, "Mars/Olympus") {
		t.Fatalf("bad time zone: exit %d %s", code, errOut)
	}
	code, _, errOut = koers(t, t.TempDir(), "", "init")
	if code != 1 || !strings.Contains(errOut, "root") {
		t.Fatalf("init without --root: exit %d %s", code, errOut)
	}
}

func TestInitDecideThenQuery(t *testing.T) {
	data := t.TempDir()
	steps := [][]string{
		{"init", "--root", "p-root", "--effective", "2025-01-01"},
		{"decide", "valuestream.define", "--by", "p-root", "--authority", "root", "--reason", "r", "--effective", "2025-01-01", "--id", "payments", "--name", "Payments"},
		{"decide", "team.form", "--by", "p-root", "--authority", "root", "--reason", "r", "--effective", "2025-01-01", "--id", "t-core", "--name", "Core", "--type", "stream-aligned"},
		{"decide", "person.join", "--by", "p-root", "--authority", "root", "--reason", "r", "--effective", "2025-01-01", "--id", "p-1", "--name", "Ada", "--team", "t-core"},
		{"decide", "product.launch", "--by", "p-root", "--authority", "root", "--reason", "one owner", "--effective", "2025-02-01", "--id", "pay-app", "--name", "Pay app", "--valuestream", "payments", "--owner", "p-1", "--decision-id", "launch-pay-app"},
		{"decide", "team.assign", "--by", "p-root", "--authority", "root", "--reason", "r", "--effective", "2025-02-01", "--team", "t-core", "--product", "pay-app"},
		{"decide", "budget.open", "--by", "p-root", "--authority", "root", "--reason", "r", "--effective", "2025-01-01", "--period", "2025", "--amount", "1000.00", "--currency", "EUR"},
		{"decide", "funding.allocate", "--by", "p-root", "--authority", "root", "--reason", "r", "--effective", "2025-02-02", "--period", "2025", "--to", "product:pay-app", "--amount", "250.50"},
	}
	for _, s := range steps {
		if code, out, errOut := koers(t, data, "", s...); code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", s, code, out, errOut)
		}
	}
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"org"}, []string{"Payments (payments)", "Pay app (pay-app)", "Ada (p-1)", "Core (t-core) (1)"}},
		{[]string{"org", "--as-of", "2025-01-15"}, []string{"Payments (payments)  -        -"}},
		{[]string{"audit", "--kind", "product.launch"}, []string{"launch-pay-app", "one owner"}},
		{[]string{"audit", "--format", "csv"}, []string{"id,actor,actor_name,mandate", "launch-pay-app,p-root,,root"}},
		{[]string{"funding", "2025"}, []string{"product:pay-app", "250.50 EUR", "pool", "749.50 EUR"}},
		{[]string{"funding", "2025", "--account", "product:pay-app"}, []string{"funding.allocated", "250.50"}},
		{[]string{"history", "person", "p-1"}, []string{"team", "t-core"}},
		{[]string{"report", "transition", "--from", "2025-Q1", "--to", "2025-Q2"}, []string{"2025-Q1", "2025-Q2"}},
	}
	for _, c := range cases {
		code, out, errOut := koers(t, data, "", c.args...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s", c.args, code, errOut)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: output lacks %q:\n%s", c.args, w, out)
			}
		}
	}
	code, _, errOut := koers(t, data, "", "decide", "team.disband", "--by", "p-1", "--authority", "root", "--reason", "r", "--team", "t-core")
	if code != 1 || !strings.Contains(errOut, "only p-root may decide under it") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Fatalf("decision without the mandate: exit %d %q", code, errOut)
	}
	code, _, errOut = koers(t, data, "", "audit", "--axis", "sideways")
	if code != 1 || !strings.Contains(errOut, "--axis") {
		t.Fatalf("bad --axis: exit %d %q", code, errOut)
	}
}

func TestImportBootstrapsFromSpreadsheets(t *testing.T) {
	data := t.TempDir()
	dir := t.TempDir()
	files := map[string]string{
		"valuestreams.csv": "id,name\nretail,Retail\n",
		"teams.csv":        "id,name,type\nt-shop,Shop,stream-aligned\n",
		"people.csv":       "name,id,team\nAnn,p-1,t-shop\nBob,p-2,t-shop\n",
		"products.csv":     "id,name,valuestream,owner,teams\nshop,Web shop,retail,p-1,t-shop\n",
	}
	var paths []string
	for _, n := range []string{"valuestreams.csv", "teams.csv", "people.csv", "products.csv"} {
		p := filepath.Join(dir, n)
		os.WriteFile(p, []byte(files[n]), 0o600)
		paths = append(paths, p)
	}
	koers(t, data, "", "init", "--root", "p-root", "--effective", "2024-01-01")
	args := append([]string{"import", "--by", "p-root", "--authority", "root", "--reason", "bootstrap", "--effective", "2025-01-01"}, paths...)
	if code, out, errOut := koers(t, data, "", args...); code != 0 || !strings.Contains(out, "imported 5, already recorded 0") {
		t.Fatalf("import: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := koers(t, data, "", args...); code != 0 || !strings.Contains(out, "imported 0, already recorded 5") {
		t.Fatalf("second import: exit %d\n%s", code, out)
	}
	if _, out, _ := koers(t, data, "", "org"); !strings.Contains(out, "shop") || !strings.Contains(out, "Shop (t-shop) (2)") {
		t.Fatalf("org after import:\n%s", out)
	}
	bad := filepath.Join(dir, "people.csv")
	os.WriteFile(bad, []byte("id,name,team\np-3,Cy,t-none\n"), 0o600)
	code, _, errOut := koers(t, data, "", "import", "--by", "p-root", "--authority", "root", "--reason", "x", bad)
	if code != 1 || !strings.Contains(errOut, "line 2") || !strings.Contains(errOut, "t-none") {
		t.Fatalf("bad row: exit %d %q", code, errOut)
	}
}

func TestReadModelsOfAnotherLedgerAreNeverMixed(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	shared := pgtest.Fresh(t)
	run := func(data string, args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := runArgs(data, shared, args, &out, &errOut)
		return code, out.String(), errOut.String()
	}
	for _, d := range []string{a, b} {
		if code, _, errOut := run(d, "init", "--root", "p-root"); code != 0 {
			t.Fatal(errOut)
		}
	}
	if code, _, errOut := run(a, "org"); code != 0 {
		t.Fatalf("first ledger: %s", errOut)
	}
	code, _, errOut := run(b, "org")
	if code != 1 || !strings.Contains(errOut, "koers rebuild") {
		t.Fatalf("second ledger on the same read models: exit %d %q; want a refusal saying to rebuild", code, errOut)
	}
	if code, _, errOut := run(b, "rebuild"); code != 0 {
		t.Fatalf("rebuild: %s", errOut)
	}
	if code, _, errOut := run(b, "org"); code != 0 {
		t.Fatalf("after rebuild: %s", errOut)
	}
}

func runArgs(data, db string, args []string, out, errOut *bytes.Buffer) int {
	return run(context.Background(), append([]string{"--data", data, "--database-url", db}, args...), strings.NewReader(""), out, errOut)
}
