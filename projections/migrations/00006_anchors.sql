-- +goose Up

-- Anchors the projector took of the log as it went (every so many events
-- or so much time): the sequence, the stream digest up to it and the
-- digest just before it. The log must still reach each one and match it
-- there; a shorter or different log is an integrity problem (serve stops
-- writing, verify exits 2). Append-only.
CREATE TABLE anchors (
    seq      bigint PRIMARY KEY,
    digest   text        NOT NULL,
    prev     text        NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE anchors;
