-- +goose Up

-- Each decision's authority chain as it was when recorded (JSON array of
-- {mandate, holder}, the decision's mandate first, the root last) and the
-- board members whose approvals decided it.
ALTER TABLE decisions
    ADD COLUMN authority_chain jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN approvers       text[] NOT NULL DEFAULT '{}';

-- Proposals: decisions under a board's mandate waiting for its quorum.
-- state is as recorded (pending, decided, refused, rejected, withdrawn);
-- a pending proposal past expires_at is expired, which queries derive.
CREATE TABLE proposals (
    id           text PRIMARY KEY,
    board        text NOT NULL,
    mandate      text NOT NULL,
    proposed_by  text NOT NULL,
    quorum       int NOT NULL,
    decision     jsonb NOT NULL,
    expires_at   timestamptz NOT NULL,
    proposed_seq bigint NOT NULL UNIQUE,
    proposed_at  timestamptz NOT NULL,
    approvals    jsonb NOT NULL, -- [{by, reason?, at}], the proposer first
    state        text NOT NULL,
    reason       text,
    closed_by    text,
    closed_at    timestamptz,
    last_seq     bigint NOT NULL
);
CREATE INDEX proposals_state ON proposals (state, proposed_seq);

-- What each budget movement counted against the period limits of the
-- mandates of its decision's chain (the events' charged).
CREATE TABLE mandate_use (
    seq          bigint NOT NULL,
    mandate      text NOT NULL,
    period       text NOT NULL,
    currency     text NOT NULL,
    amount_minor bigint NOT NULL, -- moved, whichever way
    effective    timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL,
    decision     text NOT NULL,
    PRIMARY KEY (seq, mandate)
);
CREATE INDEX mandate_use_mandate ON mandate_use (mandate, period);

-- +goose Down
DROP TABLE mandate_use;
DROP TABLE proposals;
ALTER TABLE decisions DROP COLUMN authority_chain, DROP COLUMN approvers;
