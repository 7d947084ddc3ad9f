package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"koers/domain"
)

// At is the point in both times a query answers for.
type At struct {
	// AsOf is the valid time: what was true then. Zero: now.
	AsOf time.Time
	// KnownAt is the recorded time: what the ledger knew then. Zero: now,
	// everything recorded so far.
	KnownAt time.Time
}

// known is an At resolved against the read models: the valid time and the
// sequence of the last decision recorded at KnownAt.
type known struct {
	asOf time.Time
	seq  int64
}

// resolve turns at into a valid time and the last decision sequence
// recorded at its KnownAt. Only whole decisions count, so the events of a
// decision a batch cut short stay invisible.
func resolve(ctx context.Context, q pgx.Tx, at At) (known, error) {
	k := known{asOf: at.AsOf}
	if k.asOf.IsZero() {
		k.asOf = time.Now()
	}
	var err error
	if at.KnownAt.IsZero() {
		err = q.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM decisions`).Scan(&k.seq)
	} else {
		err = q.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM decisions WHERE recorded_at <= $1`, at.KnownAt).Scan(&k.seq)
	}
	if err != nil {
		return known{}, fmt.Errorf("resolve known at %s: %w", at.KnownAt, err)
	}
	return k, nil
}

// read runs fn in a read-only transaction with one snapshot, so that one
// answer never mixes two checkpoints.
func (db *DB) read(ctx context.Context, fn func(pgx.Tx) error) error {
	return db.withConn(ctx, func(c *pgx.Conn) error {
		return pgx.BeginTxFunc(ctx, c, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
	})
}

// facts returns the attributes of every aggregate of the kinds that are set
// at k.
func facts(ctx context.Context, tx pgx.Tx, k known, kinds ...domain.AggregateKind) (map[domain.Ref]map[string]string, error) {
	ks := make([]string, len(kinds))
	for i, kd := range kinds {
		ks[i] = string(kd)
	}
	rows, err := tx.Query(ctx, `SELECT kind, id, attr, value FROM facts
		WHERE kind = ANY($1) AND value IS NOT NULL
		  AND tstzrange(valid_from, valid_to, '[)') @> $3::timestamptz
		  AND int8range(recorded_seq, superseded_seq, '[)') @> $2::int8`, ks, k.seq, k.asOf)
	if err != nil {
		return nil, fmt.Errorf("read facts: %w", err)
	}
	defer rows.Close()
	out := map[domain.Ref]map[string]string{}
	for rows.Next() {
		var kind, id, attr, value string
		if err := rows.Scan(&kind, &id, &attr, &value); err != nil {
			return nil, err
		}
		ref := domain.Ref{Kind: domain.AggregateKind(kind), ID: id}
		if out[ref] == nil {
			out[ref] = map[string]string{}
		}
		out[ref][attr] = value
	}
	return out, rows.Err()
}

// Organisation is one page of the organisation at one point in both
// times: value streams with their products, the teams serving each product
// with their members, the projects, and the people in no team that serves
// a product.
//
// A page holds at most its limit of entries, counted over the four lists
// in this order: ValueStreams, Teams, Projects, Unassigned, each by id; an
// entry comes whole, with its nested lists (a value stream's products, a
// team's members). Concatenating each list over the pages gives the whole
// organisation as of the first page.
type Organisation struct {
	AsOf, KnownAt time.Time
	// Sequence is the last decision's stream sequence known at KnownAt.
	Sequence     uint64
	ValueStreams []ValueStream
	// Teams lists every active team, whether it serves a product or not.
	Teams    []Team
	Projects []Project
	// Unassigned are the people in no team that serves an active product.
	Unassigned []Person
	// Totals counts the whole organisation, whatever the page holds.
	Totals OrgTotals
	// Next is the cursor of the next page ([Page].Cursor); empty on the
	// last page.
	Next string
}

// OrgTotals counts an organisation: its active value streams, products,
// teams, people in teams and projects, and the people in teams that serve
// no product.
type OrgTotals struct {
	ValueStreams, Products, Teams, PeopleInTeams, Projects, Unassigned int
}

// ValueStream is a value stream and its active products.
type ValueStream struct {
	ID, Name, Status string
	Products         []Product
}

// Product is a product with its accountable owner and the teams serving it.
type Product struct {
	ID, Name, ValueStream, Status string
	Owner                         string // a person id; empty when none
	Project                       string // the project it was converted from, if any
	Teams                         []Team
	KPIs                          []KPIDefinition
}

// Team is a team with its members.
type Team struct {
	ID, Name, Type, Status string
	Products               []string
	Members                []Person
}

// Person is a person and their team.
type Person struct {
	ID, Name, Team, Status string
}

// Project is a project; Product is set once it was converted.
type Project struct {
	ID, Name, ValueStream, Status, Product string
}

// KPIDefinition is a KPI of a product.
type KPIDefinition struct {
	KPI    string `json:"kpi"`
	Unit   string `json:"unit"`
	Target string `json:"target,omitempty"`
}

// Organisation returns one page of the active organisation at at; see
// [Organisation] for what a page holds. The page is cut from the
// organisation at that point (its current facts, found by the bitemporal
// index), never from its history.
func (db *DB) Organisation(ctx context.Context, at At, page Page) (Organisation, error) {
	pg, err := newPager("org", page, timeParam(at.AsOf), timeParam(at.KnownAt))
	if err != nil {
		return Organisation{}, fmt.Errorf("organisation: %w", err)
	}
	after, err := pg.key(2)
	if err != nil {
		return Organisation{}, fmt.Errorf("organisation: %w", err)
	}
	var org Organisation
	err = db.read(ctx, func(tx pgx.Tx) error {
		k, err := pg.known(ctx, tx, at)
		if err != nil {
			return err
		}
		org = Organisation{AsOf: k.asOf, KnownAt: at.KnownAt, Sequence: uint64(k.seq)}
		all, err := facts(ctx, tx, k, domain.KindValueStream, domain.KindProduct, domain.KindTeam, domain.KindPerson, domain.KindProject)
		if err != nil {
			return err
		}
		org.build(all)
		return org.cut(pg, k, after)
	})
	if err != nil {
		return Organisation{}, fmt.Errorf("organisation: %w", err)
	}
	return org, nil
}

// cut counts the whole organisation, then keeps the page's entries: those
// after the key (list index, id) of the previous page's last one, at most
// the limit.
func (org *Organisation) cut(pg *pager, k known, after []string) error {
	org.Totals = OrgTotals{ValueStreams: len(org.ValueStreams), Teams: len(org.Teams), Projects: len(org.Projects), Unassigned: len(org.Unassigned)}
	for _, vs := range org.ValueStreams {
		org.Totals.Products += len(vs.Products)
	}
	for _, t := range org.Teams {
		org.Totals.PeopleInTeams += len(t.Members)
	}
	ids := func(n int, id func(int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = id(i)
		}
		return out
	}
	lists := [4][]string{
		ids(len(org.ValueStreams), func(i int) string { return org.ValueStreams[i].ID }),
		ids(len(org.Teams), func(i int) string { return org.Teams[i].ID }),
		ids(len(org.Projects), func(i int) string { return org.Projects[i].ID }),
		ids(len(org.Unassigned), func(i int) string { return org.Unassigned[i].ID }),
	}
	afterList, afterID := -1, ""
	if after != nil {
		n, err := keyInt(after[0])
		if err != nil || n < 0 || n >= int64(len(lists)) {
			return &PageError{Param: "cursor", Problem: "not a cursor of this list"}
		}
		afterList, afterID = int(n), after[1]
	}
	var lo, hi [4]int
	taken, more := 0, false
	lastList, lastID := 0, ""
	for l, list := range lists {
		switch {
		case l < afterList:
			lo[l] = len(list)
		case l == afterList:
			// Every list is sorted by id (sortedRefs).
			lo[l] = sort.SearchStrings(list, afterID)
			if lo[l] < len(list) && list[lo[l]] == afterID {
				lo[l]++
			}
		}
		hi[l] = min(len(list), lo[l]+pg.limit-taken)
		taken += hi[l] - lo[l]
		if hi[l] > lo[l] {
			lastList, lastID = l, list[hi[l]-1]
		}
		if hi[l] < len(list) {
			more = true
		}
	}
	org.ValueStreams = org.ValueStreams[lo[0]:hi[0]]
	org.Teams = org.Teams[lo[1]:hi[1]]
	org.Projects = org.Projects[lo[2]:hi[2]]
	org.Unassigned = org.Unassigned[lo[3]:hi[3]]
	if more {
		org.Next = pg.next(k, strconv.Itoa(lastList), lastID)
	}
	return nil
}

func sortedRefs(all map[domain.Ref]map[string]string, kind domain.AggregateKind) []domain.Ref {
	var refs []domain.Ref
	for r, a := range all {
		if r.Kind == kind && a["status"] == statusActive {
			refs = append(refs, r)
		}
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].ID < refs[j].ID })
	return refs
}

