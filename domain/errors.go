package domain

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// ErrConflict is returned when an aggregate changed between the moment a
// decision read it and the moment its events were appended (the expected
// version no longer matches). The command handler re-reads and re-decides a
// bounded number of times; callers beyond it should reload and try again.
var ErrConflict = errors.New("conflict: the aggregate changed since it was read")

// ErrNotFound is returned when a referenced aggregate, decision or event
// does not exist in the ledger.
var ErrNotFound = errors.New("not found")

// ErrInvalid is wrapped by every error about a malformed decision or value
// (bad JSON, unknown kind or field, bad id, bad amount). Such a decision can
// never succeed as written.
var ErrInvalid = errors.New("invalid")

// ErrRefused is wrapped by every error about a well-formed decision that the
// ledger's current state does not allow (an invariant would break).
var ErrRefused = errors.New("refused")

// ErrUnauthorized is wrapped by errors about a decision its authority does
// not cover (wrong holder, revoked mandate, kind, scope, amount, escalation).
var ErrUnauthorized = errors.New("unauthorized")

// ErrTooLarge is wrapped by errors about a decision with more events than
// one atomic append may hold ([TooManyEventsError] when deciding, the event
// store's batch error when appending). It can never succeed as it is:
// split it into several decisions.
var ErrTooLarge = errors.New("too large for one atomic append")

// ErrEngine is wrapped by the errors of a storage adapter that carry the
// storage engine's own words (a NATS or PostgreSQL message): fit for the
// log, not for a client. The HTTP API answers such an error in its own
// words and logs the cause.
var ErrEngine = errors.New("storage engine")

// ErrUnavailable is wrapped by errors about a store that cannot be reached
// or did not answer: the NATS server or PostgreSQL down, a connection
// lost, a stream without responders. Nothing was decided; the same call may
// succeed later.
var ErrUnavailable = errors.New("unavailable")

// ErrOutcomeUnknown is wrapped by errors about an append that was sent but
// never answered (a timeout, a lost connection, a server that died): the
// decision may or may not be in the log. The command handler finds out
// (the decision's record, by its id) before it answers; an error that
// still wraps ErrOutcomeUnknown after that means it could not find out in
// its time, and submitting the decision again with the same id answers
// which (it is recorded at most once).
var ErrOutcomeUnknown = errors.New("outcome unknown")

// InvalidIDError is returned for an id that cannot name an aggregate.
type InvalidIDError struct {
	ID      string
	Problem string
}

func (e *InvalidIDError) Error() string { return fmt.Sprintf("id %q %s", e.ID, e.Problem) }
func (e *InvalidIDError) Unwrap() error { return ErrInvalid }

// FieldError is a malformed value in a decision; Field is its path
// ("changes[1].amount").
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() []error {
	return []error{e.Err, ErrInvalid}
}

// PrecisionError is an amount with more decimals than its currency has.
// Canonical is the same amount written with the currency's decimals, when
// the extra ones are zeros ("5.000" EUR is "5.00"); empty when the amount
// cannot be written in the currency at all ("12.345" EUR).
type PrecisionError struct {
	Value     string
	Currency  string
	Decimals  int
	Canonical string
}

func (e *PrecisionError) Error() string {
	s := fmt.Sprintf("%q has more decimals than %s allows (%d)", e.Value, e.Currency, e.Decimals)
	if e.Canonical != "" {
		s += fmt.Sprintf(": write %q", e.Canonical)
	}
	return s
}
func (e *PrecisionError) Unwrap() error { return ErrInvalid }

// NonCanonicalError is a number not written in its one canonical form:
// a '+' sign, leading zeros, or a negative zero. Canonical is how to write it.
type NonCanonicalError struct {
	Value     string
	Canonical string
}

func (e *NonCanonicalError) Error() string {
	return fmt.Sprintf("%q is not written canonically: write %q (no + sign, no leading zeros)", e.Value, e.Canonical)
}
func (e *NonCanonicalError) Unwrap() error { return ErrInvalid }

// TimeRangeError is a time outside the years the ledger accepts,
// [MinTime] to [MaxTime] (checked in UTC, after any zone offset), or a
// quarter (Quarter true) that does not lie within them.
type TimeRangeError struct {
	Value   string
	Quarter bool
}

func (e *TimeRangeError) Error() string {
	if e.Quarter {
		return fmt.Sprintf("quarter %q is outside 1900-Q1 to 9999-Q3 (a quarter ends within the years 1900-9999)", e.Value)
	}
	return fmt.Sprintf("%q is outside the years 1900-9999 (in UTC)", e.Value)
}
func (e *TimeRangeError) Unwrap() error { return ErrInvalid }

