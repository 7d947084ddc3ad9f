package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"koers/consumer"
	"koers/domain"
)

// apply applies the units of a batch that lie beyond the checkpoint and
// moves the checkpoint to the last of them, in one transaction. It returns
// the checkpoint after the batch.
//
// want is the source's ledger identity (zero: not known yet); a batch of
// another ledger than the read models' is refused with a
// [*LedgerMismatchError].
func (db *DB) apply(ctx context.Context, batch []consumer.Unit, want LedgerIdentity, names Names) (uint64, error) {
	var last uint64
	factRows := 0
	var err error
	// Decoded before the transaction: it holds no connection meanwhile.
	payloads := decodeBatch(batch)
	for attempt := 0; attempt < maxSwitchedAttempts; attempt++ {
		last, factRows, err = db.applyOnce(ctx, batch, payloads, want, names)
		if !errors.Is(err, errSwitched) {
			break
		}
	}
	if err != nil {
		return 0, fmt.Errorf("apply batch: %w", err)
	}
	if db.noteFacts(factRows) {
		if err := db.withConn(ctx, func(c *pgx.Conn) error {
			_, err := c.Exec(ctx, `ANALYZE facts`)
			return err
		}); err != nil {
			return 0, fmt.Errorf("analyze facts: %w", err)
		}
	}
	return last, nil
}

// errSwitched is returned by applyOnce when a rebuild switched schemas
// while the batch waited for the checkpoint: the row it locked is the
// retired schema's, while every later statement would resolve to the new
// one. The batch is applied again from the start.
var errSwitched = errors.New("read models switched by a rebuild while the batch waited")

// maxSwitchedAttempts bounds how often a batch starts again because a
// rebuild switched schemas under it; one switch is a rebuild's end.
const maxSwitchedAttempts = 3

func (db *DB) applyOnce(ctx context.Context, batch []consumer.Unit, payloads [][]decoded, want LedgerIdentity, names Names) (uint64, int, error) {
	var last uint64
	factRows := 0
	err := db.withTx(ctx, func(tx pgx.Tx) error {
		var cp int64
		var locked, current uint32
		// The row lock serialises projectors on one schema: the second
		// waits, then sees the first one's checkpoint and skips its units.
		if err := tx.QueryRow(ctx, `SELECT tableoid, seq FROM checkpoint FOR UPDATE`).Scan(&locked, &cp); err != nil {
			return fmt.Errorf("lock checkpoint: %w", err)
		}
		// Resolved again by a statement that locks the table: taking the
		// lock makes PostgreSQL read the catalog changes that arrived while
		// the row lock waited (a ::regclass cast takes no lock and may still
		// see the old name, and the writes after it would not).
		if err := tx.QueryRow(ctx, `SELECT tableoid FROM checkpoint`).Scan(&current); err != nil {
			return fmt.Errorf("lock checkpoint: %w", err)
		}
		if locked != current {
			return errSwitched
		}
		last = uint64(cp)
		if err := checkIdentity(ctx, tx, batch, want); err != nil {
			return err
		}
		w := newWriter(ctx, tx, db.referenceWrites, db.stageFacts.Load())
		for i, u := range batch {
			if u.Last() <= last {
				continue // applied already
			}
			// The stream has no holes (DenyDelete, DenyPurge): the next
			// unit must start right after the checkpoint.
			if first := u.First(); first != last+1 {
				return &GapError{Checkpoint: last, First: first}
			}
			if err := applyUnit(w, u, payloads[i], names); err != nil {
				return err
			}
			last = u.Last()
		}
		if err := w.flush(); err != nil {
			return err
		}
		factRows = w.factRows
		if _, err := tx.Exec(ctx, `UPDATE checkpoint SET seq = $1, updated_at = now()`, int64(last)); err != nil {
			return fmt.Errorf("move checkpoint to %d: %w", last, err)
		}
		return nil
	})
	return last, factRows, err
}

// minAnalyzeRows is how many fact rows a DB writes before it first
// refreshes the planner's statistics of facts.
const minAnalyzeRows = 5000

// noteFacts counts n fact rows written and reports whether to ANALYZE facts
// now: each time the rows written since the last time reach as many as
// there were then (at least minAnalyzeRows). Autovacuum is too slow for a
// rebuild: without fresh statistics the planner scans the whole table to
// look up a batch's current facts, and a rebuild slows down as it goes.
func (db *DB) noteFacts(n int) bool {
	db.analyzed.Lock()
	defer db.analyzed.Unlock()
	db.analyzed.since += n
	if db.analyzed.since < max(minAnalyzeRows, db.analyzed.at) {
		return false
	}
	db.analyzed.at += db.analyzed.since
	db.analyzed.since = 0
	return true
}

