package domain

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Quarter is a calendar quarter in UTC: [From, To).
type Quarter struct {
	Name     string // 2026-Q2
	From, To time.Time
}

// ParseQuarter parses "2026-Q2"; errors wrap ErrInvalid.
func ParseQuarter(q string) (Quarter, error) {
	y, n, ok := strings.Cut(q, "-Q")
	year, yerr := strconv.Atoi(y)
	num, nerr := strconv.Atoi(n)
	if !ok || yerr != nil || nerr != nil || num < 1 || num > 4 || year < 1 || year > 9999 || len(y) != 4 || len(n) != 1 {
		return Quarter{}, fmt.Errorf("quarter %q: want YYYY-Qn, e.g. 2026-Q2: %w", truncate(q, 40), ErrInvalid)
	}
	from := time.Date(year, time.Month(3*(num-1)+1), 1, 0, 0, 0, 0, time.UTC)
	return Quarter{Name: q, From: from, To: from.AddDate(0, 3, 0)}, nil
}

// QuarterOf is the quarter (UTC) holding t.
func QuarterOf(t time.Time) Quarter {
	t = t.UTC()
	from := time.Date(t.Year(), time.Month(3*((int(t.Month())-1)/3)+1), 1, 0, 0, 0, 0, time.UTC)
	return Quarter{Name: fmt.Sprintf("%04d-Q%d", from.Year(), (int(from.Month())-1)/3+1), From: from, To: from.AddDate(0, 3, 0)}
}

// Previous is the quarter before q.
func (q Quarter) Previous() Quarter { return QuarterOf(q.From.AddDate(0, -3, 0)) }
