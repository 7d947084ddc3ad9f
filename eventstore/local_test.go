package eventstore_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"koers/domain"
	"koers/eventstore"
)

func TestASecondEmbeddedServerOnOneStoreNeverStarts(t *testing.T) {
	dir := t.TempDir()
	first, err := eventstore.StartEmbedded(eventstore.EmbeddedOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, port := range []int{0, -1} {
		second, err := eventstore.StartEmbedded(eventstore.EmbeddedOptions{Dir: dir, Port: port})
		if !errors.Is(err, eventstore.ErrStoreInUse) {
			if second != nil {
				second.Shutdown()
			}
			t.Fatalf("second server on %s (port %d): %v, want ErrStoreInUse", dir, port, err)
		}
	}
	first.Shutdown()
	again, err := eventstore.StartEmbedded(eventstore.EmbeddedOptions{Dir: dir})
	if err != nil {
		t.Fatalf("after the first stopped, the store is free again: %v", err)
	}
	again.Shutdown()
}

// openLocal joins a data folder as one more Koers process would: each
// Local has file locks of its own, exactly as a separate process has.
func openLocal(tb testing.TB, dataDir, natsURL string) *eventstore.Local {
	tb.Helper()
	l, err := eventstore.OpenLocal(eventstore.LocalOptions{DataDir: dataDir, NATSURL: natsURL, ReconnectFor: 20 * time.Second})
	if err != nil {
		tb.Fatalf("open data folder %s: %v", dataDir, err)
	}
	tb.Cleanup(l.Close)
	return l
}

func localJS(tb testing.TB, l *eventstore.Local) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc, err := l.Connect()
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return nc, js
}

func TestProcessesOnOneDataFolderShareOneServerAndTakeItOver(t *testing.T) {
	data := t.TempDir()
	a, b := openLocal(t, data, ""), openLocal(t, data, "")
	ncA, jsA := localJS(t, a)
	if !a.Holding() {
		t.Fatal("the first to connect runs the server")
	}
	_, jsB := localJS(t, b)
	if b.Holding() {
		t.Fatal("the second to connect must be a client of the first, not a second server")
	}
	info, err := eventstore.ReadServerInfo(data)
	if err != nil || info.PID != os.Getpid() {
		t.Fatalf("server info: %+v %v", info, err)
	}
	if fi, err := os.Stat(filepath.Join(data, "nats", "credentials")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials: %v %v, want a file only its owner can read", fi, err)
	}

	stA := openStore(t, jsA)
	stB := openStore(t, jsB)
	p := person("p-1")
	mustAppend(t, stA, meta("a"), map[domain.Ref]uint64{p: 0}, event(p, "person.joined", nil))
	mustAppend(t, stB, meta("b"), map[domain.Ref]uint64{p: 1}, event(p, "person.moved", nil))

	// The holder leaves; the client's next dial starts the server itself,
	// on the same store, and nothing acknowledged is lost.
	ncA.Close()
	a.Close()
	deadline := time.Now().Add(20 * time.Second)
	for !b.Holding() {
		if time.Now().After(deadline) {
			t.Fatal("the client did not take the server over within 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var h eventstore.History
	for {
		h, err = stB.Load(ctx(t), p)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil || len(h.Events) != 2 {
		t.Fatalf("after the take-over: %v, %d events, want 2", err, len(h.Events))
	}
	mustAppend(t, stB, meta("c"), map[domain.Ref]uint64{p: h.Version}, event(p, "person.moved", nil))
}

func TestAClientWithoutTheFolderCredentialsIsRefused(t *testing.T) {
	data := t.TempDir()
	l := openLocal(t, data, "")
	localJS(t, l)
	info, err := eventstore.ReadServerInfo(data)
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(info.Address)
	if host != "127.0.0.1" {
		t.Fatalf("the server listens on %s, want loopback only", host)
	}
	if _, err := strconv.Atoi(port); err != nil || port == "4222" {
		t.Fatalf("port %s: want a random one, never NATS' default", port)
	}
	nc, err := nats.Connect("nats://"+info.Address, nats.Timeout(2*time.Second), nats.MaxReconnects(0))
	if err == nil {
		nc.Close()
		t.Fatal("a client without the folder's credentials connected")
	}
}

func TestADataFolderRefusesProcessesWithAnotherNATSSetting(t *testing.T) {
	data := t.TempDir()
	embedded := openLocal(t, data, "")
	_, err := eventstore.OpenLocal(eventstore.LocalOptions{DataDir: data, NATSURL: "nats://127.0.0.1:4222"})
	var inUse *eventstore.FolderInUseError
	if !errors.As(err, &inUse) || inUse.Have != "embedded" || inUse.Want != "nats://127.0.0.1:4222" {
		t.Fatalf("a process with --nats-url beside an embedded one: %v, want FolderInUseError", err)
	}
	embedded.Close()
	external := openLocal(t, data, "nats://127.0.0.1:4222")
	_, err = eventstore.OpenLocal(eventstore.LocalOptions{DataDir: data})
	if !errors.As(err, &inUse) || inUse.Have != "nats://127.0.0.1:4222" {
		t.Fatalf("an embedded process beside one with --nats-url: %v, want FolderInUseError", err)
	}
	external.Close()
	openLocal(t, data, "")
}
