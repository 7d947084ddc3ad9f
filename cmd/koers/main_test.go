package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// koers runs the command as a user would and returns its exit code and output.
func koers(t *testing.T, data string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), append([]string{"--data", data}, args...), strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestDemoRecordsTheSampleHistoryOnceAndVerifies(t *testing.T) {
	data := t.TempDir()
	code, out, errOut := koers(t, data, "", "demo")
	if code != 0 || !strings.Contains(out, "applied 10, already recorded 0") || !strings.Contains(out, "problems          0") {
		t.Fatalf("demo: exit %d\n%s%s", code, out, errOut)
	}
	if fi, err := os.Stat(filepath.Join(data, "seal.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("seal key: %v, mode %v; want a file only its owner can read", err, fi.Mode())
	}
	code, out, _ = koers(t, data, "", "demo")
	if code != 0 || !strings.Contains(out, "applied 0, already recorded 10") {
		t.Fatalf("second demo: exit %d\n%s", code, out)
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
	os.WriteFile(filepath.Join(data, "seal.key"), []byte("nothex"), 0o600)
	code, _, errOut := koers(t, data, "", "verify")
	if code != 1 || !strings.Contains(errOut, "seal key") {
		t.Fatalf("bad seal key: exit %d %s", code, errOut)
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
