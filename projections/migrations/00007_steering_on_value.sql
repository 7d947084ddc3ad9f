-- +goose Up

-- KPI measurements of value streams as well as products: subject is the
-- product's or value stream's id, kind says which; note is where the
-- value came from (kpi.record's note).
ALTER TABLE kpi_measurements RENAME COLUMN product TO subject;
ALTER TABLE kpi_measurements
    ADD COLUMN kind text NOT NULL DEFAULT 'product',
    ADD COLUMN note text;
DROP INDEX kpi_measurements_product;
CREATE INDEX kpi_measurements_subject ON kpi_measurements (kind, subject, kpi, effective, seq);

-- The KPI values, computed here and only here: DB.KPIValues, the review
-- (review_kpis) and the reporting view kpi_values ask this function. One
-- row per measurement recorded through known_seq and not retracted by
-- then, effective no later than as_of, of a KPI defined as of as_of, with
-- the definition and targets believed then: the target is the quarter's
-- own (fact kpi-target:<kpi>@<quarter>), else the default (fact
-- kpi-target:<kpi>). on_target is NULL without a target; otherwise the
-- value is at or above it (direction higher) or at or below it (lower),
-- compared as exact numerics. The filters (NULL: all) keep the work to
-- the subject asked for.
-- +goose StatementBegin
CREATE FUNCTION kpi_values(known_seq bigint, as_of timestamptz, subject_kind text, subject_id text, kpi_name text,
                           from_ts timestamptz, to_ts timestamptz)
RETURNS TABLE (
    kind        text,
    id          text,
    kpi         text,
    category    text,
    unit        text,
    direction   text,
    effective   timestamptz,
    quarter     text,
    value       numeric,
    target      numeric,
    on_target   boolean,
    note        text,
    decision    text,
    seq         bigint,
    recorded_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
BEGIN ATOMIC
WITH cf AS (
    SELECT f.kind, f.id, f.attr, f.value
    FROM facts f
    WHERE f.kind IN ('product', 'valuestream') AND f.value IS NOT NULL
      AND (f.attr LIKE 'kpi:%' OR f.attr LIKE 'kpi-target:%')
      AND (subject_kind IS NULL OR f.kind = subject_kind) AND (subject_id IS NULL OR f.id = subject_id)
      AND f.recorded_seq <= known_seq AND (f.superseded_seq IS NULL OR f.superseded_seq > known_seq)
      AND f.valid_from <= as_of AND (f.valid_to IS NULL OR f.valid_to > as_of)
),
defs AS (
    SELECT cf.kind, cf.id, substr(cf.attr, 5) AS kpi, (cf.value::jsonb) ->> 'unit' AS unit,
           coalesce((cf.value::jsonb) ->> 'direction', 'higher') AS direction,
           coalesce((cf.value::jsonb) ->> 'category', 'value') AS category
    FROM cf WHERE cf.attr LIKE 'kpi:%'
),
targets AS (
    SELECT cf.kind, cf.id, substr(cf.attr, 12) AS key, cf.value::numeric AS target
    FROM cf WHERE cf.attr LIKE 'kpi-target:%'
),
m AS (
    SELECT m.kind, m.subject, m.kpi, d.category, d.unit, d.direction, m.effective,
           to_char(m.effective AT TIME ZONE 'UTC', 'YYYY"-Q"Q') AS quarter, m.value::numeric AS value,
           m.note, m.decision, m.seq, m.recorded_at
    FROM kpi_measurements m
    JOIN defs d ON d.kind = m.kind AND d.id = m.subject AND d.kpi = m.kpi
    WHERE m.seq <= known_seq AND (m.retracted_seq IS NULL OR m.retracted_seq > known_seq) AND m.effective <= as_of
      AND (subject_kind IS NULL OR m.kind = subject_kind) AND (subject_id IS NULL OR m.subject = subject_id)
      AND (kpi_name IS NULL OR m.kpi = kpi_name)
      AND (from_ts IS NULL OR m.effective >= from_ts) AND (to_ts IS NULL OR m.effective < to_ts)
),
t AS (
    SELECT m.*, coalesce(tq.target, td.target) AS target
    FROM m
    LEFT JOIN targets tq ON tq.kind = m.kind AND tq.id = m.subject AND tq.key = m.kpi || '@' || m.quarter
    LEFT JOIN targets td ON td.kind = m.kind AND td.id = m.subject AND td.key = m.kpi
)
SELECT t.kind, t.subject, t.kpi, t.category, t.unit, t.direction, t.effective, t.quarter, t.value, t.target,
       CASE WHEN t.target IS NULL THEN NULL
            WHEN t.direction = 'lower' THEN t.value <= t.target
            ELSE t.value >= t.target END,
       t.note, t.decision, t.seq, t.recorded_at
FROM t;
END;
-- +goose StatementEnd

-- The review's KPI figures per quarter, as known at known_seq and as of
-- each quarter's end: per product or value stream and KPI, the last value
-- measured in the quarter, the last one before it, the quarter's target
-- and whether the last value meets it; trend compares the two values in
-- the KPI's direction (improving, worsening, steady; new when there was
-- no value before; NULL when none in the quarter).
-- +goose StatementBegin
CREATE FUNCTION review_kpis(known_seq bigint, first_quarter timestamptz, last_quarter timestamptz)
RETURNS TABLE (
    quarter        text,
    kind           text,
    id             text,
    kpi            text,
    category       text,
    unit           text,
    direction      text,
    measurements   bigint,
    last_value     numeric,
    last_effective timestamptz,
    previous_value numeric,
    target         numeric,
    on_target      boolean,
    trend          text)
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
BEGIN ATOMIC
WITH quarters AS (
    SELECT to_char(q, 'YYYY"-Q"Q') AS quarter, q AT TIME ZONE 'UTC' AS from_,
           (q + interval '3 months') AT TIME ZONE 'UTC' AS to_,
           (q + interval '3 months') AT TIME ZONE 'UTC' - interval '1 microsecond' AS end_
    FROM generate_series(date_trunc('quarter', first_quarter AT TIME ZONE 'UTC'),
                         date_trunc('quarter', last_quarter AT TIME ZONE 'UTC'), interval '3 months') q
),
v AS (
    SELECT qu.quarter, qu.from_, v.kind, v.id, v.kpi, v.category, v.unit, v.direction, v.effective, v.value, v.target, v.on_target, v.seq,
           row_number() OVER (PARTITION BY qu.quarter, v.kind, v.id, v.kpi, v.effective >= qu.from_ ORDER BY v.effective DESC, v.seq DESC) AS rn
    FROM quarters qu
    CROSS JOIN LATERAL kpi_values(known_seq, qu.end_, NULL, NULL, NULL, NULL, qu.to_) v
),
-- The quarter's target, also for KPIs without a value in the quarter.
defs AS (
    SELECT DISTINCT ON (v.quarter, v.kind, v.id, v.kpi) v.quarter, v.kind, v.id, v.kpi, v.category, v.unit, v.direction
    FROM v ORDER BY v.quarter, v.kind, v.id, v.kpi
),
agg AS (
    SELECT d.quarter, d.kind, d.id, d.kpi, d.category, d.unit, d.direction,
           (SELECT count(*) FROM v x WHERE x.quarter = d.quarter AND x.kind = d.kind AND x.id = d.id AND x.kpi = d.kpi AND x.effective >= x.from_) AS measurements,
           cur.value AS last_value, cur.effective AS last_effective, cur.target AS target, cur.on_target,
           prev.value AS previous_value
    FROM defs d
    LEFT JOIN v cur ON cur.quarter = d.quarter AND cur.kind = d.kind AND cur.id = d.id AND cur.kpi = d.kpi AND cur.effective >= cur.from_ AND cur.rn = 1
    LEFT JOIN v prev ON prev.quarter = d.quarter AND prev.kind = d.kind AND prev.id = d.id AND prev.kpi = d.kpi AND prev.effective < prev.from_ AND prev.rn = 1
)
SELECT quarter, kind, id, kpi, category, unit, direction, measurements, last_value, last_effective, previous_value, target, on_target,
       CASE WHEN last_value IS NULL THEN NULL
            WHEN previous_value IS NULL THEN 'new'
            WHEN last_value = previous_value THEN 'steady'
            WHEN (last_value > previous_value) = (direction <> 'lower') THEN 'improving'
            ELSE 'worsening' END
FROM agg
ORDER BY quarter, kind, id, kpi;
END;
-- +goose StatementEnd

-- The review's money per quarter, as known at known_seq: per product or
-- value-stream account and currency, over every budget period, what was
-- allocated from the pool, shifted in and out and released to the pool
-- with an effective time in the quarter, and the balance at its end.
-- A retraction's compensation counts in the quarter of the decision it
-- undoes (its effective time), as the opposite movement.
-- +goose StatementBegin
CREATE FUNCTION review_funding(known_seq bigint, first_quarter timestamptz, last_quarter timestamptz)
RETURNS TABLE (
    quarter           text,
    kind              text,
    id                text,
    currency          text,
    allocated_minor   bigint,
    shifted_in_minor  bigint,
    shifted_out_minor bigint,
    released_minor    bigint,
    balance_minor     bigint)
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
BEGIN ATOMIC
WITH quarters AS (
    SELECT to_char(q, 'YYYY"-Q"Q') AS quarter, q AT TIME ZONE 'UTC' AS from_, (q + interval '3 months') AT TIME ZONE 'UTC' AS to_
    FROM generate_series(date_trunc('quarter', first_quarter AT TIME ZONE 'UTC'),
                         date_trunc('quarter', last_quarter AT TIME ZONE 'UTC'), interval '3 months') q
),
j AS (
    SELECT split_part(j.account, ':', 1) AS kind, substr(j.account, strpos(j.account, ':') + 1) AS id,
           j.currency, j.event_type, j.amount_minor, j.effective
    FROM journal j
    WHERE j.seq <= known_seq AND (j.account LIKE 'product:%' OR j.account LIKE 'valuestream:%')
)
SELECT qu.quarter, j.kind, j.id, j.currency,
       coalesce(sum(j.amount_minor) FILTER (WHERE j.event_type = 'funding.allocated' AND j.effective >= qu.from_), 0)::bigint,
       coalesce(sum(j.amount_minor) FILTER (WHERE j.event_type = 'funding.shifted' AND j.amount_minor > 0 AND j.effective >= qu.from_), 0)::bigint,
       coalesce(-sum(j.amount_minor) FILTER (WHERE j.event_type = 'funding.shifted' AND j.amount_minor < 0 AND j.effective >= qu.from_), 0)::bigint,
       coalesce(-sum(j.amount_minor) FILTER (WHERE j.event_type = 'funding.released' AND j.effective >= qu.from_), 0)::bigint,
       coalesce(sum(j.amount_minor), 0)::bigint
FROM quarters qu JOIN j ON j.effective < qu.to_
GROUP BY qu.quarter, j.kind, j.id, j.currency
ORDER BY 1, 2, 3, 4;
END;
-- +goose StatementEnd

-- The decisions that touched each product and value stream, as known at
-- known_seq: those with an event on it, and those that moved money on its
-- account (a funding decision's events are on the budget). agg is
-- kind:id.
-- +goose StatementBegin
CREATE FUNCTION subject_decisions(known_seq bigint)
RETURNS TABLE (agg text, decision text, effective timestamptz, seq bigint)
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
BEGIN ATOMIC
SELECT a.agg, d.id, d.effective, d.seq
FROM decisions d CROSS JOIN LATERAL unnest(d.aggregates) AS a(agg)
WHERE d.seq <= known_seq AND (a.agg LIKE 'product:%' OR a.agg LIKE 'valuestream:%')
UNION
SELECT j.account, d.id, d.effective, d.seq
FROM journal j JOIN decisions d ON d.id = j.decision
WHERE j.seq <= known_seq AND d.seq <= known_seq AND (j.account LIKE 'product:%' OR j.account LIKE 'valuestream:%');
END;
-- +goose StatementEnd

-- The review's structure per quarter, as known at known_seq: every
-- product and value stream active at some moment of the quarter, with its
-- name and value stream at the quarter's end, its status and accountable
-- owner at the start and at the end, the owner changes in the quarter
-- (an owner replaced or removed, as in transition_metrics), the active
-- teams serving it at the end (a value stream's: those of its active
-- products), how many people were in those teams at the start and how
-- many of them were in the same team at the end, and how many decisions
-- effective in the quarter touched it.
-- +goose StatementBegin
CREATE FUNCTION review_subjects(known_seq bigint, first_quarter timestamptz, last_quarter timestamptz)
RETURNS TABLE (
    quarter         text,
    kind            text,
    id              text,
    name            text,
    valuestream     text,
    status_start    text,
    status_end      text,
    owner_start     text,
    owner_end       text,
    owner_changes   bigint,
    teams           text[],
    people_at_start bigint,
    stayed_in_team  bigint,
    decisions       bigint)
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
BEGIN ATOMIC
WITH cf AS (
    SELECT f.kind, f.id, f.attr, f.value, f.valid_from, f.valid_to
    FROM facts f
    WHERE f.kind IN ('person', 'product', 'valuestream', 'team') AND f.recorded_seq <= known_seq
      AND (f.superseded_seq IS NULL OR f.superseded_seq > known_seq)
),
quarters AS (
    SELECT to_char(q, 'YYYY"-Q"Q') AS quarter, q AT TIME ZONE 'UTC' AS from_, (q + interval '3 months') AT TIME ZONE 'UTC' AS to_,
           (q + interval '3 months') AT TIME ZONE 'UTC' - interval '1 microsecond' AS end_
    FROM generate_series(date_trunc('quarter', first_quarter AT TIME ZONE 'UTC'),
                         date_trunc('quarter', last_quarter AT TIME ZONE 'UTC'), interval '3 months') q
),
subj AS (
    SELECT qu.quarter, qu.from_, qu.to_, f.kind, f.id,
           max(f.value) FILTER (WHERE f.attr = 'name' AND f.valid_from <= qu.end_ AND (f.valid_to IS NULL OR f.valid_to > qu.end_)) AS name,
           max(f.value) FILTER (WHERE f.attr = 'valuestream' AND f.valid_from <= qu.end_ AND (f.valid_to IS NULL OR f.valid_to > qu.end_)) AS valuestream,
           max(f.value) FILTER (WHERE f.attr = 'status' AND f.valid_from <= qu.from_ AND (f.valid_to IS NULL OR f.valid_to > qu.from_)) AS status_start,
           max(f.value) FILTER (WHERE f.attr = 'status' AND f.valid_from <= qu.end_ AND (f.valid_to IS NULL OR f.valid_to > qu.end_)) AS status_end,
           max(f.value) FILTER (WHERE f.attr = 'owner' AND f.valid_from <= qu.from_ AND (f.valid_to IS NULL OR f.valid_to > qu.from_)) AS owner_start,
           max(f.value) FILTER (WHERE f.attr = 'owner' AND f.valid_from <= qu.end_ AND (f.valid_to IS NULL OR f.valid_to > qu.end_)) AS owner_end,
           bool_or(f.attr = 'status' AND f.value = 'active') AS active_in_quarter
    FROM quarters qu
    JOIN cf f ON f.kind IN ('product', 'valuestream') AND f.attr IN ('name', 'valuestream', 'status', 'owner') AND f.value IS NOT NULL
         AND f.valid_from <= qu.end_ AND (f.valid_to IS NULL OR f.valid_to > qu.from_)
    GROUP BY qu.quarter, qu.from_, qu.to_, f.kind, f.id
),
owner_changes AS (
    SELECT id, valid_from FROM (
        SELECT id, value, valid_from, lag(value) OVER w AS prev_value, lag(valid_to) OVER w AS prev_to
        FROM cf WHERE kind = 'product' AND attr = 'owner'
        WINDOW w AS (PARTITION BY id ORDER BY valid_from)) x
    WHERE prev_to = valid_from AND prev_value IS NOT NULL AND value IS DISTINCT FROM prev_value
),
active_teams AS (
    SELECT qu.quarter, f.id AS team
    FROM quarters qu JOIN cf f ON f.kind = 'team' AND f.attr = 'status' AND f.value = 'active'
         AND f.valid_from <= qu.end_ AND (f.valid_to IS NULL OR f.valid_to > qu.end_)
),
served AS (
    SELECT qu.quarter, substr(f.attr, 8) AS product, f.id AS team
    FROM quarters qu JOIN cf f ON f.kind = 'team' AND f.attr LIKE 'serves:%' AND f.value = 'true'
         AND f.valid_from <= qu.end_ AND (f.valid_to IS NULL OR f.valid_to > qu.end_)
    JOIN active_teams a ON a.quarter = qu.quarter AND a.team = f.id
),
subject_teams AS (
    SELECT s.quarter, 'product' AS kind, s.product AS id, s.team FROM served s
    UNION
    SELECT s.quarter, 'valuestream', p.valuestream, s.team
    FROM served s JOIN subj p ON p.quarter = s.quarter AND p.kind = 'product' AND p.id = s.product AND p.status_end = 'active'
),
people AS (
    SELECT qu.quarter, f.id,
           max(f.value) FILTER (WHERE f.valid_from <= qu.from_ AND (f.valid_to IS NULL OR f.valid_to > qu.from_)) AS team_start,
           max(f.value) FILTER (WHERE f.valid_from <= qu.end_ AND (f.valid_to IS NULL OR f.valid_to > qu.end_)) AS team_end
    FROM quarters qu JOIN cf f ON f.kind = 'person' AND f.attr = 'team' AND f.value IS NOT NULL
         AND f.valid_from <= qu.end_ AND (f.valid_to IS NULL OR f.valid_to > qu.from_)
    GROUP BY qu.quarter, f.id
),
team_q AS (
    SELECT quarter, team_start AS team, count(*) AS at_start, count(*) FILTER (WHERE team_end = team_start) AS stayed
    FROM people WHERE team_start IS NOT NULL GROUP BY quarter, team_start
),
teams_of AS (
    SELECT st.quarter, st.kind, st.id, array_agg(st.team ORDER BY st.team) AS teams,
           coalesce(sum(t.at_start), 0)::bigint AS at_start, coalesce(sum(t.stayed), 0)::bigint AS stayed
    FROM subject_teams st LEFT JOIN team_q t ON t.quarter = st.quarter AND t.team = st.team
    GROUP BY st.quarter, st.kind, st.id
),
touched AS (
    SELECT qu.quarter, split_part(t.agg, ':', 1) AS kind, substr(t.agg, strpos(t.agg, ':') + 1) AS id, count(DISTINCT t.decision) AS n
    FROM quarters qu
    JOIN subject_decisions(known_seq) t ON t.effective >= qu.from_ AND t.effective < qu.to_
    GROUP BY 1, 2, 3
)
SELECT s.quarter, s.kind, s.id, s.name, s.valuestream, s.status_start, s.status_end, s.owner_start, s.owner_end,
       (SELECT count(*) FROM owner_changes o WHERE o.id = s.id AND s.kind = 'product' AND o.valid_from >= s.from_ AND o.valid_from < s.to_),
       coalesce(t.teams, '{}'), coalesce(t.at_start, 0), coalesce(t.stayed, 0), coalesce(d.n, 0)
FROM subj s
LEFT JOIN teams_of t ON t.quarter = s.quarter AND t.kind = s.kind AND t.id = s.id
LEFT JOIN touched d ON d.quarter = s.quarter AND d.kind = s.kind AND d.id = s.id
WHERE s.active_in_quarter
ORDER BY s.quarter, s.kind, s.id;
END;
-- +goose StatementEnd

REVOKE EXECUTE ON FUNCTION kpi_values(bigint, timestamptz, text, text, text, timestamptz, timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION review_kpis(bigint, timestamptz, timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION review_funding(bigint, timestamptz, timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION subject_decisions(bigint) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION review_subjects(bigint, timestamptz, timestamptz) FROM PUBLIC;

-- +goose Down
DROP FUNCTION review_subjects(bigint, timestamptz, timestamptz);
DROP FUNCTION subject_decisions(bigint);
DROP FUNCTION review_funding(bigint, timestamptz, timestamptz);
DROP FUNCTION review_kpis(bigint, timestamptz, timestamptz);
DROP FUNCTION kpi_values(bigint, timestamptz, text, text, text, timestamptz, timestamptz);
DROP INDEX kpi_measurements_subject;
ALTER TABLE kpi_measurements DROP COLUMN note, DROP COLUMN kind;
ALTER TABLE kpi_measurements RENAME COLUMN subject TO product;
CREATE INDEX kpi_measurements_product ON kpi_measurements (product, kpi, seq);
