package faultmatrix

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsNode is one nats-server process of its own, with its store in a
// folder that outlives a kill, configured as Koers requires of an
// external server (sync_interval: always).
type natsNode struct {
	name string
	port int
	*process
}

// startNATS starts n nats-server processes: one stand-alone server, or a
// cluster of n. Every process is killed when the test ends.
func startNATS(t *testing.T, dir string, n int) []*natsNode {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	nodes := make([]*natsNode, n)
	clusterPorts := make([]int, n)
	for i := range nodes {
		nodes[i] = &natsNode{name: fmt.Sprintf("n%d", i), port: freePort(t)}
		clusterPorts[i] = freePort(t)
	}
	var routes []string
	for _, p := range clusterPorts {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	for i, node := range nodes {
		store := filepath.Join(dir, node.name)
		conf := fmt.Sprintf("server_name: %s\nlisten: 127.0.0.1:%d\njetstream {\n  store_dir: %q\n  sync_interval: always\n}\n", node.name, node.port, store)
		if n > 1 {
			conf += fmt.Sprintf("cluster {\n  name: faultmatrix\n  listen: 127.0.0.1:%d\n  routes: [%s]\n}\n", clusterPorts[i], strings.Join(routes, ", "))
		}
		file := filepath.Join(dir, node.name+".conf")
		if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		node.process = &process{name: "nats-server " + node.name, args: []string{bin.nats, "-c", file}, log: filepath.Join(dir, node.name+".log")}
		t.Cleanup(node.kill)
	}
	// A cluster's JetStream answers once a quorum has met: start them all,
	// then wait for each.
	for _, node := range nodes {
		node.start(t, nil)
	}
	for _, node := range nodes {
		node.waitReady(t)
	}
	return nodes
}

// restart starts a killed node again on its store.
func (n *natsNode) restart(t *testing.T) {
	t.Helper()
	n.start(t, nil)
	n.waitReady(t)
}

// waitReady waits until the node's JetStream answers.
func (n *natsNode) waitReady(t *testing.T) {
	t.Helper()
	waitFor(t, time.Minute, n.name+" answers with JetStream", func() error {
		if !n.running() {
			return errors.New("exited:\n" + n.tail())
		}
		nc, err := nats.Connect(n.url(), nats.Timeout(2*time.Second))
		if err != nil {
			return err
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err = js.AccountInfo(ctx)
		return err
	})
}

func (n *natsNode) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

// natsURL is the --nats-url of a set of nodes.
func natsURL(nodes []*natsNode) string {
	var urls []string
	for _, n := range nodes {
		urls = append(urls, n.url())
	}
	return strings.Join(urls, ",")
}

// streamCluster tells which node leads the ledger's stream and which
// follow it and are current.
func streamCluster(ctx context.Context, url, stream string) (leader string, current []string, err error) {
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second))
	if err != nil {
		return "", nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return "", nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return "", nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return "", nil, err
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return "", nil, errors.New("the stream has no leader")
	}
	for _, r := range info.Cluster.Replicas {
		if r.Current && !r.Offline {
			current = append(current, r.Name)
		}
	}
	return info.Cluster.Leader, current, nil
}
