package ledger_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"koers/domain"
	"koers/eventstore"
	"koers/internal/ledgertest"
	"koers/ledger"
)

// A connection to a real embedded nats-server over loopback that the test
// can make lose things, the way a network or a dying server does.
//
// Once armed, the write that carries an atomic batch's commit is either
// passed on (the server stores the decision, its acknowledgement is lost)
// or swallowed (the server never gets the whole batch); in both cases the
// connection then goes deaf (nothing it reads reaches the client) and
// drops after a moment, and the client reconnects through the dialer.
type faultyDialer struct {
	addr   string
	armed  atomic.Int32 // one of the modes below, 0: not armed
	down   atomic.Bool  // every dial fails
	hits   atomic.Int32 // how often an armed write was met
	marker atomic.Pointer[[]byte]
}

// setMarker makes the armed write the one that contains m (default: the
// commit of an atomic batch).
func (d *faultyDialer) setMarker(m string) { b := []byte(m); d.marker.Store(&b) }

const (
	loseAck = iota + 1
	loseRequest
)

func (d *faultyDialer) Dial(network, _ string) (net.Conn, error) {
	if d.down.Load() {
		return nil, errors.New("faulty dialer: the network is down")
	}
	c, err := net.DialTimeout("tcp", d.addr, time.Second)
	if err != nil {
		return nil, err
	}
	return &faultyConn{Conn: c, d: d}, nil
}

type faultyConn struct {
	net.Conn
	d    *faultyDialer
	mu   sync.Mutex
	deaf bool
}

// commitHeader is the header of the last message of an atomic batch.
var commitHeader = []byte("Nats-Batch-Commit")

func (c *faultyConn) Write(p []byte) (int, error) {
	marker := commitHeader
	if m := c.d.marker.Load(); m != nil {
		marker = *m
	}
	if bytes.Contains(p, marker) {
		if mode := c.d.armed.Swap(0); mode != 0 {
			c.d.hits.Add(1)
			c.mu.Lock()
			c.deaf = true
			c.mu.Unlock()
			// The server has half a second to store what it got; then the
			// client's reads fail and it reconnects.
			_ = c.Conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			if mode == loseRequest {
				return len(p), nil
			}
		}
	}
	return c.Conn.Write(p)
}

func (c *faultyConn) Read(p []byte) (int, error) {
	for {
		n, err := c.Conn.Read(p)
		c.mu.Lock()
		deaf := c.deaf
		c.mu.Unlock()
		if !deaf {
			return n, err
		}
		if err != nil {
			_ = c.Conn.Close()
			return 0, err
		}
	}
}

// faultyLedger is a handler on an embedded server reached over loopback
// through a faultyDialer.
type faultyLedger struct {
	srv    *eventstore.Embedded
	dir    string
	port   int
	dialer *faultyDialer
	store  *eventstore.Store
	h      *ledger.Handler
	key    []byte
}

