package pgtest_test

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"koers/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func dbName(t *testing.T, url string) string {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var name string
	if err := conn.QueryRow(context.Background(), "select current_database()").Scan(&name); err != nil {
		t.Fatal(err)
	}
	return name
}

func exists(t *testing.T, name string) bool {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), pgtest.DefaultURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), "select count(*) from pg_database where datname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func TestPackageDatabaseIsSharedByTheTestsOfOnePackage(t *testing.T) {
	a, b := pgtest.Package(t), pgtest.Package(t)
	if a != b {
		t.Fatalf("two calls gave %s and %s", a, b)
	}
	if name := dbName(t, a); name == "postgres" || !exists(t, name) {
		t.Fatalf("package database %q is not a fresh database", name)
	}
}

func TestFreshDatabaseIsDroppedWhenTheTestEnds(t *testing.T) {
	var name string
	t.Run("inner", func(t *testing.T) {
		name = dbName(t, pgtest.Fresh(t))
		if !exists(t, name) {
			t.Fatalf("fresh database %s does not exist", name)
		}
	})
	if exists(t, name) {
		t.Fatalf("database %s still exists after its test ended", name)
	}
}
