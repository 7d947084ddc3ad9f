package eventstore_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"koers/domain"
	"koers/eventstore"
)

// A reader with no secret at all checks the seals: the writer's public key
// is all it needs, and a message sealed with any other key is a forgery.
func TestSealsCheckWithPublicMaterialOnly(t *testing.T) {
	st, js := newStore(t)
	// What the genesis records: the writer's public key.
	mustAppend(t, st, meta(domain.GenesisDecision), map[domain.Ref]uint64{domain.LedgerKeysRef: 0},
		event(domain.LedgerKeysRef, domain.EventLedgerKeyRecorded, domain.LedgerKey{Key: st.PublicKey()}))
	p := person("p-1")
	res := mustAppend(t, st, meta("d-1"), map[domain.Ref]uint64{p: 0}, event(p, "person.renamed", map[string]int{"n": 1}))
	body, err := eventstore.RawMessage(ctx(t), st, res.Sequences[0])
	if err != nil {
		t.Fatal(err)
	}
	// The same event, sealed by someone else's key, published by a client.
	forged, err := eventstore.Reseal(bytes.Replace(body, []byte(`"d-1`), []byte(`"d-9`), -1), bytes.Repeat([]byte{9}, 32))
	if err == nil {
		t.Fatal("a changed event still decodes: the hash should not match")
	}
	forged, err = eventstore.Reseal(body, bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	seq := publishRaw(t, js, "koers.person.p-1", forged)

	ro := openStore(t, js, func(c *eventstore.Config) { c.SealKey = nil })
	if ro.PublicKey() != "" {
		t.Fatal("a store without a key has a public key")
	}
	r := mustVerify(t, ro, eventstore.VerifyOptions{})
	if len(r.Keys) != 1 || r.Keys[0].Key != st.PublicKey() || r.Keys[0].Recorded != 1 {
		t.Fatalf("keys: %+v", r.Keys)
	}
	if len(r.Problems) != 1 || r.Problems[0].Sequence != seq || !strings.Contains(r.Problems[0].What, "forgery") {
		t.Fatalf("problems: %+v; want the message sealed with a foreign key", r.Problems)
	}
	h, err := ro.Load(ctx(t), p)
	if err != nil || len(h.Events) != 1 || h.Version != seq {
		t.Fatalf("load: %d events at version %d, %v", len(h.Events), h.Version, err)
	}
	if _, err := ro.Append(ctx(t), meta("d-2"), []domain.Event{event(p, "person.renamed", nil)}, map[domain.Ref]uint64{p: seq}); !errors.Is(err, eventstore.ErrReadOnly) {
		t.Fatalf("append without a key: %v", err)
	}
}

// A stream written by an earlier Koers (HMAC seals, envelope v1) is
// refused by name, never half-read.
func TestAnHMACLedgerIsRefused(t *testing.T) {
	srv, js := server(t, t.TempDir())
	_ = srv
	openStore(t, js) // creates the stream
	publishRaw(t, js, "koers.mandate.root", []byte(`{"v":1,"id":"genesis/0","type":"mandate.granted","sv":1,"subject":"koers.mandate.root","decision":{"id":"genesis"},"i":0,"n":1,"data":{},"prev":"","hash":"`+strings.Repeat("0", 64)+`","seal":"`+strings.Repeat("1", 64)+`"}`))
	_, err := eventstore.Open(ctx(t), js, eventstore.Config{SealKey: bytes.Repeat([]byte{1}, 32)})
	var legacy *eventstore.LegacyLedgerError
	if !errors.As(err, &legacy) || !strings.Contains(err.Error(), "HMAC") {
		t.Fatalf("open: %v; want a LegacyLedgerError", err)
	}
}
