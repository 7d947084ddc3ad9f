package web

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"koers/domain"
	"koers/projections"
)

// maxParamLen bounds a query parameter's value before it is parsed.
const maxParamLen = 200

// query reads a request's query parameters; the first problem is kept
// and answered as a 400 naming the parameter.
type query struct {
	r   *http.Request
	loc *time.Location
	err error
}

func (s *server) query(r *http.Request) *query { return &query{r: r, loc: s.cfg.Location} }

func (q *query) fail(name, format string, a ...any) {
	if q.err == nil {
		q.err = badRequest(name+": "+format, a...)
	}
}

func (q *query) str(name string) string {
	v := strings.TrimSpace(q.r.URL.Query().Get(name))
	if len(v) > maxParamLen {
		q.fail(name, "longer than %d characters", maxParamLen)
		return ""
	}
	return v
}

func (q *query) id(name string) string {
	v := q.str(name)
	if v != "" {
		if err := domain.ValidID(v); err != nil {
			q.fail(name, "%v", err)
			return ""
		}
	}
	return v
}

// date reads a date (as the date inputs send it) or an RFC 3339 time.
func (q *query) date(name string) time.Time {
	v := q.str(name)
	if v == "" {
		return time.Time{}
	}
	t, err := domain.ParseEffective(v, q.loc)
	if err != nil {
		q.fail(name, "%q: want a date such as 2025-06-30", v)
	}
	return t
}

// moment reads a local date and time (as datetime-local inputs send it),
// a date or an RFC 3339 time.
func (q *query) moment(name string) time.Time {
	v := q.str(name)
	if v == "" {
		return time.Time{}
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04"} {
		if t, err := time.ParseInLocation(layout, v, q.loc); err == nil {
			return t
		}
	}
	t, err := domain.ParseEffective(v, q.loc)
	if err != nil {
		q.fail(name, "%q: want a date and time such as 2026-03-01T12:00", v)
	}
	return t
}

func (q *query) uint(name string, max uint64) uint64 {
	v := q.str(name)
	if v == "" {
		return 0
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n > max {
		q.fail(name, "%q: want a whole number from 0 to %d", v, max)
	}
	return n
}

// at reads as_of and known_at.
func (q *query) at() projections.At {
	return projections.At{AsOf: q.date("as_of"), KnownAt: q.moment("known_at")}
}

// timeControls is what the date controls of a page show.
type timeControls struct {
	AsOf, KnownAt string // as the inputs want them; "" for now
	Min, Max      string // the as-of slider's range
}

func (s *server) controls(at projections.At) timeControls {
	c := timeControls{Min: "2020-01-01", Max: s.cfg.Now().In(s.cfg.Location).AddDate(1, 0, 0).Format(time.DateOnly)}
	if !at.AsOf.IsZero() {
		c.AsOf = at.AsOf.In(s.cfg.Location).Format(time.DateOnly)
	}
	if !at.KnownAt.IsZero() {
		c.KnownAt = at.KnownAt.In(s.cfg.Location).Format("2006-01-02T15:04:05")
	}
	return c
}
