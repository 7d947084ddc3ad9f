package eventstore_test

import (
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"

	"koers/domain"
)

// A projector follows the log in the process that appends to it: each
// subject it meets for the first time was usually just appended to, and
// its chain before the read started is the head the append moved on from,
// which the store already knows. Asking the server for it instead walked
// the subject's whole history, one request at a time behind the appends
// being synced: the projector's lag grew with the history.
func TestReadTakesTheHeadBeforeAnAppendOfThisProcessWithoutARequest(t *testing.T) {
	srv, js := server(t, t.TempDir())
	st := openStore(t, js)
	p := person("p-1")
	for i := range 20 {
		mustAppend(t, st, meta("d-"+itoa(i)), map[domain.Ref]uint64{p: lastSeq(t, st)},
			event(p, "person.renamed", map[string]int{"n": i}))
	}
	from := lastSeq(t, st) + 1
	mustAppend(t, st, meta("d-live"), map[domain.Ref]uint64{p: from - 1},
		event(p, "person.renamed", map[string]int{"n": 20}))

	// Every message get the store makes, direct or through the API.
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	var gets atomic.Int64
	for _, subj := range []string{"$JS.API.DIRECT.GET.>", "$JS.API.STREAM.MSG.GET.>"} {
		if _, err := nc.Subscribe(subj, func(*nats.Msg) { gets.Add(1) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	var got []uint64
	for rec, err := range st.Read(ctx(t), from, domain.ReadOptions{Until: from}) {
		if err != nil {
			t.Fatalf("read from %d: %v", from, err)
		}
		got = append(got, rec.Sequence)
	}
	if len(got) != 1 || got[0] != from {
		t.Fatalf("read from %d: got sequences %v, want the live decision's event as genuine", from, got)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := gets.Load(); n != 0 {
		t.Errorf("the read asked the server for %d messages to place an event this store appended; want none", n)
	}
}
