package eventstore_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"koers/domain"
	"koers/eventstore"
)

func TestAppendThenLoadReturnsTheEventsAndVersion(t *testing.T) {
	st, _ := newStore(t)
	p, tm := person("p-0042"), team("t-payments")

	r1 := mustAppend(t, st, meta("form"), map[domain.Ref]uint64{tm: 0},
		event(tm, "team.formed", map[string]string{"name": "Payments"}))
	if !slices.Equal(r1.Sequences, []uint64{1}) || r1.Duplicate {
		t.Fatalf("single append: got %+v, want sequence 1, not a duplicate", r1)
	}
	r2 := mustAppend(t, st, meta("join"), map[domain.Ref]uint64{p: 0, tm: 1},
		event(p, "person.joined", map[string]string{"team": "t-payments"}),
		event(tm, "team.member-joined", map[string]string{"person": "p-0042"}))
	if !slices.Equal(r2.Sequences, []uint64{2, 3}) {
		t.Fatalf("batch append: sequences %v, want [2 3]", r2.Sequences)
	}

	h, err := st.Load(ctx(t), tm)
	if err != nil {
		t.Fatal(err)
	}
	if h.Version != 3 || len(h.Events) != 2 {
		t.Fatalf("team: version %d with %d events, want version 3 with 2 events", h.Version, len(h.Events))
	}
	got := h.Events[1]
	want := meta("join")
	if got.Type != "team.member-joined" || got.Sequence != 3 || got.Aggregate != tm || got.EventID != "join/1" ||
		string(got.Data) != `{"person":"p-0042"}` || got.Meta.DecisionID != want.DecisionID || got.Meta.By != want.By ||
		got.Meta.Authority != want.Authority || !got.Meta.Effective.Equal(want.Effective) ||
		!slices.Equal(got.Meta.Refs, want.Refs) || got.RecordedAt.IsZero() {
		t.Fatalf("loaded event = %+v", got)
	}

	missing, err := st.Load(ctx(t), person("nobody"))
	if err != nil || missing.Version != 0 || len(missing.Events) != 0 {
		t.Fatalf("load of an aggregate that does not exist: %+v, %v; want version 0, no events", missing, err)
	}
}

func TestLoadReadsHistoriesLongerThanOneBatch(t *testing.T) {
	st, _ := newStore(t, func(c *eventstore.Config) { c.LoadBatch = 7 })
	p := person("p-1")
	var version uint64
	for i := range 30 {
		res := mustAppend(t, st, meta("d-"+itoa(i)), map[domain.Ref]uint64{p: version}, event(p, "person.renamed", map[string]int{"n": i}))
		version = res.Sequences[0]
	}
	h, err := st.Load(ctx(t), p)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Events) != 30 || h.Version != 30 || string(h.Events[29].Data) != `{"n":29}` {
		t.Fatalf("loaded %d events at version %d, want 30 at 30", len(h.Events), h.Version)
	}
}

func TestRacingAppendsAtOneVersionHaveExactlyOneWinner(t *testing.T) {
	st, js := newStore(t)
	p := person("p-race")
	const writers, rounds = 8, 5
	var version uint64
	for round := range rounds {
		// Each writer has its own store, as separate processes would.
		stores := make([]*eventstore.Store, writers)
		for w := range stores {
			stores[w] = openStore(t, js)
		}
		var wg sync.WaitGroup
		results := make([]error, writers)
		start := make(chan struct{})
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				id := "r" + itoa(round) + "-w" + itoa(w)
				_, results[w] = stores[w].Append(context.Background(), meta(id),
					[]domain.Event{event(p, "person.moved", map[string]int{"w": w}), event(domain.Ref{Kind: domain.KindDecision, ID: id}, "decision.recorded", nil)},
					map[domain.Ref]uint64{p: version, {Kind: domain.KindDecision, ID: id}: 0})
			}()
		}
		close(start)
		wg.Wait()
		wins := 0
		for w, err := range results {
			switch {
			case err == nil:
				wins++
			case errors.Is(err, domain.ErrConflict):
			default:
				t.Fatalf("round %d writer %d: %v, want success or ErrConflict", round, w, err)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d writers won at version %d, want exactly 1", round, wins, version)
		}
		h, err := st.Load(ctx(t), p)
		if err != nil {
			t.Fatal(err)
		}
		if len(h.Events) != round+1 {
			t.Fatalf("round %d: %d events on the aggregate, want %d", round, len(h.Events), round+1)
		}
		version = h.Version
	}
	if r := mustVerify(t, st, eventstore.VerifyOptions{}); !r.OK() {
		t.Fatalf("verify after races: %+v", r.Problems)
	}
}

