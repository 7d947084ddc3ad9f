package feed

import (
	"encoding/json"
	"strconv"
	"time"

	"koers/domain"
)

// ContentType is the media type of a message body: a CloudEvent in the
// structured JSON format.
const ContentType = "application/cloudevents+json"

// CloudEvent is the body of every message a feed publishes: a CloudEvents
// 1.0 event in the JSON format, with the ledger's own extension attributes.
type CloudEvent struct {
	SpecVersion string `json:"specversion"` // always "1.0"
	// ID is the event id (decision id "/" index): unique in the ledger and
	// the same on every delivery of the event.
	ID string `json:"id"`
	// Source is "/koers/<ledger>".
	Source string `json:"source"`
	// Type is "koers." and the event type, e.g. "koers.person.joined".
	Type string `json:"type"`
	// Subject is the aggregate, "<kind>:<id>", e.g. "person:p-0042".
	Subject string `json:"subject"`
	// Time is when the ledger recorded the event (RFC 3339, UTC).
	Time            time.Time `json:"time"`
	DataContentType string    `json:"datacontenttype"` // always "application/json"
	// Decision is the id of the decision that produced the event.
	Decision string `json:"koersdecision"`
	// Actor took the decision, under the mandate Authority.
	Actor     string `json:"koersactor"`
	Authority string `json:"koersauthority"`
	// Effective is the valid time: when the decision takes effect.
	Effective time.Time `json:"koerseffective"`
	// Seq is the stream sequence in decimal; a string because CloudEvents
	// integers are 32-bit and the sequence is not.
	Seq string `json:"koersseq"`
	// SchemaVersion is the version of the shape of Data.
	SchemaVersion int `json:"koersschema"`
	// Data is the event's payload.
	Data json.RawMessage `json:"data"`
}

// NewCloudEvent describes r as a CloudEvent of ledger source.
func NewCloudEvent(source string, r domain.Recorded) CloudEvent {
	data := r.Data
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	return CloudEvent{
		SpecVersion:     "1.0",
		ID:              r.EventID,
		Source:          source,
		Type:            "koers." + r.Type,
		Subject:         r.Aggregate.String(),
		Time:            r.RecordedAt.UTC(),
		DataContentType: "application/json",
		Decision:        r.Meta.DecisionID,
		Actor:           r.Meta.By,
		Authority:       r.Meta.Authority,
		Effective:       r.Meta.Effective.UTC(),
		Seq:             strconv.FormatUint(r.Sequence, 10),
		SchemaVersion:   r.SchemaVersion,
		Data:            data,
	}
}

// Sequence returns Seq as a number (0 when it is not one).
func (e CloudEvent) Sequence() uint64 {
	n, _ := strconv.ParseUint(e.Seq, 10, 64)
	return n
}
