-- The reporting views: a stable SQL interface over the read models for BI
-- tools, in their own schema, readable by a role that can read nothing
-- else. {{data}} is the read models' schema, {{reporting}} the views'
-- schema, {{role}} the reading role. Applied by Open and again in the
-- switch transaction of every rebuild: a view binds to the tables it reads,
-- so CREATE OR REPLACE points it at the new ones while it keeps its
-- identity, its grants and its comments. Columns may only ever be added at
-- the end of a view, never renamed, retyped or removed.
--
-- "Today" is now(), and the views show what the ledger knows now: every
-- recorded decision, retractions and corrections applied.

CREATE SCHEMA IF NOT EXISTS {{reporting}};
COMMENT ON SCHEMA {{reporting}} IS 'Koers reporting views: stable, documented, read-only; see COMMENT ON each view and column.';

DO $do$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {{role_literal}}) THEN
        CREATE ROLE {{role}} NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- created meanwhile by another process
END
$do$;

CREATE OR REPLACE VIEW {{reporting}}.decisions AS
SELECT d.id,
       d.seq           AS sequence,
       d.first_seq     AS first_sequence,
       d.actor,
       d.mandate,
       d.reason,
       d.refs,
       d.effective,
       d.recorded_at,
       d.change_kinds,
       d.aggregates,
       d.retracts,
       d.retracted_by,
       d.retracted_by IS NOT NULL AS retracted,
       d.changes
FROM {{data}}.decisions d;
COMMENT ON VIEW {{reporting}}.decisions IS 'The decision log: one row per recorded decision, who took it, on which mandate, why, when it took effect and when it was recorded.';
COMMENT ON COLUMN {{reporting}}.decisions.id IS 'The decision id (its idempotency key).';
COMMENT ON COLUMN {{reporting}}.decisions.sequence IS 'Stream sequence of the decision''s decision.recorded event, its last; orders the log.';
COMMENT ON COLUMN {{reporting}}.decisions.first_sequence IS 'Stream sequence of the decision''s first event.';
COMMENT ON COLUMN {{reporting}}.decisions.actor IS 'The person who took the decision.';
COMMENT ON COLUMN {{reporting}}.decisions.mandate IS 'The mandate it was taken under (see the mandate chain in the audit).';
COMMENT ON COLUMN {{reporting}}.decisions.reason IS 'Why, in the actor''s words.';
COMMENT ON COLUMN {{reporting}}.decisions.refs IS 'Links to minutes or documents; empty array when none.';
COMMENT ON COLUMN {{reporting}}.decisions.effective IS 'Valid time: when the decision takes effect (may be in the past or the future).';
COMMENT ON COLUMN {{reporting}}.decisions.recorded_at IS 'Recorded time: when the ledger recorded it (the log server''s clock).';
COMMENT ON COLUMN {{reporting}}.decisions.change_kinds IS 'The kinds of change it holds, e.g. {person.move,funding.shift}.';
COMMENT ON COLUMN {{reporting}}.decisions.aggregates IS 'Every aggregate it touched, as kind:id (decision:<id> included).';
COMMENT ON COLUMN {{reporting}}.decisions.retracts IS 'The decision this one retracts; NULL when none.';
COMMENT ON COLUMN {{reporting}}.decisions.retracted_by IS 'The decision that retracted this one; NULL when none.';
COMMENT ON COLUMN {{reporting}}.decisions.retracted IS 'Whether a later decision retracted this one.';
COMMENT ON COLUMN {{reporting}}.decisions.changes IS 'The changes as submitted, in the public decision format (JSON array).';

-- Every attribute believed now to hold today.
CREATE OR REPLACE VIEW {{reporting}}.current_attributes AS
SELECT f.kind, f.id, f.attr AS attribute, f.value, f.valid_from, f.decision
FROM {{data}}.facts f
WHERE f.superseded_seq IS NULL AND f.value IS NOT NULL
  AND f.recorded_seq <= (SELECT coalesce(max(seq), 0) FROM {{data}}.decisions)
  AND f.valid_from <= now() AND (f.valid_to IS NULL OR f.valid_to > now());
COMMENT ON VIEW {{reporting}}.current_attributes IS 'Every attribute of every aggregate as it is today, as known now; the other organisation views pivot it.';
COMMENT ON COLUMN {{reporting}}.current_attributes.kind IS 'Aggregate kind: valuestream, product, team, person, project, budget, mandate.';
COMMENT ON COLUMN {{reporting}}.current_attributes.id IS 'Aggregate id.';
COMMENT ON COLUMN {{reporting}}.current_attributes.attribute IS 'Attribute name, e.g. name, status, owner, team, serves:<product>, kpi:<kpi>.';
COMMENT ON COLUMN {{reporting}}.current_attributes.value IS 'Its value today (attributes unset today have no row).';
COMMENT ON COLUMN {{reporting}}.current_attributes.valid_from IS 'Since when (valid time) it has had this value.';
COMMENT ON COLUMN {{reporting}}.current_attributes.decision IS 'The decision the value comes from.';

