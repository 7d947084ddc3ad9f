package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"koers/internal/pgtest"
)

// Issue 14, point 1: a command finds the ledger where it is told, or says
// where it looked and what to do; it never makes an empty one on the way.
func TestCommandsRefuseWhereNoLedgerIsAndCreateNothing(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "koers-data")
	for _, args := range [][]string{
		{"org"}, {"verify"}, {"audit"}, {"history", "person", "p-1"}, {"funding", "2026"},
		{"decide", "team.form", "--by", "p-root", "--authority", "root", "--reason", "r", "--id", "t-1", "--name", "T", "--type", "platform"},
		{"apply", "-f", "-"}, {"rebuild"}, {"status"},
	} {
		code, out, errOut := koers(t, missing, "", args...)
		if code != 1 || !strings.Contains(errOut, "no ledger KOERS in data folder "+missing) ||
			!strings.Contains(errOut, "koers init --root") || !strings.Contains(errOut, "--data") {
			t.Errorf("%v in a folder that does not exist: exit %d\n%s%s", args, code, out, errOut)
		}
		if _, err := os.Stat(missing); !os.IsNotExist(err) {
			t.Fatalf("%v created the data folder %s (%v)", args, missing, err)
		}
	}

	// A folder that exists but holds no ledger: nothing is created in it.
	empty := t.TempDir()
	code, _, errOut := koers(t, empty, "", "org")
	if code != 1 || !strings.Contains(errOut, "no ledger KOERS in data folder "+empty) {
		t.Fatalf("org in an empty folder: exit %d %s", code, errOut)
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Fatalf("org in an empty folder left %v behind", entries)
	}

	// A ledger folder asked for another stream: refused, and still
	// refused the second time (no stream was made).
	data := t.TempDir()
	if code, _, errOut := koers(t, data, "", "init", "--root", "p-root"); code != 0 {
		t.Fatal(errOut)
	}
	for range 2 {
		code, _, errOut = koers(t, data, "", "--ledger", "OTHER", "verify")
		if code != 1 || !strings.Contains(errOut, "no ledger OTHER in data folder "+data) || !strings.Contains(errOut, "no stream OTHER") {
			t.Fatalf("verify --ledger OTHER: exit %d %s", code, errOut)
		}
	}
	if code, out, errOut := koers(t, data, "", "verify"); code != 0 || !strings.Contains(out, "messages checked  3") {
		t.Fatalf("verify of the ledger that is there: exit %d\n%s%s", code, out, errOut)
	}
}

func TestInitOverALedgerWithAnotherRootRefuses(t *testing.T) {
	data := t.TempDir()
	if code, _, errOut := koers(t, data, "", "init", "--root", "p-root"); code != 0 {
		t.Fatal(errOut)
	}
	if code, out, errOut := koers(t, data, "", "init", "--root", "p-root"); code != 0 || !strings.Contains(out, "already exists") {
		t.Fatalf("init again with the same root: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut := koers(t, data, "", "init", "--root", "someone-else")
	if code != 1 || !strings.Contains(errOut, "held by p-root, not someone-else") || !strings.Contains(errOut, "nothing written") {
		t.Fatalf("init with another root: exit %d\n%s%s", code, out, errOut)
	}
	if _, out, _ := koers(t, data, "", "verify"); !strings.Contains(out, "messages checked  3") {
		t.Fatalf("the ledger after a refused init:\n%s", out)
	}
}

func TestDemoNeverRecordsIntoALedgerNotItsOwn(t *testing.T) {
	// A ledger of its own with the demo's root name, and decisions.
	data := t.TempDir()
	for _, args := range [][]string{
		{"init", "--root", "p-root"},
		{"decide", "team.form", "--by", "p-root", "--authority", "root", "--reason", "r", "--id", "t-1", "--name", "T", "--type", "platform"},
	} {
		if code, _, errOut := koers(t, data, "", args...); code != 0 {
			t.Fatal(errOut)
		}
	}
	code, out, errOut := koers(t, data, "", "demo")
	if code != 1 || !strings.Contains(errOut, "not the demo's first decision") || !strings.Contains(errOut, "nothing written") {
		t.Fatalf("demo into a ledger not its own: exit %d\n%s%s", code, out, errOut)
	}
	if _, out, _ := koers(t, data, "", "verify"); !strings.Contains(out, "messages checked  5") {
		t.Fatalf("the ledger after the refused demo:\n%s", out)
	}

	// A ledger with another root.
	other := t.TempDir()
	if code, _, errOut := koers(t, other, "", "init", "--root", "p-ada"); code != 0 {
		t.Fatal(errOut)
	}
	code, out, errOut = koers(t, other, "", "demo")
	if code != 1 || !strings.Contains(errOut, "held by p-ada") || !strings.Contains(errOut, "another --data") {
		t.Fatalf("demo into a ledger with another root: exit %d\n%s%s", code, out, errOut)
	}
	if _, out, _ := koers(t, other, "", "verify"); !strings.Contains(out, "messages checked  3") {
		t.Fatalf("the ledger after the refused demo:\n%s", out)
	}
}

func TestTheOtherLedgerRemedyWorks(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	shared := pgtest.Fresh(t)
	run := func(data string, args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := runArgs(data, shared, args, &out, &errOut)
		return code, out.String(), errOut.String()
	}
	// The first ledger is further along than the second.
	for _, args := range [][]string{
		{"init", "--root", "p-root"},
		{"decide", "team.form", "--by", "p-root", "--authority", "root", "--reason", "r", "--id", "t-1", "--name", "T", "--type", "platform"},
		{"decide", "team.form", "--by", "p-root", "--authority", "root", "--reason", "r", "--id", "t-2", "--name", "T", "--type", "platform"},
		{"org"},
	} {
		if code, _, errOut := run(a, args...); code != 0 {
			t.Fatal(errOut)
		}
	}
	if code, _, errOut := run(b, "init", "--root", "p-root"); code != 0 {
		t.Fatal(errOut)
	}
	code, _, errOut := run(b, "org")
	remedy := regexp.MustCompile("`(koers [^`]*rebuild)`").FindStringSubmatch(errOut)
	if code != 1 || remedy == nil {
		t.Fatalf("org on read models of another ledger: exit %d %q; want a refusal naming the command that helps", code, errOut)
	}
	if code, out, errOut := run(b, strings.Fields(remedy[1])[1:]...); code != 0 {
		t.Fatalf("the proposed remedy %q: exit %d\n%s%s", remedy[1], code, out, errOut)
	}
	if code, out, errOut := run(b, "org"); code != 0 || strings.Contains(out, "t-1") {
		t.Fatalf("org after the remedy: exit %d\n%s%s", code, out, errOut)
	}
}
