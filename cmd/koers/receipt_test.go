package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"koers/eventstore"
)

// A receipt is checked offline (no data folder, no database) and any byte
// changed in it makes verify exit 2.
func TestReceiptIsCheckedOfflineAndEveryByteCounts(t *testing.T) {
	data := t.TempDir()
	if code, out, errOut := koers(t, data, "", "init", "--root", "p-root", "--effective", "2025-01-01"); code != 0 {
		t.Fatalf("init: %d %s %s", code, out, errOut)
	}
	lines := strings.Join([]string{
		`{"id":"form","by":"p-root","authority":"root","reason":"r","changes":[{"kind":"team.form","id":"t-1","name":"One","type":"platform"},{"kind":"team.form","id":"t-2","name":"Two","type":"platform"}]}`,
		`{"id":"after","by":"p-root","authority":"root","reason":"r","changes":[{"kind":"team.form","id":"t-3","name":"Three","type":"platform"}]}`,
	}, "\n")
	if code, out, errOut := koers(t, data, lines, "apply", "-f", "-"); code != 0 {
		t.Fatalf("apply: %d %s %s", code, out, errOut)
	}
	dir := t.TempDir()
	anchor := filepath.Join(dir, "anchor.json")
	if code, _, errOut := koers(t, data, "", "anchor", "-o", anchor); code != 0 {
		t.Fatalf("anchor: %s", errOut)
	}
	var head map[string]any
	if b, err := os.ReadFile(anchor); err != nil || json.Unmarshal(b, &head) != nil || head["tree_size"] == nil || head["root"] == nil || head["digest"] == nil {
		t.Fatalf("anchor file without the tree head: %v %v", err, head)
	}
	if code, out, errOut := koers(t, data, "", "verify", "--anchor", anchor); code != 0 {
		t.Fatalf("verify --anchor with a tree head: %d\n%s%s", code, out, errOut)
	}
	// A later anchor extends the earlier: verify proves it.
	if code, out, errOut := koers(t, data, `{"id":"later","by":"p-root","authority":"root","reason":"r","changes":[{"kind":"team.form","id":"t-4","name":"Four","type":"platform"}]}`, "apply", "-f", "-"); code != 0 {
		t.Fatalf("apply: %d %s %s", code, out, errOut)
	}
	anchor2 := filepath.Join(dir, "anchor2.json")
	if code, _, errOut := koers(t, data, "", "anchor", "-o", anchor2); code != 0 {
		t.Fatalf("anchor: %s", errOut)
	}
	if code, out, errOut := koers(t, data, "", "verify", "--no-read-models", "--anchor", anchor, "--anchor", anchor2); code != 0 ||
		!regexp.MustCompile(`tree head at size \d+ extends the one at size \d+ \(RFC 9162 consistency proof, \d+ hashes\)`).MatchString(out) {
		t.Fatalf("verify --anchor OLD --anchor NEW: %d\n%s%s", code, out, errOut)
	}
	file := filepath.Join(dir, "form.receipt.json")
	if code, _, errOut := koers(t, data, "", "receipt", "form", "-o", file); code != 0 {
		t.Fatalf("receipt: %s", errOut)
	}
	if code, _, errOut := koers(t, data, "", "receipt", "nowhere"); code != 1 || !strings.Contains(errOut, "nowhere") {
		t.Fatalf("receipt of an unknown decision: exit %d %s", code, errOut)
	}
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// Offline: a data folder that does not exist, a database nobody serves.
	offline := func(b []byte) (int, string) {
		f := filepath.Join(dir, "check.json")
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		var out, errOut bytes.Buffer
		code := run(context.Background(), []string{"--data", filepath.Join(dir, "none"), "--database-url", "postgres://nobody@127.0.0.1:1/none",
			"verify", "--receipt", f}, strings.NewReader(""), &out, &errOut)
		return code, out.String() + errOut.String()
	}
	if code, out := offline(good); code != 0 || !strings.Contains(out, "receipt ok: decision form, 3 events") {
		t.Fatalf("a genuine receipt offline: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "none")); err == nil {
		t.Fatal("verify --receipt created a data folder")
	}
	for i := range good {
		for _, flip := range []byte{0x01, 0x20, 0x80} {
			b := bytes.Clone(good)
			b[i] ^= flip
			// Every offset through the checker, every 17th through the
			// command as a user runs it.
			if c := eventstore.VerifyReceipt(b); c.OK() {
				t.Fatalf("byte %d (%q) xor %#x in …%s…: the receipt checks", i, good[i], flip, good[max(0, i-60):min(len(good), i+20)])
			}
			if i%17 != 0 {
				continue
			}
			if code, out := offline(b); code != 2 {
				t.Fatalf("byte %d (%q) xor %#x in …%s…: exit %d\n%s", i, good[i], flip, good[max(0, i-60):min(len(good), i+20)], code, out)
			}
		}
	}
	for _, b := range [][]byte{good[:len(good)-1], append(bytes.Clone(good), '\n'), []byte("{}"), nil} {
		if code, _ := offline(b); code != 2 {
			t.Fatalf("a cut, extended or empty receipt: exit %d", code)
		}
	}
}
