package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"koers/consumer"
	"koers/domain"
	"koers/eventstore"
	"koers/internal/ledgertest"
)

// decisions records n decisions of size person.join changes each (every
// join is an event on the person and one on the team, plus the decision's
// decision.recorded: 2·size+1 events).
func decisions(tb testing.TB, l *ledgertest.Ledger, prefix string, n, size int) {
	tb.Helper()
	l.Submit(tb, fmt.Sprintf(`{"id":"%s-team","by":"p-root","authority":"root","reason":"a team","effective":"2025-06-01","changes":[
		{"kind":"team.form","id":"t-%s","name":"Team","type":"stream-aligned"}]}`, prefix, prefix))
	for i := range n {
		var b strings.Builder
		fmt.Fprintf(&b, `{"id":"%s-%d","by":"p-root","authority":"root","reason":"hiring","effective":"2025-07-01","changes":[`, prefix, i)
		for j := range size {
			if j > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"kind":"person.join","id":"p-%s-%d-%d","name":"P","team":"t-%s"}`, prefix, i, j, prefix)
		}
		b.WriteString(`]}`)
		l.Submit(tb, b.String())
	}
}

// forge publishes a message on a ledger subject that no writer sealed.
func forge(tb testing.TB, l *ledgertest.Ledger) uint64 {
	tb.Helper()
	ack, err := l.JS.Publish(context.Background(), "koers.person.p-forged", []byte(`{"v":1,"type":"person.joined"}`))
	if err != nil {
		tb.Fatalf("forge: %v", err)
	}
	return ack.Sequence
}

func last(tb testing.TB, l *ledgertest.Ledger) uint64 {
	tb.Helper()
	seq, err := l.Store.LastSequence(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return seq
}

// sink is a handler's storage: the batches it committed and its
// checkpoint, as a read model or a feed keeps them.
type sink struct {
	mu         sync.Mutex
	batches    []consumer.Batch
	checkpoint uint64
	// fail, if set, is asked before each commit; an error refuses it.
	fail func(b consumer.Batch) error
	// committed is signalled after each commit.
	committed chan struct{}
}

func newSink() *sink { return &sink{committed: make(chan struct{}, 1000)} }

func (s *sink) Checkpoint(context.Context) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkpoint, nil
}

func (s *sink) Handle(_ context.Context, b consumer.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		if err := s.fail(b); err != nil {
			return err
		}
	}
	s.batches = append(s.batches, b)
	s.checkpoint = b.Last()
	select {
	case s.committed <- struct{}{}:
	default:
	}
	return nil
}

func (s *sink) at() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkpoint
}

func (s *sink) units() []consumer.Unit {
	s.mu.Lock()
	defer s.mu.Unlock()
	var us []consumer.Unit
	for _, b := range s.batches {
		us = append(us, b.Units...)
	}
	return us
}

func newConsumer(tb testing.TB, l *ledgertest.Ledger, s *sink, cfg consumer.Config) *consumer.Consumer {
	tb.Helper()
	cfg.Checkpoint, cfg.Handle = s.Checkpoint, s.Handle
	c, err := consumer.New(l.Store, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// checkWhole fails unless units cover sequences from through to, each
// once, in order, and every unit is one whole decision or one rejected
// message.
func checkWhole(tb testing.TB, units []consumer.Unit, from, to uint64) {
	tb.Helper()
	next := from
	for _, u := range units {
		if u.First() != next {
			tb.Fatalf("unit starts at %d, want %d", u.First(), next)
		}
		for i, m := range u.Messages {
			if m.Seq() != next {
				tb.Fatalf("message %d of a unit is sequence %d, want %d", i, m.Seq(), next)
			}
			next++
		}
		if first := u.Messages[0]; first.Rejected != nil {
			if len(u.Messages) != 1 {
				tb.Fatalf("rejected message %d shares a unit with %d others", first.Seq(), len(u.Messages)-1)
			}
			continue
		}
		id := u.Messages[0].Event.Meta.DecisionID
		for _, m := range u.Messages {
			if m.Rejected != nil || m.Event.Meta.DecisionID != id {
				tb.Fatalf("unit of decision %s holds sequence %d of another", id, m.Seq())
			}
		}
		if l := u.Messages[len(u.Messages)-1].Event; l.Type != domain.EventDecisionRecorded {
			tb.Fatalf("unit of decision %s ends with %s, want %s", id, l.Type, domain.EventDecisionRecorded)
		}
	}
	if next != to+1 {
		tb.Fatalf("units end at %d, want %d", next-1, to)
	}
}

func TestBatchesHoldWholeDecisionsWithinBounds(t *testing.T) {
	l := ledgertest.New(t)
	decisions(t, l, "a", 6, 3)  // 7 events each
	decisions(t, l, "b", 2, 20) // 41 events each: more than a batch
	end := last(t, l)
	for _, tc := range []struct {
		name      string
		maxEvents int
		maxBytes  int
	}{
		{"events", 10, 0},
		{"one message", 1, 0},
		{"bytes", 0, 1},
		{"roomy", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSink()
			c := newConsumer(t, l, s, consumer.Config{MaxEvents: tc.maxEvents, MaxBytes: tc.maxBytes})
			if err := c.CatchUp(context.Background()); err != nil {
				t.Fatal(err)
			}
			checkWhole(t, s.units(), 1, end)
			maxEvents, maxBytes := tc.maxEvents, tc.maxBytes
			if maxEvents == 0 {
				maxEvents = 1000
			}
			if maxBytes == 0 {
				maxBytes = 4 << 20
			}
			for i, b := range s.batches {
				n, size := 0, 0
				for _, u := range b.Units {
					n += len(u.Messages)
					size += u.Bytes
				}
				if n != b.Messages || size != b.Bytes {
					t.Fatalf("batch %d says %d messages of %d bytes, holds %d of %d", i, b.Messages, b.Bytes, n, size)
				}
				// The bounds hold but for the last unit, which may cross
				// them: a unit is never split.
				lastUnit := b.Units[len(b.Units)-1]
				if b.Messages-len(lastUnit.Messages) >= maxEvents || b.Bytes-lastUnit.Bytes >= maxBytes {
					t.Fatalf("batch %d of %d messages, %d bytes: over the bounds of %d messages, %d bytes before its last unit",
						i, b.Messages, b.Bytes, maxEvents, maxBytes)
				}
			}
			if tc.name == "one message" && len(s.batches) != len(s.units()) {
				t.Fatalf("%d batches of %d units with a bound of one message, want a unit each", len(s.batches), len(s.units()))
			}
		})
	}
}

func TestItResumesFromTheCheckpoint(t *testing.T) {
	l := ledgertest.New(t)
	decisions(t, l, "a", 10, 2)
	end := last(t, l)
	s := newSink()
	refuse := errors.New("the read models refuse this batch")
	calls := 0
	s.fail = func(consumer.Batch) error {
		calls++
		if calls == 3 {
			return refuse
		}
		return nil
	}
	c := newConsumer(t, l, s, consumer.Config{MaxEvents: 5})
	// Not a failure the consumer retries: it ends the catch-up.
	if err := c.CatchUp(context.Background()); !errors.Is(err, refuse) {
		t.Fatalf("catch up: %v, want the handler's error", err)
	}
	stopped := s.at()
	if stopped == 0 || stopped >= end {
		t.Fatalf("checkpoint %d after a refused third batch, want between 0 and %d", stopped, end)
	}
	// Started again, it reads on from the checkpoint: nothing twice,
	// nothing skipped.
	if err := c.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkWhole(t, s.units(), 1, end)

	// A new decision and a new catch-up: only the new decision.
	before := len(s.units())
	decisions(t, l, "b", 1, 1)
	if err := c.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	us := s.units()
	checkWhole(t, us, 1, last(t, l))
	if got := len(us) - before; got != 2 {
		t.Fatalf("%d units after two new decisions, want 2", got)
	}
}

func TestRejectedMessagesArePassedOn(t *testing.T) {
	l := ledgertest.New(t)
	decisions(t, l, "a", 2, 2)
	forged := []uint64{forge(t, l), forge(t, l)}
	decisions(t, l, "b", 1, 2)
	forged = append(forged, forge(t, l))
	end := last(t, l)

	s := newSink()
	c := newConsumer(t, l, s, consumer.Config{})
	if err := c.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	us := s.units()
	checkWhole(t, us, 1, end)
	var got []uint64
	for _, u := range us {
		for _, m := range u.Messages {
			if m.Rejected != nil {
				if m.Rejected.Reason == "" || !errors.Is(m.Rejected, domain.ErrRejected) {
					t.Errorf("rejected message %d: reason %q, %v", m.Seq(), m.Rejected.Reason, m.Rejected)
				}
				got = append(got, m.Seq())
			}
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(forged) {
		t.Fatalf("rejected messages %v handed on, want the forged %v", got, forged)
	}
	// The checkpoint went past the last one, a rejected message.
	if s.at() != end {
		t.Fatalf("checkpoint %d, want %d", s.at(), end)
	}
}

func TestRunFollowsTheLiveLogAndStopsWithItsContext(t *testing.T) {
	l := ledgertest.New(t)
	s := newSink()
	// A long MaxWait: a decision must still be handed on when it lands,
	// since nothing more is at hand.
	c := newConsumer(t, l, s, consumer.Config{MaxWait: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	for i := range 3 {
		began := time.Now()
		decisions(t, l, fmt.Sprintf("live%d", i), 1, 1)
		want := last(t, l)
		for s.at() < want {
			select {
			case <-s.committed:
			case <-time.After(10 * time.Second):
				t.Fatalf("decision %d not handed on after 10s (checkpoint %d, want %d)", i, s.at(), want)
			}
		}
		if d := time.Since(began); d > 30*time.Second {
			t.Fatalf("decision %d handed on after %s", i, d)
		}
	}
	checkWhole(t, s.units(), 1, last(t, l))
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v, want nil when its context ends", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return 10s after its context ended")
	}

	// A catch-up whose context has ended says so.
	decisions(t, l, "late", 1, 1)
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.CatchUp(ended); !errors.Is(err, context.Canceled) {
		t.Fatalf("catch up with an ended context: %v, want context.Canceled", err)
	}
}

func TestRetriesAreBoundedAndProgressStartsTheCountAgain(t *testing.T) {
	l := ledgertest.New(t)
	decisions(t, l, "a", 6, 1)
	end := last(t, l)
	flaky := fmt.Errorf("database restarting: %w", domain.ErrLogUnavailable)

	// Always failing: Attempts passes, then the last error.
	s := newSink()
	s.fail = func(consumer.Batch) error { return flaky }
	var waits []time.Duration
	backoff := consumer.Backoff{Initial: time.Millisecond, Max: 4 * time.Millisecond, Attempts: 5}
	c := newConsumer(t, l, s, consumer.Config{Backoff: backoff,
		OnRetry: func(err error, attempt int, wait time.Duration) { waits = append(waits, wait) }})
	err := c.CatchUp(context.Background())
	var gaveUp *consumer.GaveUpError
	if !errors.As(err, &gaveUp) || gaveUp.Attempts != 5 || !errors.Is(err, domain.ErrLogUnavailable) {
		t.Fatalf("catch up against a handler that always fails: %v, want a *GaveUpError after 5 attempts wrapping the cause", err)
	}
	if len(waits) != 4 {
		t.Fatalf("%d waits before giving up, want 4", len(waits))
	}
	for i, w := range waits {
		if w > backoff.Max || w <= 0 {
			t.Fatalf("wait %d is %s: want more than 0 and at most %s", i, w, backoff.Max)
		}
	}

	// Failing every other time, but getting somewhere in between: the
	// count starts again and it gets to the end.
	s = newSink()
	calls := 0
	s.fail = func(consumer.Batch) error {
		calls++
		if calls%2 == 1 {
			return flaky
		}
		return nil
	}
	c = newConsumer(t, l, s, consumer.Config{MaxEvents: 1, Backoff: consumer.Backoff{Initial: time.Millisecond, Max: time.Millisecond, Attempts: 2}})
	if err := c.CatchUp(context.Background()); err != nil {
		t.Fatalf("catch up with progress between failures: %v", err)
	}
	checkWhole(t, s.units(), 1, end)

	// An error the consumer is not told to retry ends it at once.
	s = newSink()
	calls = 0
	refuse := errors.New("refused")
	s.fail = func(consumer.Batch) error { calls++; return refuse }
	c = newConsumer(t, l, s, consumer.Config{Backoff: backoff})
	if err := c.CatchUp(context.Background()); !errors.Is(err, refuse) || calls != 1 {
		t.Fatalf("catch up: %v after %d calls, want the handler's error after 1", err, calls)
	}
}

func TestAContextEndedDuringABackOffEndsRun(t *testing.T) {
	l := ledgertest.New(t)
	decisions(t, l, "a", 1, 1)
	s := newSink()
	s.fail = func(consumer.Batch) error { return domain.ErrLogUnavailable }
	retrying := make(chan struct{}, 1)
	c := newConsumer(t, l, s, consumer.Config{
		Backoff: consumer.Backoff{Initial: time.Hour, Max: time.Hour, Attempts: 3},
		OnRetry: func(error, int, time.Duration) { retrying <- struct{}{} },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	select {
	case <-retrying:
	case <-time.After(10 * time.Second):
		t.Fatal("no retry within 10s")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run still waiting out its back-off 10s after its context ended")
	}
}

func TestALogThatIsGoneIsRetriedThenReported(t *testing.T) {
	l := ledgertest.New(t)
	decisions(t, l, "a", 1, 1)
	// A store that gives the server little time to answer once it is gone.
	impatient, err := eventstore.Open(context.Background(), l.JS, eventstore.Config{SealKey: l.SealKey, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	l.Server.Shutdown()
	s := newSink()
	retries := 0
	c, err := consumer.New(impatient, consumer.Config{
		Checkpoint: s.Checkpoint, Handle: s.Handle,
		Backoff: consumer.Backoff{Initial: time.Millisecond, Max: 2 * time.Millisecond, Attempts: 3},
		OnRetry: func(error, int, time.Duration) { retries++ },
	})
	if err != nil {
		t.Fatal(err)
	}
	// No deadline of the caller's: the store's own timeout applies.
	done := make(chan error, 1)
	go func() { done <- c.CatchUp(context.Background()) }()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("catch up against a stopped server still running after 30s")
	}
	var gaveUp *consumer.GaveUpError
	if !errors.As(err, &gaveUp) || !errors.Is(err, domain.ErrLogUnavailable) || retries != 2 {
		t.Fatalf("catch up against a stopped server: %v after %d retries, want a *GaveUpError wrapping domain.ErrLogUnavailable after 2", err, retries)
	}
	var logErr *domain.LogError
	if !errors.As(err, &logErr) {
		t.Fatalf("%v: want a *domain.LogError", err)
	}
}

func TestBackoffWaitsStayWithinTheirBounds(t *testing.T) {
	l := ledgertest.New(t)
	b := consumer.Backoff{Initial: 10 * time.Millisecond, Max: time.Second, Attempts: 100}
	for n := range 100 {
		share := b.Initial << min(n, 20)
		share = min(share, b.Max)
		for range 50 {
			w := b.Wait(n)
			if w < share/2 || w > share {
				t.Fatalf("wait %d is %s, want between %s and %s", n, w, share/2, share)
			}
		}
	}
	if w := (consumer.Backoff{}).Wait(1000); w > 30*time.Second {
		t.Fatalf("default wait %s, want at most 30s", w)
	}
	for _, bad := range []consumer.Backoff{
		{Initial: time.Second, Max: time.Millisecond},
		{Max: 2 * consumer.MaxWaitCap},
		{Attempts: consumer.MaxAttempts + 1},
		{Attempts: -1},
	} {
		s := newSink()
		if _, err := consumer.New(l.Store, consumer.Config{Checkpoint: s.Checkpoint, Handle: s.Handle, Backoff: bad}); err == nil {
			t.Errorf("backoff %+v accepted", bad)
		}
	}
}
