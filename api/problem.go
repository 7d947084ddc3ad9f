package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"koers/domain"
	"koers/ledger"
)

// problemTypePrefix makes a problem's short type a URI (RFC 9457 §3.1.1).
const problemTypePrefix = "urn:koers:problem:"

// problem is an RFC 9457 problem document with Koers' extension members.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	// Field is the decision field at fault ("changes[1].amount").
	Field string `json:"field,omitempty"`
	// Parameter is the query parameter, path segment or header at fault.
	Parameter string `json:"parameter,omitempty"`
	// Aggregate, Expected and Current explain a stale If-Match.
	Aggregate string  `json:"aggregate,omitempty"`
	Expected  *uint64 `json:"expected,omitempty"`
	Current   *uint64 `json:"current,omitempty"`
	// FirstSequence and FirstRecordedAt name the first recording of a
	// decision id submitted again with other content.
	FirstSequence   *uint64 `json:"first_sequence,omitempty"`
	FirstRecordedAt string  `json:"first_recorded_at,omitempty"`
	// Result is the check of each dependency, for /healthz.
	Checks map[string]string `json:"checks,omitempty"`

	// logCause asks for the error to be logged although the status is
	// below 500: its detail is in our words, the engine's are in the log.
	logCause bool
}

// maxDetailLen bounds a problem's detail, which is one line.
const maxDetailLen = 500

// retryAfterSeconds is what a 503 asks the client to wait.
const retryAfterSeconds = "5"

