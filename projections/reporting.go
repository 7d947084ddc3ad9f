package projections

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

//go:embed reporting.sql
var reportingSQL string

// DefaultReportingSchema holds the reporting views unless
// [Options].ReportingSchema says otherwise; DefaultReportingRole may read
// them unless [Options].ReportingRole says otherwise.
const (
	DefaultReportingSchema = "reporting"
	DefaultReportingRole   = "koers_reporting"
)

// ReportingViews lists the views of the reporting schema, documented in
// the package documentation and by COMMENT ON in the database.
var ReportingViews = []string{
	"decisions", "current_attributes", "value_streams", "products", "teams", "team_products", "people", "projects",
	"funding_balances", "transition_metrics", "transition_funding", "mandates",
	"kpi_values", "review", "review_funding", "review_kpis",
}

// reportingScripts renders reporting.sql for the read models in data: the
// views, marked with a hash of their definition, and the grants.
func (db *DB) reportingScripts(data string) (views, grants, definition string) {
	s := strings.NewReplacer(
		"{{data}}", pgx.Identifier{data}.Sanitize(),
		"{{reporting}}", pgx.Identifier{db.reporting}.Sanitize(),
		"{{role}}", pgx.Identifier{db.role}.Sanitize(),
		"{{role_literal}}", "'"+db.role+"'", // validated: [a-z_][a-z0-9_]*
	).Replace(reportingSQL)
	views, grants, _ = strings.Cut(s, "-- +koers grants")
	sum := sha256.Sum256([]byte(views))
	definition = hex.EncodeToString(sum[:8])
	return strings.ReplaceAll(views, "{{definition}}", definition), grants, definition
}

// createReporting creates or replaces the reporting views over the tables
// of schema data, in tx, serialised with every other process doing so, and
// grants them to the reading role. Unless rebind is set, views that are
// there already with this definition are left alone: replacing a view
// waits for every query reading it, a BI tool's long report included.
func (db *DB) createReporting(ctx context.Context, tx pgx.Tx, data string, rebind bool) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('koers-reporting:' || $1))`, db.reporting); err != nil {
		return fmt.Errorf("lock reporting views: %w", err)
	}
	views, grants, definition := db.reportingScripts(data)
	current := false
	if !rebind {
		var comment string
		var n int
		if err := tx.QueryRow(ctx, `SELECT coalesce(obj_description(to_regnamespace($1)::oid, 'pg_namespace'), ''),
				(SELECT count(*) FROM pg_views WHERE schemaname = $1 AND viewname = ANY($2))`,
			db.reporting, ReportingViews).Scan(&comment, &n); err != nil {
			return fmt.Errorf("reporting views in %s: %w", db.reporting, err)
		}
		current = strings.Contains(comment, "(definition "+definition+")") && n == len(ReportingViews)
	}
	if !current {
		if _, err := tx.Exec(ctx, views); err != nil {
			return fmt.Errorf("reporting views in %s: %w", db.reporting, err)
		}
	}
	if _, err := tx.Exec(ctx, grants); err != nil {
		return fmt.Errorf("grant reporting views in %s: %w", db.reporting, err)
	}
	return nil
}