func newFaultyLedger(t *testing.T, opts ledger.Options) *faultyLedger {
	t.Helper()
	l := &faultyLedger{dir: t.TempDir(), port: freePort(t)}
	l.start(t)
	t.Cleanup(func() { l.srv.Shutdown() })
	l.dialer = &faultyDialer{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(l.port))}
	nc, err := nats.Connect("nats://"+l.dialer.addr, nats.SetCustomDialer(l.dialer),
		nats.ReconnectWait(50*time.Millisecond), nats.MaxReconnects(-1), nats.ReconnectJitter(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	l.key = make([]byte, 32)
	_, _ = rand.Read(l.key)
	l.store, err = eventstore.Open(context.Background(), js, eventstore.Config{SealKey: l.key, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if opts.Now == nil {
		opts.Now = func() time.Time { return ledgertest.Clock }
	}
	l.h, err = ledger.New(l.store, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.h.Init(context.Background(), ledgertest.RootActor, ledgertest.Genesis); err != nil {
		t.Fatal(err)
	}
	return l
}

func (l *faultyLedger) start(t *testing.T) {
	t.Helper()
	srv, err := eventstore.StartEmbedded(eventstore.EmbeddedOptions{Dir: l.dir, Port: l.port})
	if err != nil {
		t.Fatal(err)
	}
	l.srv = srv
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// recordedOnce checks that decision id is in the log once, at seqs.
func recordedOnce(t *testing.T, st *eventstore.Store, id string, seqs []uint64) {
	t.Helper()
	hist, err := st.Load(context.Background(), domain.Ref{Kind: domain.KindDecision, ID: id})
	if err != nil {
		t.Fatal(err)
	}
	if len(hist.Events) != 1 {
		t.Fatalf("decision %s: %d records in the log, want 1", id, len(hist.Events))
	}
	if len(seqs) == 0 || hist.Events[0].Sequence != seqs[len(seqs)-1] {
		t.Fatalf("decision %s: record at %d, answer said %v", id, hist.Events[0].Sequence, seqs)
	}
}

func TestADecisionWhoseAcknowledgementIsLostIsAnsweredWithItsResult(t *testing.T) {
	l := newFaultyLedger(t, ledger.Options{})
	submit(t, l.h, org)
	for _, tc := range []struct {
		name string
		mode int32
	}{
		{"the server stored it, its answer was lost", loseAck},
		{"the server never got all of it", loseRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "lost-" + strconv.Itoa(int(tc.mode))
			l.dialer.armed.Store(tc.mode)
			hits := l.dialer.hits.Load()
			res, err := l.h.Submit(context.Background(), []byte(`{"id":"`+id+`","by":"p-root","authority":"root","reason":"r","changes":[{"kind":"team.form","id":"t-`+id+`","name":"T","type":"platform"}]}`))
			if l.dialer.hits.Load() != hits+1 {
				t.Fatal("the fault was never injected")
			}
			if err != nil {
				t.Fatalf("a decision whose answer was lost: %v, want its result", err)
			}
			if res.DecisionID != id || res.Duplicate {
				t.Fatalf("result %+v: want %s, not a duplicate (this call recorded it)", res, id)
			}
			recordedOnce(t, l.store, id, res.Sequences)
		})
	}
}

func TestADecisionAppendedAsTheServerRestartsIsAnsweredAsTheLogHasIt(t *testing.T) {
	l := newFaultyLedger(t, ledger.Options{})
	submit(t, l.h, org)
	for i := range 3 {
		id := "restart-" + strconv.Itoa(i)
		// The server goes down just after the commit left the client, and
		// comes back 300 ms later on the same store and port.
		l.dialer.armed.Store(loseAck)
		restarted := make(chan struct{})
		go func() {
			defer close(restarted)
			for l.dialer.armed.Load() != 0 {
				time.Sleep(time.Millisecond)
			}
			l.srv.Shutdown()
			time.Sleep(300 * time.Millisecond)
			l.start(t)
		}()
		res, err := l.h.Submit(context.Background(), []byte(`{"id":"`+id+`","by":"p-root","authority":"root","reason":"r","changes":[{"kind":"team.form","id":"t-`+id+`","name":"T","type":"platform"}]}`))
		<-restarted
		if err != nil {
			t.Fatalf("%s: %v, want its result once the server is back", id, err)
		}
		recordedOnce(t, l.store, id, res.Sequences)
	}
}

func TestADecisionWhoseOutcomeCannotBeLearnedSaysSo(t *testing.T) {
	l := newFaultyLedger(t, ledger.Options{ResolveFor: 300 * time.Millisecond})
	submit(t, l.h, org)
	l.dialer.armed.Store(loseAck)
	l.dialer.down.Store(true) // and the network stays down
	_, err := l.h.Submit(context.Background(), []byte(`{"id":"dark","by":"p-root","authority":"root","reason":"r","changes":[{"kind":"team.form","id":"t-dark","name":"T","type":"platform"}]}`))
	var unresolved *ledger.UnresolvedError
	if !errors.As(err, &unresolved) || !errors.Is(err, domain.ErrOutcomeUnknown) {
		t.Fatalf("with the network down: %v, want an *UnresolvedError wrapping domain.ErrOutcomeUnknown", err)
	}
	// Back up: the same decision sent again is answered with where it is.
	l.dialer.down.Store(false)
	res, err := l.h.Submit(context.Background(), []byte(`{"id":"dark","by":"p-root","authority":"root","reason":"r","changes":[{"kind":"team.form","id":"t-dark","name":"T","type":"platform"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	recordedOnce(t, l.store, "dark", res.Sequences)
}

func TestAResolvedDecisionMustBeTheOneSubmitted(t *testing.T) {
	l := newFaultyLedger(t, ledger.Options{})
	submit(t, l.h, org)
	// A second client, on a healthy connection of its own.
	nc, err := l.srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := eventstore.Open(context.Background(), js, eventstore.Config{SealKey: l.key})
	if err != nil {
		t.Fatal(err)
	}
	other, err := ledger.New(st, ledger.Options{Now: func() time.Time { return ledgertest.Clock }})
	if err != nil {
		t.Fatal(err)
	}
	// Another decision under the same id lands while this one's request is
	// lost (the connection is deaf for half a second): the id is taken,
	// and the answer says so rather than claiming the other's result.
	l.dialer.armed.Store(loseRequest)
	done := make(chan error, 1)
	go func() {
		for l.dialer.armed.Load() != 0 {
			time.Sleep(time.Millisecond)
		}
		_, err := other.Submit(context.Background(), []byte(`{"id":"twin","by":"p-root","authority":"root","reason":"other","changes":[{"kind":"team.form","id":"t-other","name":"T","type":"platform"}]}`))
		done <- err
	}()
	_, err = l.h.Submit(context.Background(), []byte(`{"id":"twin","by":"p-root","authority":"root","reason":"mine","changes":[{"kind":"team.form","id":"t-mine","name":"T","type":"platform"}]}`))
	if err := <-done; err != nil {
		t.Fatalf("the other decision: %v", err)
	}
	var inUse *ledger.IDInUseError
	if !errors.As(err, &inUse) || !errors.Is(err, domain.ErrRefused) {
		t.Fatalf("a lost append whose id another decision took: %v, want *IDInUseError", err)
	}
}

// A proposal, an approval (appended under a generated id, without a
// decision record) and the approval that decides are resolved too.
func TestProposalsAndApprovalsWhoseAcknowledgementIsLostAreAnsweredWithTheirResult(t *testing.T) {
	l := newFaultyLedger(t, ledger.Options{})
	submit(t, l.h, org)
	submit(t, l.h, `{"id":"board","by":"p-root","authority":"root","reason":"a board","effective":"2026-01-01","changes":[
	 {"kind":"person.join","id":"p-2","name":"Bo","team":"t-core"},
	 {"kind":"person.join","id":"p-3","name":"Cy","team":"t-core"},
	 {"kind":"board.form","id":"portfolio","name":"Portfolio board","members":["p-1","p-2","p-3"],"quorum":3},
	 {"kind":"mandate.grant","id":"m-board","holder":"board:portfolio","kinds":["funding.*"],"scope":"*"}]}`)

	// A proposal and an approval are single messages, not atomic batches:
	// the fault comes with the first message of any append.
	l.dialer.setMarker("Nats-Expected-Stream")
	l.dialer.armed.Store(loseAck)
	res, err := l.h.Submit(context.Background(), []byte(`{"id":"d-shift","by":"p-1","authority":"m-board","reason":"fund","changes":[
	 {"kind":"funding.shift","period":"2026","from":"valuestream:payments","to":"product:pay-app","amount":"1000.00"}]}`))
	if err != nil || res.State != "pending" || res.Duplicate || l.dialer.hits.Load() != 1 {
		t.Fatalf("proposal whose acknowledgement was lost: %+v, %v (faults %d); want pending", res, err, l.dialer.hits.Load())
	}
	// The proposer's proposal is its approval; p-2's leaves it pending,
	// p-3's decides it.
	for i, by := range []string{"p-2", "p-3"} {
		l.dialer.armed.Store(loseAck)
		res, err := l.h.Act(context.Background(), domain.Action{Proposal: "d-shift", Kind: domain.ActionApprove, By: by})
		if err != nil || int(l.dialer.hits.Load()) != 2+i {
			t.Fatalf("approval by %s whose acknowledgement was lost: %v (faults %d)", by, err, l.dialer.hits.Load())
		}
		want := []string{"pending", "decided"}[i]
		if res.State != want {
			t.Fatalf("approval by %s: state %q, want %q", by, res.State, want)
		}
	}
	// Each landed once: the decision is recorded once, decided with the
	// three approvals.
	p, err := l.h.Proposal(context.Background(), "d-shift")
	if err != nil || len(p.Approvers) != 3 {
		t.Fatalf("proposal after the approvals: %+v, %v; want 3 approvers", p, err)
	}
	hist, err := l.store.Load(context.Background(), domain.Ref{Kind: domain.KindDecision, ID: "d-shift"})
	if err != nil || len(hist.Events) != 1 {
		t.Fatalf("decision d-shift: %d records, %v; want 1", len(hist.Events), err)
	}
}
