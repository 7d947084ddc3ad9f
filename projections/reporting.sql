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
COMMENT ON SCHEMA {{reporting}} IS 'Koers reporting views: stable, documented, read-only; see COMMENT ON each view and column. (definition {{definition}})';

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
       d.changes,
       d.authority_chain,
       d.approvers
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
COMMENT ON COLUMN {{reporting}}.decisions.authority_chain IS 'The authority chain as it was when the decision was recorded: JSON array of {mandate, holder}, its mandate first, the root last; empty for decisions recorded before it was kept.';
COMMENT ON COLUMN {{reporting}}.decisions.approvers IS 'The board members whose approvals decided it (decisions under a board''s mandate); empty otherwise.';


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

-- The quarters from the first fact's to today's, in UTC, as known now
-- (through the last decision). The figures are computed by the read
-- models' function transition_metrics (migration 00004), the one place
-- that computes them; koers report transition asks it too.
CREATE OR REPLACE VIEW {{reporting}}.transition_metrics AS
SELECT m.quarter, m.quarter_from, m.quarter_to,
       m.active_products, m.owned_products, m.ownership_coverage,
       m.owner_changes, m.ownership_churn,
       m.people_at_start, m.stayed_in_team, m.team_stability,
       m.projects_converted,
       m.people_in_teams,
       m.median_tenure_days,
       m.teams_disbanded_after_close,
       m.decisions_root, m.decisions_delegated, m.decisions_board,
       m.kpi_subjects, m.kpi_subjects_covered, m.kpi_coverage
FROM (SELECT coalesce(max(seq), 0) AS seq FROM {{data}}.decisions) known,
     LATERAL {{data}}.transition_metrics(known.seq,
         (SELECT min(f.valid_from) FROM {{data}}.facts f WHERE f.superseded_seq IS NULL AND f.recorded_seq <= known.seq),
         now()) m;
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
COMMENT ON COLUMN {{reporting}}.transition_metrics.teams_disbanded_after_close IS 'Relapse signal: teams disbanded in the quarter within 90 days after a project closed.';
COMMENT ON COLUMN {{reporting}}.transition_metrics.decisions_root IS 'Decisions effective in the quarter under the root mandate.';
COMMENT ON COLUMN {{reporting}}.transition_metrics.decisions_delegated IS 'Decisions effective in the quarter under a mandate delegated from the root (without a board).';
COMMENT ON COLUMN {{reporting}}.transition_metrics.decisions_board IS 'Decisions effective in the quarter approved by a board''s quorum.';
COMMENT ON COLUMN {{reporting}}.transition_metrics.kpi_subjects IS 'Active products and value streams at the end of the quarter.';
COMMENT ON COLUMN {{reporting}}.transition_metrics.kpi_subjects_covered IS 'Of those, the ones with a KPI that has a target and a value in the quarter.';
COMMENT ON COLUMN {{reporting}}.transition_metrics.kpi_coverage IS 'kpi_subjects_covered / kpi_subjects; 0 when there are none.';

-- Computed by the read models' function transition_funding (migration
-- 00004) over the quarters of transition_metrics.
CREATE OR REPLACE VIEW {{reporting}}.transition_funding AS
SELECT m.quarter, m.currency, m.products_minor, m.value_streams_minor, m.projects_minor, m.product_share, m.closed_projects_minor
FROM (SELECT coalesce(max(seq), 0) AS seq FROM {{data}}.decisions) known,
     LATERAL {{data}}.transition_funding(known.seq,
         (SELECT min(f.valid_from) FROM {{data}}.facts f WHERE f.superseded_seq IS NULL AND f.recorded_seq <= known.seq),
         now()) m;