CREATE OR REPLACE VIEW {{reporting}}.value_streams AS
SELECT id,
       max(value) FILTER (WHERE attribute = 'name')   AS name,
       max(value) FILTER (WHERE attribute = 'status') AS status
FROM {{reporting}}.current_attributes WHERE kind = 'valuestream' GROUP BY id;
COMMENT ON VIEW {{reporting}}.value_streams IS 'Value streams today.';
COMMENT ON COLUMN {{reporting}}.value_streams.id IS 'Value stream id.';
COMMENT ON COLUMN {{reporting}}.value_streams.name IS 'Name.';
COMMENT ON COLUMN {{reporting}}.value_streams.status IS 'active or retired.';

CREATE OR REPLACE VIEW {{reporting}}.products AS
SELECT id,
       max(value) FILTER (WHERE attribute = 'name')        AS name,
       max(value) FILTER (WHERE attribute = 'valuestream') AS value_stream,
       max(value) FILTER (WHERE attribute = 'status')      AS status,
       max(value) FILTER (WHERE attribute = 'owner')       AS owner,
       max(value) FILTER (WHERE attribute = 'project')     AS project
FROM {{reporting}}.current_attributes WHERE kind = 'product' GROUP BY id;
COMMENT ON VIEW {{reporting}}.products IS 'Products today with their value stream and accountable owner.';
COMMENT ON COLUMN {{reporting}}.products.id IS 'Product id.';
COMMENT ON COLUMN {{reporting}}.products.name IS 'Name.';
COMMENT ON COLUMN {{reporting}}.products.value_stream IS 'The value stream it belongs to.';
COMMENT ON COLUMN {{reporting}}.products.status IS 'active or retired.';
COMMENT ON COLUMN {{reporting}}.products.owner IS 'The accountable owner (a person id); NULL when none.';
COMMENT ON COLUMN {{reporting}}.products.project IS 'The project it was converted from; NULL when none.';

CREATE OR REPLACE VIEW {{reporting}}.teams AS
SELECT id,
       max(value) FILTER (WHERE attribute = 'name')   AS name,
       max(value) FILTER (WHERE attribute = 'type')   AS type,
       max(value) FILTER (WHERE attribute = 'status') AS status
FROM {{reporting}}.current_attributes WHERE kind = 'team' GROUP BY id;
COMMENT ON VIEW {{reporting}}.teams IS 'Teams today.';
COMMENT ON COLUMN {{reporting}}.teams.id IS 'Team id.';
COMMENT ON COLUMN {{reporting}}.teams.name IS 'Name.';
COMMENT ON COLUMN {{reporting}}.teams.type IS 'Team Topologies type: stream-aligned, platform, enabling, complicated-subsystem.';
COMMENT ON COLUMN {{reporting}}.teams.status IS 'active or disbanded.';

CREATE OR REPLACE VIEW {{reporting}}.team_products AS
SELECT id AS team, substr(attribute, length('serves:') + 1) AS product, valid_from AS since
FROM {{reporting}}.current_attributes WHERE kind = 'team' AND attribute LIKE 'serves:%';
COMMENT ON VIEW {{reporting}}.team_products IS 'Which team serves which product today.';
COMMENT ON COLUMN {{reporting}}.team_products.team IS 'Team id.';
COMMENT ON COLUMN {{reporting}}.team_products.product IS 'Product id.';
COMMENT ON COLUMN {{reporting}}.team_products.since IS 'Since when (valid time) the team serves it.';

CREATE OR REPLACE VIEW {{reporting}}.people AS
SELECT id,
       max(value) FILTER (WHERE attribute = 'name')   AS name,
       max(value) FILTER (WHERE attribute = 'team')   AS team,
       max(value) FILTER (WHERE attribute = 'status') AS status,
       max(valid_from) FILTER (WHERE attribute = 'team') AS in_team_since
