-- +goose Up

-- The feeds' own tables, apart from the read models: rebuilding the read
-- models never touches them, so a rebuild never re-sends anything.
--
-- Before goose, the feed applied these statements (feed/schema.sql) on
-- every start, unversioned; they stay idempotent (IF NOT EXISTS) so that a
-- database created that way upgrades by recording this version over the
-- tables it has. The schema itself is created before goose runs: goose
-- keeps its versions in it (koers_feed.goose_feed_version).
CREATE SCHEMA IF NOT EXISTS koers_feed;

-- One row per feed: where it sends and the last stream sequence its target
-- confirmed. The row moves only after the target confirmed.
CREATE TABLE IF NOT EXISTS koers_feed.checkpoint (
	name            text PRIMARY KEY,
	target          text NOT NULL,       -- the URL without its password
	source          text NOT NULL,       -- the CloudEvents source: the ledger
	delivered_seq   bigint NOT NULL CHECK (delivered_seq >= 0),
	delivered_total bigint NOT NULL DEFAULT 0,
	poisoned_total  bigint NOT NULL DEFAULT 0,
	rejected_total  bigint NOT NULL DEFAULT 0,
	created_at      timestamptz NOT NULL DEFAULT now(),
	updated_at      timestamptz NOT NULL DEFAULT now()
);

-- The poison queue: events a target refused outright, in watermill-sql's
-- layout (a watermill-sql subscriber can read it, topic "poison");
-- metadata names the feed (koers_feed), the sequence and the reason.
CREATE TABLE IF NOT EXISTS koers_feed.poison (
	"offset"         BIGSERIAL,
	"uuid"           VARCHAR(128) NOT NULL,
	"created_at"     TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
	"payload"        JSON DEFAULT NULL,
	"metadata"       JSON DEFAULT NULL,
	"transaction_id" xid8 NOT NULL,
	PRIMARY KEY ("transaction_id", "offset")
);

-- +goose Down
DROP TABLE koers_feed.poison;
DROP TABLE koers_feed.checkpoint;
