package feed_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"koers/domain"
	"koers/eventstore"
	"koers/feed"
	"koers/internal/ledgertest"
	"koers/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

const (
	rabbitURL = "amqp://guest:guest@127.0.0.1:5672/"
	rabbitTCP = "127.0.0.1:5672"
	redisTCP  = "127.0.0.1:6379"
)

// need fails the test when a service does not answer on addr, saying how
// to start it.
func need(tb testing.TB, addr, what, howToStart string) {
	tb.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		tb.Fatalf("no %s at %s (%v): start it with\n  %s", what, addr, err, howToStart)
	}
	c.Close()
}

func needRabbit(tb testing.TB) {
	need(tb, rabbitTCP, "RabbitMQ", "rabbitmq-server -detached")
}

func needRedis(tb testing.TB) {
	need(tb, redisTCP, "Redis", `redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log`)
}

// uniqueName is a feed name no other test or run uses.
func uniqueName(tb testing.TB, prefix string) string {
	tb.Helper()
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), time.Now().UnixNano()%1_000_000_000)
}

// history records decisions × 200 person.join changes (each join is an
// event on the person and one on the team, plus one decision record per
// decision), with one forged message in the middle. It returns the genuine
// events in stream order and the forged message's sequence.
func history(tb testing.TB, l *ledgertest.Ledger, decisions int) ([]domain.Recorded, uint64) {
	tb.Helper()
	var b strings.Builder
	b.WriteString(`{"id":"teams","by":"p-root","authority":"root","reason":"teams","effective":"2025-06-01","changes":[`)
	for i := range decisions {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"kind":"team.form","id":"t-%d","name":"Team %d","type":"stream-aligned"}`, i, i)
	}
	b.WriteString(`]}`)
	l.Submit(tb, b.String())
	var forged uint64
	for i := range decisions {
		if i == decisions/2 {
			ack, err := l.JS.Publish(context.Background(), "koers.person.p-forged", []byte(`{"v":1,"type":"person.joined"}`))
			if err != nil {
				tb.Fatalf("forge: %v", err)
			}
			forged = ack.Sequence
		}
		b.Reset()
		fmt.Fprintf(&b, `{"id":"hire-%d","by":"p-root","authority":"root","reason":"hiring round %d","effective":"2025-07-01","changes":[`, i, i)
		for j := range 200 {
			if j > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"kind":"person.join","id":"p-%d-%d","name":"Person %d-%d","team":"t-%d"}`, i, j, i, j, i)
		}
		b.WriteString(`]}`)
		l.Submit(tb, b.String())
	}
	return readAll(tb, l.Store), forged
}

// readAll returns every genuine event of the stream, in order.
func readAll(tb testing.TB, st *eventstore.Store) []domain.Recorded {
	tb.Helper()
	ctx := context.Background()
	last, err := st.LastSequence(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	var out []domain.Recorded
	for r, err := range st.Read(ctx, 1, domain.ReadOptions{Until: last}) {
		if err != nil {
			if _, ok := err.(*domain.RejectedError); ok {
				continue
			}
			tb.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// arrived is one message as the target holds it.
type arrived struct {
	body []byte
	id   string // the transport's message id (Watermill UUID), "" if none
}

// check compares what arrived with the stream: each message a CloudEvent
// equal to the event it names, the transport id equal to the CloudEvents
// id, a duplicate only with the same id and the same body, and once
// duplicates are dropped exactly the stream's events in stream order (so
// the order per aggregate is kept), with no gap and nothing forged.
func check(tb testing.TB, source string, want []domain.Recorded, got []arrived, forged uint64) (duplicates int) {
	tb.Helper()
	seen := map[string][]byte{}
	var uniq []feed.CloudEvent
	for i, a := range got {
		var ce feed.CloudEvent
		if err := json.Unmarshal(a.body, &ce); err != nil {
			tb.Fatalf("message %d is not a CloudEvent: %v: %s", i, err, a.body)
		}
		if a.id != "" && a.id != ce.ID {
			tb.Fatalf("message %d: transport id %q, CloudEvents id %q", i, a.id, ce.ID)
		}
		if ce.Sequence() == forged {
			tb.Fatalf("the forged message %d was published: %s", forged, a.body)
		}
		if prev, ok := seen[ce.ID]; ok {
			if string(prev) != string(a.body) {
				tb.Fatalf("duplicate %s differs:\n%s\n%s", ce.ID, prev, a.body)
			}
			duplicates++
			continue
		}
		seen[ce.ID] = a.body
		uniq = append(uniq, ce)
	}
	if len(uniq) != len(want) {
		tb.Fatalf("%d distinct events arrived (%d messages), the stream has %d", len(uniq), len(got), len(want))
	}
	for i, r := range want {
		exp := feed.NewCloudEvent(source, r)
		wb, _ := json.Marshal(exp)
		gb, _ := json.Marshal(uniq[i])
		// Compare as JSON values: a JSONB column orders keys its own way.
		var wv, gv any
		_ = json.Unmarshal(wb, &wv)
		_ = json.Unmarshal(gb, &gv)
		if !reflect.DeepEqual(wv, gv) {
			tb.Fatalf("event %d (seq %d) out of order or altered:\nwant %s\ngot  %s", i, r.Sequence, wb, gb)
		}
	}
	return duplicates
}

// proxy is a TCP relay to a real service that a test can close and open, to
// play a broker that is down, comes back, or drops every connection.
type proxy struct {
	tb       testing.TB
	addr     string
	upstream string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
}

// newProxy reserves a port for upstream; it starts closed.
func newProxy(tb testing.TB, upstream string) *proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &proxy{tb: tb, addr: ln.Addr().String(), upstream: upstream, conns: map[net.Conn]struct{}{}}
	ln.Close()
	tb.Cleanup(p.close)
	return p
}

func (p *proxy) open() {
	p.tb.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.tb.Fatalf("proxy: reopen %s: %v", p.addr, err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go p.accept(ln)
}

func (p *proxy) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", p.upstream)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.ln != ln {
			p.mu.Unlock()
			c.Close()
			u.Close()
			return
		}
		p.conns[c], p.conns[u] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go p.pipe(c, u)
		go p.pipe(u, c)
	}
}

func (p *proxy) pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
}

// close refuses new connections and drops every open one.
func (p *proxy) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// waitFor polls cond until it holds or d passes.
func waitFor(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// value reads a gauge or counter.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if d.Gauge != nil {
		return d.Gauge.GetValue()
	}
	return d.Counter.GetValue()
}
