package main

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// Names nobody else in the tests uses, so that finding one means it leaked.
const (
	erasedName = "Wilhelmina Qzandvoort"
	keptName   = "Bartholomeus Yxerman"
)

// storeHolds reports whether any file under the data folder's NATS store
// holds s, in its bytes.
func storeHolds(t *testing.T, data, s string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(filepath.Join(data, "nats"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if i := bytes.Index(b, []byte(s)); i >= 0 {
			t.Logf("%s: %q", p, b[max(0, i-300):min(len(b), i+100)])
			found = append(found, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// pgDump dumps the read models' database of a data folder (schema and
// data of every schema), as an operator's backup would.
func pgDump(t *testing.T, data string) string {
	t.Helper()
	dbs.Lock()
	db := dbs.m[data]
	dbs.Unlock()
	bin, err := exec.LookPath("pg_dump")
	if err != nil {
		matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_dump")
		if len(matches) == 0 {
			t.Fatal("pg_dump is not on PATH nor under /usr/lib/postgresql/*/bin: install the PostgreSQL client")
		}
		bin = matches[len(matches)-1]
	}
	out, err := exec.Command(bin, "--dbname", db).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	return string(out)
}

func mustKoers(t *testing.T, data, stdin string, args ...string) string {
	t.Helper()
	code, out, errOut := koers(t, data, stdin, args...)
	if code != 0 {
		t.Fatalf("koers %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func TestPersonalNamesAreSealedInTheLogAndErasedEverywhere(t *testing.T) {
	data := t.TempDir()
	mustKoers(t, data, "", "init", "--root", "p-root", "--effective", "2025-01-01")
	mustKoers(t, data, strings.Join([]string{
		`{"id":"form","by":"p-root","authority":"root","reason":"a team","effective":"2025-02-01","changes":[{"kind":"team.form","id":"t-1","name":"Payments","type":"platform"}]}`,
		`{"id":"hire","by":"p-root","authority":"root","reason":"two hires","effective":"2025-02-01","changes":[` +
			`{"kind":"person.join","id":"p-1","name":"` + erasedName + `","team":"t-1"},` +
			`{"kind":"person.join","id":"p-2","name":"` + keptName + `","team":"t-1"}]}`,
	}, "\n"), "apply", "-f", "-")
	// The read models show the names in clear.
	out := mustKoers(t, data, "", "history", "person", "p-1")
	if !strings.Contains(out, erasedName) {
		t.Fatalf("history of p-1 before erasure does not show the name:\n%s", out)
	}
	// The audit shows the decision's changes and effects with the names
	// opened, never their sealed form.
	out = mustKoers(t, data, "", "audit", "--kind", "person.join", "--format", "json")
	if strings.Count(out, erasedName) != 2 || strings.Contains(out, "pd1:") {
		t.Fatalf("audit of the hiring shows the name %d times (want its change and its effect), sealed names %v:\n%s",
			strings.Count(out, erasedName), strings.Contains(out, "pd1:"), out)
	}
	for _, name := range []string{erasedName, keptName} {
		if files := storeHolds(t, data, name); len(files) > 0 {
			t.Fatalf("the NATS store holds %q in clear in %v", name, files)
		}
	}
	backup := filepath.Join(t.TempDir(), "keys.jsonl")
	if out := mustKoers(t, data, "", "keys", "backup", "-o", backup); !strings.Contains(out, "2 data keys") {
		t.Fatalf("keys backup: %s", out)
	}

	// The same decision again is a retry, not another decision: its
	// names seal to the same commitments.
	again := `{"id":"hire","by":"p-root","authority":"root","reason":"two hires","effective":"2025-02-01","changes":[` +
		`{"kind":"person.join","id":"p-1","name":"` + erasedName + `","team":"t-1"},` +
		`{"kind":"person.join","id":"p-2","name":"` + keptName + `","team":"t-1"}]}`
	if out := mustKoers(t, data, again, "apply", "-f", "-"); !strings.Contains(out, "already recorded 1") {
		t.Fatalf("the same decision again: %s", out)
	}
	other := strings.Replace(again, keptName, "Someone Else", 1)
	if code, _, errOut := koers(t, data, other, "apply", "-f", "-"); code == 0 || !strings.Contains(errOut, "other content") {
		t.Fatalf("the same id with another name: exit %d %s", code, errOut)
	}

	mustKoers(t, data, `{"id":"erase-1","by":"p-root","authority":"root","reason":"erasure request 2026-114","effective":"2025-03-01","changes":[{"kind":"person.erase","person":"p-1"}]}`,
		"apply", "-f", "-")
	out = mustKoers(t, data, "", "history", "person", "p-1")
	if strings.Contains(out, erasedName) || !strings.Contains(out, "erased person (p-1)") {
		t.Fatalf("history of p-1 after erasure:\n%s", out)
	}
	out = mustKoers(t, data, "", "audit", "--kind", "person.join", "--format", "json")
	if strings.Contains(out, erasedName) || strings.Count(out, "erased person (p-1)") != 2 || strings.Count(out, keptName) != 2 {
		t.Fatalf("audit of the hiring after erasure:\n%s", out)
	}
	out = mustKoers(t, data, "", "org", "--format", "csv")
	if !strings.Contains(out, keptName) || !strings.Contains(out, "p-1") {
		t.Fatalf("org after erasure keeps the person and the other name:\n%s", out)
	}
	dump := pgDump(t, data)
	if strings.Contains(dump, erasedName) || !strings.Contains(dump, keptName) || !strings.Contains(dump, "erased person (p-1)") {
		t.Fatalf("pg_dump after erasure: erased name present %v, kept name present %v",
			strings.Contains(dump, erasedName), strings.Contains(dump, keptName))
	}
	if code, out, errOut := koers(t, data, "", "verify"); code != 0 {
		t.Fatalf("verify after erasure: exit %d\n%s%s", code, out, errOut)
	}
	// A second erasure of the same person is refused; its retraction too.
	if code, _, errOut := koers(t, data, `{"id":"erase-again","by":"p-root","authority":"root","reason":"r","changes":[{"kind":"person.erase","person":"p-1"}]}`,
		"apply", "-f", "-"); code == 0 || !strings.Contains(errOut, "erased already") {
		t.Fatalf("erasing twice: exit %d %s", code, errOut)
	}
	if code, _, errOut := koers(t, data, `{"id":"unerase","by":"p-root","authority":"root","reason":"r","changes":[{"kind":"decision.retract","decision":"erase-1"}]}`,
		"apply", "-f", "-"); code == 0 || !strings.Contains(errOut, "cannot be undone") {
		t.Fatalf("retracting an erasure: exit %d %s", code, errOut)
	}

	// A rebuild never brings the name back.
	mustKoers(t, data, "", "rebuild")
	dump = pgDump(t, data)
	if strings.Contains(dump, erasedName) || !strings.Contains(dump, keptName) {
		t.Fatalf("pg_dump after rebuild: erased name present %v, kept name present %v",
			strings.Contains(dump, erasedName), strings.Contains(dump, keptName))
	}

	// The key bucket is lost: a rebuild is refused with the person and the
	// bucket named, never garbage.
	withNATS(t, data, func(js jetstream.JetStream) {
		if err := js.DeleteKeyValue(context.Background(), "KOERS_KEYS"); err != nil {
			t.Fatal(err)
		}
	})
	code, out, errOut := koers(t, data, "", "rebuild")
	if code == 0 || !strings.Contains(errOut, "p-2") || !strings.Contains(errOut, "KOERS_KEYS") || !strings.Contains(errOut, "koers keys restore") {
		t.Fatalf("rebuild without the key bucket: exit %d\n%s%s", code, out, errOut)
	}
	// The backup, taken before the erasure, brings p-2's key back and
	// never p-1's: the log records the erasure.
	if out := mustKoers(t, data, "", "keys", "restore", backup); !strings.Contains(out, "restored 1, already there 0, erased since and not restored 1") {
		t.Fatalf("keys restore: %s", out)
	}
	mustKoers(t, data, "", "rebuild")
	dump = pgDump(t, data)
	if strings.Contains(dump, erasedName) || !strings.Contains(dump, keptName) || !strings.Contains(dump, "erased person (p-1)") {
		t.Fatalf("pg_dump after restore and rebuild: erased name present %v, kept name present %v",
			strings.Contains(dump, erasedName), strings.Contains(dump, keptName))
	}
	if code, out, errOut := koers(t, data, "", "verify"); code != 0 {
		t.Fatalf("verify at the end: exit %d\n%s%s", code, out, errOut)
	}
	for _, name := range []string{erasedName, keptName} {
		if files := storeHolds(t, data, name); len(files) > 0 {
			t.Fatalf("the NATS store holds %q in clear in %v", name, files)
		}
	}
}

// A signed hiring covers the name through its commitment: verify checks
// the signature from the log alone, before and after the erasure, and the
// same signed decision again is a retry.
func TestSignedNamesVerifyAfterErasure(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	data := t.TempDir()
	mustKoers(t, data, "", "init", "--root", "p-root", "--effective", "2025-01-01", "--require-signatures")
	decide := func(args ...string) (int, string, string) {
		return koers(t, data, "", append([]string{"decide", "--by", "p-root", "--authority", "root", "--reason", "r"}, args...)...)
	}
	if code, out, errOut := decide("team.form", "--id", "t-1", "--name", "Payments", "--type", "platform"); code != 0 {
		t.Fatalf("team.form: %d %s %s", code, out, errOut)
	}
	hire := []string{"person.join", "--decision-id", "hire", "--id", "p-1", "--name", erasedName, "--team", "t-1"}
	if code, out, errOut := decide(hire...); code != 0 {
		t.Fatalf("signed person.join: %d %s %s", code, out, errOut)
	}
	if code, out, errOut := decide(hire...); code != 0 || !strings.Contains(out, "already recorded") {
		t.Fatalf("the same signed hiring again: %d %s %s", code, out, errOut)
	}
	other := append([]string(nil), hire...)
	other[6] = keptName
	if code, _, errOut := decide(other...); code != 1 || !strings.Contains(errOut, "other content") {
		t.Fatalf("the same id with another name: %d %s", code, errOut)
	}
	if code, out, errOut := koers(t, data, "", "verify"); code != 0 {
		t.Fatalf("verify: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := decide("person.erase", "--person", "p-1"); code != 0 {
		t.Fatalf("signed person.erase: %d %s %s", code, out, errOut)
	}
	if code, out, errOut := koers(t, data, "", "verify"); code != 0 || !strings.Contains(out, "problems          0") {
		t.Fatalf("verify after erasure: exit %d\n%s%s", code, out, errOut)
	}
	if files := storeHolds(t, data, erasedName); len(files) > 0 {
		t.Fatalf("the NATS store holds the name in %v", files)
	}
}

// An erasure under a board's mandate is a proposal; the quorum's approval
// records it and destroys the key at once, before any projector runs.
func TestABoardDecidesAnErasure(t *testing.T) {
	data := t.TempDir()
	mustKoers(t, data, "", "init", "--root", "p-ceo", "--effective", "2026-01-01")
	setup := strings.Replace(strings.ReplaceAll(boardSetup, "\n", ""), `"name":"Zed"`, `"name":"`+erasedName+`"`, 1)
	setup = strings.Replace(setup, `"kinds":["funding.*"]`, `"kinds":["funding.*","person.erase","person.join"]`, 1)
	mustKoers(t, data, setup, "apply", "-f", "-")
	// A hiring proposed to the board: the proposal carries the name too.
	const proposedName = "Quirinus Vandermolenpad"
	if out := mustKoers(t, data, "", "decide", "person.join", "--decision-id", "hire-new", "--by", "p-ada", "--authority", "m-board",
		"--reason", "a hire", "--id", "p-new", "--name", proposedName, "--team", "t-core"); !strings.Contains(out, "recorded as a proposal") {
		t.Fatalf("propose the hire: %s", out)
	}
	mustKoers(t, data, "", "approve", "hire-new", "--by", "p-bo")
	if out := mustKoers(t, data, "", "history", "person", "p-new"); !strings.Contains(out, proposedName) {
		t.Fatalf("the hire, approved:\n%s", out)
	}
	if files := storeHolds(t, data, proposedName); len(files) > 0 {
		t.Fatalf("the NATS store holds the proposed name in %v", files)
	}
	mustKoers(t, data, "", "decide", "person.erase", "--by", "p-ceo", "--authority", "root", "--reason", "erasure request 8", "--person", "p-new")
	mustKoers(t, data, "", "org")
	if dump := pgDump(t, data); strings.Contains(dump, proposedName) || strings.Count(dump, "erased person (p-new)") < 4 {
		t.Fatalf("pg_dump after erasing a person hired by proposal: name present %v, labels %d",
			strings.Contains(dump, proposedName), strings.Count(dump, "erased person (p-new)"))
	}
	if out := mustKoers(t, data, "", "decide", "person.erase", "--decision-id", "erase-zed", "--by", "p-ada", "--authority", "m-board",
		"--reason", "erasure request 7", "--person", "p-zed"); !strings.Contains(out, "recorded as a proposal") {
		t.Fatalf("propose the erasure: %s", out)
	}
	if out := mustKoers(t, data, "", "approve", "erase-zed", "--by", "p-bo"); !strings.Contains(out, "quorum reached") {
		t.Fatalf("approve: %s", out)
	}
	withNATS(t, data, func(js jetstream.JetStream) {
		kv, err := js.KeyValue(context.Background(), "KOERS_KEYS")
		if err != nil {
			t.Fatal(err)
		}
		e, err := kv.Get(context.Background(), "p-zed")
		if err != nil || string(e.Value()) != "erased" {
			t.Fatalf("p-zed's key after the board's erasure: %v", err)
		}
	})
	if out := mustKoers(t, data, "", "history", "person", "p-zed"); strings.Contains(out, erasedName) || !strings.Contains(out, "erased person (p-zed)") {
		t.Fatalf("history after the board's erasure:\n%s", out)
	}
}

// The names key is kept like the seal key: refused when others may read
// it, never made up while the bucket holds keys it wrapped; verify needs
// neither.
func TestTheNamesKeyIsKeptLikeTheSealKey(t *testing.T) {
	data := t.TempDir()
	mustKoers(t, data, "", "init", "--root", "p-root", "--effective", "2025-01-01")
	key := filepath.Join(data, "names.key")
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("names key after init: %v", err)
	}
	hire := `{"id":"hire","by":"p-root","authority":"root","reason":"r","changes":[{"kind":"team.form","id":"t-1","name":"One","type":"platform"},{"kind":"person.join","id":"p-1","name":"` + keptName + `","team":"t-1"}]}`
	mustKoers(t, data, hire, "apply", "-f", "-")

	os.Chmod(key, 0o644)
	code, _, errOut := koers(t, data, "", "decide", "person.erase", "--by", "p-root", "--authority", "root", "--reason", "r", "--person", "p-1")
	if code != 1 || !strings.Contains(errOut, "names key "+key+" has mode 0644") || !strings.Contains(errOut, "chmod 600 "+key) {
		t.Fatalf("names key readable by others: exit %d %s", code, errOut)
	}
	if code, out, errOut := koers(t, data, "", "verify", "--no-read-models"); code != 0 {
		t.Fatalf("verify with an exposed names key: exit %d\n%s%s", code, out, errOut)
	}
	os.Chmod(key, 0o600)

	if err := os.Rename(key, key+".elsewhere"); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = koers(t, data, "", "decide", "person.erase", "--by", "p-root", "--authority", "root", "--reason", "r", "--person", "p-1")
	if code != 1 || !strings.Contains(errOut, "names key file "+key+" is missing") || !strings.Contains(errOut, "KOERS_KEYS") {
		t.Fatalf("names key missing: exit %d %s", code, errOut)
	}
	if _, err := os.Stat(key); err == nil {
		t.Fatal("a writer made up a new names key while the bucket holds keys")
	}
	if code, out, errOut := koers(t, data, "", "verify", "--no-read-models"); code != 0 {
		t.Fatalf("verify without the names key: exit %d\n%s%s", code, out, errOut)
	}
}
