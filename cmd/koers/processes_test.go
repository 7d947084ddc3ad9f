package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"koers/eventstore"
	"koers/internal/pgtest"
)

// beTheBinary makes the test binary act as the koers command when a test
// starts it as a subprocess: the processes are real, with their own file
// locks, and can be killed with -9, without a separate build step.
const beTheBinary = "KOERS_TEST_BE_THE_BINARY"

func TestMain(m *testing.M) {
	if os.Getenv(beTheBinary) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// proc is one koers process of a test's data folder.
type proc struct {
	data, db string
}

func (p proc) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], append([]string{"--data", p.data, "--database-url", p.db}, args...)...)
	cmd.Env = append(os.Environ(), beTheBinary+"=1")
	return cmd
}

// run runs a command to its end (at most a minute) and returns its exit
// code and output.
func (p proc) run(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := p.command(ctx, args...)
	var out, errOut bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode(), out.String(), errOut.String()
	case err != nil:
		t.Errorf("koers %v: %v", args, err) // called from goroutines: no Fatal
		return -1, out.String(), errOut.String()
	}
	return 0, out.String(), errOut.String()
}

// start starts a long-running command and returns it with the first line
// it printed.
func (p proc) start(t *testing.T, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := p.command(context.Background(), args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errOut safeBuffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		line, _ := r.ReadString('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, r)
	}()
	select {
	case line := <-lines:
		if line == "" {
			t.Fatalf("koers %v printed nothing: %s", args, errOut.String())
		}
		return cmd, line
	case <-time.After(time.Minute):
		t.Fatalf("koers %v printed nothing within a minute: %s", args, errOut.String())
	}
	return nil, ""
}

type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *safeBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *safeBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// acks collects the decisions the processes acknowledged, and the
// submissions that failed, to be sent again with the same ids.
type acks struct {
	mu      sync.Mutex
	ids     map[string]bool
	retries []func() bool
}

func (a *acks) retry(f func() bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.retries = append(a.retries, f)
}

func (a *acks) add(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ids[id] = true
}

func TestProcessesOnOneDataFolderLoseNoAcknowledgedDecision(t *testing.T) {
	p := proc{data: t.TempDir(), db: pgtest.Fresh(t)}
	if code, out, errOut := p.run(t, "", "init", "--root", "p-root", "--effective", "2025-01-01"); code != 0 {
		t.Fatalf("init: %d %s %s", code, out, errOut)
	}
	code, out, errOut := p.run(t, "", "verify", "--json")
	var start struct {
		DigestAt uint64 `json:"digest_at"`
		Digest   string `json:"digest"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &start) != nil || start.Digest == "" {
		t.Fatalf("verify at the start: %d %s %s", code, out, errOut)
	}

	// A webhook receiver for a feed that runs as a process of its own.
	received := make(chan string, 10000)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			ID string `json:"id"`
		}
		_ = json.NewDecoder(r.Body).Decode(&ev)
		received <- ev.ID
	}))
	defer receiver.Close()

	serve, line := p.start(t, "serve", "--listen", "127.0.0.1:0")
	base := regexp.MustCompile(`http://\S+`).FindString(line)
	serveBase := func() string { return base }
	p.start(t, "feed", "--to", receiver.URL, "--name", "hook")

	// While serve runs, no other embedded server can start on the folder.
	if srv, err := eventstore.StartEmbedded(eventstore.EmbeddedOptions{Dir: filepath.Join(p.data, "nats")}); !errors.Is(err, eventstore.ErrStoreInUse) {
		if srv != nil {
			srv.Shutdown()
		}
		t.Fatalf("a second embedded server beside serve: %v, want ErrStoreInUse", err)
	}

	acked := &acks{ids: map[string]bool{}}
	client := &http.Client{Timeout: 30 * time.Second}
	teamForm := func(id, team string) string {
		return fmt.Sprintf(`{"id":%q,"by":"p-root","authority":"root","reason":"r","changes":[{"kind":"team.form","id":%q,"name":"T","type":"platform"}]}`, id, team)
	}
	const rounds, each = 3, 3
	for round := 0; round < rounds; round++ {
		var wg sync.WaitGroup
		for i := 0; i < each; i++ {
			wg.Add(4)
			go func() { // decide, as its own process
				defer wg.Done()
				id := fmt.Sprintf("cli-%d-%d", round, i)
				decide := func() bool {
					code, _, errOut := p.run(t, "", "decide", "team.form", "--by", "p-root", "--authority", "root", "--reason", "r",
						"--decision-id", id, "--id", "t-"+id, "--name", "T", "--type", "platform")
					if code != 0 {
						t.Logf("decide %s: %s", id, errOut)
						return false
					}
					acked.add(id)
					return true
				}
				if !decide() {
					acked.retry(decide)
				}
			}()
			go func() { // apply, as its own process
				defer wg.Done()
				var lines []string
				for j := 0; j < 3; j++ {
					id := fmt.Sprintf("apply-%d-%d-%d", round, i, j)
					lines = append(lines, teamForm(id, "t-"+id))
				}
				apply := func() bool {
					code, _, errOut := p.run(t, strings.Join(lines, "\n"), "apply", "-f", "-")
					if code != 0 {
						t.Logf("apply round %d: %s", round, errOut)
						return false
					}
					for j := 0; j < 3; j++ {
						acked.add(fmt.Sprintf("apply-%d-%d-%d", round, i, j))
					}
					return true
				}
				if !apply() {
					acked.retry(apply)
				}
			}()
			go func() { // the API of serve
				defer wg.Done()
				id := fmt.Sprintf("http-%d-%d", round, i)
				at := base
				post := func() bool {
					resp, err := client.Post(at+"/v1/decisions", "application/json", strings.NewReader(teamForm(id, "t-"+id)))
					if err != nil {
						t.Logf("POST %s: %v", id, err) // serve was killed
						return false
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
						t.Logf("POST %s: %s", id, resp.Status)
						return false
					}
					acked.add(id)
					return true
				}
				if !post() {
					acked.retry(func() bool { at = serveBase(); return post() })
				}
			}()
			go func() { // queries read beside it all
				defer wg.Done()
				p.run(t, "", "org")
			}()
		}
		if round == 1 {
			// The holder dies in the middle of the round, however it
			// was doing; a new serve starts at once.
			time.Sleep(200 * time.Millisecond)
			_ = serve.Process.Kill()
			_ = serve.Wait()
			serve, line = p.start(t, "serve", "--listen", "127.0.0.1:0")
			base = regexp.MustCompile(`http://\S+`).FindString(line)
		}
		wg.Wait()
	}

	// What failed around the kill is sent again with the same ids, as a
	// client would: each is recorded once.
	for _, again := range acked.retries {
		if !again() {
			t.Error("a submission sent again after the kill failed again")
		}
	}

	// A new decision reaches the feed's target promptly.
	for len(received) > 0 {
		<-received
	}
	if code, out, errOut := p.run(t, "", "decide", "team.form", "--by", "p-root", "--authority", "root", "--reason", "r",
		"--decision-id", "last", "--id", "t-last", "--name", "T", "--type", "platform"); code != 0 {
		t.Fatalf("last decide: %d %s %s", code, out, errOut)
	}
	acked.add("last")
	// The issue asks for a second; the bound here is wider, because a
	// timed assertion on a shared machine measures the machine. What it
	// catches is the stall this test was written for (a feed beside serve
	// waiting 35 s and more on a second server's store); the figure is
	// logged.
	sent := time.Now()
	deadline := time.After(10 * time.Second)
wait:
	for {
		select {
		case id := <-received:
			if strings.HasPrefix(id, "last/") {
				break wait
			}
		case <-deadline:
			t.Fatal("the feed beside serve did not deliver a new decision within 10 s")
		}
	}
	t.Logf("a decision recorded by another process reached the feed's target %s after decide returned", time.Since(sent).Round(time.Millisecond))

	// Every acknowledged decision is in the log, once, with sequences of
	// its own.
	code, out, errOut = p.run(t, "", "audit", "--format", "json", "--limit", "1000")
	var audit struct {
		Decisions []struct {
			ID            string `json:"id"`
			FirstSequence uint64 `json:"first_sequence"`
			Sequence      uint64 `json:"sequence"`
		}
	}
	if code != 0 || json.Unmarshal([]byte(out), &audit) != nil {
		t.Fatalf("audit: %d %s %s", code, out, errOut)
	}
	seen := map[string]int{}
	owner := map[uint64]string{}
	for _, d := range audit.Decisions {
		seen[d.ID]++
		for s := d.FirstSequence; s <= d.Sequence; s++ {
			if other, ok := owner[s]; ok {
				t.Errorf("sequence %d belongs to %s and %s", s, other, d.ID)
			}
			owner[s] = d.ID
		}
	}
	if sent := rounds*each*5 + 1; len(acked.ids) != sent {
		t.Errorf("%d decisions acknowledged of %d sent", len(acked.ids), sent)
	}
	for id := range acked.ids {
		if seen[id] != 1 {
			t.Errorf("acknowledged decision %s is in the log %d times, want once", id, seen[id])
		}
	}
	if code, out, errOut := p.run(t, "", "verify"); code != 0 {
		t.Fatalf("verify: %d %s %s", code, out, errOut)
	}
	if code, out, errOut := p.run(t, "", "verify", "--at", fmt.Sprint(start.DigestAt), "--digest", start.Digest); code != 0 {
		t.Fatalf("the digest taken at the start no longer verifies: %d %s %s", code, out, errOut)
	}
	t.Logf("%d decisions acknowledged, %d of them only when sent again after the kill -9 of serve", len(acked.ids), len(acked.retries))
}