// UnknownCurrencyError is a currency code the ledger has no exponent for.
type UnknownCurrencyError struct{ Currency string }

func (e *UnknownCurrencyError) Error() string {
	return fmt.Sprintf("unknown currency %q (want an ISO 4217 code such as EUR)", e.Currency)
}
func (e *UnknownCurrencyError) Unwrap() error { return ErrInvalid }

// ChangeError says which change of a decision failed.
type ChangeError struct {
	Index int
	Kind  string
	Err   error
}

func (e *ChangeError) Error() string {
	return fmt.Sprintf("changes[%d] %s: %v", e.Index, e.Kind, e.Err)
}
func (e *ChangeError) Unwrap() error { return e.Err }

// NotFoundError is a reference to an aggregate that does not exist.
type NotFoundError struct{ Ref Ref }

func (e *NotFoundError) Error() string { return e.Ref.String() + " does not exist" }
func (e *NotFoundError) Unwrap() []error {
	return []error{ErrNotFound, ErrRefused}
}

// ExistsError is an attempt to create an aggregate whose id is taken.
type ExistsError struct{ Ref Ref }

func (e *ExistsError) Error() string { return e.Ref.String() + " already exists" }
func (e *ExistsError) Unwrap() error { return ErrRefused }

// InactiveError is a change on, or a reference to, an aggregate that is
// retired, disbanded, closed, left or revoked.
type InactiveError struct {
	Ref    Ref
	Status string
}

func (e *InactiveError) Error() string { return fmt.Sprintf("%s is %s", e.Ref, e.Status) }
func (e *InactiveError) Unwrap() error { return ErrRefused }

// TooEarlyError is a change effective before something it refers to exists.
type TooEarlyError struct {
	Ref       Ref
	Since     time.Time
	Effective time.Time
}

func (e *TooEarlyError) Error() string {
	return fmt.Sprintf("effective %s is before %s exists (since %s)",
		e.Effective.Format(time.RFC3339), e.Ref, e.Since.Format(time.RFC3339))
}
func (e *TooEarlyError) Unwrap() error { return ErrRefused }

// DuplicateDecisionError is returned when the decision id is already
// recorded; the command handler answers with the first result.
type DuplicateDecisionError struct{ ID string }

func (e *DuplicateDecisionError) Error() string {
	return fmt.Sprintf("decision %q is already recorded", e.ID)
}

// NeedError asks the caller of Decide to load more aggregates and call again.
type NeedError struct{ Refs []Ref }

func (e *NeedError) Error() string {
	s := make([]string, len(e.Refs))
	for i, r := range e.Refs {
		s[i] = r.String()
	}
	return "decide needs " + strings.Join(s, ", ")
}

// AuthorityError is a decision its mandate does not allow; Problem names
// the rule it breaks, Advice what to do instead (who could decide, when the
// mandate's chain shows someone).
type AuthorityError struct {
	Mandate string
	Actor   string
	Problem string
	Advice  string
}

func (e *AuthorityError) Error() string {
	return withAdvice(fmt.Sprintf("%s under mandate %q: %s", e.Actor, e.Mandate, e.Problem), e.Advice)
}
func (e *AuthorityError) Unwrap() error { return ErrUnauthorized }

func withAdvice(s, advice string) string {
	if advice == "" {
		return s
	}
	return s + "; " + advice
}

// Why a mandate is not in force (NotInForceError.Reason).
const (
	ReasonRevoked      = "revoked"
	ReasonExpired      = "expired"
	ReasonNotYet       = "not yet in force"
	ReasonHolderLeft   = "holder left"
	ReasonHolderAbsent = "holder is no person"
	// ReasonBoardDisbanded: the mandate's holder is a board that was disbanded.
	ReasonBoardDisbanded = "holder board disbanded"
)

// NotInForceError is a decision under a mandate that is not in force when
// the decision is recorded: Link, the mandate itself or one in its grant
// chain, is revoked, expired, not yet in force, or its holder left (or is
// no person in the organisation); Reason says which, Since from when.
// AskMandate and AskHolder name the mandate just above Link, which is in
// force and could decide or grant anew (empty when Link is the root).
type NotInForceError struct {
	Mandate    string
	Actor      string
	Link       string
	Holder     string // Link's holder
	Reason     string
	Since      time.Time
	AskMandate string
	AskHolder  string
}

