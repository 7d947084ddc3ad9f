// Package projections builds Koers' read models in PostgreSQL from the
// event log and answers the queries of the CLI and the HTTP API.
//
// # Projector
//
// A [Projector] reads the stream in order from its checkpoint (the last
// applied stream sequence, plus one), groups the events of each decision
// (they are consecutive and end with decision.recorded) into one unit,
// gathers units into batches bounded in events, bytes and time, and applies
// a batch in one PostgreSQL transaction that also moves the checkpoint. A
// batch is only ever applied whole, and the transaction first locks the
// checkpoint and skips every unit at or below it, so replaying a batch
// changes nothing and a projector killed at any moment resumes without
// losing or repeating an event. Messages the log rejects (forgeries) advance
// the checkpoint and land in rejected_messages, nothing else.
//
// [Projector.Lag] is the stream's last sequence minus the checkpoint.
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
// its checkpoint.
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
// PostgreSQL errors leave the package as a [*DatabaseError]; queries for
// one thing that is not known return an error wrapping [ErrNotFound].
//
// # Schema
//
// The read models live in one PostgreSQL schema (default "koers"),
// created and migrated on [Open] by goose (a goose.Provider over
// database/sql on the package's pgxpool) with the embedded SQL migrations
// in migrations/; the applied versions are in <schema>.goose_db_version, so
// the goose CLI can read and continue them. Connections come from a
// pgxpool whose connections resolve names in the schema (search_path).
package projections
