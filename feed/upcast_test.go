package feed_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"koers/domain"
	"koers/feed"
	"koers/internal/ledgertest"
	"koers/internal/pgtest"
)

// TestEventsOfAnOlderVersionArePublishedAtTheCurrentOne: a person.joined
// written at schema version 1 goes out as version 2, in version 2's shape.
func TestEventsOfAnOlderVersionArePublishedAtTheCurrentOne(t *testing.T) {
	l := ledgertest.New(t)
	l.Submit(t, smallHistory)
	seqs := l.AppendPersonJoinV1(t, "hire-olga", "p-olga", "Olga", "t-core", time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC))
	rc, url := webhook(t, nil)
	r := start(t, l, pgtest.Package(t), fastRetries(feed.Config{Name: uniqueName(t, "v1"), Target: url}))
	caughtUp(t, l, r)
	r.stop()
	var found bool
	for _, a := range rc.arrived(t) {
		var ce feed.CloudEvent
		if err := json.Unmarshal(a.body, &ce); err != nil {
			t.Fatal(err)
		}
		if ce.Sequence() != seqs[0] {
			continue
		}
		found = true
		var p domain.PersonJoined
		if ce.SchemaVersion != domain.CurrentVersion(domain.EventPersonJoined) || ce.Type != "koers.person.joined" ||
			json.Unmarshal(ce.Data, &p) != nil || p != (domain.PersonJoined{ID: "p-olga", Name: "Olga", Team: "t-core"}) {
			t.Fatalf("the version 1 event went out as %s", a.body)
		}
	}
	if !found {
		t.Fatalf("sequence %d was not published", seqs[0])
	}
}

// TestAnEventOfAVersionWithoutUpcasterStopsTheFeed: the feed delivers what
// comes before it and stops with the documented error, its checkpoint
// right before the event.
func TestAnEventOfAVersionWithoutUpcasterStopsTheFeed(t *testing.T) {
	ctx := context.Background()
	l := ledgertest.New(t)
	l.Submit(t, smallHistory)
	ref := domain.Ref{Kind: domain.KindPerson, ID: "p-next"}
	res, err := l.Store.Append(ctx, domain.Meta{DecisionID: "from-the-future", By: "p-root", Authority: "root", Reason: "newer build",
		Effective: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)},
		[]domain.Event{{Aggregate: ref, Type: domain.EventPersonJoined, SchemaVersion: 3, Data: []byte(`{"id":"p-next"}`)}},
		map[domain.Ref]uint64{ref: 0})
	if err != nil {
		t.Fatal(err)
	}
	seq := res.Sequences[0]
	// A decision after it: the consumer hands on whole appends, and this
	// one closes the unit the event without a record opened.
	l.Submit(t, `{"id":"after","by":"p-root","authority":"root","reason":"r","effective":"2026-03-01","changes":[
	 {"kind":"team.form","id":"t-new","name":"New","type":"enabling"}]}`)
	_, url := webhook(t, nil)
	f, err := feed.Open(ctx, l.Store, pgtest.Package(t), fastRetries(feed.Config{Name: uniqueName(t, "v3"), Target: url}))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	runCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = f.Run(runCtx)
	var unreadable *feed.UnreadableEventError
	var sv *domain.SchemaVersionError
	if !errors.As(err, &unreadable) || unreadable.Sequence != seq || !errors.As(err, &sv) || sv.Version != 3 {
		t.Fatalf("run: %v, want a *feed.UnreadableEventError at %d wrapping a *domain.SchemaVersionError", err, seq)
	}
	if f.Checkpoint() != seq-1 {
		t.Fatalf("checkpoint %d, want %d: right before the event", f.Checkpoint(), seq-1)
	}
}