func TestStaleVersionOnOneAggregateLeavesTheStreamUnchanged(t *testing.T) {
	st, js := newStore(t)
	p, tm := person("p-1"), team("t-1")
	mustAppend(t, st, meta("a"), map[domain.Ref]uint64{p: 0, tm: 0},
		event(p, "person.joined", nil), event(tm, "team.formed", nil))

	// A second process reads the team, then this one moves it on.
	other := openStore(t, js)
	if _, err := other.Load(ctx(t), tm); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, st, meta("b"), map[domain.Ref]uint64{tm: 2}, event(tm, "team.renamed", nil))
	before := lastSeq(t, st)

	cases := []struct {
		name  string
		store *eventstore.Store
	}{
		{"stale version seen before sending", st},
		// The other store's cache still has the old head, so the batch
		// goes out and the server refuses it.
		{"stale version refused by the server", other},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.store.Append(ctx(t), meta("c-"+strings.ReplaceAll(c.name, " ", "-")),
				[]domain.Event{event(p, "person.moved", nil), event(tm, "team.member-left", nil)},
				map[domain.Ref]uint64{p: 1, tm: 2})
			if !errors.Is(err, domain.ErrConflict) {
				t.Fatalf("append with a stale team version: %v, want ErrConflict", err)
			}
			if after := lastSeq(t, st); after != before {
				t.Fatalf("stream moved from %d to %d: a refused decision wrote something", before, after)
			}
		})
	}
}

func TestRetryingADecisionReturnsTheOriginalResult(t *testing.T) {
	st, js := newStore(t)
	p, tm := person("p-1"), team("t-1")
	single := mustAppend(t, st, meta("single"), map[domain.Ref]uint64{tm: 0}, event(tm, "team.formed", nil))
	batch := mustAppend(t, st, meta("batch"), map[domain.Ref]uint64{p: 0, tm: 1},
		event(p, "person.joined", nil), event(tm, "team.member-joined", nil))
	before := lastSeq(t, st)

	// A new process (fresh store, empty cache) retries both, as it would
	// after a crash or a timeout that hid the acknowledgement.
	retry := openStore(t, js)
	cases := []struct {
		name     string
		meta     string
		expected map[domain.Ref]uint64
		events   []domain.Event
		want     eventstore.AppendResult
	}{
		{"one event, in the duplicate window", "single", map[domain.Ref]uint64{tm: 0},
			[]domain.Event{event(tm, "team.formed", nil)}, single},
		{"one event, same retry through a stale version", "single", map[domain.Ref]uint64{tm: 0},
			[]domain.Event{event(tm, "team.formed", nil)}, single},
		{"batch, in the duplicate window", "batch", map[domain.Ref]uint64{p: 0, tm: 1},
			[]domain.Event{event(p, "person.joined", nil), event(tm, "team.member-joined", nil)}, batch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := retry.Append(ctx(t), meta(c.meta), c.events, c.expected)
			if err != nil {
				t.Fatalf("retry: %v", err)
			}
			if !got.Duplicate || !slices.Equal(got.Sequences, c.want.Sequences) {
				t.Fatalf("retry: %+v, want the original sequences %v marked duplicate", got, c.want.Sequences)
			}
			if after := lastSeq(t, st); after != before {
				t.Fatalf("a retry wrote: stream moved from %d to %d", before, after)
			}
		})
	}
}

func TestRetryAfterTheDuplicateWindowStillReturnsTheOriginal(t *testing.T) {
	st, js := newStore(t, func(c *eventstore.Config) { c.DuplicateWindow = time.Second })
	p, tm := person("p-1"), team("t-1")
	single := mustAppend(t, st, meta("single"), map[domain.Ref]uint64{tm: 0}, event(tm, "team.formed", nil))
	batch := mustAppend(t, st, meta("batch"), map[domain.Ref]uint64{p: 0, tm: 1},
		event(p, "person.joined", nil), event(tm, "team.member-joined", nil))
	time.Sleep(1500 * time.Millisecond) // the server forgets ids after its window: no signal to wait on
	retry := openStore(t, js, func(c *eventstore.Config) { c.DuplicateWindow = time.Second })
	for name, c := range map[string]struct {
		id       string
		events   []domain.Event
		expected map[domain.Ref]uint64
		want     []uint64
	}{
		"single": {"single", []domain.Event{event(tm, "team.formed", nil)}, map[domain.Ref]uint64{tm: 0}, single.Sequences},
		"batch":  {"batch", []domain.Event{event(p, "person.joined", nil), event(tm, "team.member-joined", nil)}, map[domain.Ref]uint64{p: 0, tm: 1}, batch.Sequences},
	} {
		got, err := retry.Append(ctx(t), meta(c.id), c.events, c.expected)
		if err != nil || !got.Duplicate || !slices.Equal(got.Sequences, c.want) {
			t.Fatalf("%s retry after the window: %+v, %v; want %v marked duplicate", name, got, err, c.want)
		}
	}
	if n := lastSeq(t, st); n != 3 {
		t.Fatalf("stream at %d after retries, want 3", n)
	}
}

