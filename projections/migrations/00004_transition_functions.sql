-- +goose Up

-- The transition metrics, computed here and only here: Go's
-- DB.Transition asks these functions for one quarter, and the reporting
-- views transition_metrics and transition_funding ask them for every
-- quarter up to today. They answer as known at stream sequence known_seq
-- (the beliefs recorded through it and not superseded by then), for each
-- quarter (UTC) from the one holding first_quarter to the one holding
-- last_quarter.
--
-- The bodies are SQL-standard (BEGIN ATOMIC): parsed once, bound to the
-- tables like a view, so a rebuild's schema rename carries them along and
-- no search_path is consulted when they run. SECURITY DEFINER lets the
-- reporting role, which may read the views but not the tables, run them
-- through the views; EXECUTE is granted to that role only (reporting.sql).
--
-- Each figure is one pass over the facts per quarter (grouped, never a
-- join of people with people), so the cost stays linear in the size of
-- the organisation.

-- +goose StatementBegin
CREATE FUNCTION transition_metrics(known_seq bigint, first_quarter timestamptz, last_quarter timestamptz)
RETURNS TABLE (
    quarter            text,
    quarter_from       timestamptz,
    quarter_to         timestamptz,
    active_products    bigint,
    owned_products     bigint,
    ownership_coverage float8,
    owner_changes      bigint,
    ownership_churn    float8,
    people_at_start    bigint,
    stayed_in_team     bigint,
    team_stability     float8,
    projects_converted bigint,
    people_in_teams    bigint,
    median_tenure_days float8)
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
BEGIN ATOMIC
WITH cf AS (
    SELECT f.kind, f.id, f.attr, f.value, f.valid_from, f.valid_to
    FROM facts f
    WHERE f.kind IN ('person', 'product', 'project') AND f.recorded_seq <= known_seq
      AND (f.superseded_seq IS NULL OR f.superseded_seq > known_seq)
),
quarters AS (
    SELECT to_char(q, 'YYYY"-Q"Q') AS quarter, q AT TIME ZONE 'UTC' AS from_, (q + interval '3 months') AT TIME ZONE 'UTC' AS to_,
           (q + interval '3 months') AT TIME ZONE 'UTC' - interval '1 microsecond' AS end_
    FROM generate_series(date_trunc('quarter', first_quarter AT TIME ZONE 'UTC'),
                         date_trunc('quarter', last_quarter AT TIME ZONE 'UTC'), interval '3 months') q
),
-- A person's team rows, each with the start of its stint: the run of
-- adjacent rows with the same team it belongs to. A move away and back
-- starts a new stint.
team_rows AS (
    SELECT id, value, valid_from, valid_to,
           CASE WHEN lag(value) OVER w = value AND lag(valid_to) OVER w = valid_from THEN 0 ELSE 1 END AS brk
    FROM cf WHERE kind = 'person' AND attr = 'team'
    WINDOW w AS (PARTITION BY id ORDER BY valid_from)
),
person_rows AS (
    SELECT id, attr, value, valid_from, valid_to, NULL::timestamptz AS stint_start
    FROM cf WHERE kind = 'person' AND attr = 'status' AND value IS NOT NULL
    UNION ALL
    SELECT id, 'team', value, valid_from, valid_to, stint_start
    FROM (SELECT id, value, valid_from, valid_to, grp, min(valid_from) OVER (PARTITION BY id, grp) AS stint_start
          FROM (SELECT *, sum(brk) OVER (PARTITION BY id ORDER BY valid_from) AS grp FROM team_rows) g) s
    WHERE value IS NOT NULL
),
people AS (
    SELECT qu.quarter, qu.to_, r.id,
           max(r.value) FILTER (WHERE r.attr = 'status' AND r.valid_from <= qu.from_ AND (r.valid_to IS NULL OR r.valid_to > qu.from_)) AS status_start,
           max(r.value) FILTER (WHERE r.attr = 'team' AND r.valid_from <= qu.from_ AND (r.valid_to IS NULL OR r.valid_to > qu.from_)) AS team_start,
           max(r.value) FILTER (WHERE r.attr = 'status' AND r.valid_from <= qu.end_ AND (r.valid_to IS NULL OR r.valid_to > qu.end_)) AS status_end,
           max(r.value) FILTER (WHERE r.attr = 'team' AND r.valid_from <= qu.end_ AND (r.valid_to IS NULL OR r.valid_to > qu.end_)) AS team_end,
           max(r.stint_start) FILTER (WHERE r.attr = 'team' AND r.valid_from <= qu.end_ AND (r.valid_to IS NULL OR r.valid_to > qu.end_)) AS stint_start
    FROM quarters qu JOIN person_rows r ON r.valid_from <= qu.end_ AND (r.valid_to IS NULL OR r.valid_to > qu.from_)
    GROUP BY qu.quarter, qu.to_, r.id
),
people_q AS (
    SELECT quarter,
           count(*) FILTER (WHERE status_start = 'active' AND team_start IS NOT NULL) AS people_at_start,
           count(*) FILTER (WHERE status_start = 'active' AND team_start IS NOT NULL AND status_end = 'active' AND team_end = team_start) AS stayed_in_team,
           count(*) FILTER (WHERE status_end = 'active' AND team_end IS NOT NULL) AS people_in_teams,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM to_ - stint_start) / 86400)
               FILTER (WHERE status_end = 'active' AND team_end IS NOT NULL) AS median_tenure_days
    FROM people GROUP BY quarter
),
products_q AS (
    SELECT quarter, count(*) FILTER (WHERE status = 'active') AS active_products,
           count(*) FILTER (WHERE status = 'active' AND owner IS NOT NULL) AS owned_products
    FROM (SELECT qu.quarter, r.id, max(r.value) FILTER (WHERE r.attr = 'status') AS status, max(r.value) FILTER (WHERE r.attr = 'owner') AS owner
          FROM quarters qu JOIN cf r ON r.kind = 'product' AND r.attr IN ('status', 'owner') AND r.value IS NOT NULL
               AND r.valid_from <= qu.end_ AND (r.valid_to IS NULL OR r.valid_to > qu.end_)
          GROUP BY qu.quarter, r.id) x
    GROUP BY quarter
),
-- An owner change: an owner row right after a row with another, non-null
-- owner (an owner replaced or removed).
owner_changes AS (
    SELECT valid_from FROM (
        SELECT value, valid_from, lag(value) OVER w AS prev_value, lag(valid_to) OVER w AS prev_to
        FROM cf WHERE kind = 'product' AND attr = 'owner'
        WINDOW w AS (PARTITION BY id ORDER BY valid_from)) x
    WHERE prev_to = valid_from AND prev_value IS NOT NULL AND value IS DISTINCT FROM prev_value
),
m AS (
    SELECT qu.quarter, qu.from_, qu.to_,
           coalesce(p.active_products, 0) AS active_products, coalesce(p.owned_products, 0) AS owned_products,
           (SELECT count(*) FROM owner_changes o WHERE o.valid_from >= qu.from_ AND o.valid_from < qu.to_) AS owner_changes,
           coalesce(s.people_at_start, 0) AS people_at_start, coalesce(s.stayed_in_team, 0) AS stayed_in_team,
           (SELECT count(*) FROM cf WHERE kind = 'project' AND attr = 'status' AND value = 'converted'
              AND valid_from >= qu.from_ AND valid_from < qu.to_) AS projects_converted,
           coalesce(s.people_in_teams, 0) AS people_in_teams, coalesce(s.median_tenure_days, 0) AS median_tenure_days
    FROM quarters qu
    LEFT JOIN products_q p ON p.quarter = qu.quarter
    LEFT JOIN people_q s ON s.quarter = qu.quarter
)
SELECT quarter, from_, to_,
       active_products, owned_products,
       CASE WHEN active_products = 0 THEN 1 ELSE owned_products::float8 / active_products END,
       owner_changes,
       CASE WHEN active_products = 0 THEN 0 ELSE owner_changes::float8 / active_products END,
       people_at_start, stayed_in_team,
       CASE WHEN people_at_start = 0 THEN 1 ELSE stayed_in_team::float8 / people_at_start END,
       projects_converted,
       people_in_teams,
       median_tenure_days
