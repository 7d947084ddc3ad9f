// Package projections builds Koers' read models in PostgreSQL from the
// event log and answers the queries of the CLI and the HTTP API.
//
// # Projector
//
// A [Projector] reads the stream in order from its checkpoint (the last
// applied stream sequence, plus one) through the shared consumer (package
// consumer), which groups the events of each decision (they are
// consecutive and end with decision.recorded) into one unit and gathers
// units into batches bounded in events, bytes and time; the projector applies
// a batch in one PostgreSQL transaction that also moves the checkpoint. A
// batch is only ever applied whole, and the transaction first locks the
// checkpoint and skips every unit at or below it, so replaying a batch
// changes nothing and a projector killed at any moment resumes without
// losing or repeating an event. Messages the log rejects (forgeries) advance
// the checkpoint and land in rejected_messages, nothing else.
//
// [Projector.Lag] is the stream's last sequence minus the checkpoint.
//
// Nothing is skipped silently. Events of an older schema version are
// upcast to the current one (domain.Upcast, through
// domain.DecodeEventData) and projected as such. A genuine event (hashed
// and sealed with the ledger's key) of a type this build does not know, or
// of a schema version no upcaster brings to the current one, stops the
// projector with an [*UnreadableEventError] naming its sequence (wrapping
// domain.ErrSchemaVersion for a version); the batch holding it is not
// applied. A message the log cannot vouch for,
// an envelope version this build does not know included (its hash and seal
// cannot be checked, so it may be anyone's), is recorded in
// rejected_messages with the log's reason and the projector goes on: a
// forger could otherwise stop the read models by publishing one message.
//
// A batch is written in a few round trips whatever its size: the
// append-only rows (decisions, journal, KPI measurements, rejected
// messages) by COPY, the bitemporal facts resolved in memory against the
// current rows of the attributes the batch touches (loaded in one query),
// then one UPDATE closes the replaced rows and one COPY adds the new ones.
// The few statements that read what the batch wrote before them (a
// retraction, closing a budget period) first flush what is held. A test
// projects histories both so and with one statement per fact and compares
// every row. BenchmarkRebuild measures a rebuild of 100,000 events against
// the raw rate of the same machine (ordered read + COPY of one row per
// event).
//
// # Lease
//
// Several processes may serve one set of read models; one projector at a
// time writes them: the holder of the lease ([DB.TakeLease]), a session
// advisory lock keyed by the schema ([LeaseKey]) on a connection of its
// own, freed by PostgreSQL as soon as its process dies.
// [Lease.Watch] tells the holder when its session, and so the lock, is
// gone; [DB.LeaseHolder] names the holding process. The lease is an
// economy, not the guard of correctness: batches are checked against the
// checkpoint under its lock whoever writes them. A rebuild needs no lease;
// two rebuilds of one schema exclude each other ([ErrRebuildRunning]).
//
// # Ledger identity
//
// The read models remember which ledger they hold, with the checkpoint: a
// [LedgerIdentity] (the stream's name and a fingerprint of its sequence 1,
// the genesis). A projector whose source is another ledger stops with a
// [*LedgerMismatchError] before it reads, and every batch checks again
// under the checkpoint's lock, so the events of one ledger are never mixed
// into the read models of another. Before projecting, a CLI asks
// [DB.CheckLedger] (or compares [DB.LedgerIdentity] with [IdentityOf]) and
// either says "this database holds the read models of ledger X; rebuild or
// use another database" or calls [DB.Rebuild], which replaces read models
// of another ledger whatever their checkpoint.
//
// # Rebuild
//
// [DB.Rebuild] projects the whole log afresh into a second schema while the
// current one keeps answering, then renames the schemas in one transaction
// that holds the current checkpoint, so that a projector running meanwhile
// neither loses nor repeats an event: it continues in the new schema from
// its checkpoint (a batch that was waiting for the old checkpoint starts
// again in the new schema). The same transaction points the reporting
// views at the new tables, and the pool's connections are then replaced.
// A rebuild works in batches of [RebuildBatchEvents] unless told
// otherwise, and replaces read models of another ledger.
//
// A rebuild is set-based where it can be (stage.go): its batches go
// through the live projector's decoding and applier, with the same place
// and replay rule (rejected messages are recorded, never applied), but
// each fact set is COPYed as an assertion into an unlogged staging table
// instead of being resolved against the rows it replaces. Once caught up,
// one INSERT … SELECT derives the facts' valid and recorded ranges with
// window functions (lead() over each attribute's assertions by sequence),
// for every attribute whose assertions are in valid-time order; an
// attribute with a backdated assertion (a retraction, a restatement) is
// resolved one attribute at a time by the live writer's own resolveSet.
// The secondary indexes of facts and decisions are built once, after. The
// anchor of the log it read is computed beside the load, not between
// batches. Parity tests compare a rebuild with the live projector row for
// row.
//
// # Reporting views
//
// BI tools read a schema of SQL views (default "reporting", see
// [Options].ReportingSchema) through a role that may read them and nothing
// else (default koers_reporting, created NOLOGIN if missing; grant it to the
// login roles of the tools). The views are stable: columns are only ever
// added at the end. [Open] creates them, or replaces them when their
// definition changed (a hash of it is in the schema's comment; views that
// are current are left alone, so opening never waits for a long report),
// and a rebuild points them at the new tables in its switch transaction,
// so they keep their identity and grants and answer the same before and
// after. Each view and
// column is also documented in the database (COMMENT ON). "Today" is
// now(); every view shows what the ledger knows now. Amounts are exact
// minor units (cents) with their currency.
//
//	decisions            the decision log, one row per decision:
//	                     id, sequence (of its decision.recorded), first_sequence,
//	                     actor, mandate, reason, refs, effective (valid time),
//	                     recorded_at, change_kinds, aggregates (kind:id touched),
//	                     retracts, retracted_by, retracted, changes (JSON),
//	                     authority_chain (JSON [{mandate, holder}], the
//	                     mandate first, the root last, as recorded), approvers
//	current_attributes   every attribute of every aggregate today:
//	                     kind, id, attribute, value, valid_from, decision
//	value_streams        id, name, status (active, retired)
//	products             id, name, value_stream, status (active, retired),
//	                     owner (accountable person; NULL: none), project
//	                     (converted from; NULL: none)
//	teams                id, name, type (Team Topologies), status (active, disbanded)
//	team_products        team, product, since: who serves what today
//	people               id, name, team (NULL: none), status (active, left),
//	                     in_team_since
//	projects             id, name, value_stream, status (active, closed,
//	                     converted), product (converted into)
//	funding_balances     period, currency, account, account_kind (pool,
//	                     valuestream, product, project, budget), balance_minor;
//	                     per period the balances sum to zero
//	transition_metrics   per quarter (UTC) from the first fact's to today's:
//	                     quarter (2026-Q2), quarter_from, quarter_to,
//	                     active_products, owned_products, ownership_coverage,
//	                     owner_changes, ownership_churn, people_at_start,
//	                     stayed_in_team, team_stability, projects_converted,
//	                     people_in_teams, median_tenure_days (unbroken stint
//	                     in the current team at the quarter's end, in days),
//	                     and the relapse signals teams_disbanded_after_close,
//	                     decisions_root, decisions_delegated, decisions_board,
//	                     kpi_subjects, kpi_subjects_covered, kpi_coverage;
//	                     the figures of [DB.Transition] known now
//	transition_funding   per quarter and currency: products_minor,
//	                     value_streams_minor, projects_minor, product_share,
//	                     closed_projects_minor
//	kpi_values           every KPI measurement known now: kind, id, kpi,
//	                     category, unit, direction, effective, quarter, value,
//	                     target (the quarter's, else the default), on_target,
//	                     note, decision, sequence, recorded_at ([DB.KPIValues])
//	review               per quarter and product or value stream active in it:
//	                     name, valuestream, status and owner at the start and
//	                     end, owner_changes, teams, people_at_start,
//	                     stayed_in_team, decisions ([DB.Review])
//	review_funding       per quarter, account and currency: allocated_minor,
//	                     shifted_in_minor, shifted_out_minor, released_minor,
//	                     balance_minor
//	review_kpis          per quarter, subject and KPI: measurements,
//	                     last_value, last_effective, previous_value, target,
//	                     on_target, trend
//	mandates             id, holder (a person or board:<id>), kinds, scope,
//	                     limit, period_limit, valid_until, grantor, chain
//	                     (grantor … root), state (in force, suspended,
//	                     expired, revoked)
//
// The transition figures are computed in one place, the SQL functions
// transition_metrics and transition_funding of the read models' schema
// (migration 00004, the relapse signals added by 00008; SQL-standard
// bodies bound like views): the two views call them for every quarter up
// to today, [DB.Transition] for one quarter as known at any time. So are
// the KPI values (kpi_values) and the review (review_subjects,
// review_funding, review_kpis, subject_decisions) of migration 00007, which
// [DB.KPIValues], [DB.Review] and [DB.Restatement] ask.
//
// # Time
//
// Every fact carries its valid time (the decision's effective time) and
// the stream sequence and time it was recorded at. Queries take an [At]:
// AsOf is the valid time, KnownAt the recorded time; both default to now.
// A later belief about the same attribute closes the rows it replaces from
// its effective time on rather than changing them, so asking with an
// earlier KnownAt shows what was believed then. The effects of a
// retraction take effect at the retracted decision's effective time: asked
// known at a time after the retraction, the retracted decision never
// happened; asked before, it did.
//
// # Errors
//
// PostgreSQL errors leave the package as a [*DatabaseError] wrapping
// [ErrDatabase], and domain.ErrUnavailable too when the server cannot be
// reached or is going away; queries for one thing that is not known return
// an error wrapping domain.ErrNotFound.
//
// # Schema
//
// The read models live in one PostgreSQL schema (default "koers"),
// created and migrated on [Open] by goose (a goose.Provider over
// database/sql on the package's pgxpool) with the embedded SQL migrations
// in migrations/; the applied versions are in <schema>.goose_db_version, so
// the goose CLI can read and continue them. Connections come from a
// pgxpool whose connections resolve names in the schema (search_path).
//
// A migration marks an index that a rebuild builds once at the end rather
// than row by row with a line "-- +koers deferred-by-rebuild" before its
// CREATE INDEX; [DB.Rebuild] drops such indexes in its staging schema and
// runs the migration's own statement after catching up.
package projections
