package pgserver

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestAPrivatePostgresStartsInTheDataFolderAndIsFoundAgain(t *testing.T) {
	bin, ok := postgresBinDir()
	if !ok {
		t.Fatal("no PostgreSQL binaries: install postgresql (apt-get install postgresql) to run this test")
	}
	// Short (a socket path is limited) and open to the postgres user.
	data, err := os.MkdirTemp("", "kpg")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(data, 0o755)
	t.Cleanup(func() { os.RemoveAll(data) })
	ctx := context.Background()
	conn, err := Private(ctx, data)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		_ = pgCommandAs(filepath.Join(bin, "pg_ctl"), "-D", filepath.Join(data, "postgres"), "-m", "immediate", "stop").Run()
	})
	again, err := Private(ctx, data)
	if err != nil || again != conn {
		t.Fatalf("second call: %q, %v; want the running cluster %q", again, err, conn)
	}
	// Point libpq's defaults somewhere nothing listens: the private cluster
	// takes over.
	t.Setenv("PGHOST", "127.0.0.1")
	t.Setenv("PGPORT", "1")
	u, err := Resolve(ctx, Options{DataDir: data})
	if err != nil || u != conn {
		t.Fatalf("database URL with no server: %q, %v; want the private cluster", u, err)
	}
	if err := pingPostgres(ctx, u); err != nil {
		t.Fatal(err)
	}
}

// pgCommandAs runs a PostgreSQL command as whoever owns the cluster.
func pgCommandAs(name string, args ...string) *exec.Cmd {
	u, _ := postgresUser()
	return pgCommand(context.Background(), u, name, args...)
}
