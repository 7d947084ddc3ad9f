package feed

import (
	"errors"
	"fmt"

	"koers/domain"
	"koers/internal/pgerr"
)

// BusyError is returned by [Open] when another process runs the feed of
// that name (it holds the feed's lease in PostgreSQL).
type BusyError struct{ Name string }

func (e *BusyError) Error() string {
	return fmt.Sprintf("feed %s is running elsewhere (another process holds its lease)", e.Name)
}

// MismatchError is returned by [Open] when a feed of that name is registered
// for another target or ledger: its checkpoint belongs to that one.
type MismatchError struct {
	Name, What, Registered, Given string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("feed %s is registered for %s %s, not %s: choose another --name", e.Name, e.What, e.Registered, e.Given)
}

// FromSeqError is returned by [Open] when a start sequence is given for a
// feed that already has a checkpoint elsewhere: honouring it would skip or
// re-send events.
type FromSeqError struct {
	Name       string
	Checkpoint uint64
	FromSeq    uint64
}

func (e *FromSeqError) Error() string {
	return fmt.Sprintf("feed %s has delivered through sequence %d; --from-seq %d applies to a new feed only (choose another --name)",
		e.Name, e.Checkpoint, e.FromSeq)
}

// UnreadableEventError is returned by Run when the log holds an event of a
// schema version this build cannot bring to the current one (it wraps the
// domain's *SchemaVersionError, and so domain.ErrSchemaVersion). The feed
// stops there, after delivering everything before it; its checkpoint stays
// before the event, and a build that knows the version goes on from there.
type UnreadableEventError struct {
	Feed     string
	Sequence uint64
	Err      error
}

func (e *UnreadableEventError) Error() string {
	return fmt.Sprintf("feed %s: event %d cannot be published: %v", e.Feed, e.Sequence, e.Err)
}

func (e *UnreadableEventError) Unwrap() error { return e.Err }

// ErrDatabase is wrapped by every [*DatabaseError].
var ErrDatabase = errors.New("feed database")

// DatabaseError is an error of the feeds' PostgreSQL (checkpoints, leases,
// poison queue), translated so that no driver type leaves the package. It
// wraps [ErrDatabase], and domain.ErrUnavailable as well when the server
// could not be reached or the connection broke: the feed tries again.
type DatabaseError struct {
	Code        string // the SQLSTATE; "" when no server answered
	Message     string
	Unavailable bool
}

func (e *DatabaseError) Error() string {
	if e.Code == "" {
		return e.Message
	}
	return e.Message + " (SQLSTATE " + e.Code + ")"
}

func (e *DatabaseError) Unwrap() []error {
	if e.Unavailable {
		return []error{ErrDatabase, domain.ErrEngine, domain.ErrUnavailable}
	}
	return []error{ErrDatabase, domain.ErrEngine}
}

// translate turns an error of the driver into a *DatabaseError; any other
// error passes unchanged.
func translate(err error) error {
	if err == nil || !pgerr.Driver(err) {
		return err
	}
	return &DatabaseError{Code: pgerr.Code(err), Message: err.Error(), Unavailable: pgerr.Unavailable(err)}
}
