// Package pgtest hands tests a fresh PostgreSQL database on a real server and
// drops it afterwards. The server is named by KOERS_TEST_DATABASE_URL
// (default postgres://postgres@127.0.0.1:5432/postgres); the role in it must
// be allowed to create databases. When no server answers, the test fails with
// a message saying how to start one: it never skips.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultURL is the server tests use when KOERS_TEST_DATABASE_URL is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres"

const howToStart = `start PostgreSQL with
  pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start
or point KOERS_TEST_DATABASE_URL at a server whose role may create databases`

func adminURL() string {
	if u := os.Getenv("KOERS_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// create makes a database with a unique name and returns its URL.
func create(ctx context.Context) (name, dbURL string, err error) {
	admin := adminURL()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", "", fmt.Errorf("no PostgreSQL at %s (%w): %s", redact(admin), err, howToStart)
	}
	defer conn.Close(ctx)
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	name = fmt.Sprintf("koers_test_%d_%s", os.Getpid(), hex.EncodeToString(b[:]))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", "", fmt.Errorf("create test database %s: %w", name, err)
	}
	u, err := url.Parse(admin)
	if err != nil {
		return "", "", fmt.Errorf("KOERS_TEST_DATABASE_URL: %w", err)
	}
	u.Path = "/" + name
	return name, u.String(), nil
}

func drop(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, adminURL())
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	return err
}

// Fresh returns the URL of a new, empty database that is dropped when the
// test ends.
func Fresh(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name, u, err := create(ctx)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := drop(ctx, name); err != nil {
			tb.Errorf("pgtest: drop %s: %v", name, err)
		}
	})
	return u
}

var pkg struct {
	once sync.Once
	name string
	url  string
	err  error
	main bool
}

// Main runs a test package with one database shared by its tests, dropped
// when they are done. Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
func Main(m *testing.M) int {
	pkg.main = true
	code := m.Run()
	if pkg.name != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := drop(ctx, pkg.name); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: drop %s: %v\n", pkg.name, err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// Package returns the URL of the test package's database, created on first
// use. The package must run through [Main].
func Package(tb testing.TB) string {
	tb.Helper()
	if !pkg.main {
		tb.Fatal("pgtest: Package needs TestMain to call pgtest.Main(m), which drops the database afterwards")
	}
	pkg.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		pkg.name, pkg.url, pkg.err = create(ctx)
	})
	if pkg.err != nil {
		tb.Fatalf("pgtest: %v", pkg.err)
	}
	return pkg.url
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