COMMENT ON VIEW {{reporting}}.transition_funding IS 'Per quarter and currency, as known now: the money on product, value-stream and project accounts at the end of the quarter, over every budget period.';
COMMENT ON COLUMN {{reporting}}.transition_funding.quarter IS 'The quarter, e.g. 2026-Q2 (see transition_metrics).';
COMMENT ON COLUMN {{reporting}}.transition_funding.currency IS 'ISO 4217 currency.';
COMMENT ON COLUMN {{reporting}}.transition_funding.products_minor IS 'On product:<id> accounts, minor units.';
COMMENT ON COLUMN {{reporting}}.transition_funding.value_streams_minor IS 'On valuestream:<id> accounts, minor units.';
COMMENT ON COLUMN {{reporting}}.transition_funding.projects_minor IS 'On project:<id> accounts, minor units.';
COMMENT ON COLUMN {{reporting}}.transition_funding.product_share IS '(products + value streams) / (products + value streams + projects); 0 when nothing is allocated.';
COMMENT ON COLUMN {{reporting}}.transition_funding.closed_projects_minor IS 'Relapse signal: money still on the accounts of projects closed by the end of the quarter, minor units (project.close releases it to the pool; only older closures leave any).';

-- Computed by the read models' function kpi_values (migration 00006), as
-- known now, as of now; koers kpi and the review ask it too.
CREATE OR REPLACE VIEW {{reporting}}.kpi_values AS
SELECT v.kind, v.id, v.kpi, v.category, v.unit, v.direction, v.effective, v.quarter, v.value, v.target, v.on_target,
       v.note, v.decision, v.seq AS sequence, v.recorded_at
FROM (SELECT coalesce(max(seq), 0) AS seq FROM {{data}}.decisions) known,
     LATERAL {{data}}.kpi_values(known.seq, now(), NULL, NULL, NULL, NULL, NULL) v;
COMMENT ON VIEW {{reporting}}.kpi_values IS 'Every KPI measurement of a product or value stream, as known now, with its KPI''s definition and the target of its quarter; retracted measurements are left out. The same figures as koers kpi.';
COMMENT ON COLUMN {{reporting}}.kpi_values.kind IS 'product or valuestream: whose KPI it is.';
COMMENT ON COLUMN {{reporting}}.kpi_values.id IS 'The product''s or value stream''s id.';
COMMENT ON COLUMN {{reporting}}.kpi_values.kpi IS 'The KPI''s id, e.g. lead-time.';
COMMENT ON COLUMN {{reporting}}.kpi_values.category IS 'value, customer, flow, sustainability or team.';
COMMENT ON COLUMN {{reporting}}.kpi_values.unit IS 'The KPI''s unit, e.g. days, %, EUR.';
COMMENT ON COLUMN {{reporting}}.kpi_values.direction IS 'higher or lower: which way is better.';
COMMENT ON COLUMN {{reporting}}.kpi_values.effective IS 'Valid time: the date the value was measured for.';
COMMENT ON COLUMN {{reporting}}.kpi_values.quarter IS 'The quarter (UTC) of effective, e.g. 2026-Q2.';
COMMENT ON COLUMN {{reporting}}.kpi_values.value IS 'The value, exact.';
COMMENT ON COLUMN {{reporting}}.kpi_values.target IS 'The target of the quarter (kpi.target with quarter), else the default target; NULL when none.';
COMMENT ON COLUMN {{reporting}}.kpi_values.on_target IS 'Whether the value meets the target in the KPI''s direction (at or above for higher, at or below for lower); NULL without a target.';
COMMENT ON COLUMN {{reporting}}.kpi_values.note IS 'Where the value came from (kpi.record note); NULL when none.';
COMMENT ON COLUMN {{reporting}}.kpi_values.decision IS 'The decision that recorded it.';
COMMENT ON COLUMN {{reporting}}.kpi_values.sequence IS 'Stream sequence of its event.';
COMMENT ON COLUMN {{reporting}}.kpi_values.recorded_at IS 'Recorded time.';

-- The quarterly portfolio review (koers report review), per quarter from
-- the first recorded fact's to the current one, as known now: computed by
-- review_subjects, review_funding and review_kpis (migration 00006).
CREATE OR REPLACE VIEW {{reporting}}.review AS
SELECT r.quarter, r.kind, r.id, r.name, r.valuestream, r.status_start, r.status_end, r.owner_start, r.owner_end,
       r.owner_changes, r.teams, r.people_at_start, r.stayed_in_team, r.decisions
