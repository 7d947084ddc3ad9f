package projections

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"koers/domain"
)

// The read models remember the log as they saw it: the projector records
// an anchor (sequence, stream digest) every ProjectorOptions.AnchorEvery
// events or AnchorInterval, whichever comes first, and checks the log
// against the last one before each pass. `koers verify` checks the whole
// log against all of them.

// MaxAnchorsPage bounds a page of [DB.Anchors].
const MaxAnchorsPage = 10_000

// RecordAnchor remembers an anchor of the log. Recording one at a
// sequence already anchored changes nothing.
func (db *DB) RecordAnchor(ctx context.Context, a domain.Anchor) error {
	err := db.withConn(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, `INSERT INTO anchors (seq, digest, prev) VALUES ($1, $2, $3) ON CONFLICT (seq) DO NOTHING`,
			int64(a.Sequence), a.Digest, a.Prev)
		return err
	})
	if err != nil {
		return fmt.Errorf("record anchor at %d: %w", a.Sequence, err)
	}
	return nil
}

// LastAnchor returns the read models' latest anchor; ok is false when
// there is none yet.
func (db *DB) LastAnchor(ctx context.Context) (a domain.Anchor, ok bool, err error) {
	var seq int64
	err = db.withConn(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT seq, digest, prev FROM anchors ORDER BY seq DESC LIMIT 1`).Scan(&seq, &a.Digest, &a.Prev)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Anchor{}, false, nil
	}
	if err != nil {
		return domain.Anchor{}, false, fmt.Errorf("read last anchor: %w", err)
	}
	a.Sequence = uint64(seq)
	return a, true, nil
}

// Anchors returns up to limit anchors after sequence after, in order.
func (db *DB) Anchors(ctx context.Context, after uint64, limit int) ([]domain.Anchor, error) {
	if limit < 1 || limit > MaxAnchorsPage {
		return nil, fmt.Errorf("anchors: limit %d: want 1 to %d: %w", limit, MaxAnchorsPage, domain.ErrInvalid)
	}
	var out []domain.Anchor
	err := db.withConn(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT seq, digest, prev FROM anchors WHERE seq > $1 ORDER BY seq LIMIT $2`, int64(after), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var a domain.Anchor
			var seq int64
			if err := rows.Scan(&seq, &a.Digest, &a.Prev); err != nil {
				return err
			}
			a.Sequence = uint64(seq)
			out = append(out, a)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("read anchors: %w", err)
	}
	return out, nil
}

// anchoring is the projector's anchor state.
type anchoring struct {
	last   domain.Anchor
	loaded bool
	at     time.Time // when last was taken (or loaded)
}

// checkIntegrity asks an [domain.IntegrityChecker] source to check itself
// against the read models' last anchor before a pass. A check that could
// not be made is the log's unavailability (retried); a problem found is
// returned as it is and ends the run.
func (p *Projector) checkIntegrity(ctx context.Context) error {
	ic, ok := p.src.(domain.IntegrityChecker)
	if !ok {
		return nil
	}
	var anchors []domain.Anchor
	if a, ok, err := p.db.LastAnchor(ctx); err != nil {
		return err
	} else if ok {
		anchors = append(anchors, a)
	}
	err := ic.CheckIntegrity(ctx, anchors...)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, domain.ErrIntegrity) || ctx.Err() != nil:
		return fmt.Errorf("projector: %w", err)
	default:
		return &domain.LogError{Op: "check the log's integrity", Cause: err.Error()}
	}
}

// halted is the source's integrity problem found meanwhile (by a watch
// elsewhere in the process), nil while none was.
func (p *Projector) halted() error {
	if ic, ok := p.src.(domain.IntegrityChecker); ok {
		if err := ic.Halted(); err != nil {
			return fmt.Errorf("projector: %w", err)
		}
	}
	return nil
}

// anchorAt records an anchor at checkpoint cp when AnchorEvery events or
// AnchorInterval passed since the last one (or at once: now), for an
// [domain.Anchorer] source. The anchor extends the last one, so it costs a
// read of the messages since.
func (p *Projector) anchorAt(ctx context.Context, cp uint64, now bool) error {
	an, ok := p.src.(domain.Anchorer)
	if !ok {
		return nil
	}
	if !p.anchor.loaded {
		last, _, err := p.db.LastAnchor(ctx)
		if err != nil {
			return err
		}
		p.anchor = anchoring{last: last, loaded: true, at: time.Now()}
	}
	if cp <= p.anchor.last.Sequence {
		return nil
	}
	if !now && cp-p.anchor.last.Sequence < p.opts.AnchorEvery && time.Since(p.anchor.at) < p.opts.AnchorInterval {
		return nil
	}
	a, err := an.Anchor(ctx, p.anchor.last, cp)
	if err != nil {
		return fmt.Errorf("projector: anchor at %d: %w", cp, err)
	}
	if err := p.db.RecordAnchor(ctx, a); err != nil {
		return err
	}
	p.anchor.last, p.anchor.at = a, time.Now()
	return nil
}