// applyUnit applies one decision's events, or one rejected message.
// payloads are its messages' payloads decoded (decodeBatch); nil: decode
// them here.
func applyUnit(w *writer, u consumer.Unit, payloads []decoded, names Names) error {
	if payloads == nil {
		payloads = decodeBatch([]consumer.Unit{u})[0]
	}
	var rec *recordedDecision
	if last := len(u.Messages) - 1; u.Messages[last].Rejected == nil && u.Messages[last].Event.Type == domain.EventDecisionRecorded {
		if err := payloads[last].err; err != nil {
			return unreadable(u.Messages[last].Event, err)
		}
		rec = payloads[last].v.(*recordedDecision)
	}
	a := applier{w: w, names: names}
	for i, it := range u.Messages {
		if it.Rejected != nil {
			if err := w.row("rejected_messages", int64(it.Rejected.Sequence), it.Rejected.Subject, it.Rejected.Reason); err != nil {
				return fmt.Errorf("record rejected message %d: %w", it.Rejected.Sequence, err)
			}
			continue
		}
		if a.valid.IsZero() {
			// The valid time of a decision's effects is its effective time;
			// a retraction's compensations take effect when the decision
			// they undo did, so that, known after the retraction, that
			// decision never happened.
			a.valid = it.Event.Meta.Effective
			if rec != nil && rec.Retracts != "" {
				var eff time.Time
				row, err := w.queryRow(`SELECT effective FROM decisions WHERE id = $1`, rec.Retracts)
				if err == nil {
					err = row.Scan(&eff)
				}
				if err != nil && !errors.Is(err, pgx.ErrNoRows) {
					return fmt.Errorf("effective time of retracted decision %s: %w", rec.Retracts, err)
				}
				if err == nil {
					a.valid = eff
				}
			}
		}
		if err := payloads[i].err; err != nil {
			return fmt.Errorf("apply %s %d on %s: %w", it.Event.Type, it.Event.Sequence, it.Event.Aggregate, unreadable(it.Event, err))
		}
		if err := a.event(it.Event, u.First(), payloads[i].v); err != nil {
			return fmt.Errorf("apply %s %d on %s: %w", it.Event.Type, it.Event.Sequence, it.Event.Aggregate, err)
		}
	}
	return nil
}

// UnreadableEventError is returned when a genuine event (hashed and sealed
// with the ledger's key) cannot be projected: its type or schema version is
// one this build does not know (a newer build wrote it) or its payload does
// not decode. The projector stops there rather than skip it: the batch
// holding it is not applied, the checkpoint stays before it, and a run of
// a build that knows the event goes on from there.
type UnreadableEventError struct {
	Sequence      uint64
	Type          string
	SchemaVersion int
	Aggregate     domain.Ref
	Err           error
}

func (e *UnreadableEventError) Error() string {
	return fmt.Sprintf("event %d (%s v%d on %s) cannot be projected: %v", e.Sequence, e.Type, e.SchemaVersion, e.Aggregate, e.Err)
}

func (e *UnreadableEventError) Unwrap() error { return e.Err }

func unreadable(r domain.Recorded, err error) error {
	return &UnreadableEventError{Sequence: r.Sequence, Type: r.Type, SchemaVersion: r.SchemaVersion, Aggregate: r.Aggregate, Err: err}
}

type applier struct {
	w     *writer
	names Names // nil: names as the log holds them
	valid time.Time
	rec   domain.Recorded
}

func str(s string) *string { return &s }

// set records the belief that attribute attr of kind:id is value (nil:
// unset) from the applier's valid time on. The rows it replaces are closed
// (superseded) and the part of them before the valid time is kept as a new
// row of the same belief.
func (a *applier) set(kind domain.AggregateKind, id, attr string, value *string) error {
	err := a.w.set(factSet{key: factKey{string(kind), id, attr}, value: value, valid: a.valid, seq: int64(a.rec.Sequence),
		recordedAt: a.rec.RecordedAt, decision: a.rec.Meta.DecisionID})
	if err != nil {
		return fmt.Errorf("set %s:%s %s: %w", kind, id, attr, err)
	}
	return nil
}