FROM (SELECT coalesce(max(seq), 0) AS seq FROM {{data}}.decisions) known,
     LATERAL {{data}}.review_subjects(known.seq,
         (SELECT min(f.valid_from) FROM {{data}}.facts f WHERE f.superseded_seq IS NULL AND f.recorded_seq <= known.seq),
         now()) r;
COMMENT ON VIEW {{reporting}}.review IS 'The portfolio review: per quarter, each product and value stream active in it, as known now. Money in review_funding, KPIs in review_kpis.';
COMMENT ON COLUMN {{reporting}}.review.quarter IS 'The quarter, e.g. 2026-Q2.';
COMMENT ON COLUMN {{reporting}}.review.kind IS 'product or valuestream.';
COMMENT ON COLUMN {{reporting}}.review.id IS 'Its id.';
COMMENT ON COLUMN {{reporting}}.review.name IS 'Its name at the end of the quarter.';
COMMENT ON COLUMN {{reporting}}.review.valuestream IS 'A product''s value stream at the end of the quarter; NULL for a value stream.';
COMMENT ON COLUMN {{reporting}}.review.status_start IS 'Status when the quarter began (NULL: did not exist yet).';
COMMENT ON COLUMN {{reporting}}.review.status_end IS 'Status when it ended.';
COMMENT ON COLUMN {{reporting}}.review.owner_start IS 'A product''s accountable owner when the quarter began.';
COMMENT ON COLUMN {{reporting}}.review.owner_end IS 'Its accountable owner when it ended.';
COMMENT ON COLUMN {{reporting}}.review.owner_changes IS 'Owners replaced or removed during the quarter.';
COMMENT ON COLUMN {{reporting}}.review.teams IS 'Active teams serving it at the end (a value stream: those of its active products).';
COMMENT ON COLUMN {{reporting}}.review.people_at_start IS 'People in those teams when the quarter began.';
COMMENT ON COLUMN {{reporting}}.review.stayed_in_team IS 'Of those, the ones in the same team when it ended.';
COMMENT ON COLUMN {{reporting}}.review.decisions IS 'Decisions effective in the quarter that touched it.';

CREATE OR REPLACE VIEW {{reporting}}.review_funding AS
SELECT r.quarter, r.kind, r.id, r.currency, r.allocated_minor, r.shifted_in_minor, r.shifted_out_minor, r.released_minor, r.balance_minor
FROM (SELECT coalesce(max(seq), 0) AS seq FROM {{data}}.decisions) known,
     LATERAL {{data}}.review_funding(known.seq,
         (SELECT min(f.valid_from) FROM {{data}}.facts f WHERE f.superseded_seq IS NULL AND f.recorded_seq <= known.seq),
         now()) r;
COMMENT ON VIEW {{reporting}}.review_funding IS 'The portfolio review''s money: per quarter, product or value-stream account and currency, over every budget period, as known now.';
COMMENT ON COLUMN {{reporting}}.review_funding.quarter IS 'The quarter, e.g. 2026-Q2.';
COMMENT ON COLUMN {{reporting}}.review_funding.kind IS 'product or valuestream.';
COMMENT ON COLUMN {{reporting}}.review_funding.id IS 'Its id.';
COMMENT ON COLUMN {{reporting}}.review_funding.currency IS 'ISO 4217 currency.';
COMMENT ON COLUMN {{reporting}}.review_funding.allocated_minor IS 'Allocated from the pool, effective in the quarter, minor units.';
COMMENT ON COLUMN {{reporting}}.review_funding.shifted_in_minor IS 'Shifted in from other accounts (a conversion''s included).';
COMMENT ON COLUMN {{reporting}}.review_funding.shifted_out_minor IS 'Shifted out to other accounts.';
COMMENT ON COLUMN {{reporting}}.review_funding.released_minor IS 'Released to the pool.';
COMMENT ON COLUMN {{reporting}}.review_funding.balance_minor IS 'The balance at the end of the quarter.';

CREATE OR REPLACE VIEW {{reporting}}.review_kpis AS
SELECT r.quarter, r.kind, r.id, r.kpi, r.category, r.unit, r.direction, r.measurements, r.last_value, r.last_effective,
       r.previous_value, r.target, r.on_target, r.trend
