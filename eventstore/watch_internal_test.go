package eventstore

import (
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// A check asks the server for the stream's state while appends go on: an
// append acknowledged while that request is in flight may be missing from
// the answer. That is no removal, and must not stop the ledger's writes;
// a later check that still sees less than was written is one.
func TestAnAppendDuringACheckIsNoRemoval(t *testing.T) {
	s := &Store{cfg: Config{Stream: "KOERS"}}
	s.wrote([]uint64{3})
	seen := s.seenLast()  // the check takes what it has seen, then asks
	s.wrote([]uint64{14}) // an append is acknowledged meanwhile
	answer := jetstream.StreamState{FirstSeq: 1, LastSeq: 3, Msgs: 3}
	if p := s.stateProblems(answer, seen); len(p) != 0 {
		t.Fatalf("the server's answer predates an append: %v, want no problem", p)
	}
	p := s.stateProblems(answer, s.seenLast())
	if len(p) != 1 || !strings.Contains(p[0], "the stream ends at 3, but reached 14 before: history was removed") {
		t.Fatalf("a later check still at 3 after 14 was written: %v, want the removal named", p)
	}
}
