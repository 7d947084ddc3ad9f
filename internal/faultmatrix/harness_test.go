package faultmatrix

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"

	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	long    = flag.Bool("long", false, "run the long form: the issue's counts and durations (about 20 minutes; give -timeout 60m)")
	figures = flag.String("figures", "", "also write the table of figures to this file")
)

// The binaries every scenario runs, built once by TestMain.
var bin struct {
	koers, nats string
}

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "faultmatrix-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		bin.koers, bin.nats = filepath.Join(dir, "koers"), filepath.Join(dir, "nats-server")
		// nats-server is built from the module cache, at the version the
		// embedded server runs (2.12+ is needed for atomic batches).
		for pkg, out := range map[string]string{"koers/cmd/koers": bin.koers, "github.com/nats-io/nats-server/v2": bin.nats} {
			if b, err := exec.Command(goTool(), "build", "-o", out, pkg).CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "faultmatrix: go build %s: %v\n%s", pkg, err, b)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

// goTool is the go command of the toolchain that runs the tests.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// freePort reserves a loopback port long enough to learn its number.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitFor polls cond every 100 ms until it holds, for at most d; then it
// fails the test saying what did not happen. Recovery gives no signal to
// wait on from outside the processes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// process is one long-running process of a scenario (serve, a
// nats-server), its output kept in a log file to show when a check fails.
type process struct {
	name string
	args []string
	log  string
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// start starts the process and, if ready is not nil, waits until ready
// says it is (at most a minute).
func (p *process) start(t testing.TB, ready func() error) {
	t.Helper()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "--- %s %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(p.args, " "))
	cmd := exec.Command(p.args[0], p.args[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", p.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); f.Close(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	if ready == nil {
		return
	}
	deadline := time.Now().Add(time.Minute)
	for {
		err := ready()
		if err == nil {
			return
		}
		select {
		case <-done:
			t.Fatalf("%s exited while starting: %v\n%s", p.name, err, p.tail())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within a minute: %v\n%s", p.name, err, p.tail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *process) kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// stop asks the process to stop (SIGTERM) and kills it after 30 s.
func (p *process) stop() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		p.kill()
	}
}

// running tells whether the process has not exited.
func (p *process) running() bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// tail is the end of the process's log, for a failure message.
func (p *process) tail() string {
	b, _ := os.ReadFile(p.log)
	const keep = 4000
	if len(b) > keep {
		b = b[len(b)-keep:]
	}
	return fmt.Sprintf("--- end of %s (%s):\n%s", p.name, p.log, b)
}

// koers runs a koers command to its end (at most 5 minutes) and returns
// its exit code and output.
func koers(t testing.TB, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin.koers, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode(), out.String(), errOut.String()
	case err != nil:
		t.Fatalf("koers %v: %v", args, err)
	}
	return 0, out.String(), errOut.String()
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
