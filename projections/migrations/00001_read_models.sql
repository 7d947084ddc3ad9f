-- +goose Up

-- The last stream sequence whose effects are in the read models. It moves in
-- the same transaction as the rows it covers.
CREATE TABLE checkpoint (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    seq        bigint NOT NULL CHECK (seq >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO checkpoint (seq) VALUES (0);

-- Messages in the stream that are not genuine events (forged, tampered,
-- malformed). They advance the checkpoint and are kept here for the audit.
CREATE TABLE rejected_messages (
    seq     bigint PRIMARY KEY,
    subject text NOT NULL,
    reason  text NOT NULL
);

-- The decision log: one row per decision.recorded.
CREATE TABLE decisions (
    id            text PRIMARY KEY,
    seq           bigint NOT NULL UNIQUE, -- sequence of decision.recorded, the last event of the decision
    first_seq     bigint NOT NULL,
    actor         text NOT NULL,
    mandate       text NOT NULL,
    reason        text NOT NULL,
    refs          text[] NOT NULL,
    effective     timestamptz NOT NULL,
    recorded_at   timestamptz NOT NULL,
    changes       jsonb NOT NULL,
    effects       jsonb NOT NULL,
    change_kinds  text[] NOT NULL,
    aggregates    text[] NOT NULL,
    retracts      text,
    retracted_by  text,
    retracted_seq bigint
);
CREATE INDEX decisions_recorded_at ON decisions (recorded_at, seq);
CREATE INDEX decisions_effective ON decisions (effective);
CREATE INDEX decisions_actor ON decisions (actor, seq);
CREATE INDEX decisions_mandate ON decisions (mandate, seq);
CREATE INDEX decisions_change_kinds ON decisions USING gin (change_kinds);
CREATE INDEX decisions_aggregates ON decisions USING gin (aggregates);

-- Bitemporal facts, append-only: one row per belief about one attribute of
-- one aggregate over a valid-time interval [valid_from, valid_to). A new
-- belief closes the rows it replaces (superseded_seq) instead of changing
-- them, so a query known at an earlier sequence still sees the old belief.
-- value NULL: the attribute is unset over the interval (an owner removed, a
-- team no longer serving a product).
CREATE TABLE facts (
    kind           text NOT NULL,
    id             text NOT NULL,
    attr           text NOT NULL,
    value          text,
    valid_from     timestamptz NOT NULL,
    valid_to       timestamptz,
    recorded_seq   bigint NOT NULL,
    recorded_at    timestamptz NOT NULL,
    superseded_seq bigint,
    decision       text NOT NULL,
    CHECK (valid_to IS NULL OR valid_to > valid_from),
    CHECK (superseded_seq IS NULL OR superseded_seq > recorded_seq)
);
CREATE INDEX facts_current ON facts (kind, id, attr) WHERE superseded_seq IS NULL;
CREATE INDEX facts_kind_attr ON facts (kind, attr, recorded_seq);

-- The funding journal: every movement as balanced double-entry lines (the
-- lines of one movement sum to zero). Append-only; a retraction adds
-- compensating lines. Accounts: pool, valuestream:<id>, product:<id>,
-- project:<id>, and budget:<period>, the source every period total comes from.
CREATE TABLE journal (
    seq          bigint NOT NULL,
    line         smallint NOT NULL,
    decision     text NOT NULL,
    event_type   text NOT NULL,
    period       text NOT NULL,
    currency     text NOT NULL,
    account      text NOT NULL,
    amount_minor bigint NOT NULL, -- signed, minor units of currency: + into the account, - out of it
    effective    timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL,
    PRIMARY KEY (seq, line)
);
CREATE INDEX journal_period_account ON journal (period, account, seq);

-- KPI measurements per product; a retracted measurement keeps its row.
CREATE TABLE kpi_measurements (
    seq           bigint PRIMARY KEY,
    product       text NOT NULL,
    kpi           text NOT NULL,
    value         text NOT NULL,
    effective     timestamptz NOT NULL,
    recorded_at   timestamptz NOT NULL,
    decision      text NOT NULL,
    retracted_seq bigint
);
CREATE INDEX kpi_measurements_product ON kpi_measurements (product, kpi, seq);

-- +goose Down
DROP TABLE kpi_measurements;
DROP TABLE journal;
DROP TABLE facts;
DROP TABLE decisions;
DROP TABLE rejected_messages;
DROP TABLE checkpoint;
