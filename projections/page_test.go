package projections

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"koers/domain"
)

// The tests that read a whole (short) list take its first page.
func balances(p BalancePage, err error) ([]Balance, error)             { return p.Balances, err }
func journal(p JournalPage, err error) ([]JournalLine, error)          { return p.Lines, err }
func measurements(p MeasurementPage, err error) ([]Measurement, error) { return p.Measurements, err }
func history(p HistoryPage, err error) ([]Fact, error)                 { return p.Facts, err }

// list is one list read a page at a time: each item rendered as a string.
type list func(Page) (items []string, next string, err error)

// pageThrough reads every page of l with limit, failing on a page over
// the limit or more pages than items could fill.
func pageThrough(t testing.TB, l list, limit, bound int) []string {
	t.Helper()
	var all []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > bound {
			t.Fatalf("limit %d: more than %d pages", limit, bound)
		}
		items, next, err := l(Page{Limit: limit, Cursor: cursor})
		if err != nil {
			t.Fatalf("limit %d, page %d: %v", limit, pages+1, err)
		}
		if len(items) > limit || (next != "" && len(items) != limit) {
			t.Fatalf("limit %d, page %d: %d items, next %q", limit, pages+1, len(items), next)
		}
		all = append(all, items...)
		if next == "" {
			return all
		}
		cursor = next
	}
}

func orgItems(org Organisation) []string {
	var out []string
	for _, vs := range org.ValueStreams {
		out = append(out, fmt.Sprintf("vs %s %d products", vs.ID, len(vs.Products)))
	}
	for _, tm := range org.Teams {
		out = append(out, fmt.Sprintf("team %s %d members", tm.ID, len(tm.Members)))
	}
	for _, p := range org.Projects {
		out = append(out, "project "+p.ID)
	}
	for _, p := range org.Unassigned {
		out = append(out, "unassigned "+p.ID)
	}
	return out
}

func TestEveryListPagesWithoutDuplicatesOrGaps(t *testing.T) {
	e := newLog(t)
	generate(t, e, 2000)
	for i := range 4 {
		e.submit(t, fmt.Sprintf(`{"id":"measure-%d","by":"p-root","authority":"root","reason":"measure","effective":"2026-0%d-01","changes":[
			{"kind":"kpi.record","product":"pay-app","kpi":"conversion","value":"%d.5"}]}`, i, i+3, i))
	}
	db := newDB(t)
	catchUp(t, db, e.st)
	ctx := context.Background()
	person := domain.Ref{Kind: domain.KindPerson, ID: "p-0-1"}

	lists := map[string]list{
		"organisation": func(p Page) ([]string, string, error) {
			org, err := db.Organisation(ctx, At{}, p)
			return orgItems(org), org.Next, err
		},
		"history": func(p Page) ([]string, string, error) {
			h, err := db.History(ctx, person, HistoryOptions{All: true}, p)
			var out []string
			for _, f := range h.Facts {
				out = append(out, fmt.Sprintf("%s=%s from %s at %d until %d", f.Attribute, f.Value, f.ValidFrom, f.RecordedSeq, f.SupersededSeq))
			}
			return out, h.Next, err
		},
		"balances": func(p Page) ([]string, string, error) {
			b, err := db.Balances(ctx, "2026", At{}, p)
			var out []string
			for _, x := range b.Balances {
				out = append(out, x.Account+" "+x.Amount())
			}
			return out, b.Next, err
		},
		"journal": func(p Page) ([]string, string, error) {
			j, err := db.Journal(ctx, "2026", "pool", At{}, p)
			var out []string
			for _, l := range j.Lines {
				// The running balance and counter-account are the same
				// whatever page a line is on.
				out = append(out, fmt.Sprintf("%d/%d %d %d %s", l.Sequence, l.Line, l.Minor, l.Balance, l.Counter))
			}
			return out, j.Next, err
		},
		"measurements": func(p Page) ([]string, string, error) {
			m, err := db.Measurements(ctx, "pay-app", At{}, p)
			var out []string
			for _, x := range m.Measurements {
				out = append(out, fmt.Sprintf("%s %s %d", x.KPI, x.Value, x.Sequence))
			}
			return out, m.Next, err
		},
	}
	for name, l := range lists {
		t.Run(name, func(t *testing.T) {
			whole, next, err := l(Page{Limit: MaxPageLimit})
			if err != nil {
				t.Fatal(err)
			}
			if next != "" || len(whole) < 3 {
				t.Fatalf("the whole list in one page: %d items, next %q; want at least 3 and no next", len(whole), next)
			}
			if seen := map[string]bool{}; true {
				for _, it := range whole {
					if seen[it] {
						t.Fatalf("%q twice in the whole list", it)
					}
					seen[it] = true
				}
			}
			n := len(whole)
			limits := []int{n/13 + 1, n/3 + 1, n - 1, n, n + 1}
			if n <= 60 { // small enough to read an item at a time
				limits = append(limits, 1, 2, 3)
			}
			for _, limit := range limits {
				if got := pageThrough(t, l, limit, len(whole)+1); !slices.Equal(got, whole) {
					t.Fatalf("limit %d: pages concatenate to\n%s\nwant\n%s", limit, strings.Join(got, "\n"), strings.Join(whole, "\n"))
				}
			}
		})
	}
}

