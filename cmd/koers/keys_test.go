package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"koers/eventstore"
)

// A writer without the seal key file is refused and no key is made up;
// verify needs no secret at all.
func TestWritersNeedTheSealKeyVerifyDoesNot(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	data := t.TempDir()
	if code, out, errOut := koers(t, data, "", "init", "--root", "p-root", "--effective", "2025-01-01"); code != 0 {
		t.Fatalf("init: %d %s %s", code, out, errOut)
	}
	key := filepath.Join(data, "seal.key")
	if err := os.Rename(key, key+".elsewhere"); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := koers(t, data, "", "decide", "valuestream.define", "--by", "p-root", "--authority", "root", "--reason", "r", "--id", "payments", "--name", "Payments")
	if code != 1 || !strings.Contains(errOut, "seal key file") || !strings.Contains(errOut, "is missing") {
		t.Fatalf("decide without the seal key: exit %d %s", code, errOut)
	}
	if _, err := os.Stat(key); err == nil {
		t.Fatal("a writer made up a new seal key")
	}
	code, out, errOut := koers(t, data, "", "verify")
	if code != 0 || !strings.Contains(out, "problems          0") || !regexp.MustCompile(`[0-9a-f]{16}\s+\d+\s+1\s+[0-9a-f]{64}`).MatchString(out) {
		t.Fatalf("verify with public material only: exit %d\n%s%s", code, out, errOut)
	}
	// Another key is not the ledger's: refused, not silently used.
	if err := os.WriteFile(key, []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = koers(t, data, "", "decide", "valuestream.define", "--by", "p-root", "--authority", "root", "--reason", "r", "--id", "payments", "--name", "Payments")
	if code != 1 || !strings.Contains(errOut, "key in force") {
		t.Fatalf("decide with a foreign seal key: exit %d %s", code, errOut)
	}
}

func TestSignaturesRequiredKeysRotatedIDsKeptByContent(t *testing.T) {
	cfg := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfg)
	data := t.TempDir()
	code, out, errOut := koers(t, data, "", "init", "--root", "p-root", "--effective", "2025-01-01", "--require-signatures")
	if code != 0 || !strings.Contains(errOut, filepath.Join(cfg, "koers", "keys", "p-root.key")) {
		t.Fatalf("init --require-signatures: %d %s %s", code, out, errOut)
	}
	decide := func(args ...string) (int, string, string) {
		return koers(t, data, "", append([]string{"decide", "valuestream.define", "--by", "p-root", "--authority", "root", "--reason", "r"}, args...)...)
	}
	// Signed with the root's key from the configuration folder.
	if code, out, errOut := decide("--decision-id", "vs-pay", "--id", "payments", "--name", "Payments"); code != 0 {
		t.Fatalf("signed decide: %d %s %s", code, out, errOut)
	}
	// The same id again: the same content is a duplicate, other content refused.
	if code, out, _ := decide("--decision-id", "vs-pay", "--id", "payments", "--name", "Payments"); code != 0 || !strings.Contains(out, "already recorded") {
		t.Fatalf("same id, same content: %d %s", code, out)
	}
	if code, _, errOut := decide("--decision-id", "vs-pay", "--id", "payments", "--name", "Payments (new)"); code != 1 ||
		!regexp.MustCompile(`already recorded with other content \(decision at sequence \d+, 20`).MatchString(errOut) {
		t.Fatalf("same id, other content: %d %s", code, errOut)
	}
	// Ada's key: made, its registration printed and recorded by the root.
	code, reg, errOut := koers(t, data, "", "keys", "new", "--actor", "p-ada", "--by", "p-root")
	if code != 0 || !strings.Contains(reg, `"actor.register-key"`) {
		t.Fatalf("keys new: %d %s %s", code, reg, errOut)
	}
	if fi, err := os.Stat(filepath.Join(cfg, "koers", "keys", "p-ada.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("ada's key: %v", err)
	}
	if code, out, errOut := koers(t, data, reg, "apply", "-f", "-"); code != 0 || !strings.Contains(out, "applied 1") {
		t.Fatalf("apply the registration: %d %s %s", code, out, errOut)
	}
	// Signed with a key not registered for the root: refused.
	if code, _, errOut := decide("--id", "lending", "--name", "Lending", "--key", filepath.Join(cfg, "koers", "keys", "p-ada.key")); code != 1 || !strings.Contains(errOut, "does not verify") {
		t.Fatalf("wrongly signed: %d %s", code, errOut)
	}
	// Without the root's key the decision is unsigned: refused.
	rootKey := filepath.Join(cfg, "koers", "keys", "p-root.key")
	if err := os.Rename(rootKey, rootKey+".away"); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := decide("--id", "lending", "--name", "Lending"); code != 1 || !strings.Contains(errOut, "is not signed") {
		t.Fatalf("unsigned under the policy: %d %s", code, errOut)
	}
	if err := os.Rename(rootKey+".away", rootKey); err != nil {
		t.Fatal(err)
	}
	// The ledger's seal key rotated: old events keep verifying.
	code, out, errOut = koers(t, data, "", "keys", "rotate", "--by", "p-root")
	if code != 0 || !strings.Contains(out, "succeeds") {
		t.Fatalf("keys rotate: %d %s %s", code, out, errOut)
	}
	if m, _ := filepath.Glob(filepath.Join(data, "seal.key.retired-*")); len(m) != 1 {
		t.Fatalf("the old key is not kept: %v", m)
	}
	if code, out, errOut := decide("--id", "lending", "--name", "Lending"); code != 0 {
		t.Fatalf("decide after the rotation: %d %s %s", code, out, errOut)
	}
	code, out, errOut = koers(t, data, "", "verify")
	if code != 0 || strings.Count(out, "\n") < 8 || len(regexp.MustCompile(`(?m)^[0-9a-f]{16}\s`).FindAllString(out, -1)) != 2 {
		t.Fatalf("verify after the rotation: %d\n%s%s", code, out, errOut)
	}
	// Receipts across the rotation: a decision sealed with the old key and
	// one with the new, each checked offline with both key records.
	if code, out, errOut := decide("--decision-id", "vs-cards", "--id", "cards", "--name", "Cards"); code != 0 {
		t.Fatalf("decide after the rotation: %d %s %s", code, out, errOut)
	}
	for _, id := range []string{"genesis", "vs-pay", "vs-cards"} {
		code, receipt, errOut := koers(t, data, "", "receipt", id)
		if code != 0 || strings.Count(receipt, `"key_records"`) != 1 {
			t.Fatalf("receipt %s: %d %s", id, code, errOut)
		}
		c := eventstore.VerifyReceipt([]byte(receipt))
		if r, err := eventstore.ParseReceipt([]byte(receipt)); !c.OK() || err != nil || len(r.KeyRecords) != 2 {
			t.Fatalf("receipt %s across a rotation: %+v %v", id, c.Problems, err)
		}
	}
	fmt.Fprint(os.Stderr) // keep fmt for debugging output
}
