package feed

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Status is one feed's checkpoint against the ledger's stream.
type Status struct {
	Progress
	// LastSequence is the last sequence in the ledger's stream.
	LastSequence uint64 `json:"last_sequence"`
	// Lag is how many stream messages come after the checkpoint.
	Lag uint64 `json:"lag"`
}

// ReadStatus lists every feed registered in the database at databaseURL
// with its lag behind log. It creates nothing: a database where no feed
// ever ran gives an empty list.
func ReadStatus(ctx context.Context, log Log, databaseURL string) ([]Status, error) {
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return nil, fmt.Errorf("feed database: %w", translate(err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	cps, err := list(ctx, conn)
	if err != nil {
		return nil, err
	}
	last, err := log.LastSequence(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Status, 0, len(cps))
	for _, c := range cps {
		s := Status{Progress: c, LastSequence: last}
		if last > c.Checkpoint {
			s.Lag = last - c.Checkpoint
		}
		out = append(out, s)
	}
	return out, nil
}
