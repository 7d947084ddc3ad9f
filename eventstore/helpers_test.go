package eventstore_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"koers/domain"
	"koers/eventstore"
)

// testKey is the seal key of every test ledger.
var testKey = func() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic(err)
	}
	return k
}()

// server starts an embedded nats-server with its store in dir and stops it
// when the test ends.
func server(tb testing.TB, dir string) (*eventstore.Embedded, jetstream.JetStream) {
	tb.Helper()
	srv, err := eventstore.StartEmbedded(eventstore.EmbeddedOptions{Dir: dir})
	if err != nil {
		tb.Fatalf("start embedded nats-server: %v", err)
	}
	tb.Cleanup(srv.Shutdown)
	return srv, connect(tb, srv)
}

func connect(tb testing.TB, srv *eventstore.Embedded) jetstream.JetStream {
	tb.Helper()
	nc, err := srv.Connect()
	if err != nil {
		tb.Fatalf("connect to embedded nats-server: %v", err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatalf("jetstream: %v", err)
	}
	return js
}

// newStore gives the test a ledger on a fresh embedded server.
func newStore(tb testing.TB, mods ...func(*eventstore.Config)) (*eventstore.Store, jetstream.JetStream) {
	tb.Helper()
	_, js := server(tb, tb.TempDir())
	return openStore(tb, js, mods...), js
}

func openStore(tb testing.TB, js jetstream.JetStream, mods ...func(*eventstore.Config)) *eventstore.Store {
	tb.Helper()
	cfg := eventstore.Config{SealKey: testKey}
	for _, m := range mods {
		m(&cfg)
	}
	st, err := eventstore.Open(ctx(tb), js, cfg)
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	return st
}

func ctx(tb testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	tb.Cleanup(cancel)
	return c
}

func person(id string) domain.Ref { return domain.Ref{Kind: domain.KindPerson, ID: id} }
func team(id string) domain.Ref   { return domain.Ref{Kind: domain.KindTeam, ID: id} }

func meta(id string) domain.Meta {
	return domain.Meta{
		DecisionID: id, By: "p-0001", Authority: "root", Reason: "test",
		Refs: []string{"https://wiki.example.org/minutes/1"}, Effective: time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC),
	}
}

func event(ref domain.Ref, typ string, data any) domain.Event {
	b, err := json.Marshal(data)
	if err != nil {
		panic(err)
	}
	return domain.Event{Aggregate: ref, Type: typ, SchemaVersion: 1, Data: b}
}

// mustAppend appends and fails the test on error.
func mustAppend(tb testing.TB, st *eventstore.Store, m domain.Meta, expected map[domain.Ref]uint64, evs ...domain.Event) eventstore.AppendResult {
	tb.Helper()
	res, err := st.Append(ctx(tb), m, evs, expected)
	if err != nil {
		tb.Fatalf("append %s: %v", m.DecisionID, err)
	}
	return res
}

func lastSeq(tb testing.TB, st *eventstore.Store) uint64 {
	tb.Helper()
	n, err := st.LastSequence(ctx(tb))
	if err != nil {
		tb.Fatalf("last sequence: %v", err)
	}
	return n
}

func mustVerify(tb testing.TB, st *eventstore.Store, opts eventstore.VerifyOptions) *eventstore.Report {
	tb.Helper()
	r, err := st.Verify(ctx(tb), opts)
	if err != nil {
		tb.Fatalf("verify: %v", err)
	}
	return r
}

func publishRaw(tb testing.TB, js jetstream.JetStream, subject string, body []byte) uint64 {
	tb.Helper()
	msg := nats.NewMsg(subject)
	msg.Data = body
	ack, err := js.PublishMsg(ctx(tb), msg)
	if err != nil {
		tb.Fatalf("raw publish on %s: %v", subject, err)
	}
	return ack.Sequence
}

func seqs(from, to uint64) []uint64 {
	var s []uint64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

var _ = fmt.Sprint

func itoa(i int) string { return fmt.Sprint(i) }