func TestDecisionsLargerThanOneBatchAreRefusedBeforeSending(t *testing.T) {
	st, _ := newStore(t)
	build := func(n int) ([]domain.Event, map[domain.Ref]uint64) {
		evs := make([]domain.Event, n)
		exp := make(map[domain.Ref]uint64, n)
		for i := range evs {
			ref := person("p-" + itoa(i))
			evs[i] = event(ref, "person.joined", nil)
			exp[ref] = 0
		}
		return evs, exp
	}
	evs, exp := build(eventstore.MaxBatchServer + 1)
	_, err := st.Append(ctx(t), meta("too-big"), evs, exp)
	var tooLarge *eventstore.BatchTooLargeError
	if !errors.As(err, &tooLarge) || tooLarge.Events != 1001 || tooLarge.Max != 1000 {
		t.Fatalf("append of 1001 events: %v, want BatchTooLargeError{1001, 1000}", err)
	}
	if !errors.Is(err, domain.ErrTooLarge) {
		t.Fatalf("append of 1001 events: %v does not wrap domain.ErrTooLarge", err)
	}
	if n := lastSeq(t, st); n != 0 {
		t.Fatalf("stream at %d after a refused batch, want 0", n)
	}

	evs, exp = build(eventstore.MaxBatchServer)
	res := mustAppend(t, st, meta("largest"), exp, evs...)
	if len(res.Sequences) != 1000 || res.Sequences[999] != 1000 {
		t.Fatalf("largest batch landed at %v..., want 1..1000", res.Sequences[:3])
	}
}

func TestAppendRefusesBadInputWithoutWriting(t *testing.T) {
	st, _ := newStore(t)
	p := person("p-1")
	cases := []struct {
		name     string
		meta     domain.Meta
		events   []domain.Event
		expected map[domain.Ref]uint64
		wantErr  string
	}{
		{"no events", meta("d"), nil, nil, "no events"},
		{"bad decision id", meta("Bad.ID"), []domain.Event{event(p, "x", nil)}, map[domain.Ref]uint64{p: 0}, "decision id"},
		{"id with a wildcard", meta("d"), []domain.Event{event(person("p.*"), "x", nil)}, map[domain.Ref]uint64{person("p.*"): 0}, "person id"},
		{"missing expected version", meta("d"), []domain.Event{event(p, "x", nil)}, map[domain.Ref]uint64{}, "no expected version"},
		{"missing type", meta("d"), []domain.Event{{Aggregate: p}}, map[domain.Ref]uint64{p: 0}, "type is missing"},
		{"data not JSON", meta("d"), []domain.Event{{Aggregate: p, Type: "x", Data: []byte("{")}}, map[domain.Ref]uint64{p: 0}, "not valid JSON"},
		{"no effective time", domain.Meta{DecisionID: "d"}, []domain.Event{event(p, "x", nil)}, map[domain.Ref]uint64{p: 0}, "effective"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := st.Append(ctx(t), c.meta, c.events, c.expected)
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("got %v, want an error mentioning %q", err, c.wantErr)
			}
		})
	}
	if n := lastSeq(t, st); n != 0 {
		t.Fatalf("stream at %d after refused appends, want 0", n)
	}
}

