package eventstore_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"koers/domain"
	"koers/eventstore"
)

func TestReceiptProvesADecisionOfflineAgainstASignedTreeHead(t *testing.T) {
	st, js := newStore(t)
	mustAppend(t, st, meta(domain.GenesisDecision), map[domain.Ref]uint64{domain.LedgerKeysRef: 0},
		event(domain.LedgerKeysRef, domain.EventLedgerKeyRecorded, domain.LedgerKey{Key: st.PublicKey()}))
	var v uint64
	for i := range 5 {
		v = mustAppend(t, st, meta("d-"+strconv.Itoa(i)), map[domain.Ref]uint64{person("p-0"): v}, event(person("p-0"), "person.renamed", map[string]int{"n": i})).Sequences[0]
	}
	res := mustAppend(t, st, meta("three"), map[domain.Ref]uint64{person("p-1"): 0, person("p-2"): 0, person("p-3"): 0},
		event(person("p-1"), "person.renamed", map[string]int{"n": 1}),
		event(person("p-2"), "person.renamed", map[string]int{"n": 2}),
		event(person("p-3"), "person.renamed", map[string]int{"n": 3}))
	for i := range 4 {
		v = mustAppend(t, st, meta("e-"+strconv.Itoa(i)), map[domain.Ref]uint64{person("p-0"): v}, event(person("p-0"), "person.renamed", map[string]int{"n": i})).Sequences[0]
	}
	// A verbatim replay of the decision's first event: not genuine at its
	// place, so not in the receipt.
	body, err := eventstore.RawMessage(ctx(t), st, res.Sequences[0])
	if err != nil {
		t.Fatal(err)
	}
	publishRaw(t, js, "koers.person.p-1", body)

	r, err := st.Receipt(ctx(t), "three", time.Date(2026, 7, 2, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	last := lastSeq(t, st)
	if len(r.Messages) != 3 || r.Messages[0].Sequence != res.Sequences[0] || r.TreeHead.TreeSize != last || r.TreeHead.Sequence != last {
		t.Fatalf("receipt: %d messages from %d, tree size %d (last %d)", len(r.Messages), r.Messages[0].Sequence, r.TreeHead.TreeSize, last)
	}
	// The tree head is an anchor like any other: the stream's digest there.
	if rep := mustVerify(t, st, eventstore.VerifyOptions{}); rep.Digest != r.TreeHead.Digest {
		t.Fatalf("tree head digest %s, verify's %s", r.TreeHead.Digest, rep.Digest)
	}
	if err := st.CheckAnchorSignature(ctx(t), r.TreeHead); err != nil {
		t.Fatalf("tree head signature: %v", err)
	}
	leaves, _, err := st.Tree(ctx(t), last)
	if err != nil || hex.EncodeToString(func() []byte { h := eventstore.TreeHash(leaves); return h[:] }()) != r.TreeHead.Root {
		t.Fatalf("tree: %v", err)
	}
	// Proof size is logarithmic.
	if n := len(r.Messages[0].Proof); n > 5 {
		t.Fatalf("proof of %d hashes in a tree of %d", n, last)
	}
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if c := eventstore.VerifyReceipt(b); !c.OK() || c.Events != 3 || c.Key != eventstore.KeyID(ed25519.NewKeyFromSeed(testKey[:32]).Public().(ed25519.PublicKey)) {
		t.Fatalf("a genuine receipt: %+v", c)
	}

	// Changed in meaning, re-encoded canonically: still caught.
	changes := map[string]func(r *eventstore.Receipt){
		"another sequence": func(r *eventstore.Receipt) { r.Messages[1].Sequence++ },
		"recorded time":    func(r *eventstore.Receipt) { r.Messages[0].Recorded = r.Messages[0].Recorded.Add(time.Nanosecond) },
		"a message left out": func(r *eventstore.Receipt) {
			r.Messages = r.Messages[:2]
		},
		"tree size":       func(r *eventstore.Receipt) { r.TreeHead.TreeSize--; r.TreeHead.Sequence-- },
		"root":            func(r *eventstore.Receipt) { r.TreeHead.Root = strings.Repeat("0", 64) },
		"no key records":  func(r *eventstore.Receipt) { r.KeyRecords = nil },
		"key record time": func(r *eventstore.Receipt) { r.KeyRecords[0].Recorded = r.KeyRecords[0].Recorded.Add(time.Second) },
		"body": func(r *eventstore.Receipt) {
			body, _ := base64.StdEncoding.DecodeString(r.Messages[2].Body)
			r.Messages[2].Body = base64.StdEncoding.EncodeToString([]byte(strings.Replace(string(body), `"n":3`, `"n":4`, 1)))
		},
		"the replay instead": func(r *eventstore.Receipt) { r.Messages[0].Sequence = last },
		"another decision":   func(r *eventstore.Receipt) { r.Decision = "d-1" },
	}
	for name, change := range changes {
		c2, _ := eventstore.ParseReceipt(b)
		change(c2)
		b2, _ := c2.Marshal()
		if c := eventstore.VerifyReceipt(b2); c.OK() {
			t.Errorf("%s: the receipt still checks", name)
		}
	}

	if _, err := st.Receipt(ctx(t), "nowhere", time.Now()); !errors.Is(err, eventstore.ErrNoDecision) {
		t.Fatalf("receipt of an unknown decision: %v", err)
	}
	ro := openStore(t, js, func(c *eventstore.Config) { c.SealKey = nil })
	if _, err := ro.Receipt(ctx(t), "three", time.Now()); err == nil {
		t.Fatal("a store without the seal key signed a tree head")
	}
}

func TestVerifyChecksTreeHeadsAndProvesConsistency(t *testing.T) {
	st, _ := newStore(t)
	p := person("p-1")
	var v uint64
	head := func() eventstore.TreeHead {
		leaves, _, err := st.Tree(ctx(t), lastSeq(t, st))
		if err != nil {
			t.Fatal(err)
		}
		root := eventstore.TreeHash(leaves)
		return eventstore.TreeHead{Size: uint64(len(leaves)), Root: hex.EncodeToString(root[:])}
	}
	var heads []eventstore.TreeHead
	for i := range 13 {
		v = mustAppend(t, st, meta("a-"+strconv.Itoa(i)), map[domain.Ref]uint64{p: v}, event(p, "person.renamed", map[string]int{"n": i})).Sequences[0]
		if i%4 == 0 {
			heads = append(heads, head())
		}
	}
	r := mustVerify(t, st, eventstore.VerifyOptions{TreeHeads: []eventstore.TreeHead{heads[3], heads[0], heads[2], heads[1]}})
	if !r.OK() || len(r.Consistency) != 3 {
		t.Fatalf("verify with 4 tree heads: %+v, %d proofs", r.Problems, len(r.Consistency))
	}
	for _, c := range r.Consistency {
		if !c.OK || c.Old.Size >= c.New.Size {
			t.Fatalf("consistency %+v", c)
		}
	}
	wrong := heads[1]
	wrong.Root = heads[2].Root
	r = mustVerify(t, st, eventstore.VerifyOptions{TreeHeads: []eventstore.TreeHead{heads[0], wrong, {Size: 99, Root: heads[3].Root}}})
	if len(r.Problems) != 2 {
		t.Fatalf("a wrong root and a future size: %+v", r.Problems)
	}
}
