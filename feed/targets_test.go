package feed_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"

	"koers/feed"
	"koers/internal/ledgertest"
	"koers/internal/pgtest"
)

// kit is one kind of target in the conformance suite: where the real
// service listens, the feed URL through a proxy, and how to read back what
// arrived, straight from the service.
type kit struct {
	upstream string
	url      func(proxyAddr string) string
	arrived  func(tb testing.TB) []arrived
}

func amqpKit(tb testing.TB, name string) kit {
	needRabbit(tb)
	tb.Cleanup(func() {
		conn, err := amqp.Dial(rabbitURL)
		if err != nil {
			return
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			return
		}
		_, _ = ch.QueueDelete(name, false, false, false)
		_ = ch.ExchangeDelete(name, false, false)
	})
	return kit{
		upstream: rabbitTCP,
		url:      func(addr string) string { return "amqp://guest:guest@" + addr + "/" },
		arrived: func(tb testing.TB) []arrived {
			conn, err := amqp.Dial(rabbitURL)
			if err != nil {
				tb.Fatal(err)
			}
			defer conn.Close()
			ch, err := conn.Channel()
			if err != nil {
				tb.Fatal(err)
			}
			q, err := ch.QueueDeclarePassive(name, true, false, false, false, nil)
			if err != nil {
				tb.Fatalf("the feed's queue %s: %v", name, err)
			}
			if err := ch.Qos(2000, 0, false); err != nil {
				tb.Fatal(err)
			}
			deliveries, err := ch.Consume(name, "", true, true, false, false, nil)
			if err != nil {
				tb.Fatal(err)
			}
			out := make([]arrived, 0, q.Messages)
			for len(out) < q.Messages {
				select {
				case d := <-deliveries:
					if d.ContentType != feed.ContentType {
						tb.Fatalf("content type %q", d.ContentType)
					}
					out = append(out, arrived{body: d.Body, id: d.MessageId})
				case <-time.After(10 * time.Second):
					tb.Fatalf("only %d of %d messages in %s", len(out), q.Messages, name)
				}
			}
			return out
		},
	}
}

func redisKit(tb testing.TB, name string) kit {
	needRedis(tb)
	client := redis.NewClient(&redis.Options{Addr: redisTCP})
	tb.Cleanup(func() {
		client.Del(context.Background(), name)
		client.Close()
	})
	return kit{
		upstream: redisTCP,
		url:      func(addr string) string { return "redis://" + addr + "/0" },
		arrived: func(tb testing.TB) []arrived {
			var out []arrived
			start := "-"
			for range 1000 {
				msgs, err := client.XRangeN(context.Background(), name, start, "+", 5000).Result()
				if err != nil {
					tb.Fatal(err)
				}
				if len(msgs) == 0 {
					return out
				}
				for _, m := range msgs {
					out = append(out, arrived{body: []byte(m.Values["payload"].(string)), id: m.Values["_watermill_message_uuid"].(string)})
				}
				start = "(" + msgs[len(msgs)-1].ID
			}
			tb.Fatal("more than 5,000,000 messages in the stream")
			return nil
		},
	}
}

func postgresKit(tb testing.TB, name string) kit {
	dbURL := pgtest.Fresh(tb) // the warehouse's database, not the ledger's
	return kit{
		upstream: "127.0.0.1:5432",
		url: func(addr string) string {
			return strings.Replace(dbURL, "127.0.0.1:5432", addr, 1)
		},
		arrived: func(tb testing.TB) []arrived {
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, dbURL)
			if err != nil {
				tb.Fatal(err)
			}
			defer conn.Close(ctx)
			rows, err := conn.Query(ctx, `SELECT uuid, payload::text FROM `+pgx.Identifier{"watermill_" + name}.Sanitize()+` ORDER BY "offset"`)
			if err != nil {
				tb.Fatal(err)
			}
			out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (arrived, error) {
				var a arrived
				var body string
				err := r.Scan(&a.id, &body)
				a.body = []byte(body)
				return a, err
			})
			if err != nil {
				tb.Fatal(err)
			}
			return out
		},
	}
}

// receiver is a webhook receiver that keeps what it was sent.
type receiver struct {
	mu   sync.Mutex
	got  []arrived
	fail func(id string) int // a status to answer instead of 200, 0 for none
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil || r.Method != http.MethodPost || r.Header.Get("Content-Type") != feed.ContentType {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	id := r.Header.Get("Message-Uuid")
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.fail != nil {
		if code := rc.fail(id); code != 0 {
			w.WriteHeader(code)
			return
		}
	}
	rc.got = append(rc.got, arrived{body: body, id: id})
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) arrived(testing.TB) []arrived {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]arrived(nil), rc.got...)
}

func httpKit(tb testing.TB, _ string) kit {
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	tb.Cleanup(srv.Close)
	return kit{
		upstream: srv.Listener.Addr().String(),
		url:      func(addr string) string { return "http://" + addr + "/events" },
		arrived:  rc.arrived,
	}
}

// fastRetries keeps the waits of a test short.
func fastRetries(cfg feed.Config) feed.Config {
	cfg.Retries = 2
	cfg.RetryInitial = 5 * time.Millisecond
	cfg.RetryMax = 20 * time.Millisecond
	cfg.BackoffMax = 100 * time.Millisecond
	cfg.LagInterval = 20 * time.Millisecond
	cfg.PublishTimeout = 5 * time.Second
	return cfg
}