// sets applies several attributes of one aggregate, in order.
func (a *applier) sets(kind domain.AggregateKind, id string, kv ...any) error {
	for i := 0; i+1 < len(kv); i += 2 {
		var v *string
		switch x := kv[i+1].(type) {
		case string:
			v = &x
		case *string:
			v = x
		}
		if err := a.set(kind, id, kv[i].(string), v); err != nil {
			return err
		}
	}
	return nil
}

const (
	statusActive = "active"
)

// event applies one event; v is its decoded payload (decodePayload).
func (a *applier) event(r domain.Recorded, unitFirst uint64, v any) error {
	a.rec = r
	var none *string
	switch p := v.(type) {
	case *domain.ValueStreamDefined:
		return a.sets(domain.KindValueStream, p.ID, "name", p.Name, "status", statusActive)
	case *domain.Lifecycle:
		return a.lifecycle(r)
	case *domain.ProductLaunched:
		kv := []any{"name", p.Name, "valuestream", p.ValueStream, "status", statusActive}
		if p.Project != "" {
			kv = append(kv, "project", p.Project)
		}
		return a.sets(domain.KindProduct, p.ID, kv...)
	case *domain.ProductMoved:
		return a.set(domain.KindProduct, p.ID, "valuestream", str(p.To))
	case *domain.ProductOwner:
		if r.Type == domain.EventProductOwnerUnassigned {
			return a.set(domain.KindProduct, p.ID, "owner", nil)
		}
		return a.set(domain.KindProduct, p.ID, "owner", str(p.Owner))
	case *domain.ProductLifecycle:
		if r.Type == domain.EventProductRetired {
			return a.sets(domain.KindProduct, p.ID, "status", "retired", "owner", none)
		}
		kv := []any{"status", statusActive}
		if p.Owner != "" {
			kv = append(kv, "owner", p.Owner)
		}
		return a.sets(domain.KindProduct, p.ID, kv...)
	case *domain.KPIDefinition:
		subj := p.Subject()
		if r.Type == domain.EventKPIRemoved || r.Type == domain.EventValueStreamKPIRemoved {
			return a.sets(subj.Kind, subj.ID, "kpi:"+p.KPI, none, kpiTargetAttr(p.KPI, ""), none)
		}
		def, err := json.Marshal(KPIDefinition{KPI: p.KPI, Unit: p.Unit, Target: decimalString(p.Target),
			Direction: p.Direction, Category: p.Category})
		if err != nil {
			return err
		}
		var target *string
		if p.Target != nil {
			target = str(p.Target.String())
		}
		return a.sets(subj.Kind, subj.ID, "kpi:"+p.KPI, str(string(def)), kpiTargetAttr(p.KPI, ""), target)
	case *domain.KPIMeasurement:
		return a.kpiMeasurement(r, p)
	case *domain.KPITarget:
		var target *string
		if p.Target != nil {
			target = str(p.Target.String())
		}
		subj := p.Subject()
		return a.set(subj.Kind, subj.ID, kpiTargetAttr(p.KPI, p.Quarter), target)
	case *domain.ValueStreamProduct:
		return nil // a product's value stream is the product's fact
	case *domain.TeamFormed:
		return a.sets(domain.KindTeam, p.ID, "name", p.Name, "type", p.Type, "status", statusActive)
	case *domain.TeamProduct:
		if r.Aggregate.Kind == domain.KindProduct {
			return nil // the team's fact says whom it serves
		}
		var v *string
		if r.Type == domain.EventTeamProductAssigned {
			v = str("true")
		}
		return a.set(domain.KindTeam, p.Team, "serves:"+p.Product, v)
	case *domain.TeamMember:
		return nil // membership is the person's team
	case *domain.PersonJoined:
		name, err := a.openName(p.ID, p.Name)
		if err != nil {
			return err
		}
		kv := []any{"name", name, "team", p.Team, "status", statusActive}
		if p.Role != "" { // schema version 2; a v1 event, upcast, has none
			kv = append(kv, "role", p.Role)
		}
		return a.sets(domain.KindPerson, p.ID, kv...)
	case *domain.PersonMoved:
		return a.set(domain.KindPerson, p.ID, "team", str(p.To))
	case *domain.PersonErased:
		return a.erase(p.ID)
	case *domain.PersonTeam:
		if r.Type == domain.EventPersonLeft {
			return a.sets(domain.KindPerson, p.ID, "team", none, "status", "left")
		}
		return a.sets(domain.KindPerson, p.ID, "team", p.Team, "status", statusActive)
	case *domain.PersonOwnership:
		return nil // ownership is the product's owner
	case *domain.ProjectStarted:
		kv := []any{"name", p.Name, "status", statusActive}
		if p.ValueStream != "" {
			kv = append(kv, "valuestream", p.ValueStream)
		}
		return a.sets(domain.KindProject, p.ID, kv...)
	case *domain.ProjectConverted:
		return a.sets(domain.KindProject, p.ID, "status", "converted", "product", p.Product)
	case *domain.ProjectBudgetLinked:
		return nil // the journal shows the project's funds
	case *domain.BudgetAmount:
		amt, err := p.Amount.Minor(p.Currency)
		if err != nil {
			return err
		}
		if err := a.charge(p.Period, p.Currency, amt, p.Charged); err != nil {
			return err
		}
		return a.budgetAmount(r, p)
	case *domain.BudgetLifecycle:
		return a.budgetLifecycle(r, p)
	case *domain.FundingMoved:
		amt, err := p.Amount.Minor(p.Currency)
		if err != nil {
			return err
		}
		if err := a.charge(p.Period, p.Currency, amt, p.Charged); err != nil {
			return err
		}
		return a.journal(p.Period, p.Currency, string(p.From), -amt, string(p.To), amt)
	case *domain.MandateGranted:
		kv := []any{"holder", p.Holder, "kinds", strings.Join(p.Kinds, ","), "scope", p.Scope, "status", statusActive}
		if p.Limit != nil {
			kv = append(kv, "limit", p.Limit.String())
		}
		if p.Grantor != "" {
			kv = append(kv, "grantor", p.Grantor)
		}
		if p.PeriodLimit != nil {
			kv = append(kv, "period_limit", p.PeriodLimit.String())
		}
		if p.ValidUntil != nil {
			kv = append(kv, "valid_until", p.ValidUntil.UTC().Format(time.RFC3339Nano))
		}
		return a.sets(domain.KindMandate, p.ID, kv...)
	case *domain.BoardFormed:
		kv := []any{"name", p.Name, "quorum", strconv.Itoa(p.Quorum), "status", statusActive}
		for _, m := range p.Members {
			kv = append(kv, "member:"+m, "true")
		}
		return a.sets(domain.KindBoard, p.ID, kv...)
	case *domain.BoardMember:
		var v *string
		if r.Type == domain.EventBoardMemberAdded {
			v = str("true")
		}
		return a.sets(domain.KindBoard, p.Board, "member:"+p.Person, v, "quorum", strconv.Itoa(p.Quorum))
	case *domain.ProposalOpened:
		return a.proposalOpened(r, p)
	case *domain.ProposalVote:
		return a.proposalVote(r, p)
	case *domain.ProposalOutcome:
		return a.proposalOutcome(r, p)
	case *recordedDecision:
		return a.decision(r, p, unitFirst)
	case *domain.DecisionRetracted:
		return a.w.exec(`UPDATE decisions SET retracted_by = $2, retracted_seq = $3 WHERE id = $1`, p.ID, p.By, int64(r.Sequence))
	case *domain.LedgerKey, *domain.LedgerPolicySet, *domain.ActorKey:
		// Keys and the signature policy matter to verifiers, which read
		// them from the log; no read model shows them yet.
		return nil
	}
	return fmt.Errorf("no projection for payload %T", v)
}

