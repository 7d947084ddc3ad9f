// Package domain is the pure core of Koers, the event-sourced portfolio
// ledger: the decision vocabulary, the events, the state of every aggregate
// and the invariants. It does no I/O, never reads the clock (callers pass
// Now and NewID through DecodeOptions) and imports only the standard library.
//
// # Flow
//
// The command handler decodes a decision (DecodeDecision), loads the
// aggregates Plan names into a World (each folded with Fold; a Ref with
// Version 0 does not exist yet), and calls Decide. Decide either returns
// the events to append atomically — one decision.recorded on
// decision:<id> last — or an error: a *NeedError asks for more aggregates
// (load them, call again, a bounded number of times), a
// *DuplicateDecisionError says the decision id is recorded already (answer
// with the first result), anything else is a refusal that wraps ErrInvalid,
// ErrRefused or ErrUnauthorized and names the offending values.
// A new ledger starts with Genesis, which grants the root mandate. Decide
// also takes now, the moment the decision is recorded (the command
// handler's clock): authority is judged then (see Authority below).
//
// # Decisions
//
// A decision is JSON (the public contract of the CLI, the HTTP API and bulk
// import):
//
//	{"id": "2026-07-reorg-payments", "by": "p-0001", "authority": "m-portfolio-board",
//	 "reason": "stabilise the payments team", "refs": ["https://wiki.example.org/minutes/2026-06-28"],
//	 "effective": "2026-07-01",
//	 "changes": [{"kind": "person.move", "person": "p-0042", "to": "t-payments-core"}]}
//
// id is optional (generated) and is the idempotency key; effective is a
// date (start of day in the ledger's zone) or an RFC 3339 time, default
// now. All ids match ^[a-z0-9_-]{1,64}$ (see ValidID). Amounts are decimal
// strings, held exactly in the minor units of the period's currency. Bounds:
// MaxChanges changes, MaxRefs refs, MaxReasonLen, MaxNameLen; Decide refuses
// a decision that would produce more than MaxEvents events.
//
// Change kinds and their fields (optional ones in brackets):
//
//	valuestream.define    id, name
//	valuestream.retire    valuestream
//	product.launch        id, name, valuestream, [owner]
//	product.move          product, valuestream
//	product.assign-owner  product, owner
//	product.retire        product
//	team.form             id, name, type (stream-aligned, platform, enabling, complicated-subsystem)
//	team.assign           team, product
//	team.unassign         team, product
//	team.disband          team
//	person.join           id, name (personal: sealed by the ledger, see personal.go), team, [role], [name_salt]
//	person.move           person, to (a team)
//	person.leave          person
//	person.erase          person (the name is gone for good; cannot be retracted)
//	project.start         id, name, [valuestream]
//	project.close         project
//	project.convert       project, product, name, valuestream, [owner]
//	budget.open           period, amount, currency
//	budget.adjust         period, amount (signed)
//	funding.allocate      period, to, amount            (from the pool)
//	funding.shift         period, from, to, amount
//	funding.release       period, from, amount          (back to the pool)
//	mandate.grant         id, holder, kinds, scope, [limit], [period_limit], [valid_until]
//	mandate.revoke        mandate
//	kpi.define            product | valuestream, kpi, unit, [target], [direction], [category]
//	kpi.record            product | valuestream, kpi, value, [unit], [note]   (the date: effective)
//	kpi.target            product | valuestream, kpi, [quarter], [target]     (no target: unset)
//	decision.retract      decision
//	board.form            id, name, members (person ids), quorum (1 … members)
//	board.add-member      board, person, [quorum]
//	board.remove-member   board, person, [quorum]
//	board.disband         board
//	actor.register-key    actor, public_key (Ed25519, 64 hex digits)
//	actor.revoke-key      actor, public_key
//	ledger.rotate-key     public_key                    (root mandate only)
//	ledger.require-signatures                           (root mandate only; no fields)
//
// Funding accounts are pool, valuestream:<id>, product:<id> and
// project:<id>; one budget aggregate per period holds them all.
//
// # Signatures and idempotency
//
// A decision may carry "signature": its actor's Ed25519 signature (128 hex
// digits) over CanonicalDecision, the ASCII tag "koers-decision-v1" followed
// by these fields, each as its length in bytes (unsigned 64-bit big-endian)
// and then its bytes:
//
//	id, by, authority, reason, number of refs (decimal), each ref,
//	effective time (RFC 3339 with nanoseconds, UTC; empty when the decision
//	names none and takes its recording time), number of changes (decimal),
//	each change in its public JSON form (compact, "kind" first, then its
//	fields in the order of the table above, optional ones only when set,
//	amounts as written, valid_until in RFC 3339 UTC)
//
// Decide checks it against the keys registered for the actor (on actor:<id>,
// by actor.register-key under a mandate that covers it, revoked by
// actor.revoke-key) and refuses a signature that verifies under none of them
// (*SignatureError). Once the ledger's policy requires signatures
// (ledger.require-signatures under the root mandate, or the genesis with
// GenesisOptions.RequireSignatures, which also registers the root's key), an
// unsigned decision is refused (*SignatureRequiredError); both wrap
// ErrUnauthorized. The record keeps the signature and the key that verified
// it (decision.recorded: signature, signed_with), so that a verifier
// (SignatureAudit) checks it later against the key registered then. Actions
// on proposals are signed the same way over CanonicalAction (tag
// "koers-action-v1", then proposal id, action, member, reason).
//
// The id is the idempotency key of the decision's content: by, authority,
// reason, refs, effective time and changes, compared in their canonical
// encoding (SameContent). The signature and approvers are not content, and a
// decision submitted without an effective time matches whatever effective time
// its first recording took. The same id with the same content again is a
// *DuplicateDecisionError (the command handler answers with the first result);
// with other content it is a *DecisionReusedError (wraps ErrConflict) naming
// the first recording's sequence and recorded time, and nothing is written.
// The same holds for an id recorded as a proposal.
//
// # Invariants
//
//   - Ids are valid and unique per kind (an aggregate with Version 0 is
//     free; ids of ended aggregates are never reused). References point to
//     aggregates that exist since no later than the decision's effective
//     time and are active; nothing changes on a retired product or value
//     stream, a disbanded team, a closed or converted project, a person who
//     left or a revoked mandate. Funds may still be moved out of the account
//     of an ended aggregate, never into it.
//   - An active product has exactly one accountable owner, a person in the
//     organisation, checked at the end of the decision: a launch needs an
//     owner (its owner field or a product.assign-owner in the same
//     decision); a person who owns an active product cannot leave.
//   - A person is in exactly one team; person.join/move/leave emit events on
//     the person and on the team(s), a move names the team left; a team
//     with members cannot be disbanded.
//   - Funding is double-entry: every movement takes a positive amount from
//     one account and gives it to another in the same period, no account
//     goes below zero, the accounts sum to the period total, which only
//     budget.open and budget.adjust change.
//   - A project converts at most once; its funds in every period move to the
//     new product. project.close releases whatever the project still
//     holds in every period to the pool (funding.released in the same
//     decision): money never stays behind on a closed project.
//   - A value stream knows its active products (valuestream.product-added/
//     removed, written by launch, move, retire and their retractions) and
//     cannot retire while it has any (*ValueStreamHasProductsError names
//     them: move or retire them first). A product knows the teams serving
//     it (product.team-added/removed, written by team.assign/unassign);
//     retiring it takes it off their lists first. Ledgers written before
//     these events keep what they had: their products and assignments are
//     not on those lists.
//   - KPIs belong to one product or value stream: unit, direction (higher
//     or lower is better; default higher), category (value, customer, flow,
//     sustainability, team; default value), a default target and targets
//     per quarter (kpi.target). A measurement names a defined KPI
//     (*UnknownKPIError), in its unit when it gives one (*KPIUnitError);
//     its date is the decision's effective time.
//   - Authority: see below.
//   - decision.retract compensates every event of the retracted decision,
//     last first, checking each against the ledger as it is now; it is
//     refused (a *RetractError saying which effect and why) when the state
//     moved on (the person was moved again, the funds were shifted onward),
//     when the decision was retracted already, is itself a retraction, or
//     is the genesis, or when the retraction is effective before the
//     decision.
//
// # Authority
//
// Every decision names the mandate it is taken under. The root mandate
// comes with the ledger (Genesis); every other mandate is granted by a
// mandate.grant decided under one covering it, which records the grantor
// and the whole chain up to the root (MandateGranted.Chain).
//
//   - Authority is judged when the decision is recorded (Decide's now),
//     against the mandates in force at that moment. The effective time
//     says when the change takes effect in the organisation, not when
//     authority was needed: a holder may record a backdated correction
//     today, and a mandate revoked yesterday cannot be used today for a
//     change effective last month. The root mandate is in force from the
//     ledger's creation on, whatever effective time the genesis was given,
//     and its holder need not be a person in the ledger.
//   - The actor must hold the mandate, and the mandate must be in force:
//     its grant's effective time has come, it is not revoked (a revocation
//     applies from its effective time, or at once when that is past), it
//     has not reached valid_until, its holder is a person who has not left
//     (likewise from the departure's effective time), and every mandate in
//     its grant chain is in force by the same rules. So revoking or
//     expiring a mandate, or its holder leaving, suspends everything
//     granted under it, transitively, without touching those grants; a
//     retraction of the revocation or departure puts them back in force.
//     The root mandate cannot be revoked. A refusal (*NotInForceError)
//     names the highest mandate of the chain that is not in force, why and
//     since when, and the holder of the mandate above it, who could decide.
//   - The mandate covers every change's kind (*, family.*, or the kind) and
//     scope (* covers everything; valuestream:<id> the value stream, its
//     products and projects and their accounts; product:<id> that
//     product; the pool, teams, people, budgets and projects without a
//     value stream need *). A retraction needs authority over every change
//     it undoes.
//   - limit caps the whole decision: the sum of the amounts of all its
//     funding.* and budget.* changes (those a retraction undoes included),
//     per currency (*LimitError). period_limit caps the amount moved within
//     one budget period under the mandate and every mandate granted
//     beneath it, across decisions: each budget event records the
//     period-limited mandates of its decision's chain (Charged), the
//     budget folds them (BudgetState.Used), and a decision that would go
//     above is refused with the headroom left (*PeriodLimitError). Movements
//     count whichever way they go; a retraction neither gives headroom back
//     nor uses more.
//   - A mandate is granted only to a person in the organisation who has
//     not left (*HolderError), never wider than the granting mandate: its
//     kinds, scope, limit, period limit and validity (valid_until no later
//     than the grantor's), and at most MaxGrantDepth mandates deep
//     (*EscalationError), or to an active board ("board:<id>").
//
// # Boards and proposals
//
// A board is people who decide together: board.form names its members
// (active people, at most MaxMembers) and its quorum (1 to the member
// count); board.add-member and board.remove-member keep the quorum within
// the member count (they may set a new one), the last member cannot be
// removed, and nothing changes after board.disband. A mandate held by
// "board:<id>" is in force while the board is not disbanded (from the
// disbanding's effective time), by the same chain rules as a person's.
//
//   - A decision under a board's mandate is taken by one of its members
//     (a non-member is refused with the members who could propose it). It
//     is decided only with the approvals of the board's quorum: Decide
//     refuses it with *ApprovalsNeededError and the command handler calls
//     Propose, which checks it as Decide would now (so what cannot be
//     decided is refused at once, nothing written) and records
//     proposal.opened on proposal:<id> (the decision's id), expiring after
//     DefaultProposalTTL unless told otherwise (MinProposalTTL to
//     MaxProposalTTL). The proposer's approval is the first.
//   - Act applies an action: approve (a member who has not approved
//     yet), reject (a member, with a reason) or withdraw (the proposer).
//     An approval that completes the quorum decides the decision against
//     the ledger as it is at that moment — invariants, versions, the
//     board's authority and limits then — and the outcome holds
//     proposal.decided (with the completing approval) followed by the
//     decision's events, appended atomically under the decision's own
//     meta; the decision records its approvers (DecisionRecorded.Approvers).
//     A decision that no longer fits (the money moved meanwhile, the
//     mandate was revoked) makes the proposal refused, with the reason
//     (proposal.refused, which also records the approval).
//   - Only the approvals of current members count toward the quorum, and
//     the quorum is the board's at the time of the approval.
//   - Expiry needs no timer: a pending proposal past its expiry is expired
//     from then on, judged at the time of the next action on it (refused
//     with *ProposalClosedError, nothing written) and by the read models'
//     queries, which show it expired once past. Nothing more happens to a
//     proposal that is decided, refused, rejected, withdrawn or expired.
//   - Every action on a proposal is one event on proposal:<id>, except a
//     decision, whose batch ends with its decision.recorded.
//
// Every decision.recorded carries its authority chain as it was when
// recorded (AuthorityChain: the mandate and its holder first, the root
// last).
//
// Mandates granted before valid_until, period_limit and chains existed
// decode as before (SchemaVersion 1, no expiry, no period limit); their
// chain is walked through Grantor.
//
// # Events
//
// Every event has a JSON payload at a schema version; events are written at
// their type's CurrentVersion (1, unless the table says otherwise), and
// older versions are brought to it by registered upcasters (Upcast, which
// every reader of the log calls; see upcast.go). DecodeEventData upcasts
// and returns a pointer to the payload struct. An event of a version no
// upcaster reaches is a *SchemaVersionError (ErrSchemaVersion). Field
// names are the JSON names.
//
//	valuestream:<id>
//	  valuestream.defined          ValueStreamDefined{id, name}
//	  valuestream.retired          Lifecycle{id}
//	  valuestream.reactivated      Lifecycle{id}                       (retraction of a retire)
//	  valuestream.product-added    ValueStreamProduct{valuestream, product}
//	  valuestream.product-removed  ValueStreamProduct{valuestream, product}
//	  valuestream.kpi-*            as product.kpi-*, with valuestream instead of product
//	product:<id>
//	  product.launched             ProductLaunched{id, name, valuestream, project?}
//	  product.moved                ProductMoved{id, from, to}          (value streams)
//	  product.owner-assigned       ProductOwner{id, owner, previous?}
//	  product.owner-unassigned     ProductOwner{id, owner}             (retraction of a first assignment)
//	  product.retired              ProductLifecycle{id, owner?}        (owner released)
//	  product.reactivated          ProductLifecycle{id, owner?}        (retraction of a retire)
//	  product.kpi-defined          KPIDefinition{product, kpi, unit, target?, direction?, category?}
//	  product.kpi-removed          KPIDefinition{…}                    (retraction)
//	  product.kpi-recorded         KPIMeasurement{product, kpi, value, previous?, note?}
//	  product.kpi-record-retracted KPIMeasurement{product, kpi, value, previous?} (previous: the value shown again)
//	  product.kpi-target-set       KPITarget{product, kpi, quarter?, target?, previous?}
//	  product.team-added           TeamProduct{team, product}
//	  product.team-removed         TeamProduct{team, product}
//	team:<id>
//	  team.formed                  TeamFormed{id, name, type}
//	  team.product-assigned        TeamProduct{team, product}
//	  team.product-unassigned      TeamProduct{team, product}
//	  team.member-added            TeamMember{team, person}
//	  team.member-removed          TeamMember{team, person}
//	  team.disbanded               Lifecycle{id}
//	  team.reformed                Lifecycle{id}                       (retraction of a disband)
//	person:<id>
//	  person.joined                PersonJoined{id, name, team, role?}  (version 2: role added)
//	  person.moved                 PersonMoved{id, from, to}           (teams)
//	  person.left                  PersonTeam{id, team}
//	  person.erased                PersonErased{id}                    (the person's data key is destroyed)
//	  person.rejoined              PersonTeam{id, team}                (retraction of a leave)
//	  person.ownership-taken       PersonOwnership{person, product}
//	  person.ownership-released    PersonOwnership{person, product}
//	project:<id>
//	  project.started              ProjectStarted{id, name, valuestream?}
//	  project.closed               Lifecycle{id}
//	  project.reopened             Lifecycle{id}                       (retraction of a close or conversion)
//	  project.converted            ProjectConverted{id, product}
//	  project.budget-linked        ProjectBudgetLinked{id, period}     (first funds in a period)
//	budget:<period>
//	  budget.opened                BudgetAmount{period, currency, amount, charged?}   (all in the pool)
//	  budget.adjusted              BudgetAmount{period, currency, amount, charged?}   (signed; total and pool)
//	  budget.closed                BudgetLifecycle{period}             (retraction of an open)
//	  budget.reopened              BudgetLifecycle{period}
//	  funding.allocated            FundingMoved{period, currency, from: "pool", to, amount, charged?}
//	  funding.shifted              FundingMoved{period, currency, from, to, amount, charged?}
//	  funding.released             FundingMoved{period, currency, from, to: "pool", amount, charged?}
//	mandate:<id>
//	  mandate.granted              MandateGranted{id, holder, kinds, scope, limit?, period_limit?,
//	                                 valid_until?, grantor?, chain?}
//	  mandate.revoked              Lifecycle{id}
//	  mandate.reinstated           Lifecycle{id}                       (retraction of a revoke)
//	board:<id>
//	  board.formed                 BoardFormed{id, name, members, quorum}
//	  board.member-added           BoardMember{board, person, quorum, previous_quorum}
//	  board.member-removed         BoardMember{board, person, quorum, previous_quorum}
//	  board.disbanded              Lifecycle{id}
//	  board.reformed               Lifecycle{id}                       (retraction of a disband)
//	proposal:<id>
//	  proposal.opened              ProposalOpened{id, board, mandate, quorum, proposed_by, expires,
//	                                 decision (public format)}
//	  proposal.approved            ProposalVote{id, by, reason?}
//	  proposal.rejected            ProposalVote{id, by, reason}
//	  proposal.withdrawn           ProposalVote{id, by, reason?}
//	  proposal.decided             ProposalOutcome{id, by, approval_reason?, approvers}  (the decision follows)
//	  proposal.refused             ProposalOutcome{id, by, approval_reason?, approvers, reason}
//	decision:<id>
//	  decision.recorded            DecisionRecorded{id, by, authority, reason, refs?, effective,
//	                                 changes (public format), effects [{aggregate, type, data}], retracts?,
//	                                 authority_chain? [{mandate, holder}], approvers?}
//	  decision.retracted           DecisionRetracted{id, by}           (by: the retracting decision)
//	actor:<id>
//	  actor.key-registered         ActorKey{actor, key}
//	  actor.key-revoked            ActorKey{actor, key}
//	ledger:keys
//	  ledger.key-recorded          LedgerKey{key, previous?}           (the writer's seal key: genesis, rotations)
//	ledger:policy
//	  ledger.signatures-required   LedgerPolicySet{require_signatures}
//
// decision.recorded also carries signature?, signed_with? and
// effective_omitted? (signed decisions); proposal.opened effective_omitted?;
// proposal votes signature?, signed_with?, and proposal.decided/refused
// approval_signature?, approval_signed_with?.
//
// Amounts in payloads are decimal strings in the period's currency
// ("125000.00"); Decimal.Minor converts them to an Amount.
package domain