FROM (SELECT coalesce(max(seq), 0) AS seq FROM {{data}}.decisions) known,
     LATERAL {{data}}.review_kpis(known.seq,
         (SELECT min(f.valid_from) FROM {{data}}.facts f WHERE f.superseded_seq IS NULL AND f.recorded_seq <= known.seq),
         now()) r;
COMMENT ON VIEW {{reporting}}.review_kpis IS 'The portfolio review''s KPIs: per quarter, product or value stream and KPI with a value so far, as known now.';
COMMENT ON COLUMN {{reporting}}.review_kpis.quarter IS 'The quarter, e.g. 2026-Q2.';
COMMENT ON COLUMN {{reporting}}.review_kpis.kind IS 'product or valuestream.';
COMMENT ON COLUMN {{reporting}}.review_kpis.id IS 'Its id.';
COMMENT ON COLUMN {{reporting}}.review_kpis.kpi IS 'The KPI.';
COMMENT ON COLUMN {{reporting}}.review_kpis.category IS 'value, customer, flow, sustainability or team.';
COMMENT ON COLUMN {{reporting}}.review_kpis.unit IS 'Its unit.';
COMMENT ON COLUMN {{reporting}}.review_kpis.direction IS 'higher or lower: which way is better.';
COMMENT ON COLUMN {{reporting}}.review_kpis.measurements IS 'Values measured in the quarter.';
COMMENT ON COLUMN {{reporting}}.review_kpis.last_value IS 'The last value measured in the quarter; NULL when none.';
COMMENT ON COLUMN {{reporting}}.review_kpis.last_effective IS 'Its date.';
COMMENT ON COLUMN {{reporting}}.review_kpis.previous_value IS 'The last value before the quarter; NULL when none.';
COMMENT ON COLUMN {{reporting}}.review_kpis.target IS 'The target of the last value''s quarter; NULL when none.';
COMMENT ON COLUMN {{reporting}}.review_kpis.on_target IS 'Whether the last value meets it; NULL without one.';
COMMENT ON COLUMN {{reporting}}.review_kpis.trend IS 'improving, worsening or steady against the previous value in the KPI''s direction; new without one; NULL without a value in the quarter.';

-- Who may decide what today: each mandate judged alone (revoked, expired,
-- holder not an active person or board), then suspended when a mandate up
-- its grant chain (found through grantor, at most 12 deep) is not in force.
CREATE OR REPLACE VIEW {{reporting}}.mandates AS
WITH RECURSIVE m AS (
    SELECT id,
           max(value) FILTER (WHERE attribute = 'holder')       AS holder,
           max(value) FILTER (WHERE attribute = 'kinds')        AS kinds,
           max(value) FILTER (WHERE attribute = 'scope')        AS scope,
           max(value) FILTER (WHERE attribute = 'limit')        AS limit_amount,
           max(value) FILTER (WHERE attribute = 'period_limit') AS period_limit,
           max(value) FILTER (WHERE attribute = 'valid_until')  AS valid_until,
           max(value) FILTER (WHERE attribute = 'grantor')      AS grantor,
           max(value) FILTER (WHERE attribute = 'status')       AS status
    FROM {{reporting}}.current_attributes WHERE kind = 'mandate' GROUP BY id
),
own AS (
    SELECT m.*,
           CASE WHEN m.status = 'revoked' THEN 'revoked'
                WHEN m.valid_until IS NOT NULL AND m.valid_until::timestamptz <= now() THEN 'expired'
                WHEN m.grantor IS NULL THEN 'in force'
                WHEN (SELECT h.value FROM {{reporting}}.current_attributes h
                      WHERE h.attribute = 'status'
                        AND h.kind = CASE WHEN m.holder LIKE 'board:%' THEN 'board' ELSE 'person' END
                        AND h.id = CASE WHEN m.holder LIKE 'board:%' THEN substr(m.holder, 7) ELSE m.holder END) = 'active'
                     THEN 'in force'
                ELSE 'holder inactive' END AS own_state
    FROM m
),
up (id, ancestor, depth) AS (
    SELECT id, grantor, 1 FROM own WHERE grantor IS NOT NULL
    UNION ALL
    SELECT up.id, o.grantor, up.depth + 1 FROM up JOIN own o ON o.id = up.ancestor
    WHERE o.grantor IS NOT NULL AND up.depth < 12
)
SELECT o.id,
       o.holder,
       string_to_array(o.kinds, ',') AS kinds,
       o.scope,
       o.limit_amount AS "limit",
       o.period_limit,
       o.valid_until::timestamptz AS valid_until,
       o.grantor,
       array(SELECT up.ancestor FROM up WHERE up.id = o.id ORDER BY up.depth) AS chain,
       CASE WHEN o.own_state IN ('revoked', 'expired') THEN o.own_state
            WHEN o.own_state <> 'in force' THEN 'suspended'
            WHEN EXISTS (SELECT 1 FROM up JOIN own a ON a.id = up.ancestor WHERE up.id = o.id AND a.own_state <> 'in force') THEN 'suspended'
            ELSE 'in force' END AS state