func (a *applier) lifecycle(r domain.Recorded) error {
	status := map[string]string{
		domain.EventValueStreamRetired:     "retired",
		domain.EventValueStreamReactivated: statusActive,
		domain.EventTeamDisbanded:          "disbanded",
		domain.EventTeamReformed:           statusActive,
		domain.EventProjectClosed:          "closed",
		domain.EventProjectReopened:        statusActive,
		domain.EventMandateRevoked:         "revoked",
		domain.EventMandateReinstated:      statusActive,
		domain.EventBoardDisbanded:         "disbanded",
		domain.EventBoardReformed:          statusActive,
	}[r.Type]
	if status == "" {
		return fmt.Errorf("no lifecycle status for %s", r.Type)
	}
	if r.Type == domain.EventProjectReopened {
		return a.sets(r.Aggregate.Kind, r.Aggregate.ID, "status", status, "product", (*string)(nil))
	}
	return a.set(r.Aggregate.Kind, r.Aggregate.ID, "status", str(status))
}

func decimalString(d *domain.Decimal) string {
	if d == nil {
		return ""
	}
	return d.String()
}

// kpiTargetAttr is the fact holding a KPI's default target (quarter
// empty) or a quarter's; kpi_values (migration 00007) reads them.
func kpiTargetAttr(kpi, quarter string) string {
	if quarter == "" {
		return "kpi-target:" + kpi
	}
	return "kpi-target:" + kpi + "@" + quarter
}