func writeProblem(w http.ResponseWriter, p *problem) {
	if !strings.HasPrefix(p.Type, problemTypePrefix) {
		p.Type = problemTypePrefix + p.Type
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	p.Detail = oneLine(p.Detail)
	switch p.Status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="koers"`)
	case http.StatusServiceUnavailable:
		// A store that is not answering: come back a little later, not in
		// a tight loop.
		w.Header().Set("Retry-After", retryAfterSeconds)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p) // the client went away: nothing left to tell it
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxDetailLen {
		s = s[:maxDetailLen] + "…"
	}
	return s
}

// ParameterError is a query parameter, path segment or header the API
// cannot use; it is answered 400 naming Name.
type ParameterError struct {
	Name    string
	Problem string
	Err     error
}

func (e *ParameterError) Error() string { return e.Name + ": " + e.Problem }

// Unwrap is the error behind Problem, when there is one (a
// *domain.TimeRangeError for a time outside the ledger's years).
func (e *ParameterError) Unwrap() error { return e.Err }

// malformedError is a request body that is not JSON.
type malformedError struct{ err error }

func (e *malformedError) Error() string { return "malformed JSON: " + e.err.Error() }

// mediaTypeError is a body of a type other than JSON.
type mediaTypeError struct{ got string }

func (e *mediaTypeError) Error() string {
	if e.got == "" {
		return "no Content-Type: send the body with Content-Type: application/json"
	}
	return fmt.Sprintf("content type %.80q: want application/json", e.got)
}

// problemFor maps an error to its problem: typed errors first, then the
// domain's sentinels. Every error the handlers return is mapped on
// purpose (problem_test.go holds the table); what is left is a 500 whose
// cause goes to the server log, never to the client. No answer carries a
// storage engine's words (a NATS or PostgreSQL message): where an error
// holds them, the detail is ours and the error goes to the log.
func problemFor(err error) *problem {
	p := mapProblem(err)
	if p.Status < 500 && engineError(err) {
		p.Detail = engineDetail(p)
		p.logCause = true
	}
	return p
}

// engineError reports whether err carries a storage engine's own message.
func engineError(err error) bool {
	return errors.Is(err, domain.ErrEngine)
}

// engineDetail is the detail of a problem whose error carries an engine's
// message, in the problem's own terms.
func engineDetail(p *problem) string {
	switch p.Type {
	case "conflict":
		return conflictDetail
	case "refused":
		return "the ledger's state does not allow this decision; the server log has the cause"
	case "not-found":
		return "not found"
	}
	return http.StatusText(p.Status) + "; the server log has the cause"
}

const conflictDetail = "the aggregates the decision changes kept changing while it was taken: submit it again"

func mapProblem(err error) *problem {
	var (
		param    *ParameterError
		mismatch *ledger.VersionMismatchError
		reused   *domain.DecisionReusedError
		tooLarge *http.MaxBytesError
		field    *domain.FieldError
		bad      *malformedError
		media    *mediaTypeError
		unauth   *unauthenticatedError
		imperson *impersonationError
		idemKey  *IdempotencyKeyError
		busy     *ledger.BusyError
	)
	switch {
	case errors.As(err, &unauth):
		return &problem{Type: "unauthenticated", Status: http.StatusUnauthorized, Detail: err.Error()}
	case errors.As(err, &imperson):
		return &problem{Type: "forbidden", Status: http.StatusForbidden, Detail: err.Error(), Field: "by"}
	case errors.As(err, &param):
		var outside *domain.TimeRangeError
		if errors.As(err, &outside) {
			return &problem{Type: "out-of-range", Status: http.StatusUnprocessableEntity, Detail: param.Error(), Parameter: param.Name}
		}
		return &problem{Type: "bad-parameter", Status: http.StatusBadRequest, Detail: err.Error(), Parameter: param.Name}
	case errors.As(err, &bad):
		return &problem{Type: "malformed", Status: http.StatusBadRequest, Detail: err.Error()}
	case errors.As(err, &media):
		return &problem{Type: "unsupported-media-type", Status: http.StatusUnsupportedMediaType, Detail: err.Error()}
	case errors.As(err, &tooLarge):
		return &problem{Type: "too-large", Status: http.StatusRequestEntityTooLarge,
			Detail: fmt.Sprintf("request body larger than %d bytes", tooLarge.Limit)}
	case errors.As(err, &idemKey):
		return &problem{Type: "invalid", Status: http.StatusUnprocessableEntity, Detail: err.Error(), Field: "id", Parameter: idempotencyKeyHeader}
	case errors.As(err, &mismatch):
		exp, cur := mismatch.Expected, mismatch.Current
		return &problem{Type: "stale-version", Status: http.StatusPreconditionFailed,
			Detail:    fmt.Sprintf("%s; GET /v1/aggregates/%s/%s, decide again on what it is now and send its ETag", err, mismatch.Ref.Kind, mismatch.Ref.ID),
			Aggregate: mismatch.Ref.String(), Expected: &exp, Current: &cur}
	case errors.Is(err, domain.ErrTooLarge):
		// Before invalid and refused: whatever else it is, the decision can
		// never be appended as it is, and saying so tells the client what
		// to do (split it).
		return &problem{Type: "too-many-events", Status: http.StatusUnprocessableEntity, Detail: err.Error()}
	case errors.Is(err, domain.ErrUnauthorized):
		return &problem{Type: "unauthorized", Status: http.StatusForbidden, Detail: err.Error()}
	case errors.Is(err, domain.ErrInvalid):
		p := &problem{Type: "invalid", Status: http.StatusUnprocessableEntity, Detail: err.Error()}
		if errors.As(err, &field) {
			p.Field = field.Field
			var ch *domain.ChangeError
			if errors.As(err, &ch) && !strings.HasPrefix(field.Field, "changes[") {
				p.Field = fmt.Sprintf("changes[%d].%s", ch.Index, field.Field)
			}
		}
		return p
	case errors.As(err, &reused):
		seq := reused.Sequence
		return &problem{Type: "id-reused", Status: http.StatusConflict, Detail: err.Error(), Field: "id",
			FirstSequence: &seq, FirstRecordedAt: reused.RecordedAt.UTC().Format(time.RFC3339Nano)}
	case errors.Is(err, domain.ErrConflict):
		// What the log server said about the versions is for the server
		// log; the client learns what to do.
		return &problem{Type: "conflict", Status: http.StatusConflict, Detail: conflictDetail, logCause: true}
	case errors.Is(err, domain.ErrRefused):
		return &problem{Type: "refused", Status: http.StatusConflict, Detail: err.Error()}
	case errors.Is(err, domain.ErrNotFound):
		return &problem{Type: "not-found", Status: http.StatusNotFound, Detail: err.Error()}
	case errors.Is(err, domain.ErrOutcomeUnknown):
		// Before unavailable: the ledger tried to learn what became of the
		// decision and could not; only the same id sent again is safe.
		return &problem{Type: "outcome-unknown", Status: http.StatusServiceUnavailable,
			Detail: "the ledger could not learn in time whether the decision was recorded; send it again with the same id (Idempotency-Key): it is recorded at most once"}
	case errors.As(err, &busy):
		return &problem{Type: "unavailable", Status: http.StatusServiceUnavailable,
			Detail: "other decisions on the same aggregates kept this one waiting too long; nothing was recorded: try again"}
	case errors.Is(err, domain.ErrUnavailable):
		// The cause (which server, what it said) is for the server log,
		// written for every 5xx; the client only learns to try again.
		return &problem{Type: "unavailable", Status: http.StatusServiceUnavailable, Detail: "the ledger's storage is not answering; try again"}
	case errors.Is(err, context.DeadlineExceeded):
		return &problem{Type: "timeout", Status: http.StatusServiceUnavailable, Detail: "the ledger did not answer in time; try again"}
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this.
		return &problem{Type: "canceled", Status: 499, Title: "Client Closed Request", Detail: "request canceled"}
	}
	return &problem{Type: "internal", Status: http.StatusInternalServerError, Detail: "internal error; the server log has the cause"}
}
