package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
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

// Organisation is the organisation at one point in both times: value
// streams with their products, the teams serving each product with their
// members, the projects, and the people in no team that serves a product.
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

// Organisation returns the active organisation at at.
func (db *DB) Organisation(ctx context.Context, at At) (Organisation, error) {
	var org Organisation
	err := db.read(ctx, func(tx pgx.Tx) error {
		k, err := resolve(ctx, tx, at)
		if err != nil {
			return err
		}
		org = Organisation{AsOf: k.asOf, KnownAt: at.KnownAt, Sequence: uint64(k.seq)}
		all, err := facts(ctx, tx, k, domain.KindValueStream, domain.KindProduct, domain.KindTeam, domain.KindPerson, domain.KindProject)
		if err != nil {
			return err
		}
		org.build(all)
		return nil
	})
	if err != nil {
		return Organisation{}, fmt.Errorf("organisation: %w", err)
	}
	return org, nil
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

// History returns the valid-time history of one aggregate's attributes,
// by attribute and valid time. It returns an error wrapping
// domain.ErrNotFound when nothing is known about ref.
func (db *DB) History(ctx context.Context, ref domain.Ref, opts HistoryOptions) ([]Fact, error) {
	var out []Fact
	err := db.read(ctx, func(tx pgx.Tx) error {
		k, err := resolve(ctx, tx, At{KnownAt: opts.KnownAt})
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT attr, value, valid_from, valid_to, recorded_seq, recorded_at, superseded_seq, decision
			FROM facts WHERE kind = $1 AND id = $2
			  AND ($4 OR (recorded_seq <= $3 AND (superseded_seq IS NULL OR superseded_seq > $3)))
			ORDER BY attr, valid_from, recorded_seq`, string(ref.Kind), ref.ID, k.seq, opts.All)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Fact, error) {
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
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", ref, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("history of %s: %w", ref, domain.ErrNotFound)
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

// Balances returns the balance of every account of a period that has had a
// movement, by account. The budget:<period> account is the negated total.
func (db *DB) Balances(ctx context.Context, period string, at At) ([]Balance, error) {
	var out []Balance
	err := db.read(ctx, func(tx pgx.Tx) error {
		k, err := resolve(ctx, tx, at)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT account, currency, sum(amount_minor) FROM journal
			WHERE period = $1 AND seq <= $2 AND effective <= $3
			GROUP BY account, currency ORDER BY account`, period, k.seq, k.asOf)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Balance, error) {
			var b Balance
			var cur string
			var m int64
			err := row.Scan(&b.Account, &cur, &m)
			b.Currency, b.Minor = domain.Currency(cur), domain.Amount(m)
			return b, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("balances of %s: %w", period, err)
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
}

// Journal returns the lines of one account in a period, oldest first.
func (db *DB) Journal(ctx context.Context, period, account string, at At) ([]JournalLine, error) {
	var out []JournalLine
	err := db.read(ctx, func(tx pgx.Tx) error {
		k, err := resolve(ctx, tx, at)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT seq, line, decision, event_type, period, account, currency, amount_minor, effective, recorded_at
			FROM journal WHERE period = $1 AND account = $2 AND seq <= $3 AND effective <= $4
			ORDER BY seq, line`, period, account, k.seq, k.asOf)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (JournalLine, error) {
			var l JournalLine
			var seq, m int64
			var cur string
			err := row.Scan(&seq, &l.Line, &l.Decision, &l.EventType, &l.Period, &l.Account, &cur, &m, &l.Effective, &l.RecordedAt)
			l.Sequence, l.Currency, l.Minor = uint64(seq), domain.Currency(cur), domain.Amount(m)
			return l, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("journal of %s in %s: %w", account, period, err)
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

// Measurements returns the measurements of a product's KPIs at at, oldest
// first; retracted ones are left out once the retraction is known.
func (db *DB) Measurements(ctx context.Context, product string, at At) ([]Measurement, error) {
	var out []Measurement
	err := db.read(ctx, func(tx pgx.Tx) error {
		k, err := resolve(ctx, tx, at)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT kpi, value, effective, recorded_at, seq, decision FROM kpi_measurements
			WHERE product = $1 AND seq <= $2 AND effective <= $3 AND (retracted_seq IS NULL OR retracted_seq > $2)
			ORDER BY kpi, effective, seq`, product, k.seq, k.asOf)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Measurement, error) {
			var m Measurement
			var seq int64
			err := row.Scan(&m.KPI, &m.Value, &m.Effective, &m.RecordedAt, &seq, &m.Decision)
			m.Sequence = uint64(seq)
			return m, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("measurements of %s: %w", product, err)
	}
	return out, nil
}
