// Package api is the HTTP JSON API of Koers (`koers serve`): decisions in,
// read models out, metrics and health for operators. [New] returns an
// http.Handler built from narrow interfaces ([Ledger], [Log], [ReadModels],
// [Projector]) that cmd/koers fills with the command handler, the event
// store, the read models and the projector.
//
// # Routes
//
//	POST /v1/decisions                  record a decision (public JSON format, see package domain)
//	GET  /v1/decisions/{id}             one decision of the log (once projected)
//	GET  /v1/aggregates/{kind}/{id}     an aggregate's version, with ETag "kind:id@version"
//	GET  /v1/org                        as_of, known_at, limit, cursor
//	GET  /v1/history/{kind}/{id}        known_at, all, limit, cursor (kinds with attributes: not decision or proposal)
//	GET  /v1/audit                      by, authority, kind, subject, from, to, axis, before, limit
//	GET  /v1/funding/{period}           as_of, known_at, account (the account's journal instead of balances), limit, cursor
//	GET  /v1/reports/transition         from, to (quarters, 2026-Q1), known_at
//	GET  /v1/reports/review             quarter (2026-Q2), known_at: the quarterly portfolio review
//	GET  /v1/kpis                       product | valuestream, kpi, from, to, as_of, known_at, limit, cursor
//	GET  /v1/proposals                  state (pending, decided, refused, rejected, expired, withdrawn), before, limit
//	GET  /v1/proposals/{id}             one proposal (once projected)
//	POST /v1/proposals/{id}/approve     {"by", "reason"?}: a board member's approval
//	POST /v1/proposals/{id}/reject      {"by", "reason"}: a board member's rejection
//	POST /v1/proposals/{id}/withdraw    {"by", "reason"?}: the proposer withdraws it
//	GET  /v1/mandates                   holder, as_of, known_at: who may decide what
//	GET  /v1/openapi.json               the OpenAPI 3.1 document of all of this
//	GET  /metrics                       Prometheus
//	GET  /healthz                       200 when NATS and PostgreSQL answer, 503 naming which does not;
//	                                    check projector: active or standby (see [Config].ProjectorActive)
//
// HEAD is answered like GET without a body (RFC 9110); any other method a
// path does not serve is answered 405 with Allow.
//
// # The contract
//
// api/openapi.json, written by hand, is the one source of truth of the
// contract: clients are generated from it, and the code is held to it by
// tests rather than the document generated from the code, so that a route
// added anywhere fails `go test ./api` until the document says it all.
// Every answer the package's tests receive (TestContractWalk drives every
// operation to its answers, errors included) must be declared for its
// operation and status and validate against the schema declared for it
// (JSON Schema 2020-12, required enforced; contract_test.go says what to
// add where when it does not); TestSchemasMatchTheGoTypes keeps each answer
// schema's properties and required lists to the Go type's JSON members (a
// member without omitempty is required); TestProblemTypesAreDeclared keeps
// every problem type in the document's enum; TestContractExamples validates
// the examples. .ci/run lints the document with Redocly's recommended rules
// (api/lint).
//
// Times in parameters are a date (2026-07-01, the start of that day in
// [Config].Location) or an RFC 3339 time, in the years 1900-9999 in UTC
// (domain.MinTime to MaxTime, after any offset); quarters run from 1900-Q1
// to 9999-Q3. An unknown or malformed parameter is answered 400 with the
// parameter named in the problem's "parameter" member; a time or quarter
// outside the years is answered 422, type out-of-range, naming it too.
//
// # Paging
//
// Every list answers one page. The audit pages newest first with limit
// (default 50, at most 1000) and before, the sequence its answer's "next"
// gives (0 on the last page). The organisation, histories, balances and
// journals page with limit (default 100, at most 1000;
// projections.DefaultPageLimit and MaxPageLimit) and cursor, the opaque
// string their answer's "next" gives ("" on the last page), asked again
// with the same other parameters. Those pages answer for the point in both
// times of the first page, so they concatenate to the whole list without
// duplicates or gaps however the ledger moves meanwhile. A bad limit or
// cursor (malformed, from another list or other parameters) is a 400
// naming it.
//
// # Recording a decision
//
//	201 Created    {"id", "sequences"}; Location: /v1/decisions/{id}
//	200 OK         the decision id was recorded before: the first result, with "duplicate": true.
//	               Nothing new is written, so a client may retry a POST whose answer it lost.
//	400            the body is not JSON, or a malformed If-Match or Idempotency-Key
//	403            the decision's mandate does not cover it (domain.ErrUnauthorized)
//	409            refused by the ledger's state (domain.ErrRefused: an invariant would break), or
//	               the aggregates kept changing while it was decided (domain.ErrConflict: submit again)
//	412            an If-Match version is stale: "aggregate", "expected" and "current" say which
//	413            the body is larger than [Config].MaxBodyBytes
//	415            no Content-Type, or one other than application/json (every request body)
//	422            invalid decision (domain.ErrInvalid): also null or any other body that is not a JSON
//	               object, invalid UTF-8, a time outside 1900-9999, an amount not in its canonical form
//	               (the detail gives it); "field" names the offending field when known;
//	               or more events than one atomic append holds (domain.ErrTooLarge, type too-many-events: split it);
//	               or an Idempotency-Key that differs from the body's id (field "id", parameter "Idempotency-Key")
//	503            nothing was recorded: the log or the read models did not answer (domain.ErrUnavailable, or a
//	               timeout), or the decision's aggregates stayed busy (ledger.BusyError): try again after
//	               Retry-After; or, rarely, the ledger could not learn in time whether it was recorded
//	               (domain.ErrOutcomeUnknown, type outcome-unknown): send it again with the same id
//	202 Accepted   the decision is under a board's mandate: recorded as a proposal, "state": "pending",
//	               "proposal" says how many approvals it waits for and until when (?expires=72h,
//	               default 14 days); Location: /v1/proposals/{id}. If-Match holds for the proposal.
//
// # Idempotency
//
// A decision's id is its idempotency key; the Idempotency-Key header
// (draft-ietf-httpapi-idempotency-key-header; bare or a quoted string) means
// the same and fills in the id of a body that has none. Clients should send
// one of them: a POST whose answer was lost (a timeout, a dropped
// connection, a restarted server) can then be sent again and is answered
// with where the decision landed, recorded once. Without one, the ledger
// makes up an id, and sending the decision again records it twice.
//
// The answer is never an error for a decision that was recorded. When the
// log does not answer an append (a timeout, a lost connection), the ledger
// looks the decision up by id and, if it is not there, appends the same
// events again under the same id and versions, which either records it or
// proves it can no longer land (ledger.Options.ResolveFor bounds this,
// default 20 s): 201 if it landed, a 503 "try again" only if it certainly
// did not. Every 503 carries Retry-After.
//
// # Proposals
//
// Board members approve a proposal with POST /v1/proposals/{id}/approve
// (200: state pending, decided or refused). The approval that completes the
// quorum decides the decision against the ledger as it is then and records
// it with the approval, atomically (state decided, the decision's
// sequences); a decision that no longer fits leaves the proposal refused
// with the reason. A non-member, a second approval by the same member or a
// withdrawal by anyone but the proposer is 403; an action on a proposal no
// longer pending (expired included: expiry is judged at the action's time,
// and by the queries, with no timer) is 409; an unknown proposal 404.
//
// # Optimistic concurrency
//
// GET /v1/aggregates/{kind}/{id} answers with ETag: "kind:id@version". A
// decision taken on what the client saw carries it back:
//
//	If-Match: "product:pay-app@42", "team:t-core@7"
//
// Every named aggregate must still be at that version (0: it must not
// exist yet), whether the decision touches it or not; otherwise nothing is
// written and the answer is 412 Precondition Failed. A decision id recorded
// before is answered with its first result even when the versions moved on,
// so that retries stay idempotent. Weak tags and "*" are refused (400).
//
// # Callers
//
// With [Config].Tokens (koers serve --tokens FILE of "<actor> <token>"
// lines), every /v1 route needs Authorization: Bearer <token>: 401 without a
// known token, and a decision must be taken by the token's actor, 403
// otherwise, so that the mandate check holds for the real caller. /healthz,
// /metrics and /v1/openapi.json stay open: load balancers, Prometheus and
// client generators call them without a token, and none of them says
// anything of the ledger's contents. Without tokens anyone who reaches
// the server may act as any actor: keep it on loopback.
//
// # Metrics
//
// /metrics serves koers_append_duration_seconds{outcome} (deciding and
// appending one decision submitted over HTTP; outcome is created,
// duplicate or the problem type), and, asked of the projector on every
// scrape, koers_projector_lag_events, koers_projector_events_applied_total
// (the checkpoint) and koers_stream_last_sequence, with
// [Config].ProjectorActive koers_projector_active (1 while this process's
// projector holds the read models' lease, 0 on standby), besides whatever
// [Config].Collectors adds (the feed's, the Go runtime's).
//
// Every error is an application/problem+json document (RFC 9457) with a
// one-line detail in the API's own words: no answer carries what NATS or
// PostgreSQL said (a conflict says to submit again); such causes go to
// [Config].Logger.
package api
