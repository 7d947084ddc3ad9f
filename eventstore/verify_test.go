package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"koers/domain"
	"koers/eventstore"
)

func TestVerifyPassesAGenuineLogAndKeepsItsDigest(t *testing.T) {
	st, _ := newStore(t)
	p, tm := person("p-1"), team("t-1")
	mustAppend(t, st, meta("a"), map[domain.Ref]uint64{tm: 0}, event(tm, "team.formed", nil))
	mustAppend(t, st, meta("b"), map[domain.Ref]uint64{p: 0, tm: 1}, event(p, "person.joined", nil), event(tm, "team.member-joined", nil))

	r := mustVerify(t, st, eventstore.VerifyOptions{})
	if !r.OK() || r.Checked != 3 || r.LastSequence != 3 || r.DigestAt != 3 || len(r.Digest) != 64 {
		t.Fatalf("verify of a genuine log: %+v", r)
	}
	at2 := mustVerify(t, st, eventstore.VerifyOptions{At: 2})

	// More decisions later must leave the digest up to 2 as it was.
	mustAppend(t, st, meta("c"), map[domain.Ref]uint64{p: 2}, event(p, "person.left", nil))
	again := mustVerify(t, st, eventstore.VerifyOptions{At: 2, Expect: at2.Digest})
	if !again.OK() || again.Digest != at2.Digest {
		t.Fatalf("digest at 2 changed from %s to %s after an append: %+v", at2.Digest, again.Digest, again.Problems)
	}
	wrong := mustVerify(t, st, eventstore.VerifyOptions{At: 2, Expect: strings.Repeat("0", 64)})
	if wrong.OK() || !strings.Contains(wrong.Problems[0].What, "auditor") {
		t.Fatalf("verify against a different digest: %+v, want a problem about the auditor's copy", wrong.Problems)
	}
	// A digest taken at a sequence that no longer exists: the stream is
	// shorter than it was, a problem (exit 2), not a failure to read.
	gone := mustVerify(t, st, eventstore.VerifyOptions{At: 99, Expect: at2.Digest})
	if gone.OK() || !strings.Contains(gone.Problems[0].What, "history was removed") {
		t.Fatalf("verify at a sequence past the end: %+v, want a problem", gone.Problems)
	}
}

func TestForgedMessagesAreReportedAndNeverAcceptedAsEvents(t *testing.T) {
	st, js := newStore(t)
	p := person("p-1")
	mustAppend(t, st, meta("genuine"), map[domain.Ref]uint64{p: 0}, event(p, "person.joined", map[string]string{"team": "t-1"}))

	// A well-formed envelope with a correct hash, chained to the genuine
	// event, by a client that does not hold the seal key.
	loaded, err := st.Load(ctx(t), p)
	if err != nil {
		t.Fatal(err)
	}
	var forged map[string]any
	body := rawBody(t, st, loaded.Version)
	if err := json.Unmarshal(body, &forged); err != nil {
		t.Fatal(err)
	}
	forged["id"], forged["type"], forged["prev"] = "evil/0", "person.left", forged["hash"]
	forged["decision"].(map[string]any)["id"] = "evil"
	forged["hash"], forged["seal"] = rehash(t, forged), strings.Repeat("ab", 32)
	fb, _ := json.Marshal(forged)
	forgedSeq := publishRaw(t, js, "koers.person.p-1", fb)
	garbageSeq := publishRaw(t, js, "koers.team.t-9", []byte("not an envelope"))

	h, err := st.Load(ctx(t), p)
	if err != nil {
		t.Fatalf("load after a forgery: %v", err)
	}
	if len(h.Events) != 1 || h.Events[0].Type != "person.joined" || h.Version != forgedSeq {
		t.Fatalf("load: %d events (last %q) at version %d; want only the genuine event, version %d",
			len(h.Events), h.Events[len(h.Events)-1].Type, h.Version, forgedSeq)
	}

	// The ledger goes on: the next genuine event expects the forged
	// message's sequence but chains to the last genuine event.
	mustAppend(t, st, meta("after"), map[domain.Ref]uint64{p: forgedSeq}, event(p, "person.moved", nil))

	r := mustVerify(t, st, eventstore.VerifyOptions{})
	if len(r.Problems) != 2 || r.Problems[0].Sequence != forgedSeq || r.Problems[1].Sequence != garbageSeq ||
		!strings.Contains(r.Problems[0].What, "forgery") || !strings.Contains(r.Problems[1].What, "malformed") {
		t.Fatalf("verify found %+v; want the forgery at %d and the garbage at %d, nothing else", r.Problems, forgedSeq, garbageSeq)
	}

	var rejected []uint64
	var events []string
	for rec, err := range st.Read(ctx(t), 1, domain.ReadOptions{Until: lastSeq(t, st)}) {
		var rej *domain.RejectedError
		if errors.As(err, &rej) {
			rejected = append(rejected, rej.Sequence)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, rec.Type)
	}
	if len(rejected) != 2 || strings.Join(events, ",") != "person.joined,person.moved" {
		t.Fatalf("read: events %v, rejected %v; want the two genuine events and both forgeries rejected", events, rejected)
	}
}

func TestVerifyReportsATamperedCopyOfTheChain(t *testing.T) {
	// A holder of the key who rewrites an event under a new id cannot keep
	// the chain: the next genuine event still points at the original.
	st, js := newStore(t)
	p := person("p-1")
	mustAppend(t, st, meta("a"), map[domain.Ref]uint64{p: 0}, event(p, "person.joined", nil))
	first := rawBody(t, st, 1)
	var env map[string]any
	if err := json.Unmarshal(first, &env); err != nil {
		t.Fatal(err)
	}
	env["prev"] = strings.Repeat("0", 64)
	env["hash"] = rehash(t, env)
	b, _ := json.Marshal(env)
	publishRaw(t, js, "koers.person.p-1", b) // wrong seal and a broken chain
	r := mustVerify(t, st, eventstore.VerifyOptions{})
	if r.OK() {
		t.Fatal("verify accepted a message that breaks the chain")
	}
}

