package projections

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"koers/internal/pgtest"
)

// views renders every reporting view as the reporting role reads it, and
// checks that the role can read nothing of the read models themselves.
func views(t testing.TB, db *DB) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	err := db.withTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL ROLE `+db.role); err != nil {
			return err
		}
		for _, v := range ReportingViews {
			var s string
			q := `SELECT coalesce(string_agg(to_jsonb(v)::text, E'\n' ORDER BY to_jsonb(v)::text), '') FROM ` +
				pgx.Identifier{db.reporting, v}.Sanitize() + ` v`
			if err := tx.QueryRow(ctx, q).Scan(&s); err != nil {
				return fmt.Errorf("view %s: %w", v, err)
			}
			fmt.Fprintf(&b, "%s:\n%s\n", v, s)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.withTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL ROLE `+db.role); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT count(*) FROM `+pgx.Identifier{db.schema, "facts"}.Sanitize())
		return err
	})
	var dbErr *DatabaseError
	if !errors.As(err, &dbErr) || dbErr.Code != "42501" {
		t.Fatalf("the reporting role reading the read models' tables: %v, want permission denied (42501)", err)
	}
	return b.String()
}

func TestReportingViewsAnswerTheSameBeforeAndAfterARebuild(t *testing.T) {
	e := newLog(t)
	e.play(t, script...)
	e.play(t,
		`{"id":"convert-x","by":"p-root","authority":"root","reason":"it works","effective":"2026-05-01","changes":[
		 {"kind":"project.convert","project":"proj-x","product":"x-app","name":"X app","valuestream":"lending","owner":"p-2"}]}`,
		`{"id":"new-owner","by":"p-root","authority":"root","reason":"rotation","effective":"2026-05-15","changes":[
		 {"kind":"product.assign-owner","product":"pay-app","owner":"p-3"}]}`)
	db := newDB(t)
	catchUp(t, db, e.st)
	ctx := context.Background()

	before := views(t, db)
	for _, want := range []string{
		`"id": "pay-app", "name": "Pay app", "owner": "p-3", "status": "active", "project": null, "value_stream": "payments"`,
		`"team": "t-core", "product": "pay-app"`,
		`"account": "product:pay-app", "currency": "EUR", "account_kind": "product", "balance_minor": 10000000`,
		`"id": "move-ada"`,
	} {
		if !strings.Contains(before, want) {
			t.Errorf("views lack %s:\n%s", want, before)
		}
	}

	// The metrics are computed once, by the read models' SQL functions:
	// the views and Transition both answer with the figures this history
	// has (worked out by hand: Ada moves to t-edge on 1 March, Cy joins
	// t-core on 15 March, proj-x becomes x-app on 1 May, pay-app changes
	// owner on 15 May).
	type figures struct {
		active, owned, ownerChanges, atStart, stayed, converted, inTeams int
		coverage, churn, stability, tenureDays                           float64
		products, streams, projects                                      int64
		share                                                            float64
	}
	for q, want := range map[string]figures{
		"2026-Q1": {active: 1, owned: 1, ownerChanges: 0, atStart: 1, stayed: 0, converted: 0, inTeams: 3,
			coverage: 1, churn: 0, stability: 0, tenureDays: 31, products: 0, streams: 25000000, projects: 0, share: 1},
		"2026-Q2": {active: 2, owned: 2, ownerChanges: 1, atStart: 3, stayed: 3, converted: 1, inTeams: 3,
			coverage: 1, churn: 0.5, stability: 1, tenureDays: 122, products: 15000000, streams: 15000000, projects: 0, share: 1},
	} {
		var v figures
		err := db.withConn(ctx, func(c *pgx.Conn) error {
			if err := c.QueryRow(ctx, `SELECT active_products, owned_products, ownership_coverage, owner_changes, ownership_churn,
				people_at_start, stayed_in_team, team_stability, projects_converted, people_in_teams, median_tenure_days
				FROM `+db.reporting+`.transition_metrics WHERE quarter = $1`, q).
				Scan(&v.active, &v.owned, &v.coverage, &v.ownerChanges, &v.churn,
					&v.atStart, &v.stayed, &v.stability, &v.converted, &v.inTeams, &v.tenureDays); err != nil {
				return err
			}
			return c.QueryRow(ctx, `SELECT products_minor, value_streams_minor, projects_minor, product_share
				FROM `+db.reporting+`.transition_funding WHERE quarter = $1 AND currency = 'EUR'`, q).Scan(&v.products, &v.streams, &v.projects, &v.share)
		})
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if v != want {
			t.Errorf("%s in the views: %+v, want %+v", q, v, want)
		}
		r, err := db.Transition(ctx, q, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Funding) != 1 || r.Funding[0].Currency != "EUR" {
			t.Fatalf("%s: funding %+v, want EUR only", q, r.Funding)
		}
		f := r.Funding[0]
		got := figures{active: r.ActiveProducts, owned: r.OwnedProducts, ownerChanges: r.OwnerChanges, atStart: r.PeopleAtStart,
			stayed: r.StayedInTeam, converted: r.ProjectsConverted, inTeams: r.PeopleInTeams, coverage: r.OwnershipCoverage,
			churn: r.OwnershipChurn, stability: r.TeamStability, tenureDays: r.MedianTenureDays,
			products: int64(f.Products), streams: int64(f.ValueStreams), projects: int64(f.Projects), share: f.ProductShare}
		if got != want {
			t.Errorf("%s from Transition: %+v, want %+v", q, got, want)
		}
	}

	// Every view and every column is documented.
	var undocumented []string
	err := db.withConn(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT c.relname FROM pg_class c
			WHERE c.relnamespace = $1::regnamespace AND c.relkind = 'v' AND obj_description(c.oid, 'pg_class') IS NULL
			UNION ALL
			SELECT c.relname || '.' || a.attname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
			WHERE c.relnamespace = $1::regnamespace AND c.relkind = 'v' AND col_description(c.oid, a.attnum) IS NULL
			UNION ALL
			SELECT 'not in ReportingViews: ' || c.relname FROM pg_class c
			WHERE c.relnamespace = $1::regnamespace AND c.relkind = 'v' AND c.relname <> ALL($2)
			ORDER BY 1`, db.reporting, ReportingViews)
		if err != nil {
			return err
		}
		undocumented, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(undocumented) > 0 {
		t.Errorf("undocumented view columns: %v", undocumented)
	}

	oids := func() string {
		var s string
		err := db.withConn(ctx, func(c *pgx.Conn) error {
			return c.QueryRow(ctx, `SELECT string_agg(oid::text, ',' ORDER BY relname) FROM pg_class
				WHERE relnamespace = $1::regnamespace AND relkind = 'v'`, db.reporting).Scan(&s)
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	oidsBefore := oids()
	if err := db.Rebuild(ctx, e.st, ProjectorOptions{BatchEvents: 7}, nil); err != nil {
		t.Fatal(err)
	}
	if after := views(t, db); after != before {
		t.Fatalf("the views answer differently after a rebuild:\n%s\nbefore:\n%s", after, before)
	}
	if got := oidsBefore; oids() != got {
		t.Fatalf("the views were recreated by the rebuild (%s, was %s): grants given on them would be lost", oids(), got)
	}

	// The indexes a rebuild deferred are back, as the migrations define
	// them: the rebuilt schema has the indexes of a freshly migrated one.
	deferred, err := deferredIndexes()
	if err != nil {
		t.Fatal(err)
	}
	if len(deferred) != 1 || deferred[0].name != "facts_bitemporal" {
		t.Fatalf("deferred indexes %+v, want facts_bitemporal (migration 00003)", deferred)
	}
	fresh := newDB(t)
	indexes := func(d *DB) string {
		var s string
		err := d.withConn(ctx, func(c *pgx.Conn) error {
			return c.QueryRow(ctx, `SELECT string_agg(replace(indexdef, $1 || '.', ''), E'\n' ORDER BY indexname)
				FROM pg_indexes WHERE schemaname = $1`, d.schema).Scan(&s)
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if got, want := indexes(db), indexes(fresh); got != want || !strings.Contains(got, "facts_bitemporal") {
		t.Fatalf("indexes after a rebuild:\n%s\nwant, as migrated:\n%s", got, want)
	}
}

// A role without CREATEROLE opens the read models too: the views are made,
// the missing reading role is not.
func TestReportingViewsWithoutThePrivilegeToCreateTheRole(t *testing.T) {
	ctx := context.Background()
	admin := newDB(t)
	user := fmt.Sprintf("t%d_limited", os.Getpid())
	missing := fmt.Sprintf("t%d_nobody", os.Getpid())
	err := admin.withConn(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, `DROP ROLE IF EXISTS `+user+`; CREATE ROLE `+user+` LOGIN NOCREATEROLE;
			GRANT CREATE ON DATABASE `+pgx.Identifier{c.Config().Database}.Sanitize()+` TO `+user)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(pgtest.Package(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(user)
	schema := user + "_s"
	db, err := Open(ctx, u.String(), Options{Schema: schema, ReportingSchema: schema + "_r", ReportingRole: missing})
	if err != nil {
		t.Fatalf("open as a role that may not create roles: %v", err)
	}
	db.Close()
	var roles, views int
	err = admin.withConn(ctx, func(c *pgx.Conn) error {
		if err := c.QueryRow(ctx, `SELECT count(*) FROM pg_roles WHERE rolname = $1`, missing).Scan(&roles); err != nil {
			return err
		}
		return c.QueryRow(ctx, `SELECT count(*) FROM pg_views WHERE schemaname = $1`, schema+"_r").Scan(&views)
	})
	if err != nil || roles != 0 || views != len(ReportingViews) {
		t.Fatalf("%d roles %s, %d views (%v); want no role and %d views", roles, missing, views, err, len(ReportingViews))
	}
	t.Cleanup(func() {
		err := admin.withConn(ctx, func(c *pgx.Conn) error {
			_, err := c.Exec(ctx, `DROP SCHEMA `+schema+` CASCADE; DROP SCHEMA `+schema+`_r CASCADE;
				REVOKE ALL ON DATABASE `+pgx.Identifier{c.Config().Database}.Sanitize()+` FROM `+user+`; DROP ROLE `+user)
			return err
		})
		if err != nil {
			t.Errorf("drop %s: %v", user, err)
		}
	})
}

// Opening the read models again while a BI tool reads a view does not wait
// for it: views already current are not replaced.
func TestOpeningDoesNotWaitForReportingReaders(t *testing.T) {
	db := newDB(t)
	ctx := context.Background()
	reader, err := pgx.Connect(ctx, pgtest.Package(t))
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close(ctx)
	tx, err := reader.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT count(*) FROM `+db.reporting+`.transition_metrics`); err != nil {
		t.Fatal(err)
	}
	openCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	again, err := Open(openCtx, pgtest.Package(t), Options{Schema: db.schema, ReportingSchema: db.reporting})
	if err != nil {
		t.Fatalf("open while a report reads a view: %v", err)
	}
	again.Close()
}

// A rebuild does not hold the live projectors up behind a long report: its
// switch gives up waiting for the views and tries again, and in the end
// says why it could not switch.
func TestRebuildSwitchGivesUpWhileAReportHoldsTheViews(t *testing.T) {
	old := switchLockTimeout
	switchLockTimeout = "50ms"
	t.Cleanup(func() { switchLockTimeout = old })
	e := newLog(t)
	e.play(t, script...)
	db := newDB(t)
	catchUp(t, db, e.st)
	before := dump(t, db)
	ctx := context.Background()
	reader, err := pgx.Connect(ctx, pgtest.Package(t))
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close(ctx)
	tx, err := reader.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT count(*) FROM `+db.reporting+`.people`); err != nil {
		t.Fatal(err)
	}
	err = db.Rebuild(ctx, e.st, ProjectorOptions{}, nil)
	if err == nil || !strings.Contains(err.Error(), "stayed in use") {
		t.Fatalf("rebuild while a report reads a view: %v, want it to give up", err)
	}
	if got := dump(t, db); got != before {
		t.Fatalf("a rebuild that gave up changed the read models")
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Rebuild(ctx, e.st, ProjectorOptions{}, nil); err != nil {
		t.Fatalf("rebuild once the report ended: %v", err)
	}
}
