package eventstore_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"koers/domain"
	"koers/eventstore"
)

// freePorts reserves n loopback ports long enough to learn their numbers.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	return ports
}

type node struct {
	opts eventstore.EmbeddedOptions
	srv  *eventstore.Embedded
}

func (n *node) start(t *testing.T) {
	t.Helper()
	srv, err := eventstore.StartEmbedded(n.opts)
	if err != nil {
		t.Fatalf("start %s: %v", n.opts.Name, err)
	}
	n.srv = srv
}

// waitFor polls cond until it holds, for at most d: a cluster electing a
// leader or catching up a node gives no signal to wait on from outside.
func waitFor(t *testing.T, d time.Duration, what string, cond func() error) {
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

func TestThreeNodeClusterKeepsAppendingWithOneNodeDownAndLosesNothing(t *testing.T) {
	ports := freePorts(t, 6)
	var routes []string
	for i := range 3 {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[3+i]))
	}
	nodes := make([]*node, 3)
	base := t.TempDir()
	for i := range nodes {
		nodes[i] = &node{opts: eventstore.EmbeddedOptions{
			Dir: filepath.Join(base, fmt.Sprint(i)), Port: ports[i], Name: fmt.Sprintf("n%d", i),
			Cluster: &eventstore.EmbeddedCluster{Name: "koers-test", Port: ports[3+i], Routes: routes},
		}}
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			if n.srv != nil {
				n.srv.Shutdown()
			}
		}
	})
	// Start together: JetStream waits for a quorum of the cluster.
	errs := make(chan error, 3)
	for _, n := range nodes {
		go func() {
			srv, err := eventstore.StartEmbedded(n.opts)
			n.srv = srv
			errs <- err
		}()
	}
	for range nodes {
		if err := <-errs; err != nil {
			t.Fatalf("start cluster: %v", err)
		}
	}

	var urls []string
	for i := range nodes {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
	}
	nc, err := nats.Connect(urls[0]+","+urls[1]+","+urls[2], nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var st *eventstore.Store
	waitFor(t, 30*time.Second, "R3 stream created", func() error {
		c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		st, err = eventstore.Open(c, js, eventstore.Config{SealKey: testKey, Replicas: 3})
		return err
	})

	acked := map[domain.Ref][]uint64{}
	versions := map[domain.Ref]uint64{}
	appendN := func(prefix string, n int) {
		for i := range n {
			p := person(fmt.Sprintf("p-%d", i%5))
			id := fmt.Sprintf("%s-%d", prefix, i)
			rec := domain.Ref{Kind: domain.KindDecision, ID: id}
			var res eventstore.AppendResult
			// A leader change can make one attempt fail: retry the same
			// decision, which is idempotent, a bounded number of times.
			waitFor(t, 30*time.Second, "append "+id, func() error {
				c, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				defer cancel()
				var err error
				res, err = st.Append(c, meta(id), []domain.Event{event(p, "person.renamed", nil), event(rec, "decision.recorded", nil)},
					map[domain.Ref]uint64{p: versions[p], rec: 0})
				return err
			})
			versions[p] = res.Sequences[0]
			acked[p] = append(acked[p], res.Sequences[0])
		}
	}
	appendN("before", 20)

	// Stop the node that leads the stream: the hardest case.
	info, err := js.Stream(ctx(t), "KOERS")
	if err != nil {
		t.Fatal(err)
	}
	leader := info.CachedInfo().Cluster.Leader
	var down *node
	for _, n := range nodes {
		if n.opts.Name == leader {
			down = n
		}
	}
	if down == nil {
		t.Fatalf("no node named %q leads the stream", leader)
	}
	down.srv.Shutdown()
	down.srv = nil
	appendN("during", 20)

	down.start(t)
	appendN("after", 10)

	// Every acknowledged event is on the stream, on the restarted node too.
	rjs := connect(t, down.srv)
	for p, want := range acked {
		waitFor(t, 30*time.Second, "restarted node has "+p.String(), func() error {
			rst, err := eventstore.Open(ctx(t), rjs, eventstore.Config{SealKey: testKey, Replicas: 3})
			if err != nil {
				return err
			}
			h, err := rst.Load(ctx(t), p)
			if err != nil {
				return err
			}
			var got []uint64
			for _, e := range h.Events {
				got = append(got, e.Sequence)
			}
			if !slices.Equal(got, want) {
				return fmt.Errorf("sequences %v, want %v", got, want)
			}
			return nil
		})
	}
	if r := mustVerify(t, st, eventstore.VerifyOptions{}); !r.OK() || r.Checked != 100 {
		t.Fatalf("verify after the outage: checked %d, problems %+v; want 100 messages, none", r.Checked, r.Problems)
	}
}
