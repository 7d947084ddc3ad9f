package domain

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestUpcast(t *testing.T) {
	p := Ref{Kind: KindPerson, ID: "p-1"}
	v1 := `{"id":"p-1","name":"Ada","team":"t-core"}`
	for _, tc := range []struct {
		name    string
		in      Event
		version int
		data    string
		err     string
	}{
		{"version 1 of person.joined becomes 2", Event{Aggregate: p, Type: EventPersonJoined, SchemaVersion: 1, Data: []byte(v1)}, 2, v1, ""},
		{"the current version passes as it is", Event{Aggregate: p, Type: EventPersonJoined, SchemaVersion: 2, Data: []byte(`{"id":"p-1","name":"Ada","team":"t-core","role":"dev"}`)},
			2, `{"id":"p-1","name":"Ada","team":"t-core","role":"dev"}`, ""},
		{"a type still at version 1", Event{Aggregate: p, Type: EventPersonMoved, SchemaVersion: 1, Data: []byte(`{"id":"p-1","from":"a","to":"b"}`)},
			1, `{"id":"p-1","from":"a","to":"b"}`, ""},
		{"a version newer than this build", Event{Aggregate: p, Type: EventPersonJoined, SchemaVersion: 3, Data: []byte(v1)}, 0, "",
			"event person.joined on person:p-1 has schema version 3, this build reads up to 2: run a newer build"},
		{"version 0", Event{Aggregate: p, Type: EventPersonMoved, SchemaVersion: 0, Data: []byte(`{}`)}, 0, "",
			"event person.moved on person:p-1 has schema version 0: versions start at 1"},
		{"a version 1 payload the upcaster cannot read", Event{Aggregate: p, Type: EventPersonJoined, SchemaVersion: 1, Data: []byte(`{"id":5}`)}, 0, "",
			"event person.joined on person:p-1: upcast from version 1: json: cannot unmarshal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Upcast(tc.in)
			if tc.err != "" {
				if err == nil || !errors.Is(err, ErrSchemaVersion) || len(err.Error()) < len(tc.err) || err.Error()[:len(tc.err)] != tc.err {
					t.Fatalf("%v, want %q wrapping ErrSchemaVersion", err, tc.err)
				}
				return
			}
			if err != nil || got.SchemaVersion != tc.version || string(got.Data) != tc.data || got.Type != tc.in.Type || got.Aggregate != tc.in.Aggregate {
				t.Fatalf("%+v, %v; want version %d data %s", got, err, tc.version, tc.data)
			}
		})
	}
	// DecodeEventData reads version 1 as today's payload.
	v, err := DecodeEventData(Recorded{Event: Event{Aggregate: p, Type: EventPersonJoined, SchemaVersion: 1, Data: []byte(v1)}})
	if pj, ok := v.(*PersonJoined); err != nil || !ok || *pj != (PersonJoined{ID: "p-1", Name: "Ada", Team: "t-core"}) {
		t.Fatalf("decode version 1: %#v, %v", v, err)
	}
}

func TestUpcastWithoutTheStepStops(t *testing.T) {
	key := upcastKey{EventPersonJoined, 1}
	step := upcasters[key]
	delete(upcasters, key)
	t.Cleanup(func() { upcasters[key] = step })
	_, err := Upcast(Event{Aggregate: Ref{Kind: KindPerson, ID: "p-1"}, Type: EventPersonJoined, SchemaVersion: 1, Data: []byte(`{}`)})
	var sv *SchemaVersionError
	if !errors.As(err, &sv) || sv.Missing != 1 || sv.Current != 2 || err.Error() != "event person.joined on person:p-1 has schema version 1, this build reads 2 and has no upcaster from version 1" {
		t.Fatalf("%v, want a *SchemaVersionError naming the missing step", err)
	}
}

// TestEveryVersionHasItsSteps: each type above version 1 has an upcaster
// from every older version, so that every event ever written still reads.
func TestEveryVersionHasItsSteps(t *testing.T) {
	for typ, cur := range eventVersions {
		if _, ok := eventSpecs[typ]; !ok {
			t.Errorf("version for unknown event type %s", typ)
		}
		for v := 1; v < cur; v++ {
			if _, ok := upcasters[upcastKey{typ, v}]; !ok {
				t.Errorf("%s: no upcaster from version %d to %d", typ, v, v+1)
			}
		}
	}
	for k := range upcasters {
		if k.From < 1 || k.From >= CurrentVersion(k.Type) {
			t.Errorf("upcaster %s from %d: outside 1..%d", k.Type, k.From, CurrentVersion(k.Type)-1)
		}
	}
}

func TestPersonJoinWritesVersion2WithItsRole(t *testing.T) {
	d, err := DecodeDecision([]byte(`{"by":"p-1","authority":"root","reason":"r","changes":[{"kind":"person.join","id":"p-2","name":"Bo","team":"t","role":"tester"}]}`), testOpts)
	if err != nil || d.Changes[0].Role != "tester" {
		t.Fatalf("%+v, %v", d, err)
	}
	b, _ := json.Marshal(d.Changes[0])
	if string(b) != `{"kind":"person.join","id":"p-2","name":"Bo","team":"t","role":"tester"}` {
		t.Fatalf("written back as %s", b)
	}
	ev, err := newEvent(Ref{Kind: KindPerson, ID: "p-2"}, EventPersonJoined, PersonJoined{ID: "p-2", Name: "Bo", Team: "t", Role: "tester"})
	if err != nil || ev.SchemaVersion != 2 {
		t.Fatalf("person.joined written at version %d (%v), want 2", ev.SchemaVersion, err)
	}
}
