package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"koers/internal/pgserver"
)

// With its PostgreSQL gone, serve keeps recording decisions (the log is
// the source of truth), answers reads 503 with Retry-After, says in
// /healthz what is down, and catches up when PostgreSQL is back: nothing
// is lost and serve never gives up.
func TestServeKeepsDecidingWhileItsPostgreSQLIsDown(t *testing.T) {
	// A private cluster of the test's own, so that it can be stopped; a
	// short path, since a socket's path is limited, open to the postgres
	// user when the test runs as root.
	data, err := os.MkdirTemp("", "kout")
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(data, 0o755)
	ctx := context.Background()
	t.Cleanup(func() {
		_ = pgserver.StopPrivate(ctx, data)
		_ = os.RemoveAll(data)
	})
	db, err := pgserver.Private(ctx, data)
	if err != nil {
		t.Fatalf("a private PostgreSQL for the test (PostgreSQL's binaries are needed: apt-get install postgresql): %v", err)
	}
	var out, errOut strings.Builder
	if code := run(ctx, []string{"--data", data, "--database-url", db, "init", "--root", "p-root", "--effective", "2025-01-01"},
		strings.NewReader(""), &out, &errOut); code != 0 {
		t.Fatal(errOut.String())
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(sctx, []string{"--data", data, "--database-url", db, "serve", "--listen", "127.0.0.1:0"}, strings.NewReader(""), pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("serve printed no address: %v", err)
	}
	go io.Copy(io.Discard, pr)
	base := regexp.MustCompile(`http://\S+`).FindString(line)
	client := &http.Client{Timeout: 30 * time.Second}
	decide := func(id string) {
		t.Helper()
		body := fmt.Sprintf(`{"id":%q,"by":"p-root","authority":"root","reason":"r","changes":[{"kind":"team.form","id":"t-%s","name":"T","type":"platform"}]}`, id, id)
		resp, err := client.Post(base+"/v1/decisions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatalf("decide %s: %v", id, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("decide %s: %s, want 201", id, resp.Status)
		}
	}
	visible := func(id string, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			resp, err := client.Get(base + "/v1/decisions/" + id)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("decision %s not in the read models within %s", id, within)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	decide("before")
	visible("before", 20*time.Second)

	if err := pgserver.StopPrivate(ctx, data); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"during-1", "during-2", "during-3"} {
		decide(id)
	}
	resp, err := client.Get(base + "/v1/org")
	if err != nil {
		t.Fatal(err)
	}
	problem, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a read with PostgreSQL down: %s, Retry-After %q (%s); want 503 with Retry-After", resp.Status, resp.Header.Get("Retry-After"), problem)
	}
	resp, err = client.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var health struct {
		Checks map[string]string `json:"checks"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || health.Checks["postgresql"] == "ok" || health.Checks["nats"] != "ok" {
		t.Fatalf("healthz with PostgreSQL down: %s %v; want 503 naming postgresql, nats ok", resp.Status, health.Checks)
	}
	// Long enough for the projector to fail more than once.
	time.Sleep(4 * time.Second)
	select {
	case code := <-done:
		t.Fatalf("serve exited %d while PostgreSQL was down", code)
	default:
	}

	if _, err := pgserver.Private(ctx, data); err != nil {
		t.Fatalf("start PostgreSQL again: %v", err)
	}
	for _, id := range []string{"during-1", "during-2", "during-3"} {
		visible(id, 60*time.Second)
	}
	decide("after")
	visible("after", 20*time.Second)
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d after cancel", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop within 20s of cancel")
	}
}
