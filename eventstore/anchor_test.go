package eventstore_test

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"koers/domain"
	"koers/eventstore"
)

func TestAnchorsExtendTheDigestAndSignaturesCatchChanges(t *testing.T) {
	st, _ := newStore(t)
	p := person("p-1")
	var v uint64
	for i := range 7 {
		v = mustAppend(t, st, meta("a-"+strconv.Itoa(i)), map[domain.Ref]uint64{p: v}, event(p, "person.renamed", map[string]int{"n": i})).Sequences[0]
	}
	// Anchored in two steps or in one: the digest Verify computes.
	a3, err := st.Anchor(ctx(t), domain.Anchor{}, 3)
	if err != nil {
		t.Fatal(err)
	}
	a7, err := st.Anchor(ctx(t), a3, 7)
	if err != nil {
		t.Fatal(err)
	}
	whole, err := st.Anchor(ctx(t), domain.Anchor{}, 7)
	if err != nil {
		t.Fatal(err)
	}
	r := mustVerify(t, st, eventstore.VerifyOptions{Anchors: []domain.Anchor{a3, a7}})
	if a7 != whole || r.Digest != a7.Digest || !r.OK() {
		t.Fatalf("anchor in steps %+v, at once %+v, verify %s %+v", a7, whole, r.Digest, r.Problems)
	}
	if _, err := st.Check(ctx(t), a7); err != nil {
		t.Fatalf("check against a good anchor: %v", err)
	}
	// An anchor past the end, or with another digest: problems.
	bad := a3
	bad.Digest = strings.Repeat("0", 64)
	r = mustVerify(t, st, eventstore.VerifyOptions{Anchors: []domain.Anchor{bad, {Sequence: 99, Digest: a7.Digest}}})
	if len(r.Problems) != 2 {
		t.Fatalf("verify against a wrong and a future anchor: %+v", r.Problems)
	}

	// A signed anchor with any byte changed no longer checks.
	sa, err := st.SignAnchor(ctx(t), a7, time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CheckAnchorSignature(ctx(t), sa); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(sa)
	for i := range b {
		c := append([]byte(nil), b...)
		c[i] ^= 0x01
		got, err := eventstore.ParseSignedAnchor(c)
		if err != nil {
			continue // no longer an anchor at all
		}
		if got == sa {
			continue // a change JSON does not see (the case of a key's letter)
		}
		if st.CheckAnchorSignature(ctx(t), got) == nil {
			t.Fatalf("byte %d changed (%q), the signature still checks", i, c)
		}
	}

	// The watch's check: a changed anchored message stops writes.
	if _, err := st.Check(ctx(t), bad); !errors.Is(err, eventstore.ErrIntegrity) {
		t.Fatalf("check against a changed anchor: %v", err)
	}
	_, err = st.Append(ctx(t), meta("after"), []domain.Event{event(p, "person.renamed", nil)}, map[domain.Ref]uint64{p: v})
	var ie *eventstore.IntegrityError
	if !errors.As(err, &ie) || !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("append after an integrity problem: %v, want an IntegrityError", err)
	}
}

func TestOpenOfAnExistingLedgerCreatesNothingAndWatchesTheStream(t *testing.T) {
	_, js := server(t, t.TempDir())
	_, err := eventstore.Open(ctx(t), js, eventstore.Config{SealKey: testKey, Existing: true})
	var notFound *eventstore.StreamNotFoundError
	if !errors.As(err, &notFound) {
		t.Fatalf("open of an existing ledger on an empty server: %v", err)
	}
	if _, err := js.Stream(ctx(t), "KOERS"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("a stream was created: %v", err)
	}
	st := openStore(t, js)
	p := person("p-1")
	var v uint64
	for i := range 15 {
		v = mustAppend(t, st, meta("w-"+strconv.Itoa(i)), map[domain.Ref]uint64{p: v}, event(p, "person.renamed", nil)).Sequences[0]
	}
	if _, err := st.Check(ctx(t)); err != nil {
		t.Fatalf("check of a sound stream: %v", err)
	}
	s, err := js.Stream(ctx(t), "KOERS")
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.MaxMsgs, cfg.Discard = 10, jetstream.DiscardOld
	if _, err := js.UpdateStream(ctx(t), cfg); err != nil {
		t.Fatal(err)
	}
	_, err = st.Check(ctx(t))
	var ie *eventstore.IntegrityError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "max_msgs") || !strings.Contains(err.Error(), "messages 1 to 5 were removed") {
		t.Fatalf("check of a trimmed stream: %v", err)
	}
	if _, err := st.Append(ctx(t), meta("late"), []domain.Event{event(p, "person.renamed", nil)}, map[domain.Ref]uint64{p: v}); !errors.Is(err, eventstore.ErrIntegrity) {
		t.Fatalf("append to a trimmed stream: %v", err)
	}
	// Another process opening it is refused, or with Inspect halted.
	if _, err := eventstore.Open(ctx(t), js, eventstore.Config{SealKey: testKey, Existing: true}); err == nil {
		t.Fatal("open of a trimmed stream: no error")
	}
	insp, err := eventstore.Open(ctx(t), js, eventstore.Config{SealKey: testKey, Existing: true, Inspect: true})
	if err != nil || insp.Halted() == nil {
		t.Fatalf("inspect a trimmed stream: %v, halted %v", err, insp.Halted())
	}
}

// An anchor is signed with the writer's Ed25519 key and checked with the
// public key the log records: a reader without any secret checks it, and
// neither another key's signature nor an HMAC anchor passes.
func TestAnchorSignaturesNeedNoSecret(t *testing.T) {
	st, js := newStore(t)
	mustAppend(t, st, meta(domain.GenesisDecision), map[domain.Ref]uint64{domain.LedgerKeysRef: 0},
		event(domain.LedgerKeysRef, domain.EventLedgerKeyRecorded, domain.LedgerKey{Key: st.PublicKey()}))
	p := person("p-1")
	last := mustAppend(t, st, meta("d-1"), map[domain.Ref]uint64{p: 0}, event(p, "person.renamed", nil)).Sequences[0]
	a, err := st.Anchor(ctx(t), domain.Anchor{}, last)
	if err != nil {
		t.Fatal(err)
	}
	sa, err := st.SignAnchor(ctx(t), a, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if sa.Algorithm != "ed25519" || sa.Key == "" {
		t.Fatalf("signed anchor %+v: want sig_alg ed25519 and the key id", sa)
	}
	ro := openStore(t, js, func(c *eventstore.Config) { c.SealKey = nil })
	if err := ro.CheckAnchorSignature(ctx(t), sa); err != nil {
		t.Fatalf("a reader without a key checks the anchor: %v", err)
	}
	if _, err := ro.SignAnchor(ctx(t), a, time.Now()); !errors.Is(err, eventstore.ErrReadOnly) {
		t.Fatalf("a reader signs an anchor: %v", err)
	}
	hm := sa
	hm.Algorithm = "hmac-sha256-seal"
	if err := ro.CheckAnchorSignature(ctx(t), hm); err == nil || !strings.Contains(err.Error(), "koers anchor") {
		t.Fatalf("an HMAC anchor: %v", err)
	}
	forged := sa
	forged.Key = "0123456789abcdef"
	if err := ro.CheckAnchorSignature(ctx(t), forged); err == nil {
		t.Fatal("an anchor naming a key the log does not record checks")
	}
}
