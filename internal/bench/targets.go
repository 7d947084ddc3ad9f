package bench

import "fmt"

// Target is what Koers aims for in one figure (issue #7).
type Target struct {
	What string // e.g. "ratio ≥ 0.8"
	Met  func(Figure) bool
}

// Targets holds a target per figure key that has one.
var Targets = map[string]Target{
	KeyAppend:             {"ratio ≥ 0.8", func(f Figure) bool { return f.Ratio >= 0.8 }},
	KeyAppendConcurrent:   {"≥ 20000 decisions/s", func(f Figure) bool { return f.Koers >= 20_000 }},
	KeyRebuild:            {"≥ 100000 events/s, ratio ≥ 0.5", func(f Figure) bool { return f.Koers >= 100_000 && f.Ratio >= 0.5 }},
	KeyVerify:             {"ratio ≥ 0.5", func(f Figure) bool { return f.Ratio >= 0.5 }},
	KeyApplyBulk:          {"≥ 5000 decisions/s, ratio ≥ 0.5", func(f Figure) bool { return f.Koers >= 5000 && f.Ratio >= 0.5 }},
	KeyAppendConcurrent64: {"≥ 3000 decisions/s", func(f Figure) bool { return f.Koers >= 3000 }},
	KeyRebuildRSS:         {"≤ 300 MiB at 1M events", func(f Figure) bool { return f.Koers <= 300 }},
	KeyAsOf:               {"p95 < 10 ms", func(f Figure) bool { return f.P95 < 10 }},
	KeyLag:                {"p99 < 25 ms", func(f Figure) bool { return f.P99 < 25 }},
}

// RebuildRSSTarget bounds the rebuild's peak resident set size for a
// history of RebuildRSSEvents events.
const (
	RebuildRSSTarget = 500 << 20
	RebuildRSSEvents = 1_000_000
)

// Describe says what a figure is in a few words, for a table.
func (f Figure) Describe() (koers, raw string) {
	switch {
	case f.P50 > 0 || f.P99 > 0:
		koers = fmt.Sprintf("p50 %.1f ms, p95 %.1f ms, p99 %.1f ms", f.P50, f.P95, f.P99)
		if f.Rate > 0 {
			koers += fmt.Sprintf(" at %.0f/s", f.Rate)
		}
		return koers, "—"
	}
	koers = fmt.Sprintf("%.0f %s", f.Koers, f.Unit)
	unit := f.RawUnit
	if unit == "" {
		unit = f.Unit
	}
	if f.Raw > 0 {
		raw = fmt.Sprintf("%.0f %s", f.Raw, unit)
	} else {
		raw = "—"
	}
	return koers, raw
}
