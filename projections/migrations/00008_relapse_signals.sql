-- +goose Up

-- Relapse signals in the transition metrics, still computed in one place:
-- transition_metrics and transition_funding of migration 00004 come back
-- with columns added at the end (so the reporting views, which only grow
-- at the end, keep their columns). Dropping them drops the reporting views
-- that call them (CASCADE); the views are created again when the read
-- models are opened, which follows every migration.
--
-- transition_metrics adds, per quarter:
--   teams_disbanded_after_close  teams disbanded within 90 days after a
--                                project closed (a project team breaking up)
--   decisions_root, _delegated,  decisions effective in the quarter taken
--   _board                       under the root mandate, under a mandate
--                                delegated from it, with a board's approvals
--   kpi_subjects, _covered,      active products and value streams at the
--   kpi_coverage                 quarter's end, those with a KPI that has a
--                                target and a value in the quarter, and the
--                                share (0 when none)
-- transition_funding adds closed_projects_minor: the money still on the
-- accounts of projects closed by the quarter's end. Since project.close
-- releases what a project holds to the pool, only closures recorded before
-- that rule leave money there.

DROP FUNCTION transition_metrics(bigint, timestamptz, timestamptz) CASCADE;
DROP FUNCTION transition_funding(bigint, timestamptz, timestamptz) CASCADE;

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
    median_tenure_days float8,
    teams_disbanded_after_close bigint,
    decisions_root     bigint,
    decisions_delegated bigint,
    decisions_board    bigint,
    kpi_subjects       bigint,
    kpi_subjects_covered bigint,
    kpi_coverage       float8)
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
-- Relapse signals. A team disbanded within 90 days after a project
-- closed: the project's team breaking up with it.
disbanded_after_close AS (
    SELECT qu.quarter, count(DISTINCT d.id) AS n
    FROM quarters qu
    JOIN facts d ON d.kind = 'team' AND d.attr = 'status' AND d.value = 'disbanded' AND d.valid_from >= qu.from_ AND d.valid_from < qu.to_
         AND d.recorded_seq <= known_seq AND (d.superseded_seq IS NULL OR d.superseded_seq > known_seq)
    WHERE EXISTS (SELECT 1 FROM cf c WHERE c.kind = 'project' AND c.attr = 'status' AND c.value = 'closed'
                  AND c.valid_from <= d.valid_from AND c.valid_from > d.valid_from - interval '90 days')
    GROUP BY qu.quarter
),
-- Decisions effective in the quarter by the authority they were taken
-- under: a board's approvals, the root mandate (granted by no other), or
-- a mandate delegated from it.
delegated AS (
    SELECT DISTINCT f.id FROM facts f
    WHERE f.kind = 'mandate' AND f.attr = 'grantor' AND f.value IS NOT NULL
      AND f.recorded_seq <= known_seq AND (f.superseded_seq IS NULL OR f.superseded_seq > known_seq)
),
authority_q AS (
    SELECT qu.quarter,
           count(*) FILTER (WHERE cardinality(d.approvers) > 0) AS board,
           count(*) FILTER (WHERE cardinality(d.approvers) = 0 AND g.id IS NULL) AS root,
           count(*) FILTER (WHERE cardinality(d.approvers) = 0 AND g.id IS NOT NULL) AS delegated
    FROM quarters qu
    JOIN decisions d ON d.seq <= known_seq AND d.effective >= qu.from_ AND d.effective < qu.to_
    LEFT JOIN delegated g ON g.id = d.mandate
    GROUP BY qu.quarter
),
-- KPI coverage: the active products and value streams at the end of the
-- quarter, and those of them with a KPI that has a target at the end of
-- the quarter (its own for the quarter or the default, as in kpi_values
-- of migration 00007) and a value measured in the quarter.
sf AS (
    SELECT f.kind, f.id, f.attr, f.valid_from, f.valid_to
    FROM facts f
    WHERE f.kind IN ('product', 'valuestream') AND f.value IS NOT NULL
      AND ((f.attr = 'status' AND f.value = 'active') OR f.attr LIKE 'kpi-target:%')
      AND f.recorded_seq <= known_seq AND (f.superseded_seq IS NULL OR f.superseded_seq > known_seq)
),
active_subjects AS (
    SELECT DISTINCT qu.quarter, f.kind, f.id
    FROM quarters qu JOIN sf f ON f.attr = 'status' AND f.valid_from <= qu.end_ AND (f.valid_to IS NULL OR f.valid_to > qu.end_)
),
targets AS (
    SELECT qu.quarter, f.kind, f.id, substr(f.attr, 12) AS key
    FROM quarters qu JOIN sf f ON f.attr LIKE 'kpi-target:%' AND f.valid_from <= qu.end_ AND (f.valid_to IS NULL OR f.valid_to > qu.end_)
),
covered AS (
    SELECT DISTINCT qu.quarter, m.kind, m.subject AS id
    FROM quarters qu
    JOIN kpi_measurements m ON m.seq <= known_seq AND (m.retracted_seq IS NULL OR m.retracted_seq > known_seq)
         AND m.effective >= qu.from_ AND m.effective < qu.to_
    JOIN targets t ON t.quarter = qu.quarter AND t.kind = m.kind AND t.id = m.subject
         AND (t.key = m.kpi OR t.key = m.kpi || '@' || qu.quarter)
),
kpi_q AS (
    SELECT a.quarter, count(*) AS subjects, count(c.id) AS covered
    FROM active_subjects a LEFT JOIN covered c ON c.quarter = a.quarter AND c.kind = a.kind AND c.id = a.id
    GROUP BY a.quarter
),
m AS (
    SELECT qu.quarter, qu.from_, qu.to_,
           coalesce(p.active_products, 0) AS active_products, coalesce(p.owned_products, 0) AS owned_products,
           (SELECT count(*) FROM owner_changes o WHERE o.valid_from >= qu.from_ AND o.valid_from < qu.to_) AS owner_changes,
           coalesce(s.people_at_start, 0) AS people_at_start, coalesce(s.stayed_in_team, 0) AS stayed_in_team,
           (SELECT count(*) FROM cf WHERE kind = 'project' AND attr = 'status' AND value = 'converted'
              AND valid_from >= qu.from_ AND valid_from < qu.to_) AS projects_converted,
           coalesce(s.people_in_teams, 0) AS people_in_teams, coalesce(s.median_tenure_days, 0) AS median_tenure_days,
           coalesce(dc.n, 0) AS teams_disbanded_after_close,
           coalesce(au.root, 0) AS decisions_root, coalesce(au.delegated, 0) AS decisions_delegated, coalesce(au.board, 0) AS decisions_board,
           coalesce(k.subjects, 0) AS kpi_subjects, coalesce(k.covered, 0) AS kpi_subjects_covered
    FROM quarters qu
    LEFT JOIN products_q p ON p.quarter = qu.quarter
    LEFT JOIN people_q s ON s.quarter = qu.quarter
    LEFT JOIN disbanded_after_close dc ON dc.quarter = qu.quarter
    LEFT JOIN authority_q au ON au.quarter = qu.quarter
    LEFT JOIN kpi_q k ON k.quarter = qu.quarter
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
       median_tenure_days,
       teams_disbanded_after_close,
       decisions_root, decisions_delegated, decisions_board,
       kpi_subjects, kpi_subjects_covered,
       CASE WHEN kpi_subjects = 0 THEN 0 ELSE kpi_subjects_covered::float8 / kpi_subjects END
FROM m ORDER BY from_;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION transition_funding(known_seq bigint, first_quarter timestamptz, last_quarter timestamptz)
RETURNS TABLE (
    quarter             text,
    currency            text,
    products_minor      bigint,
    value_streams_minor bigint,
    projects_minor      bigint,
    product_share       float8,
    closed_projects_minor bigint)
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
BEGIN ATOMIC
WITH closed AS (
    -- Projects closed by each quarter's end (not converted, not reopened).
    SELECT f.id, f.valid_from, f.valid_to FROM facts f
    WHERE f.kind = 'project' AND f.attr = 'status' AND f.value = 'closed' AND f.recorded_seq <= known_seq
      AND (f.superseded_seq IS NULL OR f.superseded_seq > known_seq)
),
quarters AS (
    SELECT to_char(q, 'YYYY"-Q"Q') AS quarter,
           (q + interval '3 months') AT TIME ZONE 'UTC' - interval '1 microsecond' AS end_
    FROM generate_series(date_trunc('quarter', first_quarter AT TIME ZONE 'UTC'),
                         date_trunc('quarter', last_quarter AT TIME ZONE 'UTC'), interval '3 months') q
),
closed_at AS (
    SELECT qu.quarter, 'project:' || c.id AS account
    FROM quarters qu JOIN closed c ON c.valid_from <= qu.end_ AND (c.valid_to IS NULL OR c.valid_to > qu.end_)
),
f AS (
    SELECT qu.quarter, j.currency,
           coalesce(sum(j.amount_minor) FILTER (WHERE split_part(j.account, ':', 1) = 'product'), 0)::bigint     AS products_minor,
           coalesce(sum(j.amount_minor) FILTER (WHERE split_part(j.account, ':', 1) = 'valuestream'), 0)::bigint AS value_streams_minor,
           coalesce(sum(j.amount_minor) FILTER (WHERE split_part(j.account, ':', 1) = 'project'), 0)::bigint     AS projects_minor,
           coalesce(sum(j.amount_minor) FILTER (WHERE ca.account IS NOT NULL), 0)::bigint AS closed_projects_minor
    FROM quarters qu
    JOIN journal j ON j.seq <= known_seq AND j.effective <= qu.end_
    LEFT JOIN closed_at ca ON ca.quarter = qu.quarter AND ca.account = j.account
    WHERE j.account LIKE '%:%' AND j.account NOT LIKE 'budget:%'
    GROUP BY qu.quarter, j.currency
)
SELECT quarter, currency, products_minor, value_streams_minor, projects_minor,
       CASE WHEN products_minor + value_streams_minor + projects_minor > 0
            THEN (products_minor + value_streams_minor)::float8 / (products_minor + value_streams_minor + projects_minor)
            ELSE 0 END,
       closed_projects_minor
FROM f ORDER BY quarter, currency;
END;
-- +goose StatementEnd

REVOKE EXECUTE ON FUNCTION transition_metrics(bigint, timestamptz, timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION transition_funding(bigint, timestamptz, timestamptz) FROM PUBLIC;

-- +goose Down
-- The functions of 00004 come back by running its Up again: this
-- migration is not undone in place.
SELECT 1;
