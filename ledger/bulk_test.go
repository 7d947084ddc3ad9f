package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"koers/domain"
	"koers/eventstore"
	"koers/internal/ledgertest"
	"koers/ledger"
)

// linesOf numbers decisions as the lines of a file.
func linesOf(decisions ...string) func(func(ledger.Line, error) bool) {
	return func(yield func(ledger.Line, error) bool) {
		for i, d := range decisions {
			if !yield(ledger.Line{Line: i + 1, Body: []byte(d)}, nil) {
				return
			}
		}
	}
}

func join(id, person, team string) string {
	return fmt.Sprintf(`{"id":%q,"by":"p-root","authority":"root","reason":"hire","effective":"2026-02-01","changes":[{"kind":"person.join","id":%q,"name":"N","team":%q}]}`, id, person, team)
}

func move(id, person, to string) string {
	return fmt.Sprintf(`{"id":%q,"by":"p-root","authority":"root","reason":"reorg","effective":"2026-03-01","changes":[{"kind":"person.move","person":%q,"to":%q}]}`, id, person, to)
}

func fold(t *testing.T, st *eventstore.Store, ref domain.Ref) domain.Aggregate {
	t.Helper()
	// Load walks the subject and checks its hash chain: batches of many
	// decisions must chain exactly as single appends do.
	hist, err := st.Load(context.Background(), ref)
	if err != nil {
		t.Fatalf("load %s: %v", ref, err)
	}
	a, err := domain.Fold(ref, hist.Events)
	if err != nil {
		t.Fatalf("fold %s: %v", ref, err)
	}
	return a
}

func team(t *testing.T, st *eventstore.Store, id string) []string {
	t.Helper()
	a := fold(t, st, domain.Ref{Kind: domain.KindTeam, ID: id})
	if a.Team == nil {
		t.Fatalf("team %s does not exist", id)
	}
	return a.Team.Members
}