func TestPagesAnswerAsOfTheirFirstPage(t *testing.T) {
	e := newLog(t)
	e.play(t, script...)
	db := newDB(t)
	catchUp(t, db, e.st)
	ctx := context.Background()
	read := func(p Page) ([]string, string, error) {
		org, err := db.Organisation(ctx, At{}, p)
		return orgItems(org), org.Next, err
	}
	whole, _, err := read(Page{})
	if err != nil {
		t.Fatal(err)
	}
	first, next, err := read(Page{Limit: 1})
	if err != nil || next == "" {
		t.Fatalf("first page: %v, next %q", err, next)
	}
	// A value stream and a team recorded between two pages, sorting
	// first and last, and a team disbanded: the next pages still answer
	// for the organisation of the first one.
	e.play(t, `{"id":"later","by":"p-root","authority":"root","reason":"grow","changes":[
		 {"kind":"valuestream.define","id":"aaa","name":"A"},
		 {"kind":"team.form","id":"t-zzz","name":"Z","type":"platform"}]}`)
	catchUp(t, db, e.st)
	got := first
	for pages := 0; next != "" && pages < len(whole); pages++ {
		var items []string
		items, next, err = read(Page{Limit: 1, Cursor: next})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, items...)
	}
	if !slices.Equal(got, whole) {
		t.Fatalf("pages across a new decision:\n%s\nwant, as of the first page:\n%s", strings.Join(got, "\n"), strings.Join(whole, "\n"))
	}
	now, _, err := read(Page{})
	if err != nil || slices.Equal(now, whole) {
		t.Fatalf("a new first page does not see the new decision: %v, %v", now, err)
	}
}

func TestBadLimitsAndCursorsAreRefused(t *testing.T) {
	e := newLog(t)
	e.play(t, script...)
	db := newDB(t)
	catchUp(t, db, e.st)
	ctx := context.Background()

	org, err := db.Organisation(ctx, At{}, Page{Limit: 1})
	if err != nil || org.Next == "" {
		t.Fatalf("organisation: %v, next %q", err, org.Next)
	}
	journalPage, err := db.Journal(ctx, "2026", "valuestream:payments", At{}, Page{Limit: 1})
	if err != nil || journalPage.Next == "" {
		t.Fatalf("journal: %v, next %q", err, journalPage.Next)
	}
	cases := []struct {
		name  string
		param string
		call  func() error
	}{
		{"limit below 1", "limit", func() error { _, err := db.Organisation(ctx, At{}, Page{Limit: -1}); return err }},
		{"limit over the maximum", "limit", func() error {
			_, err := db.Journal(ctx, "2026", "pool", At{}, Page{Limit: MaxPageLimit + 1})
			return err
		}},
		{"not base64", "cursor", func() error { _, err := db.Organisation(ctx, At{}, Page{Cursor: "%%%"}); return err }},
		{"not a cursor", "cursor", func() error {
			_, err := db.Organisation(ctx, At{}, Page{Cursor: base64.RawURLEncoding.EncodeToString([]byte(`{"v":1}`))})
			return err
		}},
		{"too long", "cursor", func() error {
			_, err := db.Organisation(ctx, At{}, Page{Cursor: strings.Repeat("a", 2000)})
			return err
		}},
		{"of another list", "cursor", func() error {
			_, err := db.Balances(ctx, "2026", At{}, Page{Cursor: journalPage.Next})
			return err
		}},
		{"of the same list with other parameters", "cursor", func() error {
			_, err := db.Journal(ctx, "2026", "pool", At{}, Page{Cursor: journalPage.Next})
			return err
		}},
		{"of the same list at another time", "cursor", func() error {
			_, err := db.Organisation(ctx, At{AsOf: day("2026-02-01")}, Page{Cursor: org.Next})
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			var pe *PageError
			if !errors.As(err, &pe) || pe.Param != c.param || !errors.Is(err, domain.ErrInvalid) {
				t.Fatalf("%v, want a PageError for %s wrapping domain.ErrInvalid", err, c.param)
			}
		})
	}
}
