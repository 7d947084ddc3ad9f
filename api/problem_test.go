package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"koers/domain"
	"koers/eventstore"
	"koers/ledger"
	"koers/projections"
)

// TestEveryErrorMapsToAStatusOnPurpose feeds each sentinel and typed error
// that can reach the API, wrapped as the packages below wrap them, through
// the API's error mapping. A new sentinel or typed error belongs here.
func TestEveryErrorMapsToAStatusOnPurpose(t *testing.T) {
	ref := domain.Ref{Kind: domain.KindTeam, ID: "t-core"}
	wrap := func(err error) error { return fmt.Errorf("decide d-1: %w", err) }
	for _, tc := range []struct {
		name   string
		err    error
		status int
		typ    string
	}{
		// The domain's sentinels, bare.
		{"ErrConflict", wrap(domain.ErrConflict), http.StatusConflict, "conflict"},
		{"ErrNotFound", wrap(domain.ErrNotFound), http.StatusNotFound, "not-found"},
		{"ErrInvalid", wrap(domain.ErrInvalid), http.StatusUnprocessableEntity, "invalid"},
		{"ErrRefused", wrap(domain.ErrRefused), http.StatusConflict, "refused"},
		{"ErrUnauthorized", wrap(domain.ErrUnauthorized), http.StatusForbidden, "unauthorized"},
		{"ErrTooLarge", wrap(domain.ErrTooLarge), http.StatusUnprocessableEntity, "too-many-events"},
		{"ErrUnavailable", wrap(domain.ErrUnavailable), http.StatusServiceUnavailable, "unavailable"},
		{"ErrOutcomeUnknown", wrap(domain.ErrOutcomeUnknown), http.StatusServiceUnavailable, "outcome-unknown"},

		// The domain's typed errors.
		{"InvalidIDError", wrap(&domain.InvalidIDError{ID: "X", Problem: "has upper case"}), http.StatusUnprocessableEntity, "invalid"},
		{"FieldError", wrap(&domain.FieldError{Field: "effective", Err: errors.New("not a date")}), http.StatusUnprocessableEntity, "invalid"},
		{"PrecisionError", wrap(&domain.PrecisionError{Value: "1.001", Currency: "EUR", Decimals: 2}), http.StatusUnprocessableEntity, "invalid"},
		{"UnknownCurrencyError", wrap(&domain.UnknownCurrencyError{Currency: "XXX"}), http.StatusUnprocessableEntity, "invalid"},
		{"NonCanonicalError", wrap(&domain.FieldError{Field: "amount", Err: &domain.NonCanonicalError{Value: "+5", Canonical: "5"}}), http.StatusUnprocessableEntity, "invalid"},
		{"TimeRangeError", wrap(&domain.FieldError{Field: "effective", Err: &domain.TimeRangeError{Value: "10000-01-01"}}), http.StatusUnprocessableEntity, "invalid"},
		{"ChangeError of a FieldError", wrap(&domain.ChangeError{Index: 1, Kind: "budget.open", Err: &domain.FieldError{Field: "amount", Err: errors.New("lots")}}),
			http.StatusUnprocessableEntity, "invalid"},
		// A reference to what does not exist, inside a decision, is a
		// refusal by the ledger's state, not a missing resource.
		{"NotFoundError", wrap(&domain.NotFoundError{Ref: ref}), http.StatusConflict, "refused"},
		{"ExistsError", wrap(&domain.ExistsError{Ref: ref}), http.StatusConflict, "refused"},
		{"InactiveError", wrap(&domain.InactiveError{Ref: ref, Status: "disbanded"}), http.StatusConflict, "refused"},
		{"TooEarlyError", wrap(&domain.TooEarlyError{Ref: ref}), http.StatusConflict, "refused"},
		{"NoOwnerError", wrap(&domain.NoOwnerError{Product: "pay-app"}), http.StatusConflict, "refused"},
		{"StillOwnsError", wrap(&domain.StillOwnsError{Person: "p-1", Products: []string{"pay-app"}}), http.StatusConflict, "refused"},
		{"TeamHasMembersError", wrap(&domain.TeamHasMembersError{Team: "t-core", Members: []string{"p-1"}}), http.StatusConflict, "refused"},
		{"InsufficientFundsError", wrap(&domain.InsufficientFundsError{Period: "2026", Account: "pool", Balance: "1", Wanted: "2"}), http.StatusConflict, "refused"},
		{"AlreadyConvertedError", wrap(&domain.AlreadyConvertedError{Project: "p", Product: "q"}), http.StatusConflict, "refused"},
		{"StateError", wrap(&domain.StateError{Ref: ref, Problem: "no"}), http.StatusConflict, "refused"},
		{"RetractError", wrap(&domain.RetractError{Decision: "d-0", Problem: "no"}), http.StatusConflict, "refused"},
		{"AuthorityError", wrap(&domain.AuthorityError{Mandate: "m", Actor: "p-1", Problem: "kind"}), http.StatusForbidden, "unauthorized"},
		{"EscalationError", wrap(&domain.EscalationError{Grantor: "m", Problem: "scope"}), http.StatusForbidden, "unauthorized"},
		{"TooManyEventsError", wrap(&domain.TooManyEventsError{Events: 1001, Max: 1000}), http.StatusUnprocessableEntity, "too-many-events"},
		{"DecisionReusedError", wrap(&domain.DecisionReusedError{ID: "d-1", Sequence: 7}), http.StatusConflict, "id-reused"},
		{"SignatureError", wrap(&domain.SignatureError{ID: "d-1", Actor: "p-1", Keys: 1}), http.StatusForbidden, "unauthorized"},
		{"SignatureRequiredError", wrap(&domain.SignatureRequiredError{ID: "d-1", Actor: "p-1"}), http.StatusForbidden, "unauthorized"},

		// The command handler's and the event store's typed errors.
		{"VersionMismatchError", wrap(&ledger.VersionMismatchError{Ref: ref, Expected: 3, Current: 4}), http.StatusPreconditionFailed, "stale-version"},
		{"UnresolvedError", wrap(&ledger.UnresolvedError{DecisionID: "d-1", Tries: 3, Err: &eventstore.ServerError{Op: "look up", Message: "no responders", Unavailable: true}}),
			http.StatusServiceUnavailable, "outcome-unknown"},
		{"IDInUseError", wrap(&ledger.IDInUseError{DecisionID: "d-1"}), http.StatusConflict, "refused"},
		{"BusyError", wrap(&ledger.BusyError{Ref: ref, Waiting: 1024}), http.StatusServiceUnavailable, "unavailable"},
		{"OutcomeUnknownError", wrap(&eventstore.OutcomeUnknownError{DecisionID: "d-1", Err: context.DeadlineExceeded}), http.StatusServiceUnavailable, "outcome-unknown"},
		{"BatchTooLargeError", wrap(&eventstore.BatchTooLargeError{Events: 1001, Max: 1000}), http.StatusUnprocessableEntity, "too-many-events"},
		{"ServerError, unreachable", wrap(&eventstore.ServerError{Op: "append decision d-1", Message: "connection closed", Unavailable: true}),
			http.StatusServiceUnavailable, "unavailable"},
		{"ServerError, refused by the server", wrap(&eventstore.ServerError{Op: "append decision d-1", Code: 10077, Message: "maximum messages exceeded"}),
			http.StatusInternalServerError, "internal"},

		{"DatabaseError, connection lost", wrap(&projections.DatabaseError{Code: "08006", Message: "connection failure"}),
			http.StatusServiceUnavailable, "unavailable"},
		{"DatabaseError, no server", wrap(&projections.DatabaseError{Message: "failed to connect"}), http.StatusServiceUnavailable, "unavailable"},
		{"DatabaseError, serialization failure", wrap(&projections.DatabaseError{Code: "40001", Message: "could not serialize"}),
			http.StatusInternalServerError, "internal"},
		{"read models closed", wrap(projections.ErrClosed), http.StatusServiceUnavailable, "unavailable"},

		// The API's own errors.
		{"ParameterError", &ParameterError{Name: "as_of", Problem: "not a time"}, http.StatusBadRequest, "bad-parameter"},
		{"ParameterError of a TimeRangeError", &ParameterError{Name: "as_of", Problem: "outside", Err: &domain.TimeRangeError{Value: "0001-01-01"}},
			http.StatusUnprocessableEntity, "out-of-range"},
		{"malformedError", &malformedError{err: errors.New("unexpected EOF")}, http.StatusBadRequest, "malformed"},
		{"mediaTypeError", &mediaTypeError{got: "text/plain"}, http.StatusUnsupportedMediaType, "unsupported-media-type"},
		{"MaxBytesError", wrap(&http.MaxBytesError{Limit: 1 << 20}), http.StatusRequestEntityTooLarge, "too-large"},
		{"unauthenticatedError", &unauthenticatedError{why: "no token"}, http.StatusUnauthorized, "unauthenticated"},
		{"impersonationError", &impersonationError{caller: "p-1", by: "p-2"}, http.StatusForbidden, "forbidden"},
		{"IdempotencyKeyError", &IdempotencyKeyError{Header: "k-1", Body: "k-2"}, http.StatusUnprocessableEntity, "invalid"},

		// The context's.
		{"DeadlineExceeded", wrap(context.DeadlineExceeded), http.StatusServiceUnavailable, "timeout"},
		{"Canceled", wrap(context.Canceled), 499, "canceled"},

		// Anything else is a 500 that tells the client nothing.
		{"an error nobody mapped", errors.New("boom"), http.StatusInternalServerError, "internal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := problemFor(tc.err)
			if p.Status != tc.status || p.Type != tc.typ {
				t.Fatalf("%v: %d %s, want %d %s", tc.err, p.Status, p.Type, tc.status, tc.typ)
			}
			if p.Status >= 500 && p.Detail == tc.err.Error() {
				t.Fatalf("a %d tells the client the cause %q", p.Status, p.Detail)
			}
		})
	}
}

