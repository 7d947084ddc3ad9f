package api

import (
	"time"

	"koers/domain"
	"koers/ledger"
	"koers/projections"
)

// The answers of the queries, built from what the read models return. The
// HTTP API writes them and `koers … --json` prints the very same values, so
// that one question has one JSON shape wherever it is asked (a test in
// cmd/koers holds the two equal). Each returns the value to encode.

// OrgAnswer is the answer of GET /v1/org.
func OrgAnswer(o projections.Organisation) any { return orgOut(o) }

// HistoryAnswer is the answer of GET /v1/history/{kind}/{id}.
func HistoryAnswer(ref domain.Ref, h projections.HistoryPage) any { return historyOutOf(ref, h) }

// AuditAnswer is the answer of GET /v1/audit.
func AuditAnswer(p projections.AuditPage) any { return auditOutOf(p) }

// BalancesAnswer is the answer of GET /v1/funding/{period}.
func BalancesAnswer(period string, at projections.At, bs projections.BalancePage) any {
	return balancesOutOf(period, at, bs)
}

// JournalAnswer is the answer of GET /v1/funding/{period}?account=.
func JournalAnswer(period, account string, at projections.At, j projections.JournalPage) any {
	return journalOutOf(period, account, at, j)
}

// TransitionAnswer is the answer of GET /v1/reports/transition for the
// quarters from and to (inclusive) and their reports ts.
func TransitionAnswer(from, to string, knownAt time.Time, ts []projections.Transition) any {
	return transitionReportOutOf(from, to, knownAt, ts)
}

// ResultAnswer is the answer of POST /v1/decisions.
func ResultAnswer(res ledger.Result) any {
	seqs := res.Sequences
	if seqs == nil {
		seqs = []uint64{}
	}
	return decisionResult{ID: res.DecisionID, Sequences: seqs, Duplicate: res.Duplicate}
}

func historyOutOf(ref domain.Ref, hist projections.HistoryPage) historyOut {
	out := historyOut{Kind: string(ref.Kind), ID: ref.ID, Facts: make([]factOut, len(hist.Facts)), Next: hist.Next}
	for i, f := range hist.Facts {
		out.Facts[i] = factOut{Attribute: f.Attribute, Value: f.Value, Unset: f.Unset, ValidFrom: f.ValidFrom, ValidTo: f.ValidTo,
			RecordedSequence: f.RecordedSeq, RecordedAt: f.RecordedAt, SupersededSequence: f.SupersededSeq, Decision: f.Decision}
	}
	return out
}

func auditOutOf(page projections.AuditPage) auditOut {
	out := auditOut{Decisions: make([]decisionLogOut, len(page.Decisions)), Next: page.Next}
	for i, d := range page.Decisions {
		out.Decisions[i] = decisionOut(d)
	}
	return out
}

func balancesOutOf(period string, at projections.At, bs projections.BalancePage) fundingOut {
	out := fundingOut{Period: period, AsOf: optTime(at.AsOf), KnownAt: optTime(at.KnownAt), Next: bs.Next}
	out.Balances = make([]balanceOut, len(bs.Balances))
	for i, b := range bs.Balances {
		out.Balances[i] = balanceOut{Account: b.Account, Currency: string(b.Currency), Amount: b.Amount(), Minor: int64(b.Minor)}
	}
	return out
}

func journalOutOf(period, account string, at projections.At, journal projections.JournalPage) fundingOut {
	out := fundingOut{Period: period, AsOf: optTime(at.AsOf), KnownAt: optTime(at.KnownAt), Account: account, Next: journal.Next}
	out.Journal = make([]journalLineOut, len(journal.Lines))
	for i, l := range journal.Lines {
		out.Journal[i] = journalLineOut{Sequence: l.Sequence, Line: l.Line, Decision: l.Decision, EventType: l.EventType,
			Account: l.Account, Currency: string(l.Currency), Amount: l.Minor.Format(l.Currency), Minor: int64(l.Minor),
			Effective: l.Effective, RecordedAt: l.RecordedAt, CounterAccount: l.Counter,
			Balance: l.Balance.Format(l.Currency), BalanceMinor: int64(l.Balance)}
	}
	return out
}

func transitionReportOutOf(from, to string, knownAt time.Time, ts []projections.Transition) transitionReportOut {
	out := transitionReportOut{From: from, To: to, KnownAt: optTime(knownAt), Quarters: make([]transitionOut, len(ts))}
	for i, t := range ts {
		out.Quarters[i] = transitionOutOf(t)
	}
	return out
}
