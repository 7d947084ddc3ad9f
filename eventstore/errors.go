package eventstore

import (
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"koers/domain"
)

// StreamSettingError is returned by [Open] when an existing stream has a
// setting that would weaken the log's immutability or that Koers needs.
// The stream is never changed to fix it: an operator decides.
type StreamSettingError struct {
	Stream  string
	Setting string // the JetStream setting, as in the stream's JSON config
	Have    string
	Want    string
}

func (e *StreamSettingError) Error() string {
	return fmt.Sprintf("stream %s: setting %s is %s, want %s", e.Stream, e.Setting, e.Have, e.Want)
}

// BatchTooLargeError is returned by [Store.Append] before anything is sent
// when a decision has more events than one atomic batch may hold.
type BatchTooLargeError struct {
	Events, Max int
}

func (e *BatchTooLargeError) Error() string {
	return fmt.Sprintf("decision has %d events: at most %d fit in one atomic append", e.Events, e.Max)
}

// Server error codes that mean the expected version did not match.
const (
	codeWrongLastSeq         jetstream.ErrorCode = 10071 // "wrong last sequence: {seq}"
	codeWrongLastSeqConstant jetstream.ErrorCode = 10164 // "wrong last sequence", e.g. the subject is in flight in another batch
	codeBatchDuplicateMsgID  jetstream.ErrorCode = 10201 // the decision id is in the duplicate window
	codeDuplicateMsgConflict jetstream.ErrorCode = 10158 // the same decision id is being appended right now
)

// apiCode returns the JetStream API error code inside err, or 0.
func apiCode(err error) jetstream.ErrorCode {
	var jsErr jetstream.JetStreamError
	if errors.As(err, &jsErr) && jsErr.APIError() != nil {
		return jsErr.APIError().ErrorCode
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode
	}
	return 0
}

// isConflict reports whether the server refused an append because an
// expected version did not match.
func isConflict(err error) bool {
	switch apiCode(err) {
	case codeWrongLastSeq, codeWrongLastSeqConstant:
		return true
	}
	return false
}

func isDuplicate(err error) bool {
	switch apiCode(err) {
	case codeBatchDuplicateMsgID, codeDuplicateMsgConflict:
		return true
	}
	return false
}

// conflictError wraps domain.ErrConflict with what the server said.
func conflictError(decisionID string, err error) error {
	return fmt.Errorf("append decision %s: %w (%v)", decisionID, domain.ErrConflict, err)
}
