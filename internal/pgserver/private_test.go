package pgserver

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	c := Cluster(data)
	if !c.Exists || !c.Running || !strings.Contains(c.Stop, filepath.Join(bin, "pg_ctl")+" -D "+filepath.Join(data, "postgres")+" stop") {
		t.Fatalf("cluster %+v: want it running, with the pg_ctl command that stops it", c)
	}
	if u, _ := postgresUser(); u != nil && !strings.HasPrefix(c.Stop, "runuser -u postgres -- ") {
		t.Fatalf("as root the stop command %q must run as the postgres user", c.Stop)
	}
	again, err := Private(ctx, data)
	if err != nil || again != conn {
		t.Fatalf("second call: %q, %v; want the running cluster %q", again, err, conn)
	}
	// Point libpq's defaults somewhere nothing listens: the private cluster
	// takes over.
	t.Setenv("PGHOST", "127.0.0.1")
	t.Setenv("PGPORT", "1")
	started := false
	u, err := Resolve(ctx, Options{DataDir: data, Started: func(PrivateCluster) { started = true }})
	if started {
		t.Fatal("Resolve announced a start of a cluster that was running already")
	}
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

func TestResolveAnnouncesAPrivateClusterItStarts(t *testing.T) {
	if _, ok := postgresBinDir(); !ok {
		t.Fatal("no PostgreSQL binaries: install postgresql (apt-get install postgresql) to run this test")
	}
	data, err := os.MkdirTemp("", "kpg")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(data, 0o755)
	t.Cleanup(func() { os.RemoveAll(data) })
	t.Setenv("PGHOST", "127.0.0.1")
	t.Setenv("PGPORT", "1")
	var told []PrivateCluster
	if _, err := Resolve(context.Background(), Options{DataDir: data, Started: func(c PrivateCluster) { told = append(told, c) }}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exec.Command("sh", "-c", Cluster(data).Stop+" -m immediate").Run() })
	if len(told) != 1 || !told[0].Running || told[0].Stop == "" {
		t.Fatalf("started a private cluster and told %+v; want it announced once, running, with its stop command", told)
	}
}
