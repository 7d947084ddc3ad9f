package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// Issue 14, point 6: help that teaches.
func TestHelpTeaches(t *testing.T) {
	help := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(context.Background(), args, strings.NewReader(""), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	code, out, _ := help("decide", "person.join", "--help")
	for _, want := range []string{"--id", "--name", "--team", "a team's id", "Example:", "koers decide person.join --by p-root", "--team t-core"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("decide person.join --help lacks %q:\n%s", want, out)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"decide", "person.jion", "--by", "p", "--authority", "root", "--reason", "r"}, "did you mean person.join?"},
		{[]string{"decide", "person.join", "--by", "p", "--authority", "root", "--reason", "r", "--tema", "t"}, "did you mean --team?"},
		{[]string{"audit", "--kind", "person.mvoe"}, "did you mean person.move?"},
		{[]string{"history", "persn", "p-1"}, "did you mean person?"},
		{[]string{"import", "--sheet", "peple", "--by", "p", "--authority", "root", "--reason", "r", "x.csv"}, "did you mean people?"},
		{[]string{"decide", "person.move", "--by", "p", "--authority", "root", "--reason", "r", "--person", "p-1", "--team", "t-1"}, "--team is not a field of person.move; its fields: --person, --to"},
	} {
		code, _, errOut := help(append([]string{"--data", filepath.Join(t.TempDir(), "none")}, c.args...)...)
		if code != 1 || !strings.Contains(errOut, c.want) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("%v: exit %d %q, want one line with %q", c.args, code, errOut, c.want)
		}
	}

	// Every command's help has an example.
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Name() == "help" || c.Name() == "completion" || c.Hidden {
			return // cobra's own, or not for people (bench-rebuild is the bench's child process)
		}
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%s has no example in its help", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd(strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{}))

	// Completion: kinds, flag values, ids from the read models.
	data := t.TempDir()
	for _, args := range [][]string{
		{"init", "--root", "p-root"},
		{"decide", "team.form", "--by", "p-root", "--authority", "root", "--reason", "r", "--id", "t-core", "--name", "Core", "--type", "platform"},
		{"org"},
	} {
		if code, _, errOut := koers(t, data, "", args...); code != 0 {
			t.Fatal(errOut)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"__complete", "decide", ""}, "person.join"},
		{[]string{"__complete", "decide", "team.form", "--type", ""}, "stream-aligned"},
		{[]string{"__complete", "history", ""}, "valuestream"},
		{[]string{"__complete", "history", "team", "t-"}, "t-core"},
		{[]string{"__complete", "decide", "team.disband", "--team", ""}, "t-core"},
		{[]string{"__complete", "audit", "--axis", ""}, "effective"},
		{[]string{"__complete", "import", "--sheet", ""}, "valuestreams"},
	} {
		_, out, errOut := koers(t, data, "", c.args...)
		if !strings.Contains(out, c.want+"\n") {
			t.Errorf("%v: completes %q, want %s (%s)", c.args, out, c.want, errOut)
		}
	}
}

// Issue 14, point 2: status says where everything is and how far it got.
func TestStatusAndVersion(t *testing.T) {
	data := t.TempDir()
	for _, args := range [][]string{
		{"init", "--root", "p-root"},
		{"decide", "team.form", "--by", "p-root", "--authority", "root", "--reason", "r", "--id", "t-core", "--name", "Core", "--type", "platform"},
	} {
		if code, _, errOut := koers(t, data, "", args...); code != 0 {
			t.Fatal(errOut)
		}
	}
	code, out, errOut := koers(t, data, "", "status", "--json")
	var st statusOut
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("status --json: exit %d\n%s%s", code, out, errOut)
	}
	abs, _ := filepath.Abs(data)
	if st.Ledger != "KOERS" || st.DataFolder != abs || st.NATS.Mode != "embedded" || st.NATS.ServerVersion == "" || st.NATS.Replicas != 1 ||
		st.NATS.HolderPID != os.Getpid() || st.LastSequence != 5 || len(st.SealKey.Fingerprint) != 16 || st.Database.Schema == "" ||
		st.Projector.Lag != 5 || st.Feeds == nil {
		t.Fatalf("status before any query: %+v", st)
	}
	koers(t, data, "", "org")
	_, out, _ = koers(t, data, "", "status")
	for _, want := range []string{"ledger         KOERS", "last sequence  5", "checkpoint 5, lag 0", "fingerprint " + st.SealKey.Fingerprint, "feeds          none"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if code, out, _ := koers(t, data, "", "version"); code != 0 || !strings.HasPrefix(out, "koers ") || !strings.Contains(out, "go1.") {
		t.Errorf("version: exit %d %q", code, out)
	}
}

// Issue 14, point 7: spreadsheets with ; or tab import as with commas.
func TestImportDetectsTheDelimiter(t *testing.T) {
	data, dir := t.TempDir(), t.TempDir()
	files := map[string]string{
		"valuestreams.csv": "id;name\r\nretail;Retail\r\n",
		"teams.csv":        "id\tname\ttype\nt-shop\tShop\tstream-aligned\n",
		"people.csv":       "id;name;team\np-1;\"Jansen; Ada\";t-shop\n",
	}
	var paths []string
	for _, n := range []string{"valuestreams.csv", "teams.csv", "people.csv"} {
		p := filepath.Join(dir, n)
		os.WriteFile(p, []byte(files[n]), 0o600)
		paths = append(paths, p)
	}
	koers(t, data, "", "init", "--root", "p-root")
	args := append([]string{"import", "--by", "p-root", "--authority", "root", "--reason", "bootstrap"}, paths...)
	if code, out, errOut := koers(t, data, "", args...); code != 0 || !strings.Contains(out, "imported 3, already recorded 0") {
		t.Fatalf("import: exit %d\n%s%s", code, out, errOut)
	}
	if _, out, _ := koers(t, data, "", "history", "person", "p-1"); !strings.Contains(out, "Jansen; Ada") || !strings.Contains(out, "Shop (t-shop)") {
		t.Fatalf("person after import:\n%s", out)
	}
	bad := filepath.Join(dir, "people.csv")
	os.WriteFile(bad, []byte("id;name;team\np-2;Bo;t-shop\nP-3;Cy;t-shop\n"), 0o600)
	code, _, errOut := koers(t, data, "", "import", "--by", "p-root", "--authority", "root", "--reason", "x", bad)
	if code != 1 || !strings.Contains(errOut, `line 3, column id, value "P-3"`) || !strings.Contains(errOut, "p-3") {
		t.Fatalf("bad cell: exit %d %q", code, errOut)
	}
}
