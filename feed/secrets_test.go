package feed

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"koers/internal/pgtest"
)

func TestRedactMasksEveryCredentialLikePart(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"http://tok_ABC@host/hooks/T000/SECRETPATH", "http://xxxxx@host/hooks/T000/xxxxx"},
		{"https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX", "https://hooks.slack.com/services/T000/B000/xxxxx"},
		{"https://hooks.example.org/in/3f9a0c17d2", "https://hooks.example.org/in/xxxxx"},
		{"https://bi.example.org/koers-events/in", "https://bi.example.org/koers-events/in"},
		{"amqp://guest:guest@rabbit:5672/", "amqp://xxxxx@rabbit:5672/"},
		{"redis://:hunter2@cache:6379/0", "redis://xxxxx@cache:6379/0"},
		{"postgres://koers:pw@db/bi?sslmode=disable&password=pw", "postgres://xxxxx@db/bi?password=xxxxx&sslmode=disable"},
		{"https://h.example.org/in?token=abc&channel=ops&sig=Zm9v", "https://h.example.org/in?channel=xxxxx&sig=xxxxx&token=xxxxx"},
		{"https://h.example.org/in#access_token=abc", "https://h.example.org/in#xxxxx"},
		{"https://h.example.org/a%2Fb/S3CR3T%20TOKEN", "https://h.example.org/a%2Fb/xxxxx"},
		{"https://h.example.org/in?%zz", "https://h.example.org/in?xxxxx"},
	} {
		u, err := url.Parse(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		got := redact(u)
		if got != tc.want {
			t.Errorf("redact(%s) = %s, want %s", tc.in, got, tc.want)
		}
		if again := redactStored(got); again != got {
			t.Errorf("redact is not stable on %s: %s", got, again)
		}
	}
}

func TestScrubMasksSecretsQuotedInErrors(t *testing.T) {
	raw := "http://tok_ABC:pa55word@127.0.0.1:1/hooks/T000/SECRETPATH?token=t0ken"
	tg, err := parseTarget(raw)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(raw)
	for _, quoted := range []error{
		&url.Error{Op: "Post", URL: raw, Err: errors.New("connection refused")},
		&url.Error{Op: "Post", URL: u.Redacted(), Err: errors.New("connection refused")}, // what net/http quotes
		fmt.Errorf("publish to %s: %w", raw, context.DeadlineExceeded),
	} {
		got := tg.scrub(quoted)
		for _, secret := range []string{"tok_ABC", "pa55word", "SECRETPATH", "t0ken"} {
			if strings.Contains(got.Error(), secret) {
				t.Errorf("scrubbed %q still holds %s", got, secret)
			}
		}
		if !errors.Is(got, quoted) {
			t.Errorf("scrubbed error does not unwrap to the driver's")
		}
	}
	if _, err := parseTarget("http://tok_ABC@ho st/SECRETPATH"); err == nil || strings.Contains(err.Error(), "tok_ABC") || strings.Contains(err.Error(), "SECRETPATH") {
		t.Errorf("a URL that does not parse: %v", err)
	}
	if _, err := parseTarget("ftp://tok_ABC@host/SECRETPATH"); err == nil || strings.Contains(err.Error(), "tok_ABC") {
		t.Errorf("a scheme no publisher takes: %v", err)
	}
}

// TestMigrationMasksStoredTargets: checkpoints and poison-queue rows that
// an earlier build stored with the user name, a secret path or a query
// value in clear are masked by migration 2, and status shows them masked
// even before it ran.
func TestMigrationMasksStoredTargets(t *testing.T) {
	ctx := context.Background()
	dbURL := pgtest.Fresh(t)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	if _, err := conn.Exec(ctx, schemaBeforeGoose); err != nil {
		t.Fatal(err)
	}
	old := "http://tok_ABC@hooks.example.org/hooks/T000/SECRETPATH?channel=ops&token=xxxxx"
	if _, err := conn.Exec(ctx, `INSERT INTO koers_feed.checkpoint (name, target, source, delivered_seq) VALUES ('slack', $1, '/koers/KOERS', 3)`, old); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO koers_feed.poison (uuid, payload, metadata, transaction_id)
		VALUES ('d/0', '{}', json_build_object('koers_feed', 'slack', 'koers_target', $1::text), pg_current_xact_id())`, old); err != nil {
		t.Fatal(err)
	}
	want := "http://xxxxx@hooks.example.org/hooks/T000/xxxxx?channel=xxxxx&token=xxxxx"
	cps, err := list(ctx, conn)
	if err != nil || len(cps) != 1 || cps[0].Target != want {
		t.Fatalf("status before the migration: %+v, %v; want target %s", cps, err, want)
	}
	pool, err := openPool(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	pool.Close()
	var stored, poisoned string
	if err := conn.QueryRow(ctx, `SELECT target FROM koers_feed.checkpoint WHERE name = 'slack'`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT metadata->>'koers_target' FROM koers_feed.poison`).Scan(&poisoned); err != nil {
		t.Fatal(err)
	}
	if stored != want || poisoned != want {
		t.Fatalf("after migration 2: checkpoint %s, poison %s; want %s", stored, poisoned, want)
	}
	if got := versions(t, conn, feedVersionTable); len(got) != 2 || got[1] != 2 {
		t.Fatalf("feed versions %v, want [1 2]", got)
	}
	// The feed registered before still matches its own target.
	if _, err := claim(ctx, mustPool(t, dbURL), "slack", redactStored("http://tok_ABC@hooks.example.org/hooks/T000/SECRETPATH?channel=ops&token=s3cr3t"),
		"/koers/KOERS", 1); err != nil {
		t.Fatalf("the feed registered before the migration: %v", err)
	}
}