FROM {{reporting}}.current_attributes WHERE kind = 'person' GROUP BY id;
COMMENT ON VIEW {{reporting}}.people IS 'People today and their team.';
COMMENT ON COLUMN {{reporting}}.people.id IS 'Person id.';
COMMENT ON COLUMN {{reporting}}.people.name IS 'Name.';
COMMENT ON COLUMN {{reporting}}.people.team IS 'Their team; NULL when in none.';
COMMENT ON COLUMN {{reporting}}.people.status IS 'active or left.';
COMMENT ON COLUMN {{reporting}}.people.in_team_since IS 'Since when (valid time) the current belief about their team holds; NULL when in no team.';

CREATE OR REPLACE VIEW {{reporting}}.projects AS
SELECT id,
       max(value) FILTER (WHERE attribute = 'name')        AS name,
       max(value) FILTER (WHERE attribute = 'valuestream') AS value_stream,
       max(value) FILTER (WHERE attribute = 'status')      AS status,
       max(value) FILTER (WHERE attribute = 'product')     AS product
FROM {{reporting}}.current_attributes WHERE kind = 'project' GROUP BY id;
COMMENT ON VIEW {{reporting}}.projects IS 'Legacy projects today.';
COMMENT ON COLUMN {{reporting}}.projects.id IS 'Project id.';
COMMENT ON COLUMN {{reporting}}.projects.name IS 'Name.';
COMMENT ON COLUMN {{reporting}}.projects.value_stream IS 'Its value stream; NULL when none.';
COMMENT ON COLUMN {{reporting}}.projects.status IS 'active, closed or converted.';
COMMENT ON COLUMN {{reporting}}.projects.product IS 'The product it was converted into; NULL when not converted.';

CREATE OR REPLACE VIEW {{reporting}}.funding_balances AS
SELECT j.period, j.currency, j.account, split_part(j.account, ':', 1) AS account_kind,
       sum(j.amount_minor)::bigint AS balance_minor
FROM {{data}}.journal j
WHERE j.effective <= now() AND j.seq <= (SELECT coalesce(max(seq), 0) FROM {{data}}.decisions)
GROUP BY j.period, j.currency, j.account;
COMMENT ON VIEW {{reporting}}.funding_balances IS 'Balance of every funding account of every budget period today. Double-entry: per period the balances sum to zero, budget:<period> holding the negated period total.';
COMMENT ON COLUMN {{reporting}}.funding_balances.period IS 'Budget period, e.g. 2026.';
COMMENT ON COLUMN {{reporting}}.funding_balances.currency IS 'ISO 4217 currency of the period.';
COMMENT ON COLUMN {{reporting}}.funding_balances.account IS 'pool, valuestream:<id>, product:<id>, project:<id> or budget:<period>.';
COMMENT ON COLUMN {{reporting}}.funding_balances.account_kind IS 'The part before the colon: pool, valuestream, product, project or budget.';
COMMENT ON COLUMN {{reporting}}.funding_balances.balance_minor IS 'Balance in minor units of the currency (cents for EUR); exact, never a float.';