FROM m ORDER BY from_;
END;
-- +goose StatementEnd

-- The money on product, value-stream and project accounts at the end of
-- each quarter, over every budget period, per currency, as known at
-- known_seq.
-- +goose StatementBegin
CREATE FUNCTION transition_funding(known_seq bigint, first_quarter timestamptz, last_quarter timestamptz)
RETURNS TABLE (
    quarter             text,
    currency            text,
    products_minor      bigint,
    value_streams_minor bigint,
    projects_minor      bigint,
    product_share       float8)
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
BEGIN ATOMIC
WITH quarters AS (
    SELECT to_char(q, 'YYYY"-Q"Q') AS quarter,
           (q + interval '3 months') AT TIME ZONE 'UTC' - interval '1 microsecond' AS end_
    FROM generate_series(date_trunc('quarter', first_quarter AT TIME ZONE 'UTC'),
                         date_trunc('quarter', last_quarter AT TIME ZONE 'UTC'), interval '3 months') q
),
f AS (
    SELECT qu.quarter, j.currency,
           coalesce(sum(j.amount_minor) FILTER (WHERE split_part(j.account, ':', 1) = 'product'), 0)::bigint     AS products_minor,
           coalesce(sum(j.amount_minor) FILTER (WHERE split_part(j.account, ':', 1) = 'valuestream'), 0)::bigint AS value_streams_minor,
           coalesce(sum(j.amount_minor) FILTER (WHERE split_part(j.account, ':', 1) = 'project'), 0)::bigint     AS projects_minor
    FROM quarters qu
    JOIN journal j ON j.seq <= known_seq AND j.effective <= qu.end_
    WHERE j.account LIKE '%:%' AND j.account NOT LIKE 'budget:%'
    GROUP BY qu.quarter, j.currency
)
SELECT quarter, currency, products_minor, value_streams_minor, projects_minor,
       CASE WHEN products_minor + value_streams_minor + projects_minor > 0
            THEN (products_minor + value_streams_minor)::float8 / (products_minor + value_streams_minor + projects_minor)
            ELSE 0 END
FROM f ORDER BY quarter, currency;
END;
-- +goose StatementEnd

REVOKE EXECUTE ON FUNCTION transition_metrics(bigint, timestamptz, timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION transition_funding(bigint, timestamptz, timestamptz) FROM PUBLIC;

-- +goose Down
DROP FUNCTION transition_funding(bigint, timestamptz, timestamptz);
DROP FUNCTION transition_metrics(bigint, timestamptz, timestamptz);
