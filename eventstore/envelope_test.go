package eventstore

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// testPriv is the writer's key of the envelope tests.
var testPriv = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))

func sampleEnvelope(priv ed25519.PrivateKey) *envelope {
	e := &envelope{
		V: envelopeVersion, ID: "d/0", Type: "person.moved", SchemaVersion: 1, Subject: "koers.person.p-1",
		Decision: decisionMeta{ID: "d", By: "p-0001", Authority: "root", Reason: "a <reason> & more",
			Refs: []string{"https://x/y?a=1&b=2"}, Effective: time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)},
		Index: 0, Count: 1, Data: json.RawMessage(`{"to":"t-<1>&"}`),
	}
	e.finish()
	if err := seal(priv, []*envelope{e}); err != nil {
		panic(err)
	}
	return e
}

func TestEnvelopeRoundTripKeepsTheHash(t *testing.T) {
	s := testPriv
	e := sampleEnvelope(s)
	body, err := e.marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeEnvelope(body)
	if err != nil {
		t.Fatalf("decode of a fresh envelope: %v", err)
	}
	if got.Hash != e.Hash || !sealValid(s.Public().(ed25519.PublicKey), got) || string(got.Data) != string(e.Data) {
		t.Fatalf("round trip changed the envelope: %+v", got)
	}
}

func TestEveryFieldIsCoveredByTheHash(t *testing.T) {
	s := testPriv
	changes := map[string]func(*envelope){
		"id":        func(e *envelope) { e.ID = "d/1" },
		"type":      func(e *envelope) { e.Type = "person.left" },
		"schema":    func(e *envelope) { e.SchemaVersion = 2 },
		"subject":   func(e *envelope) { e.Subject = "koers.person.p-2" },
		"decision":  func(e *envelope) { e.Decision.ID = "e" },
		"actor":     func(e *envelope) { e.Decision.By = "p-0002" },
		"authority": func(e *envelope) { e.Decision.Authority = "m-2" },
		"reason":    func(e *envelope) { e.Decision.Reason = "other" },
		"refs":      func(e *envelope) { e.Decision.Refs = append(e.Decision.Refs, "x") },
		"effective": func(e *envelope) { e.Decision.Effective = e.Decision.Effective.Add(time.Nanosecond) },
		"index":     func(e *envelope) { e.Count, e.Index = 2, 1 },
		"data":      func(e *envelope) { e.Data = json.RawMessage(`{"to":"t-2"}`) },
		"prev":      func(e *envelope) { e.Prev = strings.Repeat("a", 64) },
		// Moving a byte between two fields must change the hash too.
		"boundary": func(e *envelope) { e.Decision.By, e.Decision.Authority = "p-000", "1root" },
	}
	for name, change := range changes {
		e := sampleEnvelope(s)
		change(e)
		sum := e.canonicalHash()
		body, _ := e.marshal()
		if _, err := decodeEnvelope(body); err == nil || !strings.Contains(err.Error(), "hash mismatch") {
			t.Errorf("changing %s: decode says %v, want a hash mismatch (hash now %x)", name, err, sum[:4])
		}
	}
}

// FuzzDecodeEnvelope: whatever a client publishes onto a koers subject,
// decoding yields an envelope whose hash matches or an error, never a panic.
func FuzzDecodeEnvelope(f *testing.F) {
	s := testPriv
	good, _ := sampleEnvelope(s).marshal()
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"v":2,"id":"x","type":"t","subject":"s","decision":{"id":"d"},"i":0,"n":1,"hash":""}`))
	f.Add([]byte(`not json`))
	f.Add([]byte(`{"v":2,"i":-1,"n":-5}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := decodeEnvelope(body)
		if err != nil {
			if e != nil {
				t.Fatal("an error with an envelope")
			}
			return
		}
		sum := e.canonicalHash()
		if len(e.Hash) != 64 || e.Index < 0 || e.Index >= e.Count {
			t.Fatalf("accepted an inconsistent envelope: %+v (hash %x)", e, sum)
		}
	})
}

func BenchmarkEnvelopeEncodeHashSeal(b *testing.B) {
	s := testPriv
	e := sampleEnvelope(s)
	b.ReportAllocs()
	for b.Loop() {
		e.finish()
		if err := seal(s, []*envelope{e}); err != nil {
			b.Fatal(err)
		}
		if _, err := e.marshal(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEnvelopeDecodeCheck(b *testing.B) {
	s := testPriv
	body, _ := sampleEnvelope(s).marshal()
	b.ReportAllocs()
	for b.Loop() {
		e, err := decodeEnvelope(body)
		if err != nil || !sealValid(s.Public().(ed25519.PublicKey), e) {
			b.Fatal(err)
		}
	}
}

// FuzzEnvelopeDecodersAgree: the fast decoder reads every envelope the
// standard library reads, to the same values.
func FuzzEnvelopeDecodersAgree(f *testing.F) {
	s := testPriv
	good, _ := sampleEnvelope(s).marshal()
	f.Add(good)
	f.Add([]byte(`{"v":2,"id":"a","id":"b"}`))
	f.Add([]byte(`{"v":2,"data":{"x":[1,2,{"y":"\u00e9"}]},"decision":{"effective":"2026-07-01T00:00:00+02:00"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var std envelope
		if json.Unmarshal(body, &std) != nil {
			return
		}
		e, err := decodeEnvelope(body)
		if err != nil {
			if strings.Contains(err.Error(), "malformed envelope: ") && !strings.Contains(err.Error(), "unknown envelope version") &&
				!strings.Contains(err.Error(), "missing") && !strings.Contains(err.Error(), "index") && !strings.Contains(err.Error(), "hash") {
				t.Fatalf("the standard library reads %q, the fast decoder says %v", body, err)
			}
			return
		}
		if e.ID != std.ID || e.Type != std.Type || e.Subject != std.Subject || !bytes.Equal(e.Data, std.Data) ||
			e.Prev != std.Prev || e.Hash != std.Hash || e.Sig != std.Sig || e.Key != std.Key || e.Index != std.Index || e.Count != std.Count ||
			e.SchemaVersion != std.SchemaVersion || !e.Decision.Effective.Equal(std.Decision.Effective) ||
			e.Decision.ID != std.Decision.ID || e.Decision.By != std.Decision.By || e.Decision.Reason != std.Decision.Reason ||
			strings.Join(e.Decision.Refs, "\x00") != strings.Join(std.Decision.Refs, "\x00") {
			t.Fatalf("decoders disagree on %q:\nfast %+v\nstd  %+v", body, e, std)
		}
	})
}

// TestMerklePathsProveEveryLeaf: for every decision size up to 70 events,
// every event's path leads to the root the writer signed, and no other
// event's place does.
func TestMerklePathsProveEveryLeaf(t *testing.T) {
	for n := 1; n <= 70; n++ {
		leaves := make([][32]byte, n)
		for i := range leaves {
			leaves[i] = leafHash([]byte{byte(i), byte(n)})
		}
		root := merkleRoot(leaves)
		for m := range n {
			path := merklePath(leaves, m)
			got, ok := rootFromPath(leaves[m], m, n, path)
			if !ok || got != root {
				t.Fatalf("n=%d m=%d: path does not lead to the root", n, m)
			}
			if n > 1 {
				other := (m + 1) % n
				if got, ok := rootFromPath(leaves[m], other, n, path); ok && got == root {
					t.Fatalf("n=%d: leaf %d proves itself at %d", n, m, other)
				}
			}
		}
	}
}
