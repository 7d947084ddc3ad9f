package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strings"
	"time"

	"koers/domain"
	"koers/projections"
)

// show is how a command presents what it answers to people: times in the
// --timezone, dates as dates, and names beside ids.
type show struct {
	loc   *time.Location
	names map[domain.Ref]string
}

// location is the --timezone: the machine's local zone by default.
func (s settings) location() (*time.Location, error) {
	loc, err := time.LoadLocation(s.timezone)
	if err != nil {
		return nil, fmt.Errorf("time zone %q: %w", s.timezone, err)
	}
	return loc, nil
}

// newShow looks up the names of refs once, for one table.
func newShow(ctx context.Context, s *settings, db *projections.DB, refs []domain.Ref) (show, error) {
	loc, err := s.location()
	if err != nil {
		return show{}, err
	}
	sh := show{loc: loc, names: map[domain.Ref]string{}}
	if db != nil && len(refs) > 0 {
		if len(refs) > projections.MaxNames {
			refs = refs[:projections.MaxNames]
		}
		if sh.names, err = db.Names(ctx, refs); err != nil {
			return show{}, err
		}
	}
	return sh, nil
}

// name is "Ada Jansen (p-0041)", or the id alone when it has no name.
func (sh show) name(kind domain.AggregateKind, id string) string {
	if id == "" {
		return "-"
	}
	if n := sh.names[domain.Ref{Kind: kind, ID: id}]; n != "" && n != id {
		return n + " (" + id + ")"
	}
	return id
}

// account is "Pay app (product:pay-app)" for an account of an aggregate.
func (sh show) account(acc string) string {
	if kind, id, ok := strings.Cut(acc, ":"); ok {
		if n := sh.names[domain.Ref{Kind: domain.AggregateKind(kind), ID: id}]; n != "" {
			return n + " (" + acc + ")"
		}
	}
	return acc
}

// day is a date when t is midnight in the zone, else the time there.
func (sh show) day(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	lt := t.In(sh.loc)
	if lt.Hour() == 0 && lt.Minute() == 0 && lt.Second() == 0 && lt.Nanosecond() == 0 {
		return lt.Format(time.DateOnly)
	}
	return sh.clock(t)
}

// clock is a moment in the zone, to the second.
func (sh show) clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(sh.loc).Format("2006-01-02 15:04:05 MST")
}

// stamp is a moment for CSV: RFC 3339 in the zone.
func (sh show) stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(sh.loc).Format(time.RFC3339)
}

func (sh show) whenOrNow(t time.Time) string {
	if t.IsZero() {
		return "now"
	}
	return sh.day(t)
}

// refOfAttribute is the kind of aggregate an attribute's value names, for
// the attributes that name one.
func refOfAttribute(attr string) (domain.AggregateKind, bool) {
	switch attr {
	case "team":
		return domain.KindTeam, true
	case "owner", "holder":
		return domain.KindPerson, true
	case "valuestream":
		return domain.KindValueStream, true
	case "product":
		return domain.KindProduct, true
	case "project":
		return domain.KindProject, true
	}
	return "", false
}

func accountRef(acc string) (domain.Ref, bool) {
	kind, id, ok := strings.Cut(acc, ":")
	if !ok || kind == "budget" {
		return domain.Ref{}, false
	}
	return domain.Ref{Kind: domain.AggregateKind(kind), ID: id}, true
}

// writeCSV writes a header and rows.
func writeCSV(w io.Writer, header []string, rows [][]string) error {
	cw := csv.NewWriter(w)
	_ = cw.Write(header)
	for _, r := range rows {
		_ = cw.Write(r)
	}
	cw.Flush()
	return cw.Error()
}

// formatFlag is --format table|json|csv, with --json as its short form.
type formatFlag struct {
	format string
	json   bool
}

func (f *formatFlag) value() (string, error) {
	if f.json {
		return "json", nil
	}
	switch f.format {
	case "table", "json", "csv":
		return f.format, nil
	}
	return "", fmt.Errorf("--format %q: want table, json or csv", f.format)
}