func (org *Organisation) build(all map[domain.Ref]map[string]string) {
	members := map[string][]Person{}
	for _, r := range sortedRefs(all, domain.KindPerson) {
		a := all[r]
		members[a["team"]] = append(members[a["team"]], Person{ID: r.ID, Name: a["name"], Team: a["team"], Status: a["status"]})
	}
	products := map[string]bool{}
	for _, r := range sortedRefs(all, domain.KindProduct) {
		products[r.ID] = true
	}
	teams := map[string]Team{}
	servedBy := map[string][]Team{}
	staffed := map[string]bool{}
	for _, r := range sortedRefs(all, domain.KindTeam) {
		a := all[r]
		t := Team{ID: r.ID, Name: a["name"], Type: a["type"], Status: a["status"], Members: members[r.ID]}
		for attr := range a {
			if p, ok := strings.CutPrefix(attr, "serves:"); ok && products[p] {
				t.Products = append(t.Products, p)
			}
		}
		sort.Strings(t.Products)
		for _, p := range t.Products {
			servedBy[p] = append(servedBy[p], t)
		}
		if len(t.Products) > 0 {
			staffed[r.ID] = true
		}
		teams[r.ID] = t
		org.Teams = append(org.Teams, t)
	}
	byStream := map[string][]Product{}
	for _, r := range sortedRefs(all, domain.KindProduct) {
		a := all[r]
		p := Product{ID: r.ID, Name: a["name"], ValueStream: a["valuestream"], Status: a["status"], Owner: a["owner"],
			Project: a["project"], Teams: servedBy[r.ID]}
		for attr, v := range a {
			if _, ok := strings.CutPrefix(attr, "kpi:"); ok {
				var d KPIDefinition
				if json.Unmarshal([]byte(v), &d) == nil {
					p.KPIs = append(p.KPIs, d)
				}
			}
		}
		sort.Slice(p.KPIs, func(i, j int) bool { return p.KPIs[i].KPI < p.KPIs[j].KPI })
		byStream[p.ValueStream] = append(byStream[p.ValueStream], p)
	}
	for _, r := range sortedRefs(all, domain.KindValueStream) {
		a := all[r]
		org.ValueStreams = append(org.ValueStreams, ValueStream{ID: r.ID, Name: a["name"], Status: a["status"], Products: byStream[r.ID]})
	}
	for _, r := range sortedRefs(all, domain.KindProject) {
		a := all[r]
		org.Projects = append(org.Projects, Project{ID: r.ID, Name: a["name"], ValueStream: a["valuestream"], Status: a["status"], Product: a["product"]})
	}
	for _, r := range sortedRefs(all, domain.KindPerson) {
		a := all[r]
		if !staffed[a["team"]] {
			org.Unassigned = append(org.Unassigned, Person{ID: r.ID, Name: a["name"], Team: a["team"], Status: a["status"]})
		}
	}
}

