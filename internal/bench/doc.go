// Package bench measures Koers against the raw NATS JetStream and
// PostgreSQL operations it is built on, in one process and on the same
// data, so that each figure comes with the floor it cannot beat on this
// machine and the ratio between the two means something on a shared, noisy
// one. It backs `koers bench`.
//
// [Run] works in a stream and a PostgreSQL schema of its own, with fresh
// names, and removes both when it ends: it never reads or writes a
// ledger's stream or read models. It measures, each pair back to back:
//
//	append              single-change decisions (a person.move between
//	                    existing teams) through the command handler: decode,
//	                    load, decide, append with expected versions; one
//	                    writer. Raw: one JetStream publish of the decision's
//	                    size with an expected-subject-sequence header.
//	append_raw_batch    the same decisions next to a raw atomic batch of the
//	                    same shape (messages, sizes, headers): every decision
//	                    is an atomic batch, which the server flushes to disk.
//	append_concurrent   append with [Config].Writers writers on different
//	                    aggregates. Raw: as many publishers.
//	append_concurrent_raw_batch
//	                    append_concurrent next to raw atomic batches of the
//	                    same shape from as many writers.
//	rebuild             the projector rebuilding every read model from
//	                    sequence 1 over a history of [Config].Events events.
//	                    Raw: an ordered read of the stream copied (COPY) into
//	                    one table, one row per message.
//	verify              a full verify of the stream. Raw: an ordered read.
//	as_of               the organisation at random (as of, known at) over the
//	                    whole history: p50 and p95 latency.
//	lag                 decisions at a steady rate with the projector
//	                    following: append acknowledged to visible in the read
//	                    models, p50 and p99.
//
// The history is generated fast: a realistic organisation
// (internal/sample), then decisions of [domain.MaxChanges] moves each until
// the stream holds Events messages. Those decisions are decided by the
// domain and appended with expected versions like any other, but against
// state the generator keeps in memory instead of loading it from the log.
package bench
