-- +goose Up

-- The ledger the read models are built from: the stream's name (when the
-- source tells it) and the fingerprint and recorded time of its sequence 1,
-- the genesis. Set by the batch that applies sequence 1 (or, for read models
-- built before this migration, by the first batch after it); a projector
-- whose source has another genesis is refused.
ALTER TABLE checkpoint
    ADD COLUMN ledger_stream     text,
    ADD COLUMN ledger_genesis    text,
    ADD COLUMN ledger_genesis_at timestamptz;

-- +goose Down
ALTER TABLE checkpoint
    DROP COLUMN ledger_stream,
    DROP COLUMN ledger_genesis,
    DROP COLUMN ledger_genesis_at;
