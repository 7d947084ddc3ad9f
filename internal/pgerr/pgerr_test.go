package pgerr_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"koers/internal/pgerr"
	"koers/internal/pgtest"
)

func TestDriverErrorsAreClassified(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgtest.Fresh(t))
	if err != nil {
		t.Fatal(err)
	}
	_, undefined := conn.Exec(ctx, "SELECT * FROM no_such_table")
	other, cancelOther := context.WithCancel(ctx)
	cancelOther()
	_, canceled := conn.Exec(other, "SELECT 1")
	conn.Close(ctx)
	_, closed := conn.Exec(ctx, "SELECT 1")
	_, refused := pgx.Connect(ctx, "postgres://nobody@127.0.0.1:1/none?connect_timeout=2")

	for _, tc := range []struct {
		name              string
		err               error
		code              string
		unavailable, isDB bool
	}{
		{"a server's refusal", undefined, "42P01", false, true},
		{"nobody listening", refused, "", true, true},
		{"a closed connection", closed, "", true, true},
		{"the caller's context", canceled, "", false, false},
		{"not the driver's", errors.New("something else"), "", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wrapped := fmt.Errorf("op: %w", tc.err)
			if got := pgerr.Code(wrapped); got != tc.code {
				t.Errorf("Code(%v) = %q, want %q", tc.err, got, tc.code)
			}
			if got := pgerr.Unavailable(wrapped); got != tc.unavailable {
				t.Errorf("Unavailable(%v) = %v, want %v", tc.err, got, tc.unavailable)
			}
			if got := pgerr.Driver(wrapped); got != tc.isDB {
				t.Errorf("Driver(%v) = %v, want %v", tc.err, got, tc.isDB)
			}
		})
	}
}
