package domain

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Event payloads evolve by schema version. Each event type is written at
// its current version (CurrentVersion); a payload of an older version is
// brought to the current one by the upcasters registered below, one
// version at a time, when it is read: by the event store's Load, by the
// projector (DecodeEventData) and by the feeds, all through Upcast. The
// log itself is never rewritten: hashes and seals cover what was written.
//
// To evolve a payload: change its struct, raise its entry in
// eventVersions, register the upcaster from the version before, and list
// the change in the package documentation's event table.

// eventVersions is the version each event type is written at now; a type
// not listed is at version 1.
var eventVersions = map[string]int{
	EventPersonJoined: 2, // v2: role (optional)
}

// upcaster turns a payload of one version into the next version's.
type upcaster func(data json.RawMessage) (json.RawMessage, error)

type upcastKey struct {
	Type string
	From int
}

// upcasters are the registered steps, by event type and the version they
// read.
var upcasters = map[upcastKey]upcaster{
	{EventPersonJoined, 1}: personJoinedV1ToV2,
}

// personJoinedV1 is person.joined as version 1 wrote it.
type personJoinedV1 struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Team string `json:"team"`
}

// personJoinedV1ToV2: version 2 added the optional role; a person who
// joined under version 1 has none.
func personJoinedV1ToV2(data json.RawMessage) (json.RawMessage, error) {
	var v1 personJoinedV1
	if err := json.Unmarshal(data, &v1); err != nil {
		return nil, err
	}
	return json.Marshal(PersonJoined{ID: v1.ID, Name: v1.Name, Team: v1.Team})
}

// CurrentVersion is the schema version events of eventType are written at.
func CurrentVersion(eventType string) int {
	if v, ok := eventVersions[eventType]; ok {
		return v
	}
	return 1
}

// ErrSchemaVersion is wrapped by [*SchemaVersionError]: an event whose
// schema version this build cannot bring to the current one. It is not
// a refusal of anything: the build is older than the log (or the log holds
// a version no build registered an upcaster for). Readers stop there
// rather than skip the event; a build that knows the version goes on.
var ErrSchemaVersion = errors.New("unknown event schema version")

// SchemaVersionError is an event of a schema version Upcast cannot bring
// to Current: newer than this build, below 1, or an older version without
// a registered upcaster (Missing is the version whose step is missing).
type SchemaVersionError struct {
	Type      string
	Aggregate Ref
	Version   int
	Current   int
	Missing   int
}

func (e *SchemaVersionError) Error() string {
	switch {
	case e.Version > e.Current:
		return fmt.Sprintf("event %s on %s has schema version %d, this build reads up to %d: run a newer build", e.Type, e.Aggregate, e.Version, e.Current)
	case e.Version < 1:
		return fmt.Sprintf("event %s on %s has schema version %d: versions start at 1", e.Type, e.Aggregate, e.Version)
	}
	return fmt.Sprintf("event %s on %s has schema version %d, this build reads %d and has no upcaster from version %d",
		e.Type, e.Aggregate, e.Version, e.Current, e.Missing)
}

func (e *SchemaVersionError) Unwrap() error { return ErrSchemaVersion }

// UpcastError is an upcaster that could not read the payload it was given.
type UpcastError struct {
	Type      string
	Aggregate Ref
	From      int
	Err       error
}

func (e *UpcastError) Error() string {
	return fmt.Sprintf("event %s on %s: upcast from version %d: %v", e.Type, e.Aggregate, e.From, e.Err)
}

func (e *UpcastError) Unwrap() []error { return []error{e.Err, ErrSchemaVersion} }

// Upcast returns e with its payload at the current schema version of its
// type, through the registered upcasters; an event already there is
// returned as it is. Every reader of the log calls it before it
// interprets a payload: eventstore's Load, the projector (through
// DecodeEventData), the feeds. It fails with a *SchemaVersionError for a
// version it cannot bring to the current one, and an *UpcastError when a
// step cannot read its payload; both wrap ErrSchemaVersion.
func Upcast(e Event) (Event, error) {
	cur := CurrentVersion(e.Type)
	if e.SchemaVersion == cur {
		return e, nil
	}
	if e.SchemaVersion < 1 || e.SchemaVersion > cur {
		return Event{}, &SchemaVersionError{Type: e.Type, Aggregate: e.Aggregate, Version: e.SchemaVersion, Current: cur}
	}
	// Bounded by cur - e.SchemaVersion steps.
	data := e.Data
	for v := e.SchemaVersion; v < cur; v++ {
		step, ok := upcasters[upcastKey{e.Type, v}]
		if !ok {
			return Event{}, &SchemaVersionError{Type: e.Type, Aggregate: e.Aggregate, Version: e.SchemaVersion, Current: cur, Missing: v}
		}
		next, err := step(data)
		if err != nil {
			return Event{}, &UpcastError{Type: e.Type, Aggregate: e.Aggregate, From: v, Err: err}
		}
		data = next
	}
	e.SchemaVersion, e.Data = cur, data
	return e, nil
}
