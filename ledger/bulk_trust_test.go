package ledger_test

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"koers/domain"
	"koers/eventstore"
	"koers/internal/ledgertest"
	"koers/ledger"
)

// Bulk apply is held to what a single decision is: each decision in a
// batch carries its own seal (verify checks every event's path to its own
// decision's Merkle root), its id stands for its content, and its actor's
// signature is checked under the ledger's policy as the batch leaves it.
func TestApplyAllSealsEachDecisionAndChecksContentAndSignatures(t *testing.T) {
	l := ledgertest.New(t)
	h := l.Handler
	rootPub, rootPriv := newKey(t)
	_, otherPriv := newKey(t)

	vs := `{"id":"vs","by":"p-root","authority":"root","reason":"r","effective":"2026-01-01","changes":[{"kind":"valuestream.define","id":"payments","name":"Payments"}]}`
	unsigned := strings.NewReplacer(`"vs"`, `"vs-2"`, `payments`, `lending`).Replace(vs)
	lines := []string{
		fmt.Sprintf(`{"id":"reg-root","by":"p-root","authority":"root","reason":"keys","effective":"2026-01-01","changes":[{"kind":"actor.register-key","actor":"p-root","public_key":%q}]}`, rootPub),
		sign(t, h, `{"id":"policy","by":"p-root","authority":"root","reason":"sign everything","effective":"2026-01-01","changes":[{"kind":"ledger.require-signatures"}]}`, rootPriv),
		sign(t, h, vs, rootPriv),
		unsigned,                        // refused: the policy of two lines up holds
		sign(t, h, unsigned, otherPriv), // refused: not the actor's key
		sign(t, h, strings.Replace(vs, `"Payments"`, `"Payments!"`, 1), rootPriv), // refused: the id with other content
		sign(t, h, vs, rootPriv), // a duplicate
		sign(t, h, strings.NewReplacer(`"vs"`, `"vs-3"`, `payments`, `savings`).Replace(vs), rootPriv),
	}
	refusals := map[int]error{}
	var seqs [][]uint64
	sum, err := h.ApplyAll(context.Background(), linesOf(lines...), ledger.BulkOptions{
		KeepGoing: true,
		Report: func(r ledger.LineResult) {
			if r.Err != nil {
				refusals[r.Line] = r.Err
			} else if len(r.Result.Sequences) > 0 {
				seqs = append(seqs, r.Result.Sequences)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Applied != 4 || sum.Duplicates != 1 || sum.Refused != 3 {
		t.Fatalf("summary %+v, want 4 applied, 1 duplicate, 3 refused (%v)", sum, refusals)
	}
	var required *domain.SignatureRequiredError
	var bad *domain.SignatureError
	var reused *domain.DecisionReusedError
	if !errors.As(refusals[4], &required) || !errors.As(refusals[5], &bad) || !errors.As(refusals[6], &reused) {
		t.Fatalf("refusals: %v", refusals)
	}
	// The decisions went out together, yet each has its own seal.
	together := false
	for i := 1; i < len(seqs); i++ {
		if seqs[i][0] == seqs[i-1][len(seqs[i-1])-1]+1 {
			together = true
		}
	}
	if !together {
		t.Fatalf("no two decisions in one batch: %v", seqs)
	}
	verifyOK(t, readOnly(t, l))
}

// A ledger key rotation ends its batch: nothing after it is sealed with the
// superseded key, and the writer holding that key is refused as on the
// single path.
func TestApplyAllStopsSealingAfterAKeyRotation(t *testing.T) {
	l := ledgertest.New(t)
	next := make([]byte, 32)
	copy(next, "the successor seal key, 32 bytes")
	nextPriv, err := eventstore.ParseSealKey(next)
	if err != nil {
		t.Fatal(err)
	}
	nextPub := hex.EncodeToString(nextPriv.Public().(ed25519.PublicKey))
	lines := []string{
		`{"id":"before","by":"p-root","authority":"root","reason":"r","effective":"2026-01-01","changes":[{"kind":"valuestream.define","id":"payments","name":"Payments"}]}`,
		fmt.Sprintf(`{"id":"rotate","by":"p-root","authority":"root","reason":"yearly rotation","effective":"2026-01-01","changes":[{"kind":"ledger.rotate-key","public_key":%q}]}`, nextPub),
		`{"id":"after","by":"p-root","authority":"root","reason":"r","effective":"2026-01-01","changes":[{"kind":"valuestream.define","id":"lending","name":"Lending"}]}`,
	}
	sum, err := l.Handler.ApplyAll(context.Background(), linesOf(lines...), ledger.BulkOptions{})
	var stale *eventstore.KeyNotInForceError
	if !errors.As(err, &stale) || sum.Applied != 2 {
		t.Fatalf("after a rotation in bulk: %+v, %v; want 2 applied, then the superseded key refused", sum, err)
	}
	if _, found, err := l.Store.Lookup(context.Background(), "after"); err != nil || found {
		t.Fatalf("a decision after the rotation was written with the old key: %v %v", found, err)
	}
	verifyOK(t, readOnly(t, l))
}
