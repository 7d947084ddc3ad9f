// Package eventstore keeps the ledger's log on NATS JetStream: it appends the
// events of a decision atomically with optimistic concurrency per aggregate,
// loads one aggregate's history, reads the stream in order for projections
// and feeds, and verifies that nothing in the log was altered or forged.
//
// # Stream
//
// One stream per ledger (default KOERS, subjects "koers.>"), file storage,
// DenyDelete and DenyPurge on so that no client can remove history,
// AllowDirect for consumer-free reads, AllowAtomicPublish for multi-aggregate
// decisions, and a duplicate window for idempotent retries. [Open] creates the
// stream or checks an existing one; a setting that would weaken immutability
// is reported as a [*StreamSettingError] and never changed silently.
//
// Each aggregate has its own subject, <prefix>.<kind>.<id>, for example
// koers.product.payments-app. The version of an aggregate is the stream
// sequence of the last message on its subject (0: it does not exist), and an
// append states the version it expects for every aggregate it touches.
//
// # Envelope
//
// Every message body is one JSON object, the envelope:
//
//	{"v":1,                                  envelope format version
//	 "id":"2026-07-reorg/0",                 event id: decision id "/" index
//	 "type":"person.moved","sv":1,           event type and its schema version
//	 "subject":"koers.person.p-0042",        the aggregate's subject
//	 "decision":{"id":"2026-07-reorg","by":"p-0001","authority":"m-board",
//	             "reason":"…","refs":["…"],"effective":"2026-07-01T00:00:00Z"},
//	 "i":0,"n":3,                            index in the decision and event count
//	 "data":{…},                             the event's payload (compact JSON)
//	 "prev":"<hex>",                         hash of the previous genuine event on the subject ("" for the first)
//	 "hash":"<hex>",                         SHA-256 over the canonical encoding below
//	 "seal":"<hex>"}                         HMAC-SHA256 of hash under the ledger's seal key
//
// Recorded time and stream sequence are not in the envelope: they are the
// JetStream server's timestamp and sequence of the message, which the client
// cannot choose.
//
// # Canonical encoding and hash chain
//
// The hash is SHA-256 over the canonical encoding of an event: the ASCII tag
// "koers-event-v1" followed by these fields, in this order, each written as
// its length in bytes (unsigned 64-bit big-endian) and then its bytes:
//
//	event id, type, schema version (decimal), subject, decision id, actor,
//	authority, reason, number of refs (decimal), each ref, effective time
//	(RFC 3339 with nanoseconds, UTC), index (decimal), count (decimal),
//	data (compact JSON, exactly the bytes in the envelope), prev (lower-case hex)
//
// Length prefixes make the encoding unambiguous: no two different events
// encode to the same bytes. Because every event names the hash of the
// previous event on its subject, changing, removing or reordering any event
// breaks the chain from there on.
//
// # Seal
//
// A hash chain shows that history was not changed, but anyone who can publish
// to the stream can compute a valid hash. The seal is an HMAC-SHA256 of the
// event hash under a secret key that only the ledger's writers hold, so a
// message published straight onto a koers subject by any other client is a
// forgery: [Store.Load] and [Store.Read] never return it as an event (Read
// yields a [*domain.RejectedError] for it) and [Store.Verify] reports it. A forged
// message still takes a sequence on its subject, so the next genuine event
// expects that version but chains to the last genuine hash.
//
// A seal alone does not make an event genuine: a verbatim copy of a genuine
// message, published again by anyone with publish rights (a replay), has a
// valid seal too. An event is genuine only at its place: its prev is the
// hash of the last genuine event on its subject. Load, Read and Verify
// apply that one rule and treat a message out of place like a forgery:
// never an event, the chain going on from the last genuine event, the
// message's sequence still the subject's version. A replay therefore never
// blocks the aggregate it lands on. Verify also checks that every event id
// occurs once.
//
// # Schema versions
//
// Events are stored as written, at the schema version they were written at
// (sv). [Store.Load] returns them upcast to their type's current version
// (domain.Upcast) after checking hashes and seals over what is stored;
// [Store.Read] returns them as stored, for readers that upcast themselves
// (the projector, the feeds) or need the stored bytes (verify, identity).
//
// # Digest
//
// [Store.Verify] also returns a digest of the stream up to a sequence: a
// running SHA-256 that starts from 32 zero bytes and, for each stored
// message in sequence order, becomes
//
//	SHA-256(previous digest || sequence (8 bytes big-endian) ||
//	        recorded time in Unix nanoseconds (8 bytes big-endian) ||
//	        subject length (8 bytes big-endian) || subject ||
//	        SHA-256(message body))
//
// An auditor writes down (sequence, digest) somewhere else; verifying later
// with that pair proves that no message up to that sequence was changed,
// removed or inserted, including its recorded time.
//
// # Anchors
//
// An anchor is (sequence, digest, prev): the digest up to sequence and the
// digest up to sequence-1, so that the one message at sequence can be
// checked alone ([Store.Check] does, cheaply, against the read models'
// last anchor; [Store.Verify] checks the whole stream against every anchor
// it is given). [Store.Anchor] extends an anchor with the messages after
// it. A signed anchor, as `koers anchor` writes it, is the JSON object
//
//	{"format":"koers-anchor-v1","ledger":"KOERS","seq":1234,
//	 "digest":"<hex>","prev":"<hex>","taken":"<RFC 3339>",
//	 "sig_alg":"hmac-sha256-seal","signature":"<hex>"}
//
// whose signature is HMAC-SHA256 under the seal key over the fields
// format, ledger, seq (decimal), digest, prev and taken (RFC 3339 with
// nanoseconds, UTC), each written as its length (unsigned 64-bit
// big-endian) and its bytes. [Store.SignAnchor] and
// [Store.CheckAnchorSignature] are the one place that signs and checks.
//
// # Integrity of the stream
//
// [Open] with [Config].Existing (every command but init and demo) creates
// nothing: a missing stream is a [*StreamNotFoundError]. With
// [Config].Inspect (verify) it opens a stream whose settings were weakened,
// to report them. A store stops writing for good (an
// [*IntegrityError] from Append) once it finds that its stream lost
// history or protection: at Open, and at every [Store.Check] (which
// [Store.Watch] runs at an interval): a setting weakened, a stream that no
// longer starts at 1, holds fewer messages than its sequences span, ends
// before a sequence it reached or an anchor, or no longer holds the
// anchored message unchanged.
//
// # Errors
//
// A stale expected version is domain.ErrConflict; a decision with more
// events than one atomic batch holds is a [*BatchTooLargeError] wrapping
// domain.ErrTooLarge. Every other failure of the NATS server or of the
// connection leaves the package as a [*ServerError] (wrapping [ErrServer],
// and domain.ErrUnavailable when the server cannot be reached or did not
// answer); no nats.go error type or raw driver text leaves it. Context
// errors stay matchable with errors.Is.
package eventstore
