package projections

import (
	"context"
	_ "embed"
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
	"funding_balances", "transition_metrics", "transition_funding",
}

// reportingScript is reporting.sql for the read models in data.
func (db *DB) reportingScript(data string) string {
	return strings.NewReplacer(
		"{{data}}", pgx.Identifier{data}.Sanitize(),
		"{{reporting}}", pgx.Identifier{db.reporting}.Sanitize(),
		"{{role}}", pgx.Identifier{db.role}.Sanitize(),
		"{{role_literal}}", "'"+db.role+"'", // validated: [a-z_][a-z0-9_]*
	).Replace(reportingSQL)
}

// createReporting creates or replaces the reporting views over the tables
// of schema data, in tx, serialised with every other process doing so.
func (db *DB) createReporting(ctx context.Context, tx pgx.Tx, data string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('koers-reporting:' || $1))`, db.reporting); err != nil {
		return fmt.Errorf("lock reporting views: %w", err)
	}
	if _, err := tx.Exec(ctx, db.reportingScript(data)); err != nil {
		return fmt.Errorf("reporting views in %s: %w", db.reporting, err)
	}
	return nil
}