// Fact is one belief about one attribute of an aggregate over a valid-time
// interval.
type Fact struct {
	Attribute string
	Value     string
	Unset     bool       // the attribute had no value over the interval
	ValidFrom time.Time  // inclusive
	ValidTo   *time.Time // exclusive; nil: open-ended
	// RecordedSeq and RecordedAt say when the belief was recorded;
	// SupersededSeq (0: still believed) when a later one replaced it.
	RecordedSeq   uint64
	RecordedAt    time.Time
	SupersededSeq uint64
	Decision      string // the decision the value came from
}

// HistoryOptions shape [DB.History].
type HistoryOptions struct {
	// KnownAt: the beliefs held then. Zero: now.
	KnownAt time.Time
	// All returns every belief ever recorded, superseded ones included,
	// ignoring KnownAt.
	All bool
}

// HistoryPage is one page of an aggregate's history.
type HistoryPage struct {
	Facts []Fact
	// Next is the cursor of the next page ([Page].Cursor); empty on the
	// last page.
	Next string
}

// History returns one page of the valid-time history of one aggregate's
// attributes, by attribute, valid time and recorded sequence. It returns
// an error wrapping domain.ErrNotFound when nothing is known about ref. Every page answers as known
// at the first page's time; with opts.All, every belief recorded up to the
// first page.
func (db *DB) History(ctx context.Context, ref domain.Ref, opts HistoryOptions, page Page) (HistoryPage, error) {
	pg, err := newPager("history", page, ref.String(), timeParam(opts.KnownAt), strconv.FormatBool(opts.All))
	if err != nil {
		return HistoryPage{}, fmt.Errorf("history of %s: %w", ref, err)
	}
	after, err := pg.key(4)
	if err != nil {
		return HistoryPage{}, fmt.Errorf("history of %s: %w", ref, err)
	}
	// The key: attribute, valid from, recorded sequence and valid to (""
	// for open-ended), unique per row.
	var (
		afterAttr *string
		afterFrom time.Time
		afterSeq  int64
		afterTo   *time.Time
	)
	if after != nil {
		afterAttr = &after[0]
		if afterFrom, err = keyTime(after[1]); err == nil {
			afterSeq, err = keyInt(after[2])
		}
		if err == nil && after[3] != "" {
			var to time.Time
			to, err = keyTime(after[3])
			afterTo = &to
		}
		if err != nil {
			return HistoryPage{}, fmt.Errorf("history of %s: %w", ref, err)
		}
	}
	var out HistoryPage
	err = db.read(ctx, func(tx pgx.Tx) error {
		k, err := pg.known(ctx, tx, At{KnownAt: opts.KnownAt})
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT attr, value, valid_from, valid_to, recorded_seq, recorded_at, superseded_seq, decision
			FROM facts WHERE kind = $1 AND id = $2
			  AND recorded_seq <= $3 AND ($4 OR superseded_seq IS NULL OR superseded_seq > $3)
			  AND ($5::text IS NULL OR (attr, valid_from, recorded_seq, coalesce(valid_to, 'infinity'))
			                           > ($5, $6, $7, coalesce($8::timestamptz, 'infinity')))
			ORDER BY attr, valid_from, recorded_seq, coalesce(valid_to, 'infinity')
			LIMIT $9`, string(ref.Kind), ref.ID, k.seq, opts.All, afterAttr, afterFrom, afterSeq, afterTo, pg.limit+1)
		if err != nil {
			return err
		}
		out.Facts, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Fact, error) {
			var f Fact
			var v *string
			var rseq int64
			var sseq *int64
			if err := row.Scan(&f.Attribute, &v, &f.ValidFrom, &f.ValidTo, &rseq, &f.RecordedAt, &sseq, &f.Decision); err != nil {
				return f, err
			}
			if v == nil {
				f.Unset = true
			} else {
				f.Value = *v
			}
			f.RecordedSeq = uint64(rseq)
			if sseq != nil {
				f.SupersededSeq = uint64(*sseq)
			}
			return f, nil
		})
		if err != nil {
			return err
		}
		// One more than the page tells whether there is a next one.
		if len(out.Facts) > pg.limit {
			out.Facts = out.Facts[:pg.limit]
			last := out.Facts[pg.limit-1]
			to := ""
			if last.ValidTo != nil {
				to = fmtTime(*last.ValidTo)
			}
			out.Next = pg.next(k, last.Attribute, fmtTime(last.ValidFrom), fmtInt(int64(last.RecordedSeq)), to)
		}
		return nil
	})
	if err != nil {
		return HistoryPage{}, fmt.Errorf("history of %s: %w", ref, err)
	}
	if len(out.Facts) == 0 && pg.after == nil {
		return HistoryPage{}, fmt.Errorf("history of %s: %w", ref, domain.ErrNotFound)
	}
	return out, nil
}

// Balance is an account's balance in a period.
type Balance struct {
	Account  string
	Currency domain.Currency
	Minor    domain.Amount // in minor units of Currency
}

// Amount is the balance as a decimal string ("125000.00").
func (b Balance) Amount() string { return b.Minor.Format(b.Currency) }

// BalancePage is one page of a period's balances.
type BalancePage struct {
	Balances []Balance
	// Next is the cursor of the next page ([Page].Cursor); empty on the
	// last page.
	Next string
}

// Balances returns one page of the balances of every account of a period
// that has had a movement, by account. The budget:<period> account is the
// negated total.
func (db *DB) Balances(ctx context.Context, period string, at At, page Page) (BalancePage, error) {
	pg, err := newPager("balances", page, period, timeParam(at.AsOf), timeParam(at.KnownAt))
	if err != nil {
		return BalancePage{}, fmt.Errorf("balances of %s: %w", period, err)
	}
	after, err := pg.key(1)
	if err != nil {
		return BalancePage{}, fmt.Errorf("balances of %s: %w", period, err)
	}
	afterAccount := "" // every account name sorts after ""
	if after != nil {
		afterAccount = after[0]
	}
	var out BalancePage
	err = db.read(ctx, func(tx pgx.Tx) error {
		k, err := pg.known(ctx, tx, at)
		if err != nil {
			return err
		}
		// A period has one currency: the account is the key.
		rows, err := tx.Query(ctx, `SELECT account, currency, sum(amount_minor) FROM journal
			WHERE period = $1 AND seq <= $2 AND effective <= $3 AND account > $4
			GROUP BY account, currency ORDER BY account LIMIT $5`, period, k.seq, k.asOf, afterAccount, pg.limit+1)
		if err != nil {
			return err
		}
		out.Balances, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Balance, error) {
			var b Balance
			var cur string
			var m int64
			err := row.Scan(&b.Account, &cur, &m)
			b.Currency, b.Minor = domain.Currency(cur), domain.Amount(m)
			return b, err
		})
		if err != nil {
			return err
		}
		if len(out.Balances) > pg.limit {
			out.Balances = out.Balances[:pg.limit]
			out.Next = pg.next(k, out.Balances[pg.limit-1].Account)
		}
		return nil
	})
	if err != nil {
		return BalancePage{}, fmt.Errorf("balances of %s: %w", period, err)
	}
	return out, nil
}

// JournalLine is one line of the funding journal. The lines of one
// movement (one Sequence) sum to zero.
type JournalLine struct {
	Sequence   uint64
	Line       int
	Decision   string
	EventType  string
	Period     string
	Account    string
	Currency   domain.Currency
	Minor      domain.Amount // + into the account, - out of it
	Effective  time.Time
	RecordedAt time.Time
	// Counter is the other side of the movement: the account(s) the
	// amount came from or went to, joined by ", " when several.
	Counter string
	// Balance is the account's balance after this line, over the lines
	// the same as of and known at select, whatever the page.
	Balance domain.Amount
}

// JournalPage is one page of an account's journal.
type JournalPage struct {
	Lines []JournalLine
	// Next is the cursor of the next page ([Page].Cursor); empty on the
	// last page.
	Next string
}

// Journal returns one page of the lines of one account in a period, oldest
// (by sequence and line) first.
func (db *DB) Journal(ctx context.Context, period, account string, at At, page Page) (JournalPage, error) {
	pg, err := newPager("journal", page, period, account, timeParam(at.AsOf), timeParam(at.KnownAt))
	if err != nil {
		return JournalPage{}, fmt.Errorf("journal of %s in %s: %w", account, period, err)
	}
	after, err := pg.key(2)
	if err != nil {
		return JournalPage{}, fmt.Errorf("journal of %s in %s: %w", account, period, err)
	}
	var afterSeq, afterLine int64 // sequences start at 1
	if after != nil {
		if afterSeq, err = keyInt(after[0]); err == nil {
			afterLine, err = keyInt(after[1])
		}
		if err != nil {
			return JournalPage{}, fmt.Errorf("journal of %s in %s: %w", account, period, err)
		}
	}
	var out JournalPage
	err = db.read(ctx, func(tx pgx.Tx) error {
		k, err := pg.known(ctx, tx, at)
		if err != nil {
			return err
		}
		// The running balance sums every selected line up to this one, the
		// earlier pages' too; the counter-accounts are the lines of the same
		// movement on the other side.
		rows, err := tx.Query(ctx, `SELECT seq, line, decision, event_type, period, account, currency, amount_minor, effective, recorded_at,
				coalesce((SELECT string_agg(c.account, ', ' ORDER BY c.line) FROM journal c
					WHERE c.seq = j.seq AND c.account <> j.account AND sign(c.amount_minor) <> sign(j.amount_minor)), ''),
				balance
			FROM (SELECT *, sum(amount_minor) OVER (ORDER BY seq, line) AS balance
				FROM journal WHERE period = $1 AND account = $2 AND seq <= $3 AND effective <= $4) j
			WHERE (seq, line) > ($5, $6)
			ORDER BY seq, line LIMIT $7`, period, account, k.seq, k.asOf, afterSeq, afterLine, pg.limit+1)
		if err != nil {
			return err
		}
		out.Lines, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (JournalLine, error) {
			var l JournalLine
			var seq, m, bal int64
			var cur string
			err := row.Scan(&seq, &l.Line, &l.Decision, &l.EventType, &l.Period, &l.Account, &cur, &m, &l.Effective, &l.RecordedAt,
				&l.Counter, &bal)
			l.Sequence, l.Currency, l.Minor, l.Balance = uint64(seq), domain.Currency(cur), domain.Amount(m), domain.Amount(bal)
			return l, err
		})
		if err != nil {
			return err
		}
		if len(out.Lines) > pg.limit {
			out.Lines = out.Lines[:pg.limit]
			last := out.Lines[pg.limit-1]
			out.Next = pg.next(k, fmtInt(int64(last.Sequence)), fmtInt(int64(last.Line)))
		}
		return nil
	})
	if err != nil {
		return JournalPage{}, fmt.Errorf("journal of %s in %s: %w", account, period, err)
	}
	return out, nil
}

// Measurement is one recorded value of a KPI.
type Measurement struct {
	KPI        string
	Value      string
	Effective  time.Time
	RecordedAt time.Time
	Sequence   uint64
	Decision   string
}

// MeasurementPage is one page of a product's KPI measurements.
type MeasurementPage struct {
	Measurements []Measurement
	// Next is the cursor of the next page ([Page].Cursor); empty on the
	// last page.
	Next string
}

// Measurements returns one page of the measurements of a product's KPIs at
// at, by KPI, oldest first; retracted ones are left out once the
// retraction is known.
func (db *DB) Measurements(ctx context.Context, product string, at At, page Page) (MeasurementPage, error) {
	pg, err := newPager("measurements", page, product, timeParam(at.AsOf), timeParam(at.KnownAt))
	if err != nil {
		return MeasurementPage{}, fmt.Errorf("measurements of %s: %w", product, err)
	}
	after, err := pg.key(3)
	if err != nil {
		return MeasurementPage{}, fmt.Errorf("measurements of %s: %w", product, err)
	}
	var (
		afterKPI       *string
		afterEffective time.Time
		afterSeq       int64
	)
	if after != nil {
		afterKPI = &after[0]
		if afterEffective, err = keyTime(after[1]); err == nil {
			afterSeq, err = keyInt(after[2])
		}
		if err != nil {
			return MeasurementPage{}, fmt.Errorf("measurements of %s: %w", product, err)
		}
	}
	var out MeasurementPage
	err = db.read(ctx, func(tx pgx.Tx) error {
		k, err := pg.known(ctx, tx, at)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT kpi, value, effective, recorded_at, seq, decision FROM kpi_measurements
			WHERE product = $1 AND seq <= $2 AND effective <= $3 AND (retracted_seq IS NULL OR retracted_seq > $2)
			  AND ($4::text IS NULL OR (kpi, effective, seq) > ($4, $5, $6))
			ORDER BY kpi, effective, seq LIMIT $7`, product, k.seq, k.asOf, afterKPI, afterEffective, afterSeq, pg.limit+1)
		if err != nil {
			return err
		}
		out.Measurements, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Measurement, error) {
			var m Measurement
			var seq int64
			err := row.Scan(&m.KPI, &m.Value, &m.Effective, &m.RecordedAt, &seq, &m.Decision)
			m.Sequence = uint64(seq)
			return m, err
		})
		if err != nil {
			return err
		}
		if len(out.Measurements) > pg.limit {
			out.Measurements = out.Measurements[:pg.limit]
			last := out.Measurements[pg.limit-1]
			out.Next = pg.next(k, last.KPI, fmtTime(last.Effective), fmtInt(int64(last.Sequence)))
		}
		return nil
	})
	if err != nil {
		return MeasurementPage{}, fmt.Errorf("measurements of %s: %w", product, err)
	}
	return out, nil
}