FROM own o;
COMMENT ON VIEW {{reporting}}.mandates IS 'Who may decide what today: one row per mandate granted, with its grant chain and whether it is in force.';
COMMENT ON COLUMN {{reporting}}.mandates.id IS 'Mandate id.';
COMMENT ON COLUMN {{reporting}}.mandates.holder IS 'The person holding it, or board:<id> for a board (whose quorum of members approves each decision).';
COMMENT ON COLUMN {{reporting}}.mandates.kinds IS 'Change kinds it covers: *, a family like funding.*, or a kind.';
COMMENT ON COLUMN {{reporting}}.mandates.scope IS '*, valuestream:<id> or product:<id>.';
COMMENT ON COLUMN {{reporting}}.mandates."limit" IS 'Amount limit per decision (decimal, in the period''s currency); NULL: none.';
COMMENT ON COLUMN {{reporting}}.mandates.period_limit IS 'Amount limit per budget period across decisions, under it and every mandate beneath it; NULL: none.';
COMMENT ON COLUMN {{reporting}}.mandates.valid_until IS 'When it lapses; NULL: never.';
COMMENT ON COLUMN {{reporting}}.mandates.grantor IS 'The mandate it was granted under; NULL for the root.';
COMMENT ON COLUMN {{reporting}}.mandates.chain IS 'The mandates above it, the grantor first and the root last.';
COMMENT ON COLUMN {{reporting}}.mandates.state IS 'in force, suspended (its holder or a mandate of its chain is not in force), expired or revoked.';

-- +koers grants
-- The reading role, created if missing when the connecting role may
-- (CREATEROLE); else a database administrator creates it, and the grants
-- follow on the next start.
DO $do$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {{role_literal}}) THEN
        BEGIN
            CREATE ROLE {{role}} NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL; -- created meanwhile by another process
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'role % is missing and may not be created here: the reporting views are not granted to it', {{role_literal}};
                RETURN;
        END;
    END IF;
    GRANT USAGE ON SCHEMA {{reporting}} TO {{role}};
    GRANT SELECT ON ALL TABLES IN SCHEMA {{reporting}} TO {{role}};
    -- The views call these (SECURITY DEFINER) functions as the reader.
    GRANT EXECUTE ON FUNCTION {{data}}.transition_metrics(bigint, timestamptz, timestamptz) TO {{role}};
    GRANT EXECUTE ON FUNCTION {{data}}.transition_funding(bigint, timestamptz, timestamptz) TO {{role}};
    GRANT EXECUTE ON FUNCTION {{data}}.kpi_values(bigint, timestamptz, text, text, text, timestamptz, timestamptz) TO {{role}};
    GRANT EXECUTE ON FUNCTION {{data}}.review_subjects(bigint, timestamptz, timestamptz) TO {{role}};
    GRANT EXECUTE ON FUNCTION {{data}}.subject_decisions(bigint) TO {{role}};
    GRANT EXECUTE ON FUNCTION {{data}}.review_funding(bigint, timestamptz, timestamptz) TO {{role}};
    GRANT EXECUTE ON FUNCTION {{data}}.review_kpis(bigint, timestamptz, timestamptz) TO {{role}};
END
$do$;