func (a *applier) kpiMeasurement(r domain.Recorded, p *domain.KPIMeasurement) error {
	subj := p.Subject()
	if r.Type == domain.EventKPIRecorded || r.Type == domain.EventValueStreamKPIRecorded {
		var note *string
		if p.Note != "" {
			note = &p.Note
		}
		return a.w.row("kpi_measurements", int64(r.Sequence), subj.ID, p.KPI, p.Value.String(), a.valid, r.RecordedAt, r.Meta.DecisionID,
			string(subj.Kind), note)
	}
	// A retraction names the value; it undoes the latest such measurement.
	return a.w.exec(`UPDATE kpi_measurements SET retracted_seq = $5 WHERE seq = (
		SELECT max(seq) FROM kpi_measurements WHERE kind = $1 AND subject = $2 AND kpi = $3 AND value = $4 AND retracted_seq IS NULL)`,
		string(subj.Kind), subj.ID, p.KPI, p.Value.String(), int64(r.Sequence))
}

// budgetAccount is the account every period's total comes from, so that
// each movement's lines sum to zero.
func budgetAccount(period string) string { return "budget:" + period }

func (a *applier) budgetAmount(r domain.Recorded, p *domain.BudgetAmount) error {
	amt, err := p.Amount.Minor(p.Currency)
	if err != nil {
		return err
	}
	if r.Type == domain.EventBudgetOpened {
		if err := a.sets(domain.KindBudget, p.Period, "currency", string(p.Currency), "status", "open"); err != nil {
			return err
		}
	}
	return a.journal(p.Period, p.Currency, budgetAccount(p.Period), -amt, string(domain.Pool), amt)
}

// budgetLifecycle closes a period (the retraction of its opening) by
// bringing every account back to zero, and reopens it by undoing that.
func (a *applier) budgetLifecycle(r domain.Recorded, p *domain.BudgetLifecycle) error {
	var q string
	status := "closed"
	if r.Type == domain.EventBudgetClosed {
		q = `SELECT account, currency, -sum(amount_minor) FROM journal WHERE period = $1
			GROUP BY account, currency HAVING sum(amount_minor) <> 0 ORDER BY account`
	} else {
		status = "open"
		q = `SELECT account, currency, -amount_minor FROM journal WHERE period = $1 AND seq = (
			SELECT max(seq) FROM journal WHERE period = $1 AND event_type = 'budget.closed') ORDER BY line`
	}
	rows, err := a.w.query(q, p.Period)
	if err != nil {
		return err
	}
	type line struct {
		account, currency string
		amount            int64
	}
	lines, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (line, error) {
		var l line
		return l, row.Scan(&l.account, &l.currency, &l.amount)
	})
	if err != nil {
		return err
	}
	for i, l := range lines {
		if err := a.line(i, p.Period, domain.Currency(l.currency), l.account, l.amount); err != nil {
			return err
		}
	}
	return a.set(domain.KindBudget, p.Period, "status", str(status))
}

// journal writes one movement: amount out of one account into another.
func (a *applier) journal(period string, cur domain.Currency, from string, fromAmt domain.Amount, to string, toAmt domain.Amount) error {
	if fromAmt+toAmt != 0 {
		return fmt.Errorf("unbalanced movement %d + %d", fromAmt, toAmt)
	}
	if err := a.line(0, period, cur, from, int64(fromAmt)); err != nil {
		return err
	}
	return a.line(1, period, cur, to, int64(toAmt))
}

func (a *applier) line(n int, period string, cur domain.Currency, account string, amount int64) error {
	err := a.w.row("journal", int64(a.rec.Sequence), int16(n), a.rec.Meta.DecisionID, a.rec.Type, period, string(cur), account, amount, a.valid, a.rec.RecordedAt)
	if err != nil {
		return fmt.Errorf("journal line %d of %d: %w", n, a.rec.Sequence, err)
	}
	return nil
}

