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
//	{"v":2,                                  envelope format version
//	 "id":"2026-07-reorg/0",                 event id: decision id "/" index
//	 "type":"person.moved","sv":1,           event type and its schema version
//	 "subject":"koers.person.p-0042",        the aggregate's subject
//	 "decision":{"id":"2026-07-reorg","by":"p-0001","authority":"m-board",
//	             "reason":"…","refs":["…"],"effective":"2026-07-01T00:00:00Z"},
//	 "i":0,"n":3,                            index in the decision and event count
//	 "data":{…},                             the event's payload (compact JSON)
//	 "prev":"<hex>",                         hash of the previous genuine event on the subject ("" for the first)
//	 "hash":"<hex>",                         SHA-256 over the canonical encoding below
//	 "key":"<16 hex>",                       id of the ledger key that sealed the decision
//	 "sig":"<128 hex>",                      Ed25519 signature over the decision's Merkle root
//	 "path":["<hex>",…]}                     this event's inclusion path to that root
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
// to the stream can compute a valid hash. The seal is a public-key signature
// that only the ledger's writer can make and anyone can check:
//
//   - The writer signs each decision once. Its events' hashes are the leaves
//     of a Merkle tree as in RFC 9162 section 2.1 (leaf = SHA-256(0x00 ||
//     event hash, 32 bytes), node = SHA-256(0x01 || left || right), split at
//     the largest power of two below the number of leaves); the writer signs
//     the ASCII tag "koers-seal-v1" followed by the 32-byte root with its
//     Ed25519 key. Every event of the decision carries the key's id (the
//     first 16 hex digits of SHA-256 of the public key), the signature and
//     its own inclusion path (sibling hashes from the leaf up), so that one
//     event is checked on its own: recompute the root from its hash and path
//     (RFC 9162 section 2.1.3.2, leaf index i, tree size n), then verify the
//     signature. A checker remembers the roots it verified, so a decision
//     costs one Ed25519 verification however many events it has (measured
//     here: 170 µs to verify, 76 µs to sign, 2–4 µs to decode and hash an
//     event; a signature per event would have made verify about twenty
//     times slower than the raw read).
//   - The ledger's public keys are in the log, on ledger:keys
//     (koers.ledger.keys), as ledger.key-recorded events: the genesis
//     records the first, sealed with that same key; a later one (koers keys
//     rotate, a decision under the root mandate) is sealed with the key in
//     force before it. A key is in force for the decisions that start after
//     the decision that recorded it, until the next; an event is judged by
//     the key in force where its decision starts (its sequence minus its
//     index), so old events keep verifying under the key they were sealed
//     with, and an event sealed with a superseded key after the rotation is
//     a forgery. Checking needs no secret: [Open] without a SealKey reads,
//     loads and verifies.
//   - A writer's key must be the key in force: [Open] refuses another key
//     with a [*KeyNotInForceError], and a writer asks the log again before
//     it appends when its knowledge is more than a second old, so a rotation
//     stops writers with the old key within a second (a writer that sealed
//     in that second wrote events verify reports as sealed with a superseded
//     key; rotate with the writers stopped for a clean cut). A log that
//     records no key yet (before its genesis) is sealed by its writer's key
//     alone.
//   - Ledgers written by Koers before this (envelope v1: an HMAC under a
//     shared secret) are refused by [Open] with a [*LegacyLedgerError]:
//     there is no upgrade in place. Verify such a ledger with the Koers that
//     wrote it, then record its decisions into a new ledger.
//
// A message without a valid seal is a forgery: [Store.Load] and [Store.Read]
// never return it as an event (Read yields a [*domain.RejectedError] for it)
// and [Store.Verify] reports it. A forged message still takes a sequence on
// its subject, so the next genuine event expects that version but chains to
// the last genuine hash.
//
// Decisions may also carry their actor's signature (see package domain):
// [Store.Verify] checks each against the key registered for the actor when
// the decision was recorded, and that no decision was unsigned where the
// ledger's policy required signatures.
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
//	 "sig_alg":"ed25519","key":"<key id>","signature":"<hex>",
//	 "tree_size":1234,"root":"<hex>"}
//
// whose signature is Ed25519 by the writer's ledger key (the key in force
// when it signs; key is its [KeyID]) over the tag "koers-anchor-sig-v1"
// and the fields format, sig_alg, key, ledger, seq (decimal), digest, prev
// and taken (RFC 3339 with nanoseconds, UTC), then, when the anchor
// carries a tree head, the ASCII word "tree", tree_size (decimal) and root,
// each written as its length (unsigned 64-bit big-endian) and its bytes.
// tree_size and root make the anchor a signed tree head of the stream's
// Merkle tree (section Merkle tree); tree_size equals seq. Anchors written
// before carry neither (nor does their signature) and still check. It is checked with the
// public key the log records under that id, so checking needs no secret;
// a key superseded before seq does not sign for it, and an anchor of the
// HMAC seal (sig_alg "hmac-sha256-seal") is refused with a clear message.
// [Store.SignAnchor] and
// [Store.CheckAnchorSignature] are the one place that signs and checks.
//
// # Merkle tree
//
// The stream's messages, in sequence order from 1, are the leaves of a
// Merkle tree as in RFC 9162 section 2.1 (merkle.go, standard library
// only): the leaf of a message is SHA-256(0x00 || its digest input, the
// same bytes the Digest section adds per message: sequence, recorded time
// in Unix nanoseconds, subject length (each 8 bytes big-endian), subject,
// SHA-256(body)); a node is SHA-256(0x01 || left || right); a tree of n > 1
// leaves splits at the largest power of two smaller than n; the empty tree
// is SHA-256 of nothing. Leaf i is the message at sequence i+1, so the
// tree of size n covers sequences 1 to n. An inclusion proof is the RFC's
// audit path (2.1.3), a consistency proof the RFC's (2.1.4), and they are
// checked by the RFC's algorithms ([VerifyInclusion], [VerifyConsistency]).
// [Store.Verify] checks every tree head it is given ([VerifyOptions]
// .TreeHeads; `koers verify --anchor FILE` passes those of anchor files)
// against the stream's tree, and for each two of different sizes computes
// the consistency proof from the stream and checks it against their roots,
// so that `koers verify --anchor OLD --anchor NEW` proves that the log NEW
// was signed over extends the one OLD was ([Report].Consistency).
//
// # Receipts
//
// A receipt (`koers receipt DECISION`) proves, to someone who has only the
// file, that a decision is in the ledger: its events as stored, sealed by
// the ledger's key, at their sequences in a log whose tree head the
// ledger's writer signed. It grows with the logarithm of the log's length.
// It is the JSON object
//
//	{"format":"koers-receipt-v1","ledger":"KOERS","decision":"<id>",
//	 "messages":[{"seq":41,"recorded":"<RFC 3339, UTC>","subject":"koers.…",
//	              "body":"<base64>","proof":["<hex>",…]},…],
//	 "key_records":[ same shape, the ledger.key-recorded messages ],
//	 "tree_head":{ a signed anchor with tree_size and root, above }}
//
// body is the stored message (the envelope) in standard base64 with
// padding, recorded the server's timestamp, proof the audit path of leaf
// seq-1 in the tree of tree_size leaves, nearest sibling first. The file
// is written as Go's json.MarshalIndent with two spaces and a final
// newline, hex in lower case; [VerifyReceipt] (`koers verify --receipt`)
// refuses any other spelling, so that any byte changed in the file is
// noticed. A checker does, with nothing but the file:
//
//  1. The tree head: root and tree_size as above.
//  2. Each key record, oldest first: its leaf, from seq, recorded, subject
//     and the decoded body, with its proof leads to root; its envelope's
//     hash is right (section Canonical encoding), it is a
//     ledger.key-recorded event whose data names the public key (hex); the
//     first is of the genesis decision and sealed with the key it records,
//     each later one sealed with the key in force before it (section Seal).
//     A key is in force from sequence 0 for the first, from the sequence
//     after its recording decision's last event for the others.
//  3. The tree head's signature (section Anchors) under the key it names,
//     which must be one of those keys and not superseded before seq.
//  4. Each message, in order: its proof leads to root; its envelope's hash
//     is right, it names the message's subject and the receipt's decision,
//     its index is its place in messages and its count their number, the
//     sequences are consecutive; its seal verifies under the key in force
//     at its decision's first sequence.
//
// The checker should print the key ids it used: the receipt shows that the
// ledger with that genesis key recorded the decision; that it is the
// ledger you mean is the one thing to compare with something you trust
// (an anchor you kept, the key id the ledger's owner published). A
// receipt does not show that the decision's events are at their place
// (not a verbatim replay, section Seal): `koers receipt` only writes
// genuine events, and `koers verify` over the whole log checks places.
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
