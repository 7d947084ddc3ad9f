package ledger_test

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"koers/domain"
	"koers/eventstore"
	"koers/internal/ledgertest"
	"koers/ledger"
)

// sign returns decision JSON signed with priv over its canonical encoding.
func sign(t *testing.T, h *ledger.Handler, decision string, priv ed25519.PrivateKey) string {
	t.Helper()
	d, err := h.Decode([]byte(decision))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := domain.CanonicalDecision(d)
	if err != nil {
		t.Fatal(err)
	}
	d.Signature = ed25519.Sign(priv, msg)
	b, err := d.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func newKey(t *testing.T) (string, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(pub), priv
}

func verifyOK(t *testing.T, st *eventstore.Store) *eventstore.Report {
	t.Helper()
	r, err := st.Verify(context.Background(), eventstore.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		t.Fatalf("verify: %+v", r.Problems)
	}
	return r
}

func TestSameIDDifferentContentIsRefusedSameContentIsADuplicate(t *testing.T) {
	l := ledgertest.New(t)
	first := `{"id":"vs-1","by":"p-root","authority":"root","reason":"first","effective":"2026-01-01","changes":[{"kind":"valuestream.define","id":"payments","name":"Payments"}]}`
	res := l.Submit(t, first)
	again, err := l.Handler.Submit(context.Background(), []byte(first))
	if err != nil || !again.Duplicate || fmt.Sprint(again.Sequences) != fmt.Sprint(res.Sequences) {
		t.Fatalf("same content again: %+v, %v; want the first result as a duplicate", again, err)
	}
	// Without an effective time a retry matches whatever the first took.
	noEff := `{"id":"vs-2","by":"p-root","authority":"root","reason":"now","changes":[{"kind":"valuestream.define","id":"lending","name":"Lending"}]}`
	l.Submit(t, noEff)
	if again, err := l.Handler.Submit(context.Background(), []byte(noEff)); err != nil || !again.Duplicate {
		t.Fatalf("a retry without effective: %+v, %v", again, err)
	}
	for name, other := range map[string]string{
		"reason":    strings.Replace(first, `"first"`, `"second"`, 1),
		"changes":   strings.Replace(first, `"Payments"`, `"Payments!"`, 1),
		"effective": strings.Replace(first, `2026-01-01`, `2026-01-02`, 1),
		"refs":      strings.Replace(first, `"reason"`, `"refs":["https://x"],"reason"`, 1),
	} {
		_, err := l.Handler.Submit(context.Background(), []byte(other))
		var reused *domain.DecisionReusedError
		if !errors.As(err, &reused) || !errors.Is(err, domain.ErrConflict) {
			t.Fatalf("%s differs: %v; want a DecisionReusedError", name, err)
		}
		if reused.Sequence != res.Sequences[len(res.Sequences)-1] || reused.RecordedAt.IsZero() {
			t.Fatalf("%s differs: names sequence %d at %s, the record is at %v", name, reused.Sequence, reused.RecordedAt, res.Sequences)
		}
	}
	h, err := l.Store.Load(context.Background(), domain.Ref{Kind: domain.KindValueStream, ID: "payments"})
	if err != nil || len(h.Events) != 1 {
		t.Fatalf("payments: %d events, %v; want the first decision's only", len(h.Events), err)
	}
}

func TestSignedDecisionsUnderThePolicy(t *testing.T) {
	l := ledgertest.New(t)
	ctx := context.Background()
	h := l.Handler
	rootPub, rootPriv := newKey(t)
	adaPub, adaPriv := newKey(t)

	// Registering the root's key, then requiring signatures.
	l.Submit(t, fmt.Sprintf(`{"id":"reg-root","by":"p-root","authority":"root","reason":"keys","effective":"2026-01-01","changes":[{"kind":"actor.register-key","actor":"p-root","public_key":%q}]}`, rootPub))
	l.Submit(t, sign(t, h, `{"id":"policy","by":"p-root","authority":"root","reason":"sign everything","effective":"2026-01-01","changes":[{"kind":"ledger.require-signatures"}]}`, rootPriv))

	unsigned := `{"id":"vs","by":"p-root","authority":"root","reason":"r","effective":"2026-01-01","changes":[{"kind":"valuestream.define","id":"payments","name":"Payments"}]}`
	var required *domain.SignatureRequiredError
	if _, err := h.Submit(ctx, []byte(unsigned)); !errors.As(err, &required) || !errors.Is(err, domain.ErrUnauthorized) {
		t.Fatalf("unsigned under the policy: %v", err)
	}
	var bad *domain.SignatureError
	if _, err := h.Submit(ctx, []byte(sign(t, h, unsigned, adaPriv))); !errors.As(err, &bad) {
		t.Fatalf("signed with a key not registered for the actor: %v", err)
	}
	// A signature over other content does not verify.
	tampered := strings.Replace(sign(t, h, unsigned, rootPriv), `"Payments"`, `"Paymentz"`, 1)
	if _, err := h.Submit(ctx, []byte(tampered)); !errors.As(err, &bad) {
		t.Fatalf("a decision changed after signing: %v", err)
	}
	l.Submit(t, sign(t, h, unsigned, rootPriv))

	// Ada's key: registered, used, revoked; then refused.
	l.Submit(t, sign(t, h, fmt.Sprintf(`{"id":"reg-ada","by":"p-root","authority":"root","reason":"keys","effective":"2026-01-01","changes":[{"kind":"actor.register-key","actor":"p-ada","public_key":%q}]}`, adaPub), rootPriv))
	l.Submit(t, sign(t, h, `{"id":"grant","by":"p-root","authority":"root","reason":"r","effective":"2026-01-01","changes":[{"kind":"team.form","id":"t-1","name":"T","type":"platform"},{"kind":"person.join","id":"p-ada","name":"Ada","team":"t-1"},{"kind":"mandate.grant","id":"m-ada","holder":"p-ada","kinds":["valuestream.*"],"scope":"*"}]}`, rootPriv))
	byAda := `{"id":"vs-ada","by":"p-ada","authority":"m-ada","reason":"r","effective":"2026-01-01","changes":[{"kind":"valuestream.define","id":"lending","name":"Lending"}]}`
	l.Submit(t, sign(t, h, byAda, adaPriv))
	l.Submit(t, sign(t, h, fmt.Sprintf(`{"id":"rev-ada","by":"p-root","authority":"root","reason":"lost laptop","effective":"2026-01-01","changes":[{"kind":"actor.revoke-key","actor":"p-ada","public_key":%q}]}`, adaPub), rootPriv))
	byAda2 := strings.NewReplacer(`vs-ada`, `vs-ada-2`, `lending`, `savings`).Replace(byAda)
	if _, err := h.Submit(ctx, []byte(sign(t, h, byAda2, adaPriv))); !errors.As(err, &bad) {
		t.Fatalf("signed with a revoked key: %v", err)
	}
	// The log proves all of it with public material only.
	verifyOK(t, readOnly(t, l))
}

// readOnly opens the test ledger's stream without any key.
func readOnly(t *testing.T, l *ledgertest.Ledger) *eventstore.Store {
	t.Helper()
	st, err := eventstore.Open(context.Background(), l.JS, eventstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestInitRequiringSignaturesRegistersTheRoot(t *testing.T) {
	l := ledgertest.New(t) // its genesis has no policy: a second ledger on another stream
	rootPub, rootPriv := newKey(t)
	key := make([]byte, 32)
	copy(key, "another writer, another ledger!!")
	st, err := eventstore.Open(context.Background(), l.JS, eventstore.Config{Stream: "OTHER", Prefix: "other", SealKey: key})
	if err != nil {
		t.Fatal(err)
	}
	h, err := ledger.New(st, ledger.Options{Now: func() time.Time { return ledgertest.Clock }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Init(context.Background(), "p-root", ledgertest.Genesis, ledger.RequireSignatures()); err == nil {
		t.Fatal("requiring signatures without the root's key: nobody could ever sign")
	}
	if _, err := h.Init(context.Background(), "p-root", ledgertest.Genesis, ledger.RootKey(rootPub), ledger.RequireSignatures()); err != nil {
		t.Fatal(err)
	}
	d := `{"id":"vs","by":"p-root","authority":"root","reason":"r","effective":"2026-01-01","changes":[{"kind":"valuestream.define","id":"payments","name":"Payments"}]}`
	if _, err := h.Submit(context.Background(), []byte(d)); !errors.Is(err, domain.ErrUnauthorized) {
		t.Fatalf("unsigned: %v", err)
	}
	if _, err := h.Submit(context.Background(), []byte(sign(t, h, d, rootPriv))); err != nil {
		t.Fatal(err)
	}
	ro, err := eventstore.Open(context.Background(), l.JS, eventstore.Config{Stream: "OTHER", Prefix: "other"})
	if err != nil {
		t.Fatal(err)
	}
	verifyOK(t, ro)
}

func TestKeyRotationKeepsOldEventsVerifying(t *testing.T) {
	l := ledgertest.New(t)
	ctx := context.Background()
	l.Submit(t, `{"id":"before","by":"p-root","authority":"root","reason":"r","effective":"2026-01-01","changes":[{"kind":"valuestream.define","id":"payments","name":"Payments"}]}`)
	next := make([]byte, 32)
	copy(next, "the successor seal key, 32 bytes")
	nextPriv, err := eventstore.ParseSealKey(next)
	if err != nil {
		t.Fatal(err)
	}
	nextPub := hex.EncodeToString(nextPriv.Public().(ed25519.PublicKey))
	l.Submit(t, fmt.Sprintf(`{"id":"rotate","by":"p-root","authority":"root","reason":"yearly rotation","effective":"2026-01-01","changes":[{"kind":"ledger.rotate-key","public_key":%q}]}`, nextPub))

	// The old key no longer writes, here or in a new process.
	after := `{"id":"after","by":"p-root","authority":"root","reason":"r","effective":"2026-01-01","changes":[{"kind":"valuestream.define","id":"lending","name":"Lending"}]}`
	var stale *eventstore.KeyNotInForceError
	if _, err := l.Handler.Submit(ctx, []byte(after)); !errors.As(err, &stale) {
		t.Fatalf("writing with the superseded key: %v", err)
	}
	if _, err := eventstore.Open(ctx, l.JS, eventstore.Config{SealKey: l.SealKey}); !errors.As(err, &stale) {
		t.Fatalf("opening a writer with the superseded key: %v", err)
	}
	st, err := eventstore.Open(ctx, l.JS, eventstore.Config{SealKey: next})
	if err != nil {
		t.Fatal(err)
	}
	h, err := ledger.New(st, ledger.Options{Now: func() time.Time { return ledgertest.Clock }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Submit(ctx, []byte(after)); err != nil {
		t.Fatal(err)
	}
	r := verifyOK(t, readOnly(t, l))
	if len(r.Keys) != 2 || r.Keys[1].Key != nextPub || r.Keys[0].Recorded == 0 {
		t.Fatalf("keys: %+v", r.Keys)
	}
	// A rotation is the root's alone.
	if _, err := h.Submit(ctx, []byte(`{"by":"p-root","authority":"m-x","reason":"r","changes":[{"kind":"ledger.rotate-key","public_key":"`+strings.Repeat("ab", 32)+`"}]}`)); err == nil {
		t.Fatal("a rotation outside the root mandate")
	}
}

// Under the policy a board's members sign their approvals too; verify
// checks them with the keys registered then.
func TestSignedApprovalsUnderThePolicy(t *testing.T) {
	l := ledgertest.New(t)
	ctx := context.Background()
	h := l.Handler
	keys := map[string]ed25519.PrivateKey{}
	var reg []string
	for _, p := range []string{"p-root", "p-ada", "p-bo"} {
		pub, priv := newKey(t)
		keys[p] = priv
		reg = append(reg, fmt.Sprintf(`{"kind":"actor.register-key","actor":%q,"public_key":%q}`, p, pub))
	}
	l.Submit(t, `{"id":"org","by":"p-root","authority":"root","reason":"r","effective":"2026-01-01","changes":[`+strings.Join(reg, ",")+`,
		{"kind":"team.form","id":"t-1","name":"T","type":"platform"},{"kind":"person.join","id":"p-ada","name":"Ada","team":"t-1"},{"kind":"person.join","id":"p-bo","name":"Bo","team":"t-1"},
		{"kind":"board.form","id":"b","name":"Board","members":["p-ada","p-bo"],"quorum":2},
		{"kind":"mandate.grant","id":"m-b","holder":"board:b","kinds":["valuestream.*"],"scope":"*"}]}`)
	l.Submit(t, sign(t, h, `{"id":"policy","by":"p-root","authority":"root","reason":"sign","effective":"2026-01-01","changes":[{"kind":"ledger.require-signatures"}]}`, keys["p-root"]))

	prop := `{"id":"vs","by":"p-ada","authority":"m-b","reason":"r","effective":"2026-01-01","changes":[{"kind":"valuestream.define","id":"payments","name":"Payments"}]}`
	if res, err := h.Submit(ctx, []byte(sign(t, h, prop, keys["p-ada"]))); err != nil || res.State != domain.ProposalPending {
		t.Fatalf("propose: %+v %v", res, err)
	}
	approve := domain.Action{Proposal: "vs", Kind: domain.ActionApprove, By: "p-bo", Reason: "yes"}
	if _, err := h.Act(ctx, approve); !errors.Is(err, domain.ErrUnauthorized) {
		t.Fatalf("an unsigned approval under the policy: %v", err)
	}
	wrong := approve
	wrong.Signature = ed25519.Sign(keys["p-ada"], domain.CanonicalAction(approve))
	if _, err := h.Act(ctx, wrong); !errors.Is(err, domain.ErrUnauthorized) {
		t.Fatalf("an approval signed with another member's key: %v", err)
	}
	approve.Signature = ed25519.Sign(keys["p-bo"], domain.CanonicalAction(approve))
	res, err := h.Act(ctx, approve)
	if err != nil || res.State != domain.ProposalDecided {
		t.Fatalf("signed approval: %+v %v", res, err)
	}
	verifyOK(t, readOnly(t, l))
}