func TestServiceUnavailableSaysWhenToRetry(t *testing.T) {
	for _, err := range []error{domain.ErrUnavailable, domain.ErrOutcomeUnknown, context.DeadlineExceeded} {
		rec := httptest.NewRecorder()
		writeProblem(rec, problemFor(err))
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
			t.Fatalf("%v: %d, Retry-After %q: want 503 with a Retry-After", err, rec.Code, rec.Header().Get("Retry-After"))
		}
	}
}

// TestNoEngineWordsInAnswers: an error that carries what NATS or
// PostgreSQL said is answered in the API's own words; the cause is logged.
func TestNoEngineWordsInAnswers(t *testing.T) {
	server := &eventstore.ServerError{Op: "append decision d-1", Code: 10071, Message: "wrong last sequence: 41"}
	for _, tc := range []struct {
		name   string
		err    error
		status int
		engine string
	}{
		{"conflict as the event store words it", fmt.Errorf("append decision d-1: %w (the server said: wrong last sequence: 41)", domain.ErrConflict),
			http.StatusConflict, "wrong last sequence"},
		{"conflict wrapping a server error", errors.Join(domain.ErrConflict, server), http.StatusConflict, "wrong last sequence"},
		{"refusal wrapping a server error", &domain.HolderError{Holder: "p-1", Problem: "cannot be looked up", Err: server}, http.StatusConflict, "wrong last sequence"},
		{"not found wrapping a database error", errors.Join(domain.ErrNotFound, &projections.DatabaseError{Code: "42P01", Message: `relation "facts" does not exist`}),
			http.StatusNotFound, "relation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := problemFor(tc.err)
			if p.Status != tc.status || strings.Contains(p.Detail, tc.engine) || !p.logCause {
				t.Fatalf("%v: %d %q (logged %v), want %d without %q, logged", tc.err, p.Status, p.Detail, p.logCause, tc.status, tc.engine)
			}
		})
	}
	if p := problemFor(&domain.HolderError{Holder: "p-1", Problem: "left"}); !strings.Contains(p.Detail, `holder "p-1" left`) {
		t.Fatalf("a refusal in the domain's words lost them: %q", p.Detail)
	}
}
