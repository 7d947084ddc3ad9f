// Package ledgertest starts a real ledger for tests: an embedded nats-server
// in the test's temporary folder, a store with a random seal key, and a
// command handler on a fixed clock, initialised with the root mandate.
package ledgertest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"koers/domain"
	"koers/eventstore"
	"koers/ledger"
)

// Clock is the handler's "now" in every test ledger.
var Clock = time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC)

// Genesis is when the root mandate of a test ledger starts: decisions may be
// backdated to it.
var Genesis = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// RootActor holds the root mandate of a test ledger.
const RootActor = "p-root"

// Ledger is a running test ledger; everything stops when the test ends.
type Ledger struct {
	Server  *eventstore.Embedded
	Conn    *nats.Conn
	JS      jetstream.JetStream
	Store   *eventstore.Store
	Handler *ledger.Handler
	SealKey []byte
}

// New starts a ledger for tb.
func New(tb testing.TB) *Ledger {
	tb.Helper()
	srv, err := eventstore.StartEmbedded(eventstore.EmbeddedOptions{Dir: tb.TempDir()})
	if err != nil {
		tb.Fatalf("ledgertest: start embedded nats-server: %v", err)
	}
	tb.Cleanup(srv.Shutdown)
	nc, err := srv.Connect()
	if err != nil {
		tb.Fatalf("ledgertest: connect: %v", err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatalf("ledgertest: jetstream: %v", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		tb.Fatal(err)
	}
	st, err := eventstore.Open(context.Background(), js, eventstore.Config{SealKey: key})
	if err != nil {
		tb.Fatalf("ledgertest: open store: %v", err)
	}
	h, err := ledger.New(st, ledger.Options{Now: func() time.Time { return Clock }})
	if err != nil {
		tb.Fatalf("ledgertest: handler: %v", err)
	}
	if _, err := h.Init(context.Background(), RootActor, Genesis); err != nil {
		tb.Fatalf("ledgertest: init: %v", err)
	}
	return &Ledger{Server: srv, Conn: nc, JS: js, Store: st, Handler: h, SealKey: key}
}

// Submit records a decision given as JSON and fails the test if it is refused.
func (l *Ledger) Submit(tb testing.TB, decision string) ledger.Result {
	tb.Helper()
	res, err := l.Handler.Submit(context.Background(), []byte(decision))
	if err != nil {
		tb.Fatalf("decision %s: %v", decision, err)
	}
	return res
}

// PersonJoinedV1 is a person.joined payload as schema version 1 wrote it
// (before role).
func PersonJoinedV1(person, name, team string) []byte {
	b, _ := json.Marshal(map[string]string{"id": person, "name": name, "team": team})
	return b
}

// AppendPersonJoinV1 records, through the real store, a person.join
// decision as a build of schema version 1 wrote it: person.joined at
// version 1 (no role) and a decision record whose effects carry no
// versions. It is how tests get a log written with the old version; it
// returns the sequences of the three events.
func (l *Ledger) AppendPersonJoinV1(tb testing.TB, decisionID, person, name, team string, effective time.Time) []uint64 {
	tb.Helper()
	ctx := context.Background()
	teamRef := domain.Ref{Kind: domain.KindTeam, ID: team}
	h, err := l.Store.Load(ctx, teamRef)
	if err != nil {
		tb.Fatalf("ledgertest: load %s: %v", teamRef, err)
	}
	joined := PersonJoinedV1(person, name, team)
	member, _ := json.Marshal(domain.TeamMember{Team: team, Person: person})
	change := domain.Change{Kind: domain.ChangePersonJoin, ID: person, Name: name, Team: team}
	rec, err := json.Marshal(domain.DecisionRecorded{ID: decisionID, By: RootActor, Authority: domain.RootMandate, Reason: "hired (schema version 1)",
		Effective: effective, Changes: []domain.Change{change}, Effects: []domain.Effect{
			{Aggregate: "person:" + person, Type: domain.EventPersonJoined, Data: joined},
			{Aggregate: teamRef.String(), Type: domain.EventTeamMemberAdded, Data: member},
		}})
	if err != nil {
		tb.Fatal(err)
	}
	personRef, decisionRef := domain.Ref{Kind: domain.KindPerson, ID: person}, domain.Ref{Kind: domain.KindDecision, ID: decisionID}
	meta := domain.Meta{DecisionID: decisionID, By: RootActor, Authority: domain.RootMandate, Reason: "hired (schema version 1)", Effective: effective}
	res, err := l.Store.Append(ctx, meta, []domain.Event{
		{Aggregate: personRef, Type: domain.EventPersonJoined, SchemaVersion: 1, Data: joined},
		{Aggregate: teamRef, Type: domain.EventTeamMemberAdded, SchemaVersion: 1, Data: member},
		{Aggregate: decisionRef, Type: domain.EventDecisionRecorded, SchemaVersion: 1, Data: rec},
	}, map[domain.Ref]uint64{personRef: 0, teamRef: h.Version, decisionRef: 0})
	if err != nil {
		tb.Fatalf("ledgertest: append a version 1 person.join: %v", err)
	}
	return res.Sequences
}