-- The quarters from the first fact's to today's, in UTC, with the last
-- decision known now.
CREATE OR REPLACE VIEW {{reporting}}.transition_metrics AS
WITH known AS (SELECT coalesce(max(seq), 0) AS seq FROM {{data}}.decisions),
cf AS (
    SELECT f.kind, f.id, f.attr, f.value, f.valid_from, f.valid_to
    FROM {{data}}.facts f, known WHERE f.superseded_seq IS NULL AND f.recorded_seq <= known.seq
),
-- Stints: runs of adjacent team intervals of one person with one team.
team_rows AS (
    SELECT id, value, valid_from, valid_to,
           CASE WHEN lag(value) OVER w = value AND lag(valid_to) OVER w = valid_from THEN 0 ELSE 1 END AS brk
    FROM cf WHERE kind = 'person' AND attr = 'team'
    WINDOW w AS (PARTITION BY id ORDER BY valid_from)
),
stints AS (
    SELECT id, value AS team, min(valid_from) AS start_, CASE WHEN bool_or(valid_to IS NULL) THEN NULL ELSE max(valid_to) END AS end_
    FROM (SELECT *, sum(brk) OVER (PARTITION BY id ORDER BY valid_from) AS grp FROM team_rows) x
    WHERE value IS NOT NULL
    GROUP BY id, value, grp
),
quarters AS (
    SELECT to_char(q, 'YYYY"-Q"Q') AS quarter, q AT TIME ZONE 'UTC' AS from_, (q + interval '3 months') AT TIME ZONE 'UTC' AS to_
    FROM generate_series(date_trunc('quarter', (SELECT min(valid_from) FROM cf) AT TIME ZONE 'UTC'),
                         date_trunc('quarter', now() AT TIME ZONE 'UTC'), interval '3 months') q
),
m AS (
    SELECT qu.quarter, qu.from_, qu.to_, p.active_products, p.owned_products, o.owner_changes,
           s.people_at_start, s.stayed_in_team, c.projects_converted, tn.people_in_teams, tn.median_tenure_days
    FROM quarters qu
    CROSS JOIN LATERAL (
        SELECT count(*) FILTER (WHERE x.status = 'active') AS active_products,
               count(*) FILTER (WHERE x.status = 'active' AND x.owner IS NOT NULL) AS owned_products
        FROM (SELECT id, max(value) FILTER (WHERE attr = 'status') AS status, max(value) FILTER (WHERE attr = 'owner') AS owner
              FROM cf WHERE kind = 'product' AND attr IN ('status', 'owner') AND value IS NOT NULL
                AND valid_from <= qu.to_ - interval '1 microsecond' AND (valid_to IS NULL OR valid_to > qu.to_ - interval '1 microsecond')
              GROUP BY id) x
    ) p
    CROSS JOIN LATERAL (
        SELECT count(*) AS owner_changes
        FROM cf cur JOIN cf prev ON prev.kind = 'product' AND prev.attr = 'owner' AND prev.id = cur.id AND prev.valid_to = cur.valid_from
        WHERE cur.kind = 'product' AND cur.attr = 'owner' AND cur.valid_from >= qu.from_ AND cur.valid_from < qu.to_
          AND prev.value IS NOT NULL AND cur.value IS DISTINCT FROM prev.value
    ) o
    CROSS JOIN LATERAL (
        SELECT count(*) AS people_at_start,
               count(*) FILTER (WHERE e.status = 'active' AND e.team = s.team) AS stayed_in_team
        FROM (SELECT id, max(value) FILTER (WHERE attr = 'status') AS status, max(value) FILTER (WHERE attr = 'team') AS team
              FROM cf WHERE kind = 'person' AND attr IN ('status', 'team') AND value IS NOT NULL
                AND valid_from <= qu.from_ AND (valid_to IS NULL OR valid_to > qu.from_)
              GROUP BY id) s
        LEFT JOIN (SELECT id, max(value) FILTER (WHERE attr = 'status') AS status, max(value) FILTER (WHERE attr = 'team') AS team
              FROM cf WHERE kind = 'person' AND attr IN ('status', 'team') AND value IS NOT NULL
                AND valid_from <= qu.to_ - interval '1 microsecond' AND (valid_to IS NULL OR valid_to > qu.to_ - interval '1 microsecond')
              GROUP BY id) e USING (id)
        WHERE s.status = 'active' AND s.team IS NOT NULL
    ) s
    CROSS JOIN LATERAL (
        SELECT count(*) AS projects_converted FROM cf
        WHERE kind = 'project' AND attr = 'status' AND value = 'converted' AND valid_from >= qu.from_ AND valid_from < qu.to_
    ) c
    CROSS JOIN LATERAL (
        SELECT count(*) AS people_in_teams,
               coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM qu.to_ - st.start_) / 86400), 0) AS median_tenure_days
        FROM (SELECT id, max(value) FILTER (WHERE attr = 'status') AS status, max(value) FILTER (WHERE attr = 'team') AS team
              FROM cf WHERE kind = 'person' AND attr IN ('status', 'team') AND value IS NOT NULL
                AND valid_from <= qu.to_ - interval '1 microsecond' AND (valid_to IS NULL OR valid_to > qu.to_ - interval '1 microsecond')
              GROUP BY id) e
        JOIN stints st ON st.id = e.id AND st.team = e.team
             AND st.start_ <= qu.to_ - interval '1 microsecond' AND (st.end_ IS NULL OR st.end_ > qu.to_ - interval '1 microsecond')
        WHERE e.status = 'active'
    ) tn
)
SELECT quarter, from_ AS quarter_from, to_ AS quarter_to,
       active_products, owned_products,
       CASE WHEN active_products = 0 THEN 1 ELSE owned_products::float8 / active_products END AS ownership_coverage,
       owner_changes,
       CASE WHEN active_products = 0 THEN 0 ELSE owner_changes::float8 / active_products END AS ownership_churn,
       people_at_start, stayed_in_team,
       CASE WHEN people_at_start = 0 THEN 1 ELSE stayed_in_team::float8 / people_at_start END AS team_stability,
       projects_converted,
       people_in_teams,
       median_tenure_days
