package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"koers/internal/pgtest"
)

// Two serve processes on one data folder (so one NATS, the embedded
// server of whichever holds the folder) and one PostgreSQL: both accept
// decisions, exactly one projector writes the read models, and when its
// process is killed -9 the other's takes over within seconds.
func TestTwoServesOneActiveProjectorTakenOverAfterAKill(t *testing.T) {
	p := proc{data: t.TempDir(), db: pgtest.Fresh(t)}
	if code, out, errOut := p.run(t, "", "init", "--root", "p-root", "--effective", "2025-01-01"); code != 0 {
		t.Fatalf("init: %d %s %s", code, out, errOut)
	}
	type server struct {
		cmd  *exec.Cmd
		base string
	}
	var servers [2]server
	for i := range servers {
		cmd, line := p.start(t, "serve", "--listen", "127.0.0.1:0")
		servers[i] = server{cmd: cmd, base: regexp.MustCompile(`http://\S+`).FindString(line)}
	}
	client := &http.Client{Timeout: 10 * time.Second}

	// projector is the check "projector" of a server's /healthz, whatever
	// its status ("" when it does not answer).
	projector := func(base string) string {
		resp, err := client.Get(base + "/healthz")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		var h struct {
			Checks map[string]string `json:"checks"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&h)
		return h.Checks["projector"]
	}
	metric := func(base string) string {
		resp, err := client.Get(base + "/metrics")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		m := regexp.MustCompile(`(?m)^koers_projector_active (\S+)$`).FindStringSubmatch(string(b))
		if m == nil {
			return ""
		}
		return m[1]
	}
	// Exactly one is active, the other stands by.
	active := -1
	deadline := time.Now().Add(20 * time.Second)
	for active < 0 {
		a, b := projector(servers[0].base), projector(servers[1].base)
		switch {
		case a == "active" && b == "standby":
			active = 0
		case a == "standby" && b == "active":
			active = 1
		case a == "active" && b == "active":
			t.Fatal("both serve processes report an active projector")
		case time.Now().After(deadline):
			t.Fatalf("want one active projector and one standby, have %q and %q", a, b)
		default:
			time.Sleep(100 * time.Millisecond)
		}
	}
	for i, s := range servers {
		want := "0"
		if i == active {
			want = "1"
		}
		if got := metric(s.base); got != want {
			t.Errorf("serve %d: koers_projector_active %s, want %s", i, got, want)
		}
	}

	acked := map[string]bool{}
	// post sends a decision to a server until it is acknowledged (the same
	// id each time, as a client would), for at most 60 s.
	post := func(base, id string) {
		t.Helper()
		body := fmt.Sprintf(`{"id":%q,"by":"p-root","authority":"root","reason":"r","changes":[{"kind":"team.form","id":%q,"name":"T","type":"platform"}]}`, id, "t-"+id)
		until := time.Now().Add(time.Minute)
		for {
			resp, err := client.Post(base+"/v1/decisions", "application/json", strings.NewReader(body))
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK {
					acked[id] = true
					return
				}
				err = fmt.Errorf("%s %s", resp.Status, bytes.TrimSpace(b))
			}
			if time.Now().After(until) {
				t.Fatalf("POST %s to %s: %v", id, base, err)
			}
			t.Logf("POST %s: %v; again", id, err)
			time.Sleep(200 * time.Millisecond)
		}
	}
	// visible waits until a server's read models hold a decision.
	visible := func(base, id string, within time.Duration) {
		t.Helper()
		until := time.Now().Add(within)
		for {
			resp, err := client.Get(base + "/v1/decisions/" + id)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return
				}
			}
			if time.Now().After(until) {
				t.Fatalf("decision %s not in the read models of %s within %s", id, base, within)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// Both accept decisions; the one projector makes them visible to both.
	for i := 0; i < 4; i++ {
		for j, s := range servers {
			post(s.base, fmt.Sprintf("before-%d-%d", j, i))
		}
	}
	for id := range acked {
		for _, s := range servers {
			visible(s.base, id, 15*time.Second)
		}
	}

	// The active one dies; the other's projector takes over.
	survivor := servers[1-active]
	_ = servers[active].cmd.Process.Kill()
	_ = servers[active].cmd.Wait()
	killed := time.Now()
	for projector(survivor.base) != "active" {
		if time.Since(killed) > 10*time.Second {
			t.Fatalf("the survivor's projector is %q 10 s after the active one's process was killed", projector(survivor.base))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the survivor's projector took over %s after the kill of serve %d (the first started, which ran the folder's NATS: %v)",
		time.Since(killed).Round(time.Millisecond), active, active == 0)
	if got := metric(survivor.base); got != "1" {
		t.Errorf("the survivor's koers_projector_active %s, want 1", got)
	}
	for i := 0; i < 5; i++ {
		id := fmt.Sprintf("after-%d", i)
		post(survivor.base, id)
		visible(survivor.base, id, 15*time.Second)
	}

	// status names the session that holds the lease.
	code, out, errOut := p.run(t, "", "status", "--json")
	var st struct {
		Projector struct {
			Active string `json:"active"`
		} `json:"projector"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || !strings.HasPrefix(st.Projector.Active, "koers-lease pid ") {
		t.Errorf("status names no active projector: %d %s %s", code, out, errOut)
	}

	// The survivor's lease session ends under it (PostgreSQL restarted,
	// a connection cut): it stops writing, takes the lease again, and
	// the read models keep following.
	conn, err := pgx.Connect(context.Background(), p.db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var ended int
	if err := conn.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name LIKE 'koers-lease%' AND datname = current_database()`).Scan(&ended); err != nil || ended != 1 {
		t.Fatalf("ending the lease's session: %d sessions, %v", ended, err)
	}
	cut := time.Now()
	time.Sleep(2 * time.Second) // the holder checks every second
	for projector(survivor.base) != "active" {
		if time.Since(cut) > 10*time.Second {
			t.Fatalf("the survivor's projector is %q 10 s after its lease's session ended", projector(survivor.base))
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i := 0; i < 3; i++ {
		id := fmt.Sprintf("relet-%d", i)
		post(survivor.base, id)
		visible(survivor.base, id, 15*time.Second)
	}

	// Every acknowledged decision is in the log once, and in the read
	// models.
	code, out, errOut = p.run(t, "", "audit", "--format", "json", "--limit", "1000")
	var audit struct {
		Decisions []struct {
			ID string `json:"id"`
		}
	}
	if code != 0 || json.Unmarshal([]byte(out), &audit) != nil {
		t.Fatalf("audit: %d %s %s", code, out, errOut)
	}
	seen := map[string]int{}
	for _, d := range audit.Decisions {
		seen[d.ID]++
	}
	for id := range acked {
		if seen[id] != 1 {
			t.Errorf("acknowledged decision %s is in the log %d times, want once", id, seen[id])
		}
		visible(survivor.base, id, time.Second)
	}
	if len(acked) != 16 {
		t.Errorf("%d decisions acknowledged, want 16", len(acked))
	}
}
