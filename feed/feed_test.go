package feed_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"koers/feed"
	"koers/internal/ledgertest"
	"koers/internal/pgtest"
)

const smallHistory = `{"id":"bootstrap","by":"p-root","authority":"root","reason":"start","refs":["https://wiki.example.org/minutes/1"],"effective":"2026-01-01","changes":[
 {"kind":"team.form","id":"t-core","name":"Core","type":"stream-aligned"},
 {"kind":"person.join","id":"p-1","name":"Ada","team":"t-core"},
 {"kind":"person.join","id":"p-2","name":"Bob","team":"t-core"},
 {"kind":"person.join","id":"p-3","name":"Cy","team":"t-core"}]}`

// webhook starts a receiver and returns it with its URL.
func webhook(tb testing.TB, fail func(id string) int) (*receiver, string) {
	rc := &receiver{fail: fail}
	srv := httptest.NewServer(rc)
	tb.Cleanup(srv.Close)
	return rc, srv.URL + "/hook"
}

func caughtUp(tb testing.TB, l *ledgertest.Ledger, r *running) uint64 {
	tb.Helper()
	last, err := l.Store.LastSequence(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	waitFor(tb, 20*time.Second, "the feed to catch up", func() bool { return r.f.Checkpoint() == last })
	return last
}

func TestMessagesAreCloudEvents(t *testing.T) {
	l := ledgertest.New(t)
	l.Submit(t, smallHistory)
	rc, url := webhook(t, nil)
	r := start(t, l, pgtest.Package(t), fastRetries(feed.Config{Name: uniqueName(t, "ce"), Target: url, Ledger: "KOERS"}))
	caughtUp(t, l, r)
	r.stop()
	want := readAll(t, l.Store)
	got := rc.arrived(t)
	check(t, "/koers/KOERS", want, got, 0)

	// One event in full, field by field.
	var last map[string]any
	if err := json.Unmarshal(got[len(got)-1].body, &last); err != nil {
		t.Fatal(err)
	}
	rec := want[len(want)-1]
	for k, v := range map[string]any{
		"specversion": "1.0", "id": rec.EventID, "source": "/koers/KOERS", "type": "koers." + rec.Type,
		"subject": string(rec.Aggregate.Kind) + ":" + rec.Aggregate.ID, "datacontenttype": "application/json",
		"time": rec.RecordedAt.UTC().Format(time.RFC3339Nano), "koersdecision": "bootstrap", "koersactor": "p-root",
		"koersauthority": "root", "koerseffective": "2026-01-01T00:00:00Z", "koersseq": fmtUint(rec.Sequence),
		"koersschema": float64(rec.SchemaVersion),
	} {
		if last[k] != v {
			t.Errorf("%s = %v, want %v", k, last[k], v)
		}
	}
	if rec.EventID != got[len(got)-1].id {
		t.Errorf("transport id %q, event id %q", got[len(got)-1].id, rec.EventID)
	}
	// CloudEvents attribute names are lower-case letters and digits.
	name := regexp.MustCompile(`^[a-z0-9]{1,20}$`)
	for k := range last {
		if !name.MatchString(k) {
			t.Errorf("attribute name %q is not a valid CloudEvents name", k)
		}
	}
	if _, ok := last["data"].(map[string]any); !ok {
		t.Errorf("data is %T, want a JSON object", last["data"])
	}
}

func fmtUint(n uint64) string { b, _ := json.Marshal(n); return string(b) }

func TestARefusedEventGoesToThePoisonQueueAndAnOutageIsRetried(t *testing.T) {
	l := ledgertest.New(t)
	l.Submit(t, smallHistory)
	events := readAll(t, l.Store)
	refused := events[2].EventID
	unavailable := 3 // the receiver answers 503 three times first
	rc, url := webhook(t, func(id string) int {
		switch {
		case id == refused:
			return http.StatusUnprocessableEntity
		case unavailable > 0:
			unavailable--
			return http.StatusServiceUnavailable
		}
		return 0
	})
	dbURL := pgtest.Package(t)
	name := uniqueName(t, "poison")
	m := feed.NewMetrics()
	r := start(t, l, dbURL, fastRetries(feed.Config{Name: name, Target: url, Metrics: m}))
	caughtUp(t, l, r)
	r.stop()

	want := append(events[:2:2], events[3:]...)
	check(t, "/koers/KOERS", want, rc.arrived(t), 0)
	if v := value(m.Poisoned.WithLabelValues(name)); v != 1 {
		t.Errorf("poisoned metric %v, want 1", v)
	}
	if v := value(m.Retries.WithLabelValues(name)); v < 3 {
		t.Errorf("retries metric %v, want at least 3 (three 503 answers)", v)
	}

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var uuid, seq, reason string
	if err := conn.QueryRow(ctx, `SELECT uuid, metadata->>'koers_seq', metadata->>'reason_poisoned'
		FROM koers_feed.poison WHERE metadata->>'koers_feed' = $1`, name).Scan(&uuid, &seq, &reason); err != nil {
		t.Fatalf("poison queue: %v", err)
	}
	if uuid != refused || seq != fmtUint(events[2].Sequence) || reason == "" {
		t.Errorf("poisoned %s (seq %s, reason %q), want %s", uuid, seq, reason, refused)
	}
	st, err := feed.ReadStatus(ctx, l.Store, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.Name == name && (s.PoisonedTotal != 1 || s.DeliveredTotal != uint64(len(want)) || s.Lag != 0) {
			t.Errorf("status %+v", s)
		}
	}
}

func TestOneProcessPerFeedAndANameKeepsItsTarget(t *testing.T) {
	l := ledgertest.New(t)
	l.Submit(t, smallHistory)
	dbURL := pgtest.Package(t)
	_, url := webhook(t, nil)
	cfg := fastRetries(feed.Config{Name: uniqueName(t, "lease"), Target: url})
	ctx := context.Background()
	f, err := feed.Open(ctx, l.Store, dbURL, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var busy *feed.BusyError
	if _, err := feed.Open(ctx, l.Store, dbURL, cfg); !errors.As(err, &busy) {
		t.Fatalf("second open: %v, want a BusyError", err)
	}
	f.Close()

	other := cfg
	other.Target = "redis://127.0.0.1:6379/0"
	var mismatch *feed.MismatchError
	if _, err := feed.Open(ctx, l.Store, dbURL, other); !errors.As(err, &mismatch) || mismatch.What != "target" {
		t.Fatalf("open for another target: %v, want a MismatchError", err)
	}
	other = cfg
	other.Ledger = "OTHER"
	if _, err := feed.Open(ctx, l.Store, dbURL, other); !errors.As(err, &mismatch) || mismatch.What != "ledger" {
		t.Fatalf("open for another ledger: %v, want a MismatchError", err)
	}
	other = cfg
	other.FromSeq = 3
	var fromSeq *feed.FromSeqError
	if _, err := feed.Open(ctx, l.Store, dbURL, other); !errors.As(err, &fromSeq) {
		t.Fatalf("open an existing feed from another sequence: %v, want a FromSeqError", err)
	}
	f, err = feed.Open(ctx, l.Store, dbURL, cfg)
	if err != nil {
		t.Fatalf("open again after close: %v", err)
	}
	f.Close()

	for _, bad := range []feed.Config{
		{Name: "", Target: url},
		{Name: "Bad Name", Target: url},
		{Name: "ok", Target: "ftp://example.org/x"},
		{Name: "ok", Target: url, BatchSize: feed.MaxBatchSize + 1},
		{Name: "ok", Target: url, Retries: -1},
	} {
		if _, err := feed.Open(ctx, l.Store, dbURL, bad); err == nil {
			t.Errorf("config %+v accepted", bad)
		}
	}
}

func TestANewFeedStartsWhereItIsTold(t *testing.T) {
	l := ledgertest.New(t)
	l.Submit(t, smallHistory)
	events := readAll(t, l.Store)
	rc, url := webhook(t, nil)
	from := events[3].Sequence
	r := start(t, l, pgtest.Package(t), fastRetries(feed.Config{Name: uniqueName(t, "from"), Target: url, FromSeq: from}))
	caughtUp(t, l, r)
	r.stop()
	check(t, "/koers/KOERS", events[3:], rc.arrived(t), 0)
}

func TestStatusAndMetrics(t *testing.T) {
	l := ledgertest.New(t)
	ctx := context.Background()
	empty, err := feed.ReadStatus(ctx, l.Store, pgtest.Fresh(t))
	if err != nil || len(empty) != 0 {
		t.Fatalf("status where no feed ran: %v, %v", empty, err)
	}

	l.Submit(t, smallHistory)
	dbURL := pgtest.Package(t)
	m := feed.NewMetrics()
	reg := prometheus.NewRegistry()
	if err := reg.Register(m); err != nil {
		t.Fatalf("register metrics: %v", err)
	}
	_, url := webhook(t, nil)
	name := uniqueName(t, "status")
	// A token as the user name, in the path and in the query: shown and
	// stored masked (issue 13).
	secretURL := strings.Replace(url, "http://", "http://tok_ABCDEF@", 1) + "/T000/SECRETPATH1?token=x"
	wantTarget := strings.Replace(url, "http://", "http://xxxxx@", 1) + "/T000/xxxxx?token=xxxxx"
	r := start(t, l, dbURL, fastRetries(feed.Config{Name: name, Target: secretURL, Metrics: m}))
	if r.f.Target() != wantTarget {
		t.Errorf("Target() = %s, want %s", r.f.Target(), wantTarget)
	}
	last := caughtUp(t, l, r)
	r.stop()
	l.Submit(t, `{"id":"later","by":"p-root","authority":"root","reason":"more","effective":"2026-02-01","changes":[
	 {"kind":"person.join","id":"p-9","name":"Dee","team":"t-core"}]}`)

	st, err := feed.ReadStatus(ctx, l.Store, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	var s *feed.Status
	for i := range st {
		if st[i].Name == name {
			s = &st[i]
		}
	}
	if s == nil {
		t.Fatalf("feed %s not in status %+v", name, st)
	}
	if s.Checkpoint != last || s.LastSequence <= last || s.Lag != s.LastSequence-last || s.Target != wantTarget || s.Source != "/koers/KOERS" {
		t.Errorf("status %+v (checkpoint %d before the last decision)", *s, last)
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var stored string
	if err := conn.QueryRow(ctx, `SELECT target FROM koers_feed.checkpoint WHERE name = $1`, name).Scan(&stored); err != nil || stored != wantTarget {
		t.Errorf("checkpoint table holds target %q (%v), want %s", stored, err, wantTarget)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
	}
	for _, n := range []string{"koers_feed_lag_events", "koers_feed_checkpoint_sequence", "koers_feed_delivered_total", "koers_feed_retries_total"} {
		if !names[n] {
			t.Errorf("metric %s not exported (have %v)", n, names)
		}
	}
}

func TestKilledAtAnyMomentItLosesNothing(t *testing.T) {
	l := ledgertest.New(t)
	want, forged := history(t, l, 5)
	rc, url := webhook(t, nil)
	dbURL := pgtest.Package(t)
	cfg := fastRetries(feed.Config{Name: uniqueName(t, "kill"), Target: url, BatchSize: 64})
	last := want[len(want)-1].Sequence
	// Kill it again and again, at a different point each time.
	for i, after := range []uint64{1, 7, 150, 151, 640, 641, 1200, 1500} {
		r := start(t, l, dbURL, cfg)
		waitFor(t, 20*time.Second, "progress", func() bool { return r.f.Checkpoint() >= min(after, last) })
		r.stop()
		t.Logf("kill %d at checkpoint %d", i, r.f.Checkpoint())
	}
	r := start(t, l, dbURL, cfg)
	caughtUp(t, l, r)
	r.stop()
	got := rc.arrived(t)
	d := check(t, "/koers/KOERS", want, got, forged)
	t.Logf("%d events, %d messages, %d duplicates after 8 kills", len(want), len(got), d)
}

// TestLogsNeverShowTheTargetsSecrets: a target that cannot be reached is
// logged, with the driver's error, masked.
func TestLogsNeverShowTheTargetsSecrets(t *testing.T) {
	l := ledgertest.New(t)
	l.Submit(t, smallHistory)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	var logs syncBuffer
	cfg := fastRetries(feed.Config{Name: uniqueName(t, "secret"), Target: "http://tok_ABCDEF:pa55word@" + addr + "/hooks/T000/SECRETPATH1?token=t0ken",
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	r := start(t, l, pgtest.Package(t), cfg)
	waitFor(t, 20*time.Second, "a retry logged", func() bool {
		return strings.Count(logs.String(), "level=WARN") >= 2
	})
	r.stop()
	out := logs.String()
	for _, secret := range []string{"tok_ABCDEF", "pa55word", "SECRETPATH1", "t0ken"} {
		if strings.Contains(out, secret) {
			t.Fatalf("the log shows %s:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "xxxxx@"+addr+"/hooks/T000/xxxxx") {
		t.Fatalf("the log does not name the target masked:\n%s", out)
	}
}

// syncBuffer is a bytes.Buffer a logger writes to from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
