package pgserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// A private PostgreSQL cluster in the data folder serves the read models
// when no server answers and PostgreSQL's binaries are installed. It
// listens on a Unix socket in the data folder only (no TCP port), trusts its
// local users, and keeps running after the command, so the next one finds
// it: stop it with the command [Cluster] tells (`koers status` prints it).

const privatePort = 5432 // names the socket file only: the socket folder is private

// postgresBinDir finds the newest installed PostgreSQL's binaries.
func postgresBinDir() (string, bool) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		return filepath.Dir(p), true
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d, true
		}
	}
	return "", false
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// Private starts (or finds running) the private cluster under dataDir and
// returns its connection string for database koers.
func Private(ctx context.Context, dataDir string) (string, error) {
	conn, _, err := startPrivate(ctx, dataDir)
	return conn, err
}

// PrivateCluster describes the private cluster of a data folder.
type PrivateCluster struct {
	Dir     string // the cluster's folder, absolute
	Exists  bool   // initialised
	Running bool   // its server answers
	// Stop is the shell command that stops it, as the user who runs it
	// (the postgres system user when Koers runs as root).
	Stop string
}

// Cluster tells whether the data folder has a private cluster, whether it
// runs, and how to stop it.
func Cluster(dataDir string) PrivateCluster {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		abs = dataDir
	}
	c := PrivateCluster{Dir: filepath.Join(abs, "postgres")}
	if _, err := os.Stat(filepath.Join(c.Dir, "PG_VERSION")); err == nil {
		c.Exists = true
	}
	pgCtl := "pg_ctl"
	if bin, ok := postgresBinDir(); ok {
		pgCtl = filepath.Join(bin, "pg_ctl")
	}
	c.Stop = pgCtl + " -D " + c.Dir + " stop"
	if u, err := postgresUser(); err == nil && u != nil {
		// PostgreSQL refuses root: the cluster is the postgres user's.
		c.Stop = "runuser -u " + u.Username + " -- " + c.Stop
	}
	if c.Exists {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		admin := fmt.Sprintf("host=%s port=%d user=koers dbname=postgres", filepath.Join(abs, "postgres-socket"), privatePort)
		c.Running = pingPostgres(ctx, admin) == nil
	}
	return c
}

// startPrivate is Private, also telling whether it started the server.
func startPrivate(ctx context.Context, dataDir string) (string, bool, error) {
	conn, err := private(ctx, dataDir)
	if errors.Is(err, errRunning) {
		return conn, false, nil
	}
	return conn, err == nil, err
}

// errRunning: the cluster was running already.
var errRunning = errors.New("running already")

func private(ctx context.Context, dataDir string) (string, error) {
	bin, ok := postgresBinDir()
	if !ok {
		return "", errors.New("no PostgreSQL binaries found (install postgresql)")
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return "", err
	}
	cluster := filepath.Join(abs, "postgres")
	sock := filepath.Join(abs, "postgres-socket")
	if len(sock) > 90 {
		return "", fmt.Errorf("data folder path too long for a PostgreSQL socket (%d characters): use a shorter --data", len(sock))
	}
	conn := fmt.Sprintf("host=%s port=%d user=koers dbname=%s", sock, privatePort, DefaultDatabase)

	// PostgreSQL refuses to run as root: then the cluster belongs to the
	// postgres system user and its commands run as that user.
	runAs, err := postgresUser()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(sock, 0o750); err != nil {
		return "", err
	}
	if runAs != nil {
		if err := chownTo(runAs, sock); err != nil {
			return "", err
		}
		// The postgres user must be able to pass through the data folder
		// (not read it: the seal key stays private).
		if fi, err := os.Stat(abs); err == nil {
			if err := os.Chmod(abs, fi.Mode().Perm()|0o001); err != nil {
				return "", err
			}
		}
		if err := pgCommand(ctx, runAs, "test", "-x", abs).Run(); err != nil {
			return "", fmt.Errorf("the postgres user cannot reach %s (a folder above it is closed to others): use a --data elsewhere", abs)
		}
	}
	if _, err := os.Stat(filepath.Join(cluster, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(cluster, 0o700); err != nil {
			return "", err
		}
		if runAs != nil {
			if err := chownTo(runAs, cluster); err != nil {
				return "", err
			}
		}
		if out, err := pgCommand(ctx, runAs, filepath.Join(bin, "initdb"), "-D", cluster, "-U", "koers", "--auth=trust", "-E", "UTF8").CombinedOutput(); err != nil {
			return "", fmt.Errorf("initdb %s: %w: %s", cluster, err, lastLine(out))
		}
	}
	admin := fmt.Sprintf("host=%s port=%d user=koers dbname=postgres", sock, privatePort)
	if pingPostgres(ctx, admin) == nil {
		return conn, errRunning // from an earlier command
	}
	opts := fmt.Sprintf("-k %s -p %d -c listen_addresses=''", sock, privatePort)
	logFile := filepath.Join(cluster, "server.log")
	if out, err := pgCommand(ctx, runAs, filepath.Join(bin, "pg_ctl"), "-D", cluster, "-o", opts, "-l", logFile, "-w", "-t", "60", "start").CombinedOutput(); err != nil {
		return "", fmt.Errorf("start private PostgreSQL in %s: %w: %s (see %s)", cluster, err, lastLine(out), logFile)
	}
	if err := pingPostgres(ctx, admin); err != nil {
		return "", fmt.Errorf("private PostgreSQL in %s: %w", cluster, err)
	}
	return conn, nil
}

// postgresUser is who runs the private cluster: nil for the current user,
// the postgres system user when running as root (PostgreSQL refuses root).
func postgresUser() (*user.User, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, errors.New("running as root, and there is no postgres system user to run a private PostgreSQL as")
	}
	return u, nil
}

func pgCommand(ctx context.Context, runAs *user.User, name string, args ...string) *exec.Cmd {
	if runAs != nil {
		return exec.CommandContext(ctx, "setpriv", append([]string{"--reuid=" + runAs.Uid, "--regid=" + runAs.Gid, "--init-groups", name}, args...)...)
	}
	return exec.CommandContext(ctx, name, args...)
}

func chownTo(u *user.User, path string) error {
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(path, uid, gid); err != nil {
		return fmt.Errorf("give %s to the postgres user: %w", path, err)
	}
	return nil
}

func pingPostgres(ctx context.Context, conn string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, conn)
	if err != nil {
		return err
	}
	return c.Close(ctx)
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// StopPrivate stops the private cluster under dataDir (fast shutdown:
// sessions are cut, nothing committed is lost), as the user that runs it.
// A cluster that is not running is no error.
func StopPrivate(ctx context.Context, dataDir string) error {
	bin, ok := postgresBinDir()
	if !ok {
		return errors.New("no PostgreSQL binaries found (install postgresql)")
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return err
	}
	cluster := filepath.Join(abs, "postgres")
	if _, err := os.Stat(filepath.Join(cluster, "postmaster.pid")); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	runAs, err := postgresUser()
	if err != nil {
		return err
	}
	if out, err := pgCommand(ctx, runAs, filepath.Join(bin, "pg_ctl"), "-D", cluster, "-m", "fast", "-w", "-t", "60", "stop").CombinedOutput(); err != nil {
		return fmt.Errorf("stop private PostgreSQL in %s: %w: %s", cluster, err, lastLine(out))
	}
	return nil
}