func (e *NotInForceError) Error() string {
	what := "the mandate"
	if e.Link != e.Mandate {
		what = fmt.Sprintf("mandate %q, under which it was granted,", e.Link)
	}
	on := ""
	if !e.Since.IsZero() {
		on = " on " + e.Since.Format(time.RFC3339)
	}
	var why string
	switch e.Reason {
	case ReasonRevoked:
		why = "was revoked" + on
	case ReasonExpired:
		why = "expired" + on
	case ReasonNotYet:
		why = "takes effect only" + on
	case ReasonHolderLeft:
		why = fmt.Sprintf("is suspended: its holder %s left the organisation%s", e.Holder, on)
	case ReasonHolderAbsent:
		why = fmt.Sprintf("is held by %q, who is neither a person in the organisation nor a board", e.Holder)
	case ReasonBoardDisbanded:
		why = fmt.Sprintf("is suspended: its holder %s was disbanded%s", e.Holder, on)
	default:
		why = e.Reason
	}
	s := fmt.Sprintf("%s under mandate %q: %s %s", e.Actor, e.Mandate, what, why)
	if e.Link != e.Mandate {
		s += ", which suspends every mandate granted under it"
	}
	if e.AskHolder != "" {
		s += fmt.Sprintf("; ask %s, who holds mandate %q, to decide or to grant a mandate anew", e.AskHolder, e.AskMandate)
	}
	return s
}
func (e *NotInForceError) Unwrap() error { return ErrUnauthorized }

// LimitError is a decision that moves more, in one currency and summed
// over all its changes, than its mandate's limit per decision.
type LimitError struct {
	Mandate  string
	Actor    string
	Currency Currency
	Limit    Decimal
	Total    Decimal
	Advice   string
}

func (e *LimitError) Error() string {
	return withAdvice(fmt.Sprintf("%s under mandate %q: the decision moves %s %s in total, above the mandate's limit of %s per decision",
		e.Actor, e.Mandate, e.Total, e.Currency, e.Limit), e.Advice)
}
func (e *LimitError) Unwrap() error { return ErrUnauthorized }

// PeriodLimitError is a decision that would take the amount moved in budget
// Period under mandate Limited (the decision's mandate or one it was
// granted under) above that mandate's period limit. Headroom is what is
// left of the limit before this decision.
type PeriodLimitError struct {
	Mandate    string
	Actor      string
	Limited    string
	Period     string
	Currency   Currency
	Limit      Decimal
	Used       Decimal
	Wanted     Decimal
	Headroom   Decimal
	AskMandate string
	AskHolder  string
}

func (e *PeriodLimitError) Error() string {
	whose := "the mandate's"
	if e.Limited != e.Mandate {
		whose = fmt.Sprintf("the period limit of mandate %q, under which it was granted, is", e.Limited)
	} else {
		whose += " period limit is"
	}
	s := fmt.Sprintf("%s under mandate %q: budget %s: %s %s %s, %s used, the decision moves %s: %s %s headroom left",
		e.Actor, e.Mandate, e.Period, whose, e.Limit, e.Currency, e.Used, e.Wanted, e.Headroom, e.Currency)
	if e.AskHolder != "" {
		s += fmt.Sprintf("; ask %s, who holds mandate %q", e.AskHolder, e.AskMandate)
	}
	return s
}
func (e *PeriodLimitError) Unwrap() error { return ErrUnauthorized }

// EscalationError is a mandate.grant wider than the grantor's own mandate.
type EscalationError struct {
	Grantor string
	Problem string
}

func (e *EscalationError) Error() string {
	return fmt.Sprintf("grant wider than mandate %q: %s", e.Grantor, e.Problem)
}
func (e *EscalationError) Unwrap() error { return ErrUnauthorized }

// HolderError is a mandate.grant to someone who cannot hold a mandate (not
// a person in the organisation, or one who left); Err is the lookup's
// error when there was one.
type HolderError struct {
	Holder  string
	Problem string
	Err     error
}

func (e *HolderError) Error() string {
	s := fmt.Sprintf("holder %q %s", e.Holder, e.Problem)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}
func (e *HolderError) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Err, ErrRefused}
	}
	return []error{ErrRefused}
}

// ValueStreamHasProductsError is the retirement of a value stream that
// still has active products.
type ValueStreamHasProductsError struct {
	ValueStream string
	Products    []string
}

func (e *ValueStreamHasProductsError) Error() string {
	return fmt.Sprintf("value stream %q still has active products %s: move them to another value stream (product.move) or retire them (product.retire) first",
		e.ValueStream, strings.Join(e.Products, ", "))
}
func (e *ValueStreamHasProductsError) Unwrap() error { return ErrRefused }

