// Package feed sends the ledger's events to downstream systems through
// Watermill publishers: a message broker, a Redis stream, a table in another
// PostgreSQL database, or a webhook receiver. Each feed has a name, a
// target and a checkpoint of its own in PostgreSQL; it reads the stream in
// order from its checkpoint and publishes every event as a CloudEvent.
//
// # Targets
//
// The target URL picks the publisher:
//
//	amqp://user:pass@host:5672/vhost   watermill-amqp: durable fanout exchange and a
//	amqps://…                          durable queue bound to it, both named after the
//	                                   feed; persistent messages; publisher confirms on
//	redis://[:pass@]host:6379/0        watermill-redisstream: XADD to the stream named
//	rediss://…                         after the feed (never trimmed by the feed)
//	postgres://user@host:5432/db       watermill-sql: table "watermill_<feed>" in that
//	postgresql://…                     database (created if missing; payload JSONB,
//	                                   unique index on uuid), for warehouses that pull
//	http://host/path, https://…        watermill-http: one POST per event, body the
//	                                   CloudEvent (structured mode); 2xx = delivered
//
// # Messages
//
// Every message body is one CloudEvents 1.0 event in the JSON format
// (content type application/cloudevents+json), and the Watermill message
// UUID is the CloudEvents id (AMQP message-id and header
// _watermill_message_uuid, Redis field _watermill_message_uuid, SQL column
// uuid, HTTP header Message-Uuid):
//
//	{"specversion":"1.0",
//	 "id":"2026-07-reorg/3",                 the event id: decision id "/" index
//	 "source":"/koers/KOERS",                the ledger
//	 "type":"koers.person.moved",            "koers." + the event type
//	 "subject":"person:p-0042",              the aggregate, kind ":" id
//	 "time":"2026-07-01T09:00:00.123Z",      when the ledger recorded it
//	 "datacontenttype":"application/json",
//	 "koersdecision":"2026-07-reorg",        the decision that produced it
//	 "koersactor":"p-0001",                  who took the decision
//	 "koersauthority":"m-portfolio-board",   under which mandate
//	 "koerseffective":"2026-07-01T00:00:00Z",valid time of the decision
//	 "koersseq":"1234",                      stream sequence (decimal string:
//	                                         CloudEvents integers are 32-bit)
//	 "koersschema":1,                        schema version of data: the type's
//	                                         current one (older events are upcast)
//	 "data":{"id":"p-0042","from":"t-lending","to":"t-payments-core"}}
//
// The target URL is shown, logged and stored masked: user info, query
// values (but a few harmless ones), any fragment and token-looking path
// segments read xxxxx, and driver errors quoting the URL are masked the
// same way (see redact in secrets.go).
//
// # Guarantees
//
//   - Order: events are published one after the other in stream order
//     (a SQL target takes a batch in one INSERT, in order), and a retry
//     repeats the message that failed before anything after it is sent, so
//     the order per aggregate, and indeed of the whole stream, is kept.
//   - Nothing lost: the checkpoint (table koers_feed.checkpoint, one row per
//     feed name) moves only after the target confirmed: the AMQP broker's
//     publisher confirm, Redis' XADD reply, the INSERT's success, a 2xx
//     answer. Stopping or killing a feed at any moment and starting it
//     again delivers everything after the checkpoint.
//   - Duplicates only with the same id: an event sent after the last
//     checkpoint but before a crash (or whose confirmation was lost) is sent
//     again after a restart, with the same CloudEvents id and body, in the
//     same order. Consumers drop a message whose id they have seen. The SQL
//     target does so itself (unique index on uuid).
//   - A target that is down or refuses connections is waited for: the
//     Watermill Retry middleware retries a publish with exponential back-off
//     (Config.Retries times, RetryInitial to RetryMax), then the round
//     fails and the feed's consumer (package consumer, the one reader of
//     the log that the projector shares) reads again from the checkpoint
//     after its capped, jittered back-off (RetryInitial doubling up to
//     BackoffMax), at most Config.Attempts times in a row without progress;
//     each failed attempt counts in koers_feed_retries_total. Nothing is
//     skipped.
//   - A message the target refuses outright (HTTP 400, 413, 415, 422; a
//     PostgreSQL data exception) goes through Watermill's PoisonQueue
//     middleware to the table koers_feed.poison, with metadata koers_feed,
//     koers_target, koers_seq and reason_poisoned; the checkpoint moves past
//     it only once it is stored there. Other HTTP answers (401, 403, 404, 429, 5xx)
//     are outages and retried.
//   - Messages in the log that are not genuine events (forged, malformed;
//     see eventstore) are never published; the checkpoint passes over them
//     and koers_feed_rejected_total counts them.
//   - The feed's tables are apart from the read models: rebuilding the read
//     models never re-sends anything. They live in the schema koers_feed
//     and are migrated on start by goose, as the read models are, with the
//     embedded SQL migrations in migrations/ and their versions in
//     koers_feed.goose_feed_version (a table of its own, so the two sets of
//     versions never meet in one database). A database made by the
//     unversioned schema.sql of earlier versions upgrades in place.
//   - One process runs a feed at a time: a PostgreSQL advisory lock per
//     feed name ([BusyError] otherwise). A name stays with its target and
//     ledger ([MismatchError]).
//
// Everything is bounded: a batch holds at most Config.BatchSize events
// (default 500) or one whole decision, the Retry middleware at most
// Config.Retries retries per round, every publish waits at most
// Config.PublishTimeout, every back-off at most Config.BackoffMax, and a
// feed gives up after Config.Attempts failed rounds in a row.
//
// # Metrics
//
// [Metrics] is a prometheus.Collector with, per feed (label feed):
// koers_feed_lag_events (stream last sequence minus checkpoint),
// koers_feed_checkpoint_sequence, koers_feed_delivered_total,
// koers_feed_retries_total, koers_feed_poisoned_total and
// koers_feed_rejected_total. [ReadStatus] gives the same per feed from the
// database, for `koers feed status`.
package feed