func (a *applier) decision(r domain.Recorded, p *recordedDecision, unitFirst uint64) error {
	changes, effects := jsonOrNull(p.Changes), jsonOrNull(p.Effects)
	if a.names != nil {
		// Sealed names are opened for the decision log, which needs the
		// changes and effects decoded; a ledger without them (names nil)
		// keeps them as recorded.
		var err error
		if changes, effects, err = a.openDecision(p); err != nil {
			return err
		}
	}
	refs := p.Refs
	if refs == nil {
		refs = []string{}
	}
	var retracts *string
	if p.Retracts != "" {
		retracts = &p.Retracts
	}
	chain := p.AuthorityChain
	if chain == nil {
		chain = []domain.ChainLink{}
	}
	chainJSON, err := json.Marshal(chain)
	if err != nil {
		return err
	}
	approvers := p.Approvers
	if approvers == nil {
		approvers = []string{}
	}
	err = a.w.row("decisions", p.ID, int64(r.Sequence), int64(unitFirst), p.By, p.Authority, p.Reason, refs, p.Effective, r.RecordedAt,
		changes, effects, p.kinds, p.aggregates, retracts, string(chainJSON), approvers)
	if err != nil {
		return fmt.Errorf("decision %s: %w", p.ID, err)
	}
	return nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// charge records what a budget movement of amt counts against the period
// limits of the mandates in charged.
func (a *applier) charge(period string, cur domain.Currency, amt domain.Amount, charged []string) error {
	if amt < 0 {
		amt = -amt
	}
	for _, m := range charged {
		if err := a.w.row("mandate_use", int64(a.rec.Sequence), m, period, string(cur), int64(amt), a.valid, a.rec.RecordedAt, a.rec.Meta.DecisionID); err != nil {
			return fmt.Errorf("mandate use of %s: %w", m, err)
		}
	}
	return nil
}

type approvalJSON struct {
	By     string    `json:"by"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

func (a *applier) proposalOpened(r domain.Recorded, p *domain.ProposalOpened) error {
	dec := p.Decision
	var err error
	if dec.Changes, err = a.openChanges(dec.Changes); err != nil {
		return err
	}
	d, err := json.Marshal(dec)
	if err != nil {
		return err
	}
	approvals, err := json.Marshal([]approvalJSON{{By: p.ProposedBy, At: r.RecordedAt}})
	if err != nil {
		return err
	}
	return a.w.exec(`INSERT INTO proposals (id, board, mandate, proposed_by, quorum, decision, expires_at, proposed_seq, proposed_at,
			approvals, state, last_seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $8)`,
		p.ID, p.Board, p.Mandate, p.ProposedBy, p.Quorum, string(d), p.Expires, int64(r.Sequence), r.RecordedAt, string(approvals), domain.ProposalPending)
}

func (a *applier) proposalVote(r domain.Recorded, p *domain.ProposalVote) error {
	if r.Type == domain.EventProposalApproved {
		approval, err := json.Marshal([]approvalJSON{{By: p.By, Reason: p.Reason, At: r.RecordedAt}})
		if err != nil {
			return err
		}
		return a.w.exec(`UPDATE proposals SET approvals = approvals || $2::jsonb, last_seq = $3 WHERE id = $1`, p.ID, string(approval), int64(r.Sequence))
	}
	state := domain.ProposalRejected
	if r.Type == domain.EventProposalWithdrawn {
		state = domain.ProposalWithdrawn
	}
	var reason *string
	if p.Reason != "" {
		reason = &p.Reason
	}
	return a.w.exec(`UPDATE proposals SET state = $2, reason = $3, closed_by = $4, closed_at = $5, last_seq = $6 WHERE id = $1`,
		p.ID, state, reason, p.By, r.RecordedAt, int64(r.Sequence))
}

func (a *applier) proposalOutcome(r domain.Recorded, p *domain.ProposalOutcome) error {
	approval, err := json.Marshal([]approvalJSON{{By: p.By, Reason: p.ApprovalReason, At: r.RecordedAt}})
	if err != nil {
		return err
	}
	state := domain.ProposalDecided
	var reason *string
	if r.Type == domain.EventProposalRefused {
		state, reason = domain.ProposalRefused, &p.Reason
	}
	return a.w.exec(`UPDATE proposals SET approvals = approvals || $2::jsonb, state = $3, reason = $4, closed_by = $5, closed_at = $6,
			last_seq = $7 WHERE id = $1`, p.ID, string(approval), state, reason, p.By, r.RecordedAt, int64(r.Sequence))
}