func TestOpenRefusesAStreamThatWeakensImmutability(t *testing.T) {
	_, js := server(t, t.TempDir())
	_, err := js.CreateStream(ctx(t), jetstream.StreamConfig{
		Name: "KOERS", Subjects: []string{"koers.>"}, Storage: jetstream.FileStorage,
		DenyDelete: false, DenyPurge: true, AllowDirect: true, AllowAtomicPublish: true, MaxAge: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = eventstore.Open(ctx(t), js, eventstore.Config{SealKey: testKey})
	var setting *eventstore.StreamSettingError
	if !errors.As(err, &setting) {
		t.Fatalf("open: %v, want a StreamSettingError", err)
	}
	for _, want := range []string{"deny_delete", "max_age"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	info, err := js.Stream(ctx(t), "KOERS")
	if err != nil {
		t.Fatal(err)
	}
	if info.CachedInfo().Config.DenyDelete {
		t.Fatal("open changed the existing stream; it must only report")
	}
}

func TestOpenRefusesBadConfig(t *testing.T) {
	_, js := server(t, t.TempDir())
	cases := map[string]eventstore.Config{
		"seal key":       {SealKey: []byte("short")},
		"stream name":    {SealKey: testKey, Stream: "KO.ERS"},
		"subject prefix": {SealKey: testKey, Prefix: "koers.>"},
		"replicas":       {SealKey: testKey, Replicas: 7},
		"max batch":      {SealKey: testKey, MaxBatch: 5000},
	}
	for want, cfg := range cases {
		if _, err := eventstore.Open(ctx(t), js, cfg); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("open with a bad %s: %v, want an error naming it", want, err)
		}
	}
}

func TestRetryFindsTheOriginalThroughItsRecordEvenAfterTheRecordMovedOn(t *testing.T) {
	st, js := newStore(t)
	p := person("p-1")
	rec := domain.Ref{Kind: domain.KindDecision, ID: "hire"}
	orig := mustAppend(t, st, meta("hire"), map[domain.Ref]uint64{p: 0, rec: 0},
		event(p, "person.joined", nil), event(rec, "decision.recorded", nil))
	// A later decision (a retraction, say) writes on the same record.
	undo := domain.Ref{Kind: domain.KindDecision, ID: "undo"}
	mustAppend(t, st, meta("undo"), map[domain.Ref]uint64{p: 1, rec: 2, undo: 0},
		event(p, "person.left", nil), event(rec, "decision.retracted", nil), event(undo, "decision.recorded", nil))

	retry := openStore(t, js)
	got, err := retry.Append(ctx(t), meta("hire"), []domain.Event{event(p, "person.joined", nil), event(rec, "decision.recorded", nil)},
		map[domain.Ref]uint64{p: 0, rec: 0})
	if err != nil || !got.Duplicate || !slices.Equal(got.Sequences, orig.Sequences) {
		t.Fatalf("retry: %+v, %v; want %v marked duplicate", got, err, orig.Sequences)
	}
	looked, found, err := retry.Lookup(ctx(t), "hire")
	if err != nil || !found || !slices.Equal(looked.Sequences, orig.Sequences) {
		t.Fatalf("lookup: %+v found=%v err=%v; want %v", looked, found, err, orig.Sequences)
	}
	if _, found, err := retry.Lookup(ctx(t), "never"); found || err != nil {
		t.Fatalf("lookup of an unknown decision: found=%v err=%v", found, err)
	}
}

func TestLoadAfterReturnsOnlyWhatCameLater(t *testing.T) {
	st, js := newStore(t)
	p := person("p-1")
	mustAppend(t, st, meta("a"), map[domain.Ref]uint64{p: 0}, event(p, "person.joined", nil))
	first, err := st.Load(ctx(t), p)
	if err != nil {
		t.Fatal(err)
	}
	same, err := st.LoadAfter(ctx(t), p, first.Cursor)
	if err != nil || len(same.Events) != 0 || same.Version != 1 {
		t.Fatalf("nothing new: %d events at version %d, %v", len(same.Events), same.Version, err)
	}
	mustAppend(t, st, meta("b"), map[domain.Ref]uint64{p: 1}, event(p, "person.moved", nil))
	forged := publishRaw(t, js, "koers.person.p-1", []byte(`{"v":1}`))
	mustAppend(t, st, meta("c"), map[domain.Ref]uint64{p: forged}, event(p, "person.moved", nil))
	later, err := st.LoadAfter(ctx(t), p, first.Cursor)
	if err != nil {
		t.Fatal(err)
	}
	if len(later.Events) != 2 || later.Events[0].Meta.DecisionID != "b" || later.Events[1].Meta.DecisionID != "c" || later.Version != forged+1 {
		t.Fatalf("after the cursor: %d events at version %d; want b and c (the forgery skipped) at %d", len(later.Events), later.Version, forged+1)
	}
	// A long history goes on in batches after the probes.
	v := later.Version
	for i := range 20 {
		v = mustAppend(t, st, meta("m-"+itoa(i)), map[domain.Ref]uint64{p: v}, event(p, "person.moved", nil)).Sequences[0]
	}
	rest, err := st.LoadAfter(ctx(t), p, later.Cursor)
	if err != nil || len(rest.Events) != 20 || rest.Version != v {
		t.Fatalf("20 more: %d events at %d, %v", len(rest.Events), rest.Version, err)
	}
}

// Errors of nats.go leave the store translated, with none of the driver's
// types in the chain and none of its raw text: the write and load paths
// answer a *ServerError that wraps ErrServer (and domain.ErrUnavailable
// when the server cannot be reached); the read contract (Read,
// LastSequence) answers the domain's *LogError, which wraps
// domain.ErrUnavailable too.
func TestDriverErrorsLeaveTheStoreTranslated(t *testing.T) {
	srv, _ := server(t, t.TempDir())
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t, js)
	p := person("p-1")
	v := mustAppend(t, st, meta("d-1"), map[domain.Ref]uint64{p: 0}, event(p, "person.joined", nil)).Sequences[0]

	// The stream is gone: nobody answers on its subjects.
	if err := js.DeleteStream(ctx(t), "KOERS"); err != nil {
		t.Fatal(err)
	}
	evs, exp := decisionOn(person("p-2"), "d-2", 0)
	_, appendErr := st.Append(ctx(t), meta("d-2"), evs, exp)
	_, oneErr := st.Append(ctx(t), meta("d-3"), []domain.Event{event(person("p-3"), "person.joined", nil)}, map[domain.Ref]uint64{person("p-3"): 0})
	_, infoErr := st.LastSequence(ctx(t))
	nc.Close()
	_, closedErr := st.LastSequence(ctx(t))
	_, loadErr := st.Load(ctx(t), person("p-9"))
	var readErr error
	for _, err := range st.Read(ctx(t), 1, domain.ReadOptions{Until: v}) {
		readErr = err
	}

	for name, err := range map[string]error{
		"append of a batch to a deleted stream":   appendErr,
		"append of one event to a deleted stream": oneErr,
		"info of a deleted stream":                infoErr,
		"info on a closed connection":             closedErr,
		"load on a closed connection":             loadErr,
		"read on a closed connection":             readErr,
	} {
		t.Logf("%s: %v", name, err)
		var se *eventstore.ServerError
		var le *domain.LogError
		readContract := strings.HasPrefix(name, "info") || strings.HasPrefix(name, "read")
		switch {
		case readContract && !errors.As(err, &le):
			t.Errorf("%s: %v (%T), want a *domain.LogError", name, err, err)
			continue
		case !readContract && (!errors.As(err, &se) || !errors.Is(err, eventstore.ErrServer)):
			t.Errorf("%s: %v (%T), want a *ServerError", name, err, err)
			continue
		}
		if !errors.Is(err, domain.ErrUnavailable) {
			t.Errorf("%s: %v does not wrap domain.ErrUnavailable", name, err)
		}
		var apiErr *jetstream.APIError
		var jsErr jetstream.JetStreamError
		if errors.As(err, &apiErr) || errors.As(err, &jsErr) || errors.Is(err, nats.ErrConnectionClosed) ||
			errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("%s: %v carries a driver error", name, err)
		}
		if strings.Contains(err.Error(), "nats: ") {
			t.Errorf("%s: %q shows the driver's raw text", name, err)
		}
	}
}

func TestOpenExistingCreatesNothing(t *testing.T) {
	_, js := server(t, t.TempDir())
	_, err := eventstore.Open(ctx(t), js, eventstore.Config{SealKey: testKey, Existing: true})
	var nf *eventstore.StreamNotFoundError
	if !errors.As(err, &nf) || nf.Stream != "KOERS" || !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("open an existing stream that is not there: %v, want a StreamNotFoundError wrapping domain.ErrNotFound", err)
	}
	if _, err := js.Stream(ctx(t), "KOERS"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("the stream after a refused open: %v, want none", err)
	}
	if _, err := eventstore.Open(ctx(t), js, eventstore.Config{SealKey: testKey}); err != nil {
		t.Fatal(err)
	}
	if _, err := eventstore.Open(ctx(t), js, eventstore.Config{SealKey: testKey, Existing: true}); err != nil {
		t.Fatalf("open the stream once it exists: %v", err)
	}
}