// running is a feed running in the background.
type running struct {
	f    *feed.Feed
	stop func()
}

func start(tb testing.TB, l *ledgertest.Ledger, dbURL string, cfg feed.Config) *running {
	tb.Helper()
	f, err := feed.Open(context.Background(), l.Store, dbURL, cfg)
	if err != nil {
		tb.Fatalf("open feed: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				tb.Errorf("run: %v", err)
			}
			if err := f.Close(); err != nil {
				tb.Logf("close: %v", err)
			}
		})
	}
	tb.Cleanup(stop)
	return &running{f: f, stop: stop}
}

// TestEveryTargetGetsEverythingInOrder is the conformance suite every
// target passes against its real service: a history of more than 10,000
// events (with a forged message in the middle) is delivered while the
// target is first down, then up, then the feed is killed and restarted,
// then the target drops every connection and comes back. What arrived is
// exactly the stream: in order, no gap, duplicates only with the same id.
func TestEveryTargetGetsEverythingInOrder(t *testing.T) {
	l := ledgertest.New(t)
	t0 := time.Now()
	want, forged := history(t, l, 25)
	if len(want) < 10_000 {
		t.Fatalf("history has %d events, want at least 10,000", len(want))
	}
	t.Logf("history: %d events (forged message at %d) in %s", len(want), forged, time.Since(t0).Round(time.Millisecond))
	dbURL := pgtest.Package(t)

	for _, tc := range []struct {
		name string
		kit  func(testing.TB, string) kit
	}{
		{"amqp", amqpKit},
		{"redis", redisKit},
		{"postgres", postgresKit},
		{"http", httpKit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Earlier cases added a decision each.
			want := readAll(t, l.Store)
			last, err := l.Store.LastSequence(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			name := uniqueName(t, "conf-"+tc.name)
			k := tc.kit(t, name)
			p := newProxy(t, k.upstream)
			m := feed.NewMetrics()
			cfg := fastRetries(feed.Config{Name: name, Target: k.url(p.addr), Metrics: m})
			retries := func() float64 { return value(m.Retries.WithLabelValues(name)) }
			lag := func() float64 { return value(m.Lag.WithLabelValues(name)) }

			// The target is down: the feed waits, counts retries, sends nothing.
			r := start(t, l, dbURL, cfg)
			waitFor(t, 10*time.Second, "retries while the target is down", func() bool { return retries() >= 3 })
			waitFor(t, 5*time.Second, "the lag gauge", func() bool { return lag() == float64(last) })
			if r.f.Checkpoint() != 0 {
				t.Fatalf("checkpoint %d while the target was down", r.f.Checkpoint())
			}

			// It comes up: the feed catches up; kill it a third of the way.
			p.open()
			began := time.Now()
			waitFor(t, 60*time.Second, "a third delivered", func() bool { return r.f.Checkpoint() >= last/3 })
			rate := float64(r.f.Checkpoint()) / time.Since(began).Seconds()
			r.stop()
			killedAt := r.f.Checkpoint()

			// Restart: on from the checkpoint; the target drops every
			// connection on the way and comes back.
			r = start(t, l, dbURL, cfg)
			waitFor(t, 60*time.Second, "two thirds delivered", func() bool { return r.f.Checkpoint() >= 2*last/3 })
			before := retries()
			p.close()
			waitFor(t, 10*time.Second, "retries while the target is gone", func() bool { return retries() >= before+2 })
			p.open()
			waitFor(t, 60*time.Second, "everything delivered", func() bool { return r.f.Checkpoint() == last })
			waitFor(t, 5*time.Second, "no lag", func() bool { return lag() == 0 })
			r.stop()

			got := k.arrived(t)
			dups := check(t, "/koers/KOERS", want, got, forged)
			if tc.name == "postgres" && dups > 0 {
				t.Fatalf("%d duplicates in the SQL table, which takes every event once", dups)
			}
			t.Logf("%s: %d events, %d messages, %d duplicates, killed at %d, %.0f retries, %.0f events/s",
				tc.name, len(want), len(got), dups, killedAt, retries(), rate)

			// Restarted when caught up (as after a rebuild of the read
			// models, which never touches the feed's checkpoint), it sends
			// what was recorded since and nothing again.
			l.Submit(t, fmt.Sprintf(`{"id":"late-%s","by":"p-root","authority":"root","reason":"late hire","effective":"2025-08-01","changes":[
			 {"kind":"person.join","id":"p-late-%s","name":"Late","team":"t-0"}]}`, tc.name, tc.name))
			r = start(t, l, dbURL, cfg)
			all := readAll(t, l.Store)
			now := all[len(all)-1].Sequence
			waitFor(t, 20*time.Second, "the late decision delivered", func() bool { return r.f.Checkpoint() == now })
			r.stop()
			again := k.arrived(t)
			if tc.name != "amqp" { // reading an AMQP queue empties it
				again = again[len(got):]
			}
			if d := check(t, "/koers/KOERS", all[len(want):], again, forged); d != 0 {
				t.Fatalf("a caught-up feed sent %d events again", d)
			}
			if len(again) != len(all)-len(want) {
				t.Fatalf("after a clean stop, %d messages arrived for %d new events", len(again), len(all)-len(want))
			}
		})
	}
}