FROM m;
COMMENT ON VIEW {{reporting}}.transition_metrics IS 'Per quarter (UTC) from the first recorded fact''s to the current one, as known now: is the organisation steered by products? The same figures as koers transition.';
COMMENT ON COLUMN {{reporting}}.transition_metrics.quarter IS 'The quarter, e.g. 2026-Q2.';
COMMENT ON COLUMN {{reporting}}.transition_metrics.quarter_from IS 'Its first instant (inclusive).';
COMMENT ON COLUMN {{reporting}}.transition_metrics.quarter_to IS 'The next quarter''s first instant (exclusive).';
COMMENT ON COLUMN {{reporting}}.transition_metrics.active_products IS 'Active products at the end of the quarter.';
COMMENT ON COLUMN {{reporting}}.transition_metrics.owned_products IS 'Of those, the ones with an accountable owner.';
COMMENT ON COLUMN {{reporting}}.transition_metrics.ownership_coverage IS 'owned_products / active_products; 1 when there are no products.';
COMMENT ON COLUMN {{reporting}}.transition_metrics.owner_changes IS 'Owners replaced or removed during the quarter.';
COMMENT ON COLUMN {{reporting}}.transition_metrics.ownership_churn IS 'owner_changes / active_products; 0 when there are no products.';
COMMENT ON COLUMN {{reporting}}.transition_metrics.people_at_start IS 'Active people in a team when the quarter began.';
COMMENT ON COLUMN {{reporting}}.transition_metrics.stayed_in_team IS 'Of those, the ones in the same team when it ended.';
COMMENT ON COLUMN {{reporting}}.transition_metrics.team_stability IS 'stayed_in_team / people_at_start; 1 when nobody was in a team.';
COMMENT ON COLUMN {{reporting}}.transition_metrics.projects_converted IS 'Projects converted into products during the quarter.';
COMMENT ON COLUMN {{reporting}}.transition_metrics.people_in_teams IS 'Active people in a team at the end of the quarter.';
COMMENT ON COLUMN {{reporting}}.transition_metrics.median_tenure_days IS 'Median of how long each of them had been in that team without a break at the end of the quarter, in days; 0 when nobody. A move away and back starts a new stint.';

CREATE OR REPLACE VIEW {{reporting}}.transition_funding AS
WITH known AS (SELECT coalesce(max(seq), 0) AS seq FROM {{data}}.decisions),
quarters AS (
    SELECT quarter, quarter_from, quarter_to FROM {{reporting}}.transition_metrics
),
f AS (
    SELECT qu.quarter, j.currency,
           coalesce(sum(j.amount_minor) FILTER (WHERE split_part(j.account, ':', 1) = 'product'), 0)::bigint     AS products_minor,
           coalesce(sum(j.amount_minor) FILTER (WHERE split_part(j.account, ':', 1) = 'valuestream'), 0)::bigint AS value_streams_minor,
           coalesce(sum(j.amount_minor) FILTER (WHERE split_part(j.account, ':', 1) = 'project'), 0)::bigint     AS projects_minor
    FROM quarters qu, known
    JOIN {{data}}.journal j ON j.seq <= known.seq
    WHERE j.effective <= qu.quarter_to - interval '1 microsecond'
      AND j.account LIKE '%:%' AND j.account NOT LIKE 'budget:%'
    GROUP BY qu.quarter, j.currency
)
SELECT quarter, currency, products_minor, value_streams_minor, projects_minor,
       CASE WHEN products_minor + value_streams_minor + projects_minor > 0
            THEN (products_minor + value_streams_minor)::float8 / (products_minor + value_streams_minor + projects_minor)
            ELSE 0 END AS product_share
FROM f;
COMMENT ON VIEW {{reporting}}.transition_funding IS 'Per quarter and currency, as known now: the money on product, value-stream and project accounts at the end of the quarter, over every budget period.';
COMMENT ON COLUMN {{reporting}}.transition_funding.quarter IS 'The quarter, e.g. 2026-Q2 (see transition_metrics).';
COMMENT ON COLUMN {{reporting}}.transition_funding.currency IS 'ISO 4217 currency.';
COMMENT ON COLUMN {{reporting}}.transition_funding.products_minor IS 'On product:<id> accounts, minor units.';
COMMENT ON COLUMN {{reporting}}.transition_funding.value_streams_minor IS 'On valuestream:<id> accounts, minor units.';
COMMENT ON COLUMN {{reporting}}.transition_funding.projects_minor IS 'On project:<id> accounts, minor units.';
COMMENT ON COLUMN {{reporting}}.transition_funding.product_share IS '(products + value streams) / (products + value streams + projects); 0 when nothing is allocated.';

GRANT USAGE ON SCHEMA {{reporting}} TO {{role}};
GRANT SELECT ON ALL TABLES IN SCHEMA {{reporting}} TO {{role}};
