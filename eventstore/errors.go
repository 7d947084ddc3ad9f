package eventstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
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

// StreamNotFoundError is returned by [Open] with Config.Existing when the
// server has no stream of that name. It wraps domain.ErrNotFound.
type StreamNotFoundError struct {
	Stream string
}

func (e *StreamNotFoundError) Error() string {
	return fmt.Sprintf("no stream %s on the NATS server", e.Stream)
}

func (e *StreamNotFoundError) Unwrap() error { return domain.ErrNotFound }

// BatchTooLargeError is returned by [Store.Append] before anything is sent
// when a decision has more events than one atomic batch may hold. It wraps
// domain.ErrTooLarge.
type BatchTooLargeError struct {
	Events, Max int
}

func (e *BatchTooLargeError) Error() string {
	return fmt.Sprintf("decision has %d events: at most %d fit in one atomic append", e.Events, e.Max)
}

func (e *BatchTooLargeError) Unwrap() error { return domain.ErrTooLarge }

// ErrServer is wrapped by every [*ServerError].
var ErrServer = errors.New("nats server")

// ServerError is a failure of the NATS server, or of the connection to it,
// that is neither a conflict nor a known decision id: the driver's error
// translated at the package's edge, so that no nats.go type leaves it.
// It wraps [ErrServer] and domain.ErrEngine, and domain.ErrUnavailable as well when the server
// could not be reached or did not answer (the call may succeed later).
type ServerError struct {
	Op string // what the store was doing: "append decision d-1", "load person:p-1", …
	// Code is the JetStream API error code when the server answered with
	// one (10059: stream not found, …), else 0.
	Code jetstream.ErrorCode
	// Message is the driver's description, for people.
	Message     string
	Unavailable bool
}

func (e *ServerError) Error() string {
	s := e.Op + ": nats server: " + e.Message
	if e.Code != 0 {
		s += fmt.Sprintf(" (code %d)", e.Code)
	}
	return s
}

func (e *ServerError) Unwrap() []error {
	if e.Unavailable {
		return []error{ErrServer, domain.ErrEngine, domain.ErrUnavailable}
	}
	return []error{ErrServer, domain.ErrEngine}
}

// OutcomeUnknownError is returned by [Store.Append] when a decision's
// messages were sent (or may have been) and no answer came: a timeout, a
// lost connection, a server that went away. The decision may be in the log
// or not; appending it again with the same id and expected versions tells
// which, and never records it twice (its record's subject must not exist
// yet). It wraps domain.ErrOutcomeUnknown and the cause.
type OutcomeUnknownError struct {
	DecisionID string
	Err        error
}

func (e *OutcomeUnknownError) Error() string {
	return fmt.Sprintf("append decision %s: no answer, it may have been recorded: %v", e.DecisionID, e.Err)
}

func (e *OutcomeUnknownError) Unwrap() []error { return []error{domain.ErrOutcomeUnknown, e.Err} }

// serverError translates an error of nats.go for op into a [*ServerError].
// It is called on what a driver call returned: context errors and errors
// already translated pass unchanged, wrapped with op, so that
// errors.Is(err, context.DeadlineExceeded) keeps working.
func serverError(op string, err error) error {
	if err == nil {
		return nil
	}
	var se *ServerError
	if errors.As(err, &se) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", op, err)
	}
	if errors.Is(err, nats.ErrTimeout) {
		// The driver's own deadline, not the context's: a server that did
		// not answer in time, which callers handle like a context deadline.
		return fmt.Errorf("%w: %w", &ServerError{Op: op, Message: driverMessage(err), Unavailable: true}, context.DeadlineExceeded)
	}
	return &ServerError{Op: op, Code: apiCode(err), Message: driverMessage(err), Unavailable: unavailable(err)}
}

// driverSentinels are the nats.go errors that say the server cannot be
// reached or did not answer.
var driverSentinels = []error{
	nats.ErrConnectionClosed, nats.ErrConnectionDraining, nats.ErrDisconnected, nats.ErrNoServers,
	nats.ErrNoResponders, nats.ErrTimeout, nats.ErrConnectionReconnecting, nats.ErrStaleConnection,
	jetstream.ErrNoStreamResponse, jetstream.ErrJetStreamNotEnabled, jetstream.ErrJetStreamNotEnabledForAccount,
	jetstream.ErrStreamNotFound, jetstream.ErrNoHeartbeat, jetstream.ErrServerShutdown,
}

// unavailable reports whether a driver error means the server cannot be
// reached or did not answer, rather than a refusal.
func unavailable(err error) bool {
	for _, e := range driverSentinels {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// driverMessage is what err says for people: the server's description of
// an API error, else err's text without the driver's "nats: " prefixes.
func driverMessage(err error) string {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.Description != "" {
		return apiErr.Description
	}
	var jsErr jetstream.JetStreamError
	if errors.As(err, &jsErr) && jsErr.APIError() != nil && jsErr.APIError().Description != "" {
		return jsErr.APIError().Description
	}
	return strings.ReplaceAll(err.Error(), "nats: ", "")
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
	return fmt.Errorf("append decision %s: %w (the server said: %s)", decisionID, domain.ErrConflict, driverMessage(err))
}