func TestReadResumesFromAnySequenceAndStopsOnCancel(t *testing.T) {
	st, _ := newStore(t)
	var v uint64
	p := person("p-1")
	for i := range 10 {
		v = mustAppend(t, st, meta("d-"+itoa(i)), map[domain.Ref]uint64{p: v}, event(p, "person.renamed", map[string]int{"n": i})).Sequences[0]
	}
	var got []uint64
	for rec, err := range st.Read(ctx(t), 7, domain.ReadOptions{Until: 10}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rec.Sequence)
	}
	if len(got) != 4 || got[0] != 7 || got[3] != 10 {
		t.Fatalf("read 7..10: got %v", got)
	}

	// Following the live stream: a new event arrives, then cancel ends the
	// read without an error.
	c, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := make(chan uint64, 16)
	done := make(chan error, 1)
	go func() {
		for rec, err := range st.Read(c, 10, domain.ReadOptions{}) {
			if err != nil {
				done <- err
				return
			}
			seen <- rec.Sequence
		}
		done <- nil
	}()
	if s := <-seen; s != 10 {
		t.Fatalf("first followed event %d, want 10", s)
	}
	mustAppend(t, st, meta("live"), map[domain.Ref]uint64{p: 10}, event(p, "person.renamed", nil))
	select {
	case s := <-seen:
		if s != 11 {
			t.Fatalf("live event %d, want 11", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("live event not delivered within 10s")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("read ended with %v on cancel, want a clean stop", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("read did not stop within 10s of cancel")
	}
}

func TestDataSurvivesAnEmbeddedServerRestart(t *testing.T) {
	dir := t.TempDir()
	srv, err := eventstore.StartEmbedded(eventstore.EmbeddedOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t, connect(t, srv))
	p := person("p-1")
	mustAppend(t, st, meta("a"), map[domain.Ref]uint64{p: 0}, event(p, "person.joined", nil))
	mustAppend(t, st, meta("b"), map[domain.Ref]uint64{p: 1, team("t-1"): 0}, event(p, "person.moved", nil), event(team("t-1"), "team.member-joined", nil))
	before := mustVerify(t, st, eventstore.VerifyOptions{})
	srv.Shutdown()

	_, js := server(t, dir)
	st = openStore(t, js)
	h, err := st.Load(ctx(t), p)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Events) != 2 || h.Version != 2 {
		t.Fatalf("after restart: %d events at version %d, want 2 at 2", len(h.Events), h.Version)
	}
	after := mustVerify(t, st, eventstore.VerifyOptions{Expect: before.Digest, At: before.DigestAt})
	if !after.OK() {
		t.Fatalf("verify after restart: %+v", after.Problems)
	}
	mustAppend(t, st, meta("c"), map[domain.Ref]uint64{p: 2}, event(p, "person.left", nil))
}

// rawBody returns the stored body of message seq.
func rawBody(t *testing.T, st *eventstore.Store, seq uint64) []byte {
	t.Helper()
	for _, err := range st.Read(ctx(t), seq, domain.ReadOptions{Until: seq}) {
		if err != nil {
			t.Fatal(err)
		}
	}
	b, err := eventstore.RawMessage(ctx(t), st, seq)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rehash recomputes an envelope's hash the way anyone can from the
// documented canonical encoding.
func rehash(t *testing.T, env map[string]any) string {
	t.Helper()
	b, _ := json.Marshal(env)
	h, err := eventstore.CanonicalHash(b)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// A forgery in the middle of a long chain is found where it stands,
// whatever genuine events follow it on the same subject: they chain past
// it to the genuine event before it, so none of them vouches for it.
func TestVerifyFindsAForgeryInTheMiddleOfALongChain(t *testing.T) {
	st, js := newStore(t)
	p := person("p-1")
	version := uint64(0)
	appendOne := func(i int) {
		res := mustAppend(t, st, meta("d-"+itoa(i)), map[domain.Ref]uint64{p: version}, event(p, "person.renamed", map[string]int{"n": i}))
		version = res.Sequences[0]
	}
	for i := range 20 {
		appendOne(i)
	}
	// Chained to the last genuine event with a correct hash, carrying that
	// event's key, signature and path: a seal that does not verify.
	var forged map[string]any
	if err := json.Unmarshal(rawBody(t, st, version), &forged); err != nil {
		t.Fatal(err)
	}
	forged["id"], forged["prev"] = "evil/0", forged["hash"]
	forged["decision"].(map[string]any)["id"] = "evil"
	forged["hash"] = rehash(t, forged)
	fb, _ := json.Marshal(forged)
	forgedSeq := publishRaw(t, js, "koers.person.p-1", fb)
	version = forgedSeq
	for i := 20; i < 40; i++ {
		appendOne(i)
	}

	r := mustVerify(t, st, eventstore.VerifyOptions{})
	if len(r.Problems) != 1 || r.Problems[0].Sequence != forgedSeq || !strings.Contains(r.Problems[0].What, "forgery") {
		t.Fatalf("verify found %+v; want the forgery at %d and nothing else", r.Problems, forgedSeq)
	}
	h, err := st.Load(ctx(t), p)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Events) != 40 {
		t.Fatalf("load: %d events; want the 40 genuine ones", len(h.Events))
	}
}