func lastSeq(t *testing.T, st *eventstore.Store) uint64 {
	t.Helper()
	n, err := st.LastSequence(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A file whose decisions build on each other (people join, then move)
// lands in batches of several decisions, each seeing the ones before; a
// second run writes nothing.
func TestApplyAllDecidesInOrderInBatchesAndAgainChangesNothing(t *testing.T) {
	l := ledgertest.New(t)
	h, st := l.Handler, l.Store
	decisions := []string{org}
	for i := range 20 {
		decisions = append(decisions, join(fmt.Sprintf("join-%d", i), fmt.Sprintf("p-n%d", i), "t-core"))
	}
	for i := range 10 {
		decisions = append(decisions, move(fmt.Sprintf("move-%d", i), fmt.Sprintf("p-n%d", i), "t-edge"))
	}
	decisions = append(decisions, join("join-3", "p-n3", "t-core")) // the same id again: a duplicate

	var seqs [][]uint64
	sum, err := h.ApplyAll(context.Background(), linesOf(decisions...), ledger.BulkOptions{
		BatchMessages: 16, // several batches, several decisions each
		Report:        func(r ledger.LineResult) { seqs = append(seqs, r.Result.Sequences) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Applied != 31 || sum.Duplicates != 1 || sum.Refused != 0 {
		t.Fatalf("summary %+v, want 31 applied and 1 duplicate", sum)
	}
	// Consecutive decisions in one batch have consecutive sequences.
	joined := 0
	for i := 1; i < len(seqs); i++ {
		if len(seqs[i]) > 0 && len(seqs[i-1]) > 0 && seqs[i][0] == seqs[i-1][len(seqs[i-1])-1]+1 {
			joined++
		}
	}
	if joined == 0 {
		t.Fatalf("no two decisions went out together: %v", seqs)
	}
	if core, edge := team(t, st, "t-core"), team(t, st, "t-edge"); len(core) != 11 || len(edge) != 10 {
		t.Fatalf("t-core %v, t-edge %v: want 11 (p-1 and 10 joiners) and 10 members", core, edge)
	}
	before := lastSeq(t, st)

	again, err := h.ApplyAll(context.Background(), linesOf(decisions...), ledger.BulkOptions{BatchMessages: 16})
	if err != nil {
		t.Fatal(err)
	}
	if again.Applied != 0 || again.Duplicates != 32 {
		t.Fatalf("second run %+v, want every decision a duplicate", again)
	}
	if after := lastSeq(t, st); after != before {
		t.Fatalf("second run wrote: stream %d -> %d", before, after)
	}
	rep, err := st.Verify(context.Background(), eventstore.VerifyOptions{})
	if err != nil || !rep.OK() {
		t.Fatalf("verify after bulk apply: %v, %+v", err, rep)
	}
}

// A refused decision is never written, not even the changes of it that
// were valid; nothing after it is applied without KeepGoing, and with it
// the lines after it are.
func TestApplyAllRefusedLineIsAllOrNothingAndStops(t *testing.T) {
	refusedLine := `{"id":"half","by":"p-root","authority":"root","reason":"hire and move","effective":"2026-02-01","changes":[
		{"kind":"person.join","id":"p-half","name":"H","team":"t-core"},
		{"kind":"person.move","person":"p-nobody","to":"t-edge"}]}`
	file := []string{org, join("join-a", "p-a", "t-core"), refusedLine, join("join-b", "p-b", "t-edge")}

	for _, keepGoing := range []bool{false, true} {
		t.Run(fmt.Sprintf("keep-going=%v", keepGoing), func(t *testing.T) {
			l := ledgertest.New(t)
			var reported []ledger.LineResult
			sum, err := l.Handler.ApplyAll(context.Background(), linesOf(file...), ledger.BulkOptions{
				KeepGoing: keepGoing,
				Report:    func(r ledger.LineResult) { reported = append(reported, r) },
			})
			if keepGoing != (err == nil) || (err != nil && !errors.Is(err, ledger.ErrStopped)) {
				t.Fatalf("keep going %v: error %v", keepGoing, err)
			}
			if sum.Refused != 1 {
				t.Fatalf("summary %+v, want one refused", sum)
			}
			i := slices.IndexFunc(reported, func(r ledger.LineResult) bool { return r.Err != nil })
			if i < 0 || reported[i].Line != 3 || !errors.Is(reported[i].Err, domain.ErrRefused) {
				t.Fatalf("reported %+v: want line 3 refused", reported)
			}
			st := l.Store
			if a := fold(t, st, domain.Ref{Kind: domain.KindPerson, ID: "p-a"}); a.Person == nil {
				t.Fatal("p-a, before the refused line, was not applied")
			}
			if a := fold(t, st, domain.Ref{Kind: domain.KindPerson, ID: "p-half"}); a.Exists() {
				t.Fatal("the refused decision's valid change was written")
			}
			if a := fold(t, st, domain.Ref{Kind: domain.KindDecision, ID: "half"}); a.Exists() {
				t.Fatal("the refused decision was recorded")
			}
			b := fold(t, st, domain.Ref{Kind: domain.KindPerson, ID: "p-b"})
			if b.Exists() != keepGoing {
				t.Fatalf("p-b, after the refused line: exists %v with keep going %v", b.Exists(), keepGoing)
			}
		})
	}
}

// Another writer moves an aggregate on between two batches: the batch
// that expected the old version is refused whole and decided again on the
// new state, and every line lands once.
func TestApplyAllReDecidesABatchAfterAConflict(t *testing.T) {
	l := ledgertest.New(t)
	h, st := l.Handler, l.Store
	submit(t, h, org)
	var file []string
	for i := range 12 {
		file = append(file, join(fmt.Sprintf("join-%d", i), fmt.Sprintf("p-n%d", i), "t-edge"))
	}
	var external ledger.Result
	interfered := false
	var seqs []uint64
	sum, err := h.ApplyAll(context.Background(), linesOf(file...), ledger.BulkOptions{
		BatchMessages: 9, // three decisions of three messages per batch
		Report: func(r ledger.LineResult) {
			seqs = append(seqs, r.Result.Sequences...)
			if interfered {
				return
			}
			interfered = true
			// Between the first batch and the second: t-edge moves on.
			external = submit(t, h, join("outside", "p-outside", "t-edge"))
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Applied != 12 {
		t.Fatalf("summary %+v, want 12 applied", sum)
	}
	if members := team(t, st, "t-edge"); len(members) != 13 {
		t.Fatalf("t-edge members %v: want the 12 joiners and p-outside", members)
	}
	later := 0
	for _, s := range seqs {
		if s > external.Sequences[0] {
			later++
		}
	}
	if later == 0 {
		t.Fatalf("no line landed after the outside decision at %v: %v", external.Sequences, seqs)
	}
	if got := len(slices.Compact(slices.Sorted(slices.Values(seqs)))); got != len(seqs) {
		t.Fatalf("a sequence reported twice: %v", seqs)
	}
}

// A run cancelled while a batch is on its way still reports every line
// that was written, and only those: a batch in flight is waited for.
func TestApplyAllCancelledReportsEveryLineWritten(t *testing.T) {
	l := ledgertest.New(t)
	h, st := l.Handler, l.Store
	submit(t, h, org)
	var file []string
	for i := range 60 {
		file = append(file, join(fmt.Sprintf("join-%d", i), fmt.Sprintf("p-n%d", i), "t-edge"))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reported := map[string]bool{}
	_, err := h.ApplyAll(ctx, linesOf(file...), ledger.BulkOptions{
		BatchMessages: 9, // three decisions of three messages per batch
		Report: func(r ledger.LineResult) {
			if r.Err == nil {
				reported[r.Result.DecisionID] = true
			}
			if len(reported) == 6 {
				cancel() // while the next batch is decided or sent
			}
		},
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	written := 0
	for i := range 60 {
		id := fmt.Sprintf("join-%d", i)
		rec := fold(t, st, domain.Ref{Kind: domain.KindDecision, ID: id})
		if rec.Exists() != reported[id] {
			t.Errorf("%s: recorded %v, reported %v", id, rec.Exists(), reported[id])
		}
		if rec.Exists() {
			written++
		}
	}
	if written < 6 || written == 60 {
		t.Fatalf("%d of 60 lines written: want the run stopped after the first six", written)
	}
}

// loadCounter is the real store, counting every aggregate the bulk path
// loads from it.
type loadCounter struct {
	*eventstore.Store
	loaded map[domain.Ref]int
}

func (c *loadCounter) LoadMany(ctx context.Context, refs []domain.Ref) ([]domain.History, error) {
	for _, r := range refs {
		c.loaded[r]++
	}
	return c.Store.LoadMany(ctx, refs)
}

// A long run keeps in memory what its decisions keep working on: the
// people and teams are loaded once however many decisions go by, since a
// decision's own record leaves the world once it has landed instead of
// filling it until the world is dropped and loaded again (which walks
// each aggregate's whole history).
func TestApplyAllLoadsWhatItKeepsWorkingOnOnce(t *testing.T) {
	l := ledgertest.New(t)
	counter := &loadCounter{Store: l.Store, loaded: map[domain.Ref]int{}}
	h, err := ledger.New(counter, ledger.Options{Now: func() time.Time { return ledgertest.Clock }})
	if err != nil {
		t.Fatal(err)
	}
	const people, moves = 12, 240
	decisions := []string{org}
	for i := range people {
		decisions = append(decisions, join(fmt.Sprintf("join-%d", i), fmt.Sprintf("p-m%d", i), "t-core"))
	}
	for i := range moves {
		to := "t-edge"
		if (i/people)%2 == 1 {
			to = "t-core"
		}
		decisions = append(decisions, move(fmt.Sprintf("move-%d", i), fmt.Sprintf("p-m%d", i%people), to))
	}
	sum, err := h.ApplyAll(context.Background(), linesOf(decisions...), ledger.BulkOptions{
		BatchMessages: 16,
		Window:        8,
		// Room for the organisation and the people, not for a record of
		// every decision.
		MaxWorld: 40,
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := 1 + people + moves; sum.Applied != want {
		t.Fatalf("summary %+v, want %d applied", sum, want)
	}
	for r, n := range counter.loaded {
		if n != 1 {
			t.Errorf("%s loaded %d times, want once", r, n)
		}
	}
	// 240 moves: every person went to t-edge and back 10 times.
	if core, edge := team(t, l.Store, "t-core"), team(t, l.Store, "t-edge"); len(core) != 1+people || len(edge) != 0 {
		t.Fatalf("t-core %v, t-edge %v: want p-1 and the %d movers in t-core, nobody in t-edge", core, edge, people)
	}
}

// BenchmarkApplyAll applies b.N decisions (people joining, then moving
// between teams) in bulk; run with -cpuprofile to see where a decision's
// time goes.
func BenchmarkApplyAll(b *testing.B) {
	l := ledgertest.New(b)
	h := l.Handler
	if _, err := h.Submit(context.Background(), []byte(org)); err != nil {
		b.Fatal(err)
	}
	const people = 500
	lines := func(yield func(ledger.Line, error) bool) {
		for i := range b.N {
			var d string
			if i < people {
				d = join(fmt.Sprintf("bj-%d", i), fmt.Sprintf("p-b%d", i), "t-core")
			} else {
				to := "t-edge"
				if (i/people)%2 == 0 {
					to = "t-core"
				}
				d = move(fmt.Sprintf("bm-%d", i), fmt.Sprintf("p-b%d", i%people), to)
			}
			if !yield(ledger.Line{Line: i + 1, Body: []byte(d)}, nil) {
				return
			}
		}
	}
	b.ResetTimer()
	sum, err := h.ApplyAll(context.Background(), lines, ledger.BulkOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if sum.Applied != b.N {
		b.Fatalf("%+v of %d", sum, b.N)
	}
}
