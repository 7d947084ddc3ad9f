// Package pgerr classifies the errors of pgx for the packages that keep
// their own state in PostgreSQL (the read models, the feeds), so that each
// translates them at its edge the same way and no driver type leaves it.
package pgerr

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Code is err's SQLSTATE, "" when no server answered with one.
func Code(err error) string {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code
	}
	return ""
}

// Unavailable reports whether err says that the server could not be
// reached, that the connection broke under the call, or that the server is
// going away or full: the same call may succeed later. A caller's own
// context ending is not unavailability.
func Unavailable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	switch code := Code(err); {
	case code == "":
	case strings.HasPrefix(code, "08"), code == "57P01", code == "57P02", code == "57P03", code == "53300":
		return true
	default:
		return false
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connErr), errors.As(err, &netErr),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		pgconn.SafeToRetry(err):
		return true
	}
	// pgx answers a use of a connection it has seen break with an error of
	// this text and no type of its own.
	return strings.Contains(err.Error(), "conn closed")
}

// Driver reports whether err carries anything of the driver's that should
// be translated: a server error or an unavailable connection.
func Driver(err error) bool { return Code(err) != "" || Unavailable(err) }