// UnknownKPIError is a measurement or target of a KPI its product or
// value stream does not define; Field is the change field at fault.
type UnknownKPIError struct {
	Subject Ref
	KPI     string
	Defined []string // the KPIs it does define, sorted
}

func (e *UnknownKPIError) Error() string {
	have := "none"
	if len(e.Defined) > 0 {
		have = strings.Join(e.Defined, ", ")
	}
	return fmt.Sprintf("%s has no KPI %q (it defines %s; define it first with kpi.define)", e.Subject, e.KPI, have)
}
func (e *UnknownKPIError) Unwrap() error { return ErrRefused }

// Field is the change field at fault.
func (e *UnknownKPIError) Field() string { return "kpi" }

// KPIUnitError is a measurement in another unit than its KPI's.
type KPIUnitError struct {
	Subject         Ref
	KPI, Unit, Want string
}

func (e *KPIUnitError) Error() string {
	return fmt.Sprintf("%s KPI %q is measured in %q, not %q", e.Subject, e.KPI, e.Want, e.Unit)
}
func (e *KPIUnitError) Unwrap() error { return ErrRefused }

// Field is the change field at fault.
func (e *KPIUnitError) Field() string { return "unit" }

// NoOwnerError is an active product left without an accountable owner.
type NoOwnerError struct{ Product string }

func (e *NoOwnerError) Error() string {
	return fmt.Sprintf("product %q would have no accountable owner (assign one in the same decision)", e.Product)
}
func (e *NoOwnerError) Unwrap() error { return ErrRefused }

// StillOwnsError is a person leaving while accountable for active products.
type StillOwnsError struct {
	Person   string
	Products []string
}

func (e *StillOwnsError) Error() string {
	return fmt.Sprintf("person %q still owns %s (assign new owners first)", e.Person, strings.Join(e.Products, ", "))
}
func (e *StillOwnsError) Unwrap() error { return ErrRefused }

// TeamHasMembersError is an attempt to disband a team that still has people.
type TeamHasMembersError struct {
	Team    string
	Members []string
}

func (e *TeamHasMembersError) Error() string {
	return fmt.Sprintf("team %q still has members %s", e.Team, strings.Join(e.Members, ", "))
}
func (e *TeamHasMembersError) Unwrap() error { return ErrRefused }

// InsufficientFundsError is a movement that would take an account below zero.
type InsufficientFundsError struct {
	Period  string
	Account Account
	Balance string
	Wanted  string
}

func (e *InsufficientFundsError) Error() string {
	return fmt.Sprintf("budget %s: %s holds %s, cannot take %s", e.Period, e.Account, e.Balance, e.Wanted)
}
func (e *InsufficientFundsError) Unwrap() error { return ErrRefused }

// AlreadyConvertedError is a second conversion of a project.
type AlreadyConvertedError struct {
	Project string
	Product string
}

func (e *AlreadyConvertedError) Error() string {
	return fmt.Sprintf("project %q was already converted into product %q", e.Project, e.Product)
}
func (e *AlreadyConvertedError) Unwrap() error { return ErrRefused }

// StateError is any other invariant a change would break; Problem says which.
type StateError struct {
	Ref     Ref
	Problem string
}

func (e *StateError) Error() string { return e.Ref.String() + ": " + e.Problem }
func (e *StateError) Unwrap() error { return ErrRefused }

// RetractError is a decision.retract that cannot be carried out.
type RetractError struct {
	Decision string
	Problem  string
	Err      error
}

func (e *RetractError) Error() string {
	s := fmt.Sprintf("cannot retract %q: %s", e.Decision, e.Problem)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}
func (e *RetractError) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Err, ErrRefused}
	}
	return []error{ErrRefused}
}

// TooManyEventsError is a decision that would produce more events than one
// atomic append may hold.
type TooManyEventsError struct{ Events, Max int }

func (e *TooManyEventsError) Error() string {
	return fmt.Sprintf("decision produces %d events, at most %d fit one atomic append (split it)", e.Events, e.Max)
}
func (e *TooManyEventsError) Unwrap() []error { return []error{ErrTooLarge, ErrRefused} }

// UnknownEventError is an event Evolve does not know, or on the wrong aggregate.
type UnknownEventError struct {
	Type      string
	Aggregate Ref
}

func (e *UnknownEventError) Error() string {
	return fmt.Sprintf("unknown event %q on %s", e.Type, e.Aggregate)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
