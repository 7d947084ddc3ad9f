package keyring_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"koers/domain"
	"koers/eventstore"
	"koers/keyring"
)

func startJS(t *testing.T) jetstream.JetStream {
	t.Helper()
	srv, err := eventstore.StartEmbedded(eventstore.EmbeddedOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("start embedded nats-server: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func namesKey(b byte) []byte { return bytes.Repeat([]byte{b}, keyring.KeyBytes) }

func open(t *testing.T, js jetstream.JetStream, key []byte) *keyring.Keyring {
	t.Helper()
	k, err := keyring.Open(context.Background(), js, keyring.Config{Ledger: "KOERS", NamesKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func seal(t *testing.T, k *keyring.Keyring, person, name string) string {
	t.Helper()
	s, err := k.Seal(context.Background(), "d-1", domain.PersonalName{Person: person, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealOpenErase(t *testing.T) {
	ctx := context.Background()
	js := startJS(t)
	k := open(t, js, namesKey(1))
	ada := seal(t, k, "p-1", "Ada Lovelace")
	if strings.Contains(ada, "Ada") || !domain.IsSealedName(ada) {
		t.Fatalf("sealed: %q", ada)
	}
	// The same decision seals to the same commitment (a retry), with a
	// fresh nonce.
	again := seal(t, k, "p-1", "Ada Lovelace")
	if again == ada || again[:68] != ada[:68] {
		t.Fatalf("sealed again:\n%s\n%s", ada, again)
	}
	if n, err := k.Open(ctx, "p-1", ada); err != nil || n != "Ada Lovelace" {
		t.Fatalf("open: %q %v", n, err)
	}
	// Plain names (logs from before sealing) pass as they are.
	if n, err := k.Open(ctx, "p-9", "Old Name"); err != nil || n != "Old Name" {
		t.Fatalf("open plain: %q %v", n, err)
	}
	// A box is bound to its person: moved to another, it does not open.
	seal(t, k, "p-2", "Grace Hopper")
	var broken *keyring.BrokenNameError
	if _, err := k.Open(ctx, "p-2", ada); !errors.As(err, &broken) {
		t.Fatalf("p-1's name opened as p-2's: %v", err)
	}
	// A name submitted sealed is refused.
	if _, err := k.Seal(ctx, "d-2", domain.PersonalName{Person: "p-3", Name: ada}); !errors.Is(err, domain.ErrPlainSealed) {
		t.Fatalf("sealing a sealed name: %v", err)
	}

	if err := k.Erase(ctx, "p-1"); err != nil {
		t.Fatal(err)
	}
	if err := k.Erase(ctx, "p-1"); err != nil {
		t.Fatalf("erasing again: %v", err)
	}
	if n, err := k.Open(ctx, "p-1", ada); err != nil || n != "erased person (p-1)" {
		t.Fatalf("open after erasure: %q %v", n, err)
	}
	// A plain name from a log written before names were sealed: shown
	// until the person is erased, then never again.
	if n, err := k.Open(ctx, "p-old", "Old Name"); err != nil || n != "Old Name" {
		t.Fatalf("open a plain name: %q %v", n, err)
	}
	if err := k.Erase(ctx, "p-old"); err != nil {
		t.Fatal(err)
	}
	if n, err := open(t, js, namesKey(1)).Open(ctx, "p-old", "Old Name"); err != nil || n != "erased person (p-old)" {
		t.Fatalf("open a plain name after erasure: %q %v", n, err)
	}
	// Another process's keyring (no cache) sees the erasure too.
	if n, err := open(t, js, namesKey(1)).Open(ctx, "p-1", ada); err != nil || n != "erased person (p-1)" {
		t.Fatalf("open after erasure, fresh keyring: %q %v", n, err)
	}
	if _, err := k.Seal(ctx, "d-3", domain.PersonalName{Person: "p-1", Name: "Ada"}); !errors.Is(err, domain.ErrErased) {
		t.Fatalf("sealing an erased person's name: %v", err)
	}
	// Nothing of the key is left in the bucket's stream but the marker.
	st, err := js.Stream(ctx, "KV_KOERS_KEYS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil || info.State.Msgs != 3 || info.Config.DenyDelete || info.Config.MaxMsgsPerSubject != 1 {
		t.Fatalf("bucket stream: %d messages (want the markers of p-1 and p-old, and p-2's key), %+v, %v", info.State.Msgs, info.Config, err)
	}
}

func TestMissingAndForeignKeysAreClearErrors(t *testing.T) {
	ctx := context.Background()
	js := startJS(t)
	k := open(t, js, namesKey(1))
	ada := seal(t, k, "p-1", "Ada Lovelace")

	// Another names key does not open the data key: an error, never garbage.
	var wrong *keyring.WrongKeyError
	if _, err := open(t, js, namesKey(2)).Open(ctx, "p-1", ada); !errors.As(err, &wrong) || !strings.Contains(err.Error(), "KOERS_KEYS") {
		t.Fatalf("foreign names key: %v", err)
	}
	// The bucket lost: the missing key is named, with the bucket.
	if err := js.DeleteKeyValue(ctx, "KOERS_KEYS"); err != nil {
		t.Fatal(err)
	}
	fresh := open(t, js, namesKey(1))
	var missing *keyring.MissingKeyError
	if _, err := fresh.Open(ctx, "p-1", ada); !errors.As(err, &missing) || missing.Person != "p-1" || missing.Bucket != "KOERS_KEYS" {
		t.Fatalf("lost bucket: %v", err)
	}
	// When the log says the person was erased, the missing key is an
	// erasure.
	fresh.Erased = func(_ context.Context, person string) (bool, error) { return person == "p-1", nil }
	if n, err := fresh.Open(ctx, "p-1", ada); err != nil || n != "erased person (p-1)" {
		t.Fatalf("lost bucket, erased in the log: %q %v", n, err)
	}
}

func TestBackupRestoreNeverBringsAnErasedKeyBack(t *testing.T) {
	ctx := context.Background()
	js := startJS(t)
	k := open(t, js, namesKey(1))
	ada, grace, linus := seal(t, k, "p-1", "Ada"), seal(t, k, "p-2", "Grace"), seal(t, k, "p-3", "Linus")
	var backup bytes.Buffer
	if n, err := k.Backup(ctx, &backup); err != nil || n != 3 {
		t.Fatalf("backup: %d %v", n, err)
	}
	if bytes.Contains(backup.Bytes(), []byte("Ada")) {
		t.Fatal("the backup holds a name")
	}
	// p-1 erased while the bucket lives (marker), p-2 erased and then the
	// bucket lost (only the log knows).
	if err := k.Erase(ctx, "p-1"); err != nil {
		t.Fatal(err)
	}
	sum, err := k.Restore(ctx, bytes.NewReader(backup.Bytes()))
	if err != nil || sum.Restored != 0 || sum.Present != 2 || len(sum.Erased) != 1 {
		t.Fatalf("restore over a live bucket: %+v %v", sum, err)
	}
	if err := js.DeleteKeyValue(ctx, "KOERS_KEYS"); err != nil {
		t.Fatal(err)
	}
	fresh := open(t, js, namesKey(1))
	fresh.Erased = func(_ context.Context, person string) (bool, error) { return person == "p-1" || person == "p-2", nil }
	sum, err = fresh.Restore(ctx, bytes.NewReader(backup.Bytes()))
	if err != nil || sum.Restored != 1 || len(sum.Erased) != 2 {
		t.Fatalf("restore into a lost bucket: %+v %v", sum, err)
	}
	for _, c := range []struct{ person, sealed, want string }{
		{"p-1", ada, "erased person (p-1)"}, {"p-2", grace, "erased person (p-2)"}, {"p-3", linus, "Linus"},
	} {
		if n, err := fresh.Open(ctx, c.person, c.sealed); err != nil || n != c.want {
			t.Errorf("after restore, %s: %q %v, want %q", c.person, n, err, c.want)
		}
	}
	// A backup opened with another names key is refused before anything
	// is written.
	if err := js.DeleteKeyValue(ctx, "KOERS_KEYS"); err != nil {
		t.Fatal(err)
	}
	other := open(t, js, namesKey(2))
	var wrong *keyring.WrongKeyError
	if _, err := other.Restore(ctx, bytes.NewReader(backup.Bytes())); !errors.As(err, &wrong) {
		t.Fatalf("restore with another names key: %v", err)
	}
	if empty, err := other.Empty(ctx); err != nil || !empty {
		t.Fatalf("a refused restore wrote keys: %v %v", empty, err)
	}
}
