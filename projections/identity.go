package projections

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"koers/consumer"
	"koers/domain"
)

// LedgerIdentity names the ledger read models are built from: what its
// first message (sequence 1, the genesis decision's first event) was. Two
// ledgers never have the same genesis fingerprint, since it covers the
// server's recorded time of that message to the nanosecond.
type LedgerIdentity struct {
	// Stream is the ledger's name as the source reports it
	// ([domain.LogReader.Ledger]: the stream's name); informative only, the
	// fingerprint decides.
	Stream string
	// Genesis is the hex SHA-256 fingerprint of sequence 1: its event id,
	// type, aggregate, payload, decision id, actor, effective and recorded
	// times.
	Genesis string
	// GenesisAt is when sequence 1 was recorded, to the microsecond.
	GenesisAt time.Time
}

// IsZero reports whether no identity is known: the log is empty, or the
// read models hold nothing yet.
func (id LedgerIdentity) IsZero() bool { return id.Genesis == "" }

// Same reports whether id and o are the same ledger.
func (id LedgerIdentity) Same(o LedgerIdentity) bool { return id.Genesis == o.Genesis }

// String is e.g. "KOERS (genesis 3f9a0c12d4e5, recorded 2026-07-01T09:00:00Z)".
func (id LedgerIdentity) String() string {
	if id.IsZero() {
		return "(none)"
	}
	s := id.Stream
	if s == "" {
		s = "ledger"
	}
	return fmt.Sprintf("%s (genesis %s, recorded %s)", s, short(id.Genesis), id.GenesisAt.UTC().Format(time.RFC3339Nano))
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// LedgerMismatchError is returned when the events of one ledger would be
// applied to read models built from another: the projector refuses, the
// read models are unchanged. Rebuild them ([DB.Rebuild] replaces read
// models of any ledger) or use another schema or database.
type LedgerMismatchError struct {
	Have LedgerIdentity // the ledger the read models were built from
	Want LedgerIdentity // the ledger of the source
}

func (e *LedgerMismatchError) Error() string {
	return fmt.Sprintf("the read models hold ledger %s, not ledger %s: rebuild them or use another database", e.Have, e.Want)
}

// identityOf computes the identity from the genesis message.
func identityOf(stream string, r domain.Recorded) LedgerIdentity {
	h := sha256.New()
	field := func(s string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	for _, p := range []string{"koers-ledger-v1", r.EventID, r.Type, r.Aggregate.String(), string(r.Data), r.Meta.DecisionID, r.Meta.By,
		r.Meta.Effective.UTC().Format(time.RFC3339Nano), strconv.FormatInt(r.RecordedAt.UnixNano(), 10)} {
		field(p)
	}
	return LedgerIdentity{Stream: stream, Genesis: hex.EncodeToString(h.Sum(nil)), GenesisAt: r.RecordedAt.UTC().Truncate(time.Microsecond)}
}

// IdentityOf returns the identity of src's ledger, the zero identity when
// its log is empty. It fails when sequence 1 is not a genuine event.
func IdentityOf(ctx context.Context, src Source) (LedgerIdentity, error) {
	last, err := src.LastSequence(ctx)
	if err != nil {
		return LedgerIdentity{}, fmt.Errorf("ledger identity: %w", err)
	}
	if last == 0 {
		return LedgerIdentity{}, nil
	}
	for rec, err := range src.Read(ctx, 1, domain.ReadOptions{Until: 1, Buffer: 1}) {
		if err != nil {
			return LedgerIdentity{}, fmt.Errorf("ledger identity: sequence 1: %w", err)
		}
		return identityOf(src.Ledger(), rec), nil
	}
	return LedgerIdentity{}, errors.New("ledger identity: sequence 1 not read")
}

// LedgerIdentity returns the identity of the ledger the read models were
// built from; the zero identity when they hold nothing yet.
func (db *DB) LedgerIdentity(ctx context.Context) (LedgerIdentity, error) {
	var id LedgerIdentity
	err := db.withConn(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT coalesce(ledger_stream, ''), coalesce(ledger_genesis, ''), coalesce(ledger_genesis_at, 'epoch')
			FROM checkpoint`).Scan(&id.Stream, &id.Genesis, &id.GenesisAt)
	})
	if err != nil {
		return LedgerIdentity{}, fmt.Errorf("read ledger identity: %w", err)
	}
	if id.IsZero() {
		return LedgerIdentity{}, nil
	}
	id.GenesisAt = id.GenesisAt.UTC()
	return id, nil
}

// CheckLedger returns a [*LedgerMismatchError] when the read models were
// built from another ledger than src's, nil when they were built from it
// or hold nothing yet. It is what a CLI asks before projecting.
func (db *DB) CheckLedger(ctx context.Context, src Source) error {
	have, err := db.LedgerIdentity(ctx)
	if err != nil || have.IsZero() {
		return err
	}
	want, err := IdentityOf(ctx, src)
	if err != nil {
		return err
	}
	if !want.IsZero() && !have.Same(want) {
		return &LedgerMismatchError{Have: have, Want: want}
	}
	return nil
}

// checkIdentity runs in a batch's transaction, after the checkpoint is
// locked: it refuses a batch of another ledger and records the identity of
// one that holds sequence 1 (or the first one on read models built before
// identities were recorded). want is the source's identity, zero when the
// projector does not know it yet (its log was empty when it started).
func checkIdentity(ctx context.Context, tx pgx.Tx, batch []consumer.Unit, want LedgerIdentity) error {
	if want.IsZero() && len(batch) > 0 {
		if it := batch[0].Messages[0]; it.Rejected == nil && it.Event.Sequence == 1 {
			want = identityOf("", it.Event)
		}
	}
	var have LedgerIdentity
	var at *time.Time
	if err := tx.QueryRow(ctx, `SELECT coalesce(ledger_stream, ''), coalesce(ledger_genesis, ''), ledger_genesis_at FROM checkpoint`).
		Scan(&have.Stream, &have.Genesis, &at); err != nil {
		return fmt.Errorf("read ledger identity: %w", err)
	}
	if at != nil {
		have.GenesisAt = at.UTC()
	}
	switch {
	case want.IsZero():
		return nil
	case have.IsZero():
		if _, err := tx.Exec(ctx, `UPDATE checkpoint SET ledger_stream = nullif($1, ''), ledger_genesis = $2, ledger_genesis_at = $3`,
			want.Stream, want.Genesis, want.GenesisAt); err != nil {
			return fmt.Errorf("record ledger identity: %w", err)
		}
		return nil
	case !have.Same(want):
		return &LedgerMismatchError{Have: have, Want: want}
	}
	return nil
}
