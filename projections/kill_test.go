package projections

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"koers/eventstore"
	"koers/internal/ledgertest"
	"koers/internal/pgtest"
	"koers/ledger"
)

// The helper projector process reads its ledger and read models from these.
const (
	helperEnv       = "KOERS_TEST_HELPER_PROJECTOR" // "1" in the helper process
	helperNATS      = "KOERS_TEST_HELPER_NATS"
	helperSeal      = "KOERS_TEST_HELPER_SEAL"
	helperDB        = "KOERS_TEST_HELPER_DB"
	helperSchema    = "KOERS_TEST_HELPER_SCHEMA"
	helperCommitTag = "helper-commit "
)

// TestHelperProjector is not a test of its own: run by
// TestKilledProjectorProcessesLoseNothing with helperEnv set, it projects a
// ledger live in small batches, printing each commit, until it is killed.
// Without helperEnv it returns at once.
func TestHelperProjector(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // the parent kills it long before
	defer cancel()
	nc, err := nats.Connect(os.Getenv(helperNATS))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	key, err := hex.DecodeString(os.Getenv(helperSeal))
	if err != nil {
		t.Fatal(err)
	}
	st, err := eventstore.Open(ctx, js, eventstore.Config{SealKey: key})
	if err != nil {
		t.Fatal(err)
	}
	schema := os.Getenv(helperSchema)
	db, err := Open(ctx, os.Getenv(helperDB), Options{Schema: schema, ReportingSchema: schema + "_r"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, err := NewProjector(db, st, ProjectorOptions{BatchEvents: 40, FlushInterval: time.Millisecond, OnCommit: func(cp uint64) {
		fmt.Printf("%s%d\n", helperCommitTag, cp)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestKilledProjectorProcessesLoseNothing runs the projector in a process of
// its own and SIGKILLs it in the middle of its batches, again and again,
// while decisions keep being recorded; after a last run the read models
// equal a clean build of the whole log.
func TestKilledProjectorProcessesLoseNothing(t *testing.T) {
	srv, err := eventstore.StartEmbedded(eventstore.EmbeddedOptions{Dir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	ctx := context.Background()
	st, err := eventstore.Open(ctx, js, eventstore.Config{SealKey: key})
	if err != nil {
		t.Fatal(err)
	}
	h, err := ledger.New(st, ledger.Options{Now: func() time.Time { return ledgertest.Clock }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Init(ctx, ledgertest.RootActor, ledgertest.Genesis); err != nil {
		t.Fatal(err)
	}
	e := env{h: h, st: st, nc: nc}
	e.play(t, bootstrap)

	// Decisions keep coming while the projector is killed and restarted.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	var appendErr error
	go func() {
		defer wg.Done()
		for n := 0; n < 300; n++ {
			select {
			case <-stop:
				return
			default:
			}
			var d strings.Builder
			fmt.Fprintf(&d, `{"id":"k-%d","by":"p-root","authority":"root","reason":"grow","effective":"2026-03-01","changes":[`, n)
			fmt.Fprintf(&d, `{"kind":"team.form","id":"kt-%d","name":"T","type":"platform"}`, n)
			for i := 0; i < 15; i++ {
				fmt.Fprintf(&d, `,{"kind":"person.join","id":"kp-%d-%d","name":"P","team":"kt-%d"}`, n, i, n)
			}
			if n > 0 {
				fmt.Fprintf(&d, `,{"kind":"person.move","person":"kp-%d-0","to":"kt-%d"}`, n-1, n)
				fmt.Fprintf(&d, `,{"kind":"funding.shift","period":"2026","from":"pool","to":"valuestream:payments","amount":"1.00"}`)
			}
			d.WriteString(`]}`)
			if _, err := h.Submit(ctx, []byte(d.String())); err != nil {
				appendErr = err
				return
			}
		}
	}()

	schema := fmt.Sprintf("t%d_killed", os.Getpid())
	url := pgtest.Package(t)
	db, err := Open(ctx, url, Options{Schema: schema, ReportingSchema: schema + "_r"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)

	kills := 0
	var cps []uint64
	for round := 0; round < 6; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProjector$", "-test.count=1")
		cmd.Env = append(os.Environ(), helperEnv+"=1", helperNATS+"="+srv.ClientURL(), helperSeal+"="+hex.EncodeToString(key),
			helperDB+"="+url, helperSchema+"="+schema)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill it right after its (round+2)th commit: it is then reading or
		// applying the next batch.
		lines := make(chan string)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if cp, ok := strings.CutPrefix(sc.Text(), helperCommitTag); ok {
					lines <- cp
				}
			}
		}()
		commits := 0
		var last string
		timeout := time.After(time.Minute)
	wait:
		for commits < round+2 {
			select {
			case cp, ok := <-lines:
				if !ok {
					break wait
				}
				commits++
				last = cp
			case <-timeout:
				break wait
			}
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		for range lines {
		}
		werr := cmd.Wait()
		if commits < round+2 {
			t.Fatalf("helper projector ended after %d commits (%v):\n%s", commits, werr, stderr.String())
		}
		kills++
		var cp uint64
		fmt.Sscan(last, &cp)
		cps = append(cps, cp)
	}
	close(stop)
	wg.Wait()
	if appendErr != nil {
		t.Fatal(appendErr)
	}
	if cps[len(cps)-1] <= cps[0] {
		t.Fatalf("checkpoints at the kills %v: the killed projectors made no progress", cps)
	}

	catchUp(t, db, st)
	clean := newDB(t)
	catchUp(t, clean, st)
	if got, want := dump(t, db), dump(t, clean); got != want {
		t.Fatalf("after %d kills the read models differ from a clean build:\n%s\nwant:\n%s", kills, got, want)
	}
	if got, want := views(t, db), views(t, clean); got != want {
		t.Fatalf("after %d kills the reporting views differ from a clean build", kills)
	}
	t.Logf("killed %d times at checkpoints %v", kills, cps)
}
