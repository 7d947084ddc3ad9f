package eventstore_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"koers/domain"
	"koers/eventstore"
)

// decisionOn is a decision of two events (a person and its record), as the
// domain makes them.
func decisionOn(p domain.Ref, id string, version uint64) ([]domain.Event, map[domain.Ref]uint64) {
	rec := domain.Ref{Kind: domain.KindDecision, ID: id}
	return []domain.Event{event(p, "person.renamed", map[string]string{"by": id}), event(rec, "decision.recorded", nil)},
		map[domain.Ref]uint64{p: version, rec: 0}
}

func TestConcurrentDecisionsShareBatchesAndEachGetsItsOwnAnswer(t *testing.T) {
	st, _ := newStore(t)
	const writers, each = 16, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := person(fmt.Sprintf("p-%d", w))
			var v uint64
			for i := range each {
				id := fmt.Sprintf("w%d-%d", w, i)
				evs, exp := decisionOn(p, id, v)
				res, err := st.Append(ctx(t), meta(id), evs, exp)
				if err != nil {
					errs <- fmt.Errorf("%s: %w", id, err)
					return
				}
				if len(res.Sequences) != 2 || res.Sequences[1] != res.Sequences[0]+1 {
					errs <- fmt.Errorf("%s: sequences %v are not its own consecutive pair", id, res.Sequences)
					return
				}
				v = res.Sequences[0]
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := lastSeq(t, st); n != writers*each*2 {
		t.Fatalf("stream holds %d messages, want %d", n, writers*each*2)
	}
	if r := mustVerify(t, st, eventstore.VerifyOptions{}); !r.OK() {
		t.Fatalf("verify: %+v", r.Problems)
	}
}

func TestAStaleDecisionInAGroupFailsAloneAndTheOthersLand(t *testing.T) {
	st, _ := newStore(t)
	const writers = 12
	// Everyone has a person at version v; the odd ones then append with a
	// stale version, at the same time as the even ones with the right one.
	versions := make([]uint64, writers)
	for w := range writers {
		evs, exp := decisionOn(person(fmt.Sprintf("p-%d", w)), fmt.Sprintf("init-%d", w), 0)
		versions[w] = mustAppend(t, st, meta(fmt.Sprintf("init-%d", w)), exp, evs...).Sequences[0]
	}
	var wg sync.WaitGroup
	var landed, conflicts atomic.Int32
	start := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := versions[w]
			if w%2 == 1 {
				v-- // stale
			}
			id := fmt.Sprintf("next-%d", w)
			evs, exp := decisionOn(person(fmt.Sprintf("p-%d", w)), id, v)
			<-start
			_, err := st.Append(ctx(t), meta(id), evs, exp)
			switch {
			case err == nil && w%2 == 0:
				landed.Add(1)
			case errors.Is(err, domain.ErrConflict) && w%2 == 1:
				conflicts.Add(1)
			default:
				t.Errorf("writer %d: %v", w, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if landed.Load() != writers/2 || conflicts.Load() != writers/2 {
		t.Fatalf("%d landed, %d conflicts; want %d each", landed.Load(), conflicts.Load(), writers/2)
	}
}
