package projections

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"koers/domain"
)

func TestUnknownEventsStopTheProjectorAndUnknownEnvelopesAreRecorded(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		ev   domain.Event
	}{
		{"unknown type", domain.Event{Aggregate: domain.Ref{Kind: domain.KindPerson, ID: "p-ghost"}, Type: "person.teleported",
			SchemaVersion: 1, Data: []byte(`{"id":"p-ghost"}`)}},
		{"unknown schema version", domain.Event{Aggregate: domain.Ref{Kind: domain.KindPerson, ID: "p-ghost"}, Type: domain.EventPersonJoined,
			SchemaVersion: domain.CurrentVersion(domain.EventPersonJoined) + 1, Data: []byte(`{"id":"p-ghost","name":"G","team":"t-core","since":"x"}`)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newLog(t)
			e.play(t, bootstrap)
			meta := domain.Meta{DecisionID: "from-the-future", By: "p-root", Authority: "root", Reason: "newer build",
				Effective: day("2026-02-01")}
			res, err := e.st.Append(ctx, meta, []domain.Event{c.ev}, map[domain.Ref]uint64{c.ev.Aggregate: 0})
			if err != nil {
				t.Fatal(err)
			}
			seq := res.Sequences[0]
			e.play(t, `{"id":"after","by":"p-root","authority":"root","reason":"r","effective":"2026-03-01","changes":[
			 {"kind":"team.form","id":"t-new","name":"New","type":"enabling"}]}`)

			db := newDB(t)
			err = newProjector(t, db, e.st, ProjectorOptions{BatchEvents: 1}).CatchUp(ctx)
			var unreadable *UnreadableEventError
			if !errors.As(err, &unreadable) || unreadable.Sequence != seq || unreadable.Type != c.ev.Type ||
				!strings.Contains(err.Error(), fmt.Sprintf("event %d ", seq)) {
				t.Fatalf("projecting an event this build cannot read: %v, want an *UnreadableEventError naming sequence %d", err, seq)
			}
			if cp, err := db.Checkpoint(ctx); err != nil || cp != seq-1 {
				t.Fatalf("checkpoint %d (%v), want %d: right before the unreadable event", cp, err, seq-1)
			}
			if _, err := db.Decision(ctx, "after"); !errors.Is(err, domain.ErrNotFound) {
				t.Fatalf("a decision after the unreadable event was applied: %v", err)
			}
			// Running again stops at the same place.
			if err := newProjector(t, db, e.st, ProjectorOptions{}).Run(ctx); !errors.As(err, &unreadable) || unreadable.Sequence != seq {
				t.Fatalf("second run: %v", err)
			}
		})
	}

	t.Run("unknown envelope version", func(t *testing.T) {
		e := newLog(t)
		e.play(t, bootstrap)
		if err := e.nc.Publish("koers.person.p-v2", []byte(`{"v":3,"id":"x/0","type":"person.joined","sv":1}`)); err != nil {
			t.Fatal(err)
		}
		e.nc.Flush()
		e.play(t, `{"id":"after","by":"p-root","authority":"root","reason":"r","effective":"2026-03-01","changes":[
		 {"kind":"team.form","id":"t-new","name":"New","type":"enabling"}]}`)
		db := newDB(t)
		catchUp(t, db, e.st)
		var reason string
		err := db.withConn(ctx, func(c *pgx.Conn) error {
			return c.QueryRow(ctx, `SELECT reason FROM rejected_messages WHERE subject = 'koers.person.p-v2'`).Scan(&reason)
		})
		if err != nil || !strings.Contains(reason, "unknown envelope version 3") {
			t.Fatalf("rejected message: %q, %v; want it recorded with the log's reason", reason, err)
		}
		if _, err := db.Decision(ctx, "after"); err != nil {
			t.Fatalf("the projector did not go on past the rejected message: %v", err)
		}
	})
}
