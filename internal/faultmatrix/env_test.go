package faultmatrix

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"koers/internal/pgserver"
	"koers/internal/pgtest"
)

// env is one scenario's ledger: its data folder, NATS, read-model
// database, feed target and serve process.
type env struct {
	t       *testing.T
	name    string
	dir     string
	data    string
	db      string // the read models' database
	nodes   []*natsNode
	pgDir   string // the private PostgreSQL's folder, "" on the machine's server
	token   string
	tokens  string // the tokens file
	target  *target
	port    int
	serve   *process
	base    string
	serveNo int

	mu         sync.Mutex
	recoveries []recovery
}

// recovery is one measured recovery: what happened, and how long until
// the thing it waits for.
type recovery struct {
	what string
	d    time.Duration
}

// envOptions say what a scenario's ledger runs on.
type envOptions struct {
	natsNodes int  // 0: serve's embedded server; 1: a nats-server of its own; 3: a cluster
	privatePG bool // a private PostgreSQL cluster that the scenario may stop
}

func newEnv(t *testing.T, name string, o envOptions) *env {
	t.Helper()
	e := &env{t: t, name: name, dir: t.TempDir()}
	e.data = filepath.Join(e.dir, "data")
	if o.privatePG {
		// A short path, since a socket's path is limited, open to the
		// postgres user when the test runs as root.
		dir, err := os.MkdirTemp("", "kfm")
		if err != nil {
			t.Fatal(err)
		}
		_ = os.Chmod(dir, 0o755)
		e.pgDir = dir
		t.Cleanup(func() {
			_ = pgserver.StopPrivate(context.Background(), dir)
			_ = os.RemoveAll(dir)
		})
		db, err := pgserver.Private(context.Background(), dir)
		if err != nil {
			t.Fatalf("a private PostgreSQL for the scenario (PostgreSQL's binaries are needed: apt-get install postgresql): %v", err)
		}
		e.db = db
	} else {
		e.db = pgtest.Fresh(t)
	}
	if o.natsNodes > 0 {
		e.nodes = startNATS(t, filepath.Join(e.dir, "nats"), o.natsNodes)
	}

	var b [24]byte
	_, _ = rand.Read(b[:])
	e.token = hex.EncodeToString(b[:])
	e.tokens = filepath.Join(e.dir, "tokens")
	if err := os.WriteFile(e.tokens, []byte("p-root "+e.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	args := []string{"init", "--root", "p-root", "--effective", "2025-01-01"}
	if o.natsNodes > 1 {
		args = append(args, "--replicas", "3")
	}
	// A cluster may still be electing its meta leader: init is retried
	// (it creates nothing twice).
	waitFor(t, time.Minute, "koers init", func() error {
		if code, out, errOut := koers(t, e.args(args...)...); code != 0 {
			return fmt.Errorf("exit %d: %s %s", code, out, errOut)
		}
		return nil
	})

	e.target = newTarget(t)
	e.port = freePort(t)
	e.base = fmt.Sprintf("http://127.0.0.1:%d", e.port)
	e.serve = &process{name: "serve", log: filepath.Join(e.dir, "serve.log"),
		args: append([]string{bin.koers}, e.args("serve", "--listen", fmt.Sprintf("127.0.0.1:%d", e.port),
			"--tokens", e.tokens, "--feed", "hook="+e.target.url())...)}
	t.Cleanup(func() {
		if t.Failed() {
			// What the processes said, for a failure found under faults.
			t.Log(e.serve.tail())
			for _, n := range e.nodes {
				t.Log(n.tail())
			}
		}
		e.serve.kill()
	})
	e.startServe()
	return e
}

// args are a koers command's arguments with the scenario's settings.
func (e *env) args(args ...string) []string {
	global := []string{"--data", e.data, "--database-url", e.db}
	if len(e.nodes) > 0 {
		global = append(global, "--nats-url", natsURL(e.nodes))
	}
	return append(global, args...)
}

// startServe starts serve (again) on the scenario's port and waits until
// its /healthz answers 200.
func (e *env) startServe() {
	e.t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	e.serve.start(e.t, func() error {
		resp, err := client.Get(e.base + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	})
}

func (e *env) recovered(what string, d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.recoveries = append(e.recoveries, recovery{what: what, d: d})
}

// waitAck waits for the first decision acknowledged after t0 and records
// the time from t0 to it as a recovery.
func (e *env) waitAck(l *load, t0 time.Time, what string, within time.Duration) {
	e.t.Helper()
	var at time.Time
	waitFor(e.t, within, "a decision acknowledged after "+what, func() error {
		var ok bool
		if at, ok = l.firstAckAfter(t0); !ok {
			if !e.serve.running() {
				return errors.New("serve exited:\n" + e.serve.tail())
			}
			return errors.New("none yet")
		}
		return nil
	})
	e.recovered(what+" → first acknowledgement", at.Sub(t0))
}

// keepLoading lets the load run for d, and at least until n more
// decisions were acknowledged (at most two minutes more).
func (e *env) keepLoading(l *load, d time.Duration, n int) {
	e.t.Helper()
	from := l.ackedCount()
	time.Sleep(d)
	waitFor(e.t, 2*time.Minute, fmt.Sprintf("%d more decisions acknowledged", n), func() error {
		if got := l.ackedCount() - from; got < n {
			return fmt.Errorf("%d so far", got)
		}
		return nil
	})
}

// target is a webhook feed target that can be taken down (its port
// closed: connections refused) and brought back on the same port.
type target struct {
	addr string
	mu   sync.Mutex
	srv  *http.Server
	got  map[string]int // deliveries per event id
	// recorded holds the decisions whose record (decision.recorded, the
	// last event of a decision) arrived: the feed publishes in order, so
	// the decision's other events came before it.
	recorded map[string]bool
}

func newTarget(t *testing.T) *target {
	tg := &target{addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), got: map[string]int{}, recorded: map[string]bool{}}
	if err := tg.up(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tg.down)
	return tg
}

func (tg *target) url() string { return "http://" + tg.addr + "/events" }

func (tg *target) up() error {
	var ln net.Listener
	var err error
	// The port was just given up by this process: binding it again can
	// take a moment on a busy machine.
	for attempt := 0; attempt < 50; attempt++ {
		if ln, err = net.Listen("tcp", tg.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("feed target on %s: %w", tg.addr, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(tg.receive)}
	tg.mu.Lock()
	tg.srv = srv
	tg.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
	return nil
}

// down closes the port and every connection: the feed's posts fail.
func (tg *target) down() {
	tg.mu.Lock()
	srv := tg.srv
	tg.srv = nil
	tg.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

func (tg *target) receive(w http.ResponseWriter, r *http.Request) {
	var ev struct {
		ID       string `json:"id"`
		Type     string `json:"type"`
		Decision string `json:"koersdecision"`
	}
	if err := json.NewDecoder(r.Body).Decode(&ev); err != nil || ev.ID == "" {
		http.Error(w, "not a CloudEvent", http.StatusBadRequest)
		return
	}
	tg.mu.Lock()
	tg.got[ev.ID]++
	if ev.Type == "koers.decision.recorded" {
		tg.recorded[ev.Decision] = true
	}
	tg.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// has tells whether the target received the event at least once.
func (tg *target) has(eventID string) bool {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return tg.got[eventID] > 0
}

// deliveries copies what the target received.
func (tg *target) deliveries() map[string]int {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	out := make(map[string]int, len(tg.got))
	for k, v := range tg.got {
		out[k] = v
	}
	return out
}

// decisionDelivered tells whether the target received a decision's
// record.
func (tg *target) decisionDelivered(id string) bool {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return tg.recorded[id]
}
