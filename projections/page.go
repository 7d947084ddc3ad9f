package projections

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"koers/domain"
)

// Page bounds of the lists ([DB.Organisation], [DB.History], [DB.Balances],
// [DB.Journal], [DB.Measurements]); the audit has its own
// ([MaxAuditLimit]).
const (
	// DefaultPageLimit is a page's size when [Page].Limit is 0.
	DefaultPageLimit = 100
	// MaxPageLimit bounds [Page].Limit: one answer stays a few hundred
	// kilobytes at most.
	MaxPageLimit = 1000
	// maxCursorLen bounds a cursor before it is decoded; real ones are
	// under 300 characters.
	maxCursorLen = 1024
)

// Page asks for one page of a list. Pages are read by keyset (after the
// last item of the previous page, in the list's order), and every page of
// a list answers for the point in both times of its first page, which the
// cursor carries: new decisions recorded meanwhile neither shift nor
// change the pages, so the pages of a list concatenate to the whole list
// as of its first page, without duplicates or gaps.
type Page struct {
	// Limit is the most items in the page. Default DefaultPageLimit, at
	// most MaxPageLimit.
	Limit int
	// Cursor is the Next of the previous page, opaque; empty: the first
	// page. It must come from the same list asked with the same
	// parameters.
	Cursor string
}

// PageError is a [Page] a list cannot use; it wraps [domain.ErrInvalid].
type PageError struct {
	Param   string // "limit" or "cursor"
	Problem string
}

func (e *PageError) Error() string { return e.Param + ": " + e.Problem }

// Unwrap makes a PageError match domain.ErrInvalid.
func (e *PageError) Unwrap() error { return domain.ErrInvalid }

// cursor is what a page's Next carries, as base64url JSON.
type cursor struct {
	V     int       `json:"v"`          // cursorVersion
	List  string    `json:"l"`          // the list: org, history, balances, journal, measurements
	Query string    `json:"q"`          // queryHash of the list's parameters
	Seq   int64     `json:"s"`          // the known sequence of the first page
	AsOf  time.Time `json:"a,omitzero"` // the valid time of the first page
	Key   []string  `json:"k"`          // the last item's sort key
}

const cursorVersion = 1

// queryHash identifies a list's parameters, so that a cursor is refused
// when they change between pages.
func queryHash(params ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(params, "\x00")))
	return hex.EncodeToString(sum[:8])
}

// timeParam renders a time parameter for queryHash.
func timeParam(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// pager is one page of one list being read.
type pager struct {
	list, query string
	limit       int
	after       *cursor // nil: the first page
}

// newPager validates p for the list with the given parameters.
func newPager(list string, p Page, params ...string) (*pager, error) {
	pg := &pager{list: list, query: queryHash(append([]string{list}, params...)...), limit: p.Limit}
	if pg.limit == 0 {
		pg.limit = DefaultPageLimit
	}
	if pg.limit < 1 || pg.limit > MaxPageLimit {
		return nil, &PageError{Param: "limit", Problem: fmt.Sprintf("%d: want 1 to %d", p.Limit, MaxPageLimit)}
	}
	if p.Cursor == "" {
		return pg, nil
	}
	bad := func(why string) error {
		return &PageError{Param: "cursor", Problem: fmt.Sprintf("%.40q: %s; use the next of the previous page, or none for the first", p.Cursor, why)}
	}
	if len(p.Cursor) > maxCursorLen {
		return nil, bad(fmt.Sprintf("longer than %d characters", maxCursorLen))
	}
	raw, err := base64.RawURLEncoding.DecodeString(p.Cursor)
	if err != nil {
		return nil, bad("not a cursor")
	}
	var c cursor
	if err := json.Unmarshal(raw, &c); err != nil || c.V != cursorVersion || len(c.Key) == 0 || c.Seq < 0 {
		return nil, bad("not a cursor")
	}
	if c.List != list {
		return nil, bad(fmt.Sprintf("a cursor of the %s list, not of the %s list", c.List, list))
	}
	if c.Query != pg.query {
		return nil, bad("from the same list asked with other parameters: ask with the parameters of the first page")
	}
	pg.after = &c
	return pg, nil
}

// known resolves at on the first page, and returns the first page's point
// in both times on the next ones.
func (pg *pager) known(ctx context.Context, tx pgx.Tx, at At) (known, error) {
	if pg.after != nil {
		return known{asOf: pg.after.AsOf, seq: pg.after.Seq}, nil
	}
	return resolve(ctx, tx, at)
}

// key returns the previous page's last key, checking it has n parts.
func (pg *pager) key(n int) ([]string, error) {
	if pg.after == nil {
		return nil, nil
	}
	if len(pg.after.Key) != n {
		return nil, &PageError{Param: "cursor", Problem: "not a cursor of this list"}
	}
	return pg.after.Key, nil
}

// next returns the cursor after the item with key, for a page that
// answered for k.
func (pg *pager) next(k known, key ...string) string {
	c := cursor{V: cursorVersion, List: pg.list, Query: pg.query, Seq: k.seq, AsOf: k.asOf.UTC(), Key: key}
	raw, err := json.Marshal(c)
	if err != nil {
		panic(fmt.Sprintf("encode cursor: %v", err)) // strings, ints and a time always encode
	}
	return base64.RawURLEncoding.EncodeToString(raw)
}

// Key parts parse back as what they were rendered from.
func keyTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, &PageError{Param: "cursor", Problem: "not a cursor of this list"}
	}
	return t, nil
}

func keyInt(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, &PageError{Param: "cursor", Problem: "not a cursor of this list"}
	}
	return n, nil
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
func fmtInt(n int64) string      { return strconv.FormatInt(n, 10) }
