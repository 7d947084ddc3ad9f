package projections

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"koers/domain"
	"koers/eventstore"
	"koers/internal/ledgertest"
)

// TestALogWrittenAtVersion1IsReadAtVersion2: person.joined events written
// by a build of schema version 1 (through the real store) are loaded at
// version 2, decided on, retracted and projected next to version 2 events
// with a role; the log still verifies, since it was never rewritten.
func TestALogWrittenAtVersion1IsReadAtVersion2(t *testing.T) {
	ctx := context.Background()
	l := ledgertest.New(t)
	e := env{h: l.Handler, st: l.Store, nc: l.Conn}
	e.play(t, bootstrap)
	l.AppendPersonJoinV1(t, "hire-olga", "p-olga", "Olga", "t-core", day("2026-01-15"))
	l.AppendPersonJoinV1(t, "hire-oscar", "p-oscar", "Oscar", "t-core", day("2026-01-16"))

	h, err := l.Store.Load(ctx, domain.Ref{Kind: domain.KindPerson, ID: "p-olga"})
	if err != nil || len(h.Events) != 1 || h.Events[0].SchemaVersion != 2 {
		t.Fatalf("load a version 1 person: %+v, %v; want one event at version 2", h.Events, err)
	}
	var joined map[string]any
	if err := json.Unmarshal(h.Events[0].Data, &joined); err != nil || joined["name"] != "Olga" || joined["team"] != "t-core" {
		t.Fatalf("upcast payload %s (%v)", h.Events[0].Data, err)
	}

	// The ledger decides on what version 1 wrote: a move, a retraction of
	// a version 1 decision (its record's effects carry no version), and a
	// version 2 join with a role.
	e.play(t,
		`{"id":"move-olga","by":"p-root","authority":"root","reason":"help edge","effective":"2026-02-01","changes":[
		 {"kind":"person.move","person":"p-olga","to":"t-edge"}]}`,
		`{"id":"undo-oscar","by":"p-root","authority":"root","reason":"hired by mistake","effective":"2026-02-01","changes":[
		 {"kind":"decision.retract","decision":"hire-oscar"}]}`,
		`{"id":"hire-tess","by":"p-root","authority":"root","reason":"hire","effective":"2026-02-01","changes":[
		 {"kind":"person.join","id":"p-tess","name":"Tess","team":"t-core","role":"tester"}]}`)

	db := newDB(t)
	catchUp(t, db, e.st)
	org, err := db.Organisation(ctx, At{AsOf: day("2026-03-01")}, Page{})
	if err != nil {
		t.Fatal(err)
	}
	where := map[string]string{}
	for _, tm := range org.Teams {
		for _, p := range tm.Members {
			where[p.ID] = tm.ID
		}
	}
	if where["p-olga"] != "t-edge" || where["p-tess"] != "t-core" || where["p-oscar"] != "" {
		t.Fatalf("people by team %v: want p-olga in t-edge, p-tess in t-core, p-oscar retracted", where)
	}
	hist, err := db.History(ctx, domain.Ref{Kind: domain.KindPerson, ID: "p-tess"}, HistoryOptions{}, Page{})
	if err != nil {
		t.Fatal(err)
	}
	var facts []string
	for _, f := range hist.Facts {
		facts = append(facts, f.Attribute+"="+f.Value)
	}
	if !strings.Contains(strings.Join(facts, " "), "role=tester") {
		t.Fatalf("p-tess facts %v: want role=tester", facts)
	}
	if r, err := l.Store.Verify(ctx, eventstore.VerifyOptions{}); err != nil || !r.OK() {
		t.Fatalf("verify: %+v, %v", r, err)
	}
}

// TestAnEventOfAVersionWithoutUpcasterStopsLoad: Load refuses a history
// it cannot bring to today's versions rather than decide on a guess.
func TestAnEventOfAVersionWithoutUpcasterStopsLoad(t *testing.T) {
	ctx := context.Background()
	l := ledgertest.New(t)
	ref := domain.Ref{Kind: domain.KindPerson, ID: "p-next"}
	if _, err := l.Store.Append(ctx, domain.Meta{DecisionID: "from-the-future", By: "p-root", Authority: "root", Reason: "newer build", Effective: day("2026-02-01")},
		[]domain.Event{{Aggregate: ref, Type: domain.EventPersonJoined, SchemaVersion: domain.CurrentVersion(domain.EventPersonJoined) + 1,
			Data: []byte(`{"id":"p-next","name":"N","team":"t-core","pronouns":"they"}`)}}, map[domain.Ref]uint64{ref: 0}); err != nil {
		t.Fatal(err)
	}
	_, err := l.Store.Load(ctx, ref)
	var sv *domain.SchemaVersionError
	if !errors.As(err, &sv) || sv.Version != 3 || !errors.Is(err, domain.ErrSchemaVersion) {
		t.Fatalf("load: %v, want a *domain.SchemaVersionError", err)
	}
	if _, err := l.Handler.Submit(ctx, []byte(`{"by":"p-root","authority":"root","reason":"r","changes":[{"kind":"person.leave","person":"p-next"}]}`)); !errors.Is(err, domain.ErrSchemaVersion) {
		t.Fatalf("a decision on it: %v, want one that stops on the schema version", err)
	}
}
