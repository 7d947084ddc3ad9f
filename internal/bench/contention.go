package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"koers/domain"
	"koers/internal/sample"
	"koers/ledger"
)

// Contention: clients that each send decisions as fast as they are
// answered, half of them on a few hot aggregates that every client
// changes — 5 people, whom every client moves into its own teams, and
// shifts between the two funding accounts of one budget — and half on a
// person and two teams of their own. Every decision is timed from
// submission to answer, whatever the answer. (A person's move also writes
// the team it leaves and the one it joins. With the hot people moved
// round 20 shared teams instead, the teams became hot too, and two moves
// of different people waited for each other one time in five.)
const (
	hotPeople = 5
	hotTeams  = 5 // where the hot people start
	hotPeriod = setPrefix + "hot"
)

func hotPerson(i int) string { return fmt.Sprintf("%shot-p%d", setPrefix, i) }
func hotTeam(j int) string   { return fmt.Sprintf("%shot-t%d", setPrefix, j) }
func hotStream(i int) string { return fmt.Sprintf("%shot-vs%d", setPrefix, i) }
func coldPerson(k int) string {
	return fmt.Sprintf("%sc%d-p", setPrefix, k)
}
func coldTeam(k, j int) string { return fmt.Sprintf("%sc%d-t%d", setPrefix, k, j) }

// contention is the state of the contention measurements.
type contention struct {
	effective time.Time
	coldIn    []int // the team (0 or 1) each client's own person is in
	runs      int
}

// setupContention records the hot aggregates and every client's own.
func (r *run) setupContention(ctx context.Context) error {
	maxClients := slices.Max(r.cfg.Clients)
	c := &contention{effective: r.gen.nextEffective(), coldIn: make([]int, maxClients)}
	d := domain.Decision{ID: "bench-hot", By: sample.Root, Authority: domain.RootMandate,
		Reason: "hot aggregates for the bench", Effective: c.effective}
	for i := range 2 {
		d.Changes = append(d.Changes, domain.Change{Kind: domain.ChangeValueStreamDefine, ID: hotStream(i), Name: "Hot stream"})
	}
	for j := range hotTeams {
		d.Changes = append(d.Changes, domain.Change{Kind: domain.ChangeTeamForm, ID: hotTeam(j), Name: "Hot team", Type: "stream-aligned"})
	}
	for i := range hotPeople {
		d.Changes = append(d.Changes, domain.Change{Kind: domain.ChangePersonJoin, ID: hotPerson(i), Name: "Hot person", Team: hotTeam(i % hotTeams)})
	}
	d.Changes = append(d.Changes,
		domain.Change{Kind: domain.ChangeBudgetOpen, Period: hotPeriod, Amount: decimal("100000000.00"), Currency: "EUR"},
		domain.Change{Kind: domain.ChangeFundingAllocate, Period: hotPeriod, To: "valuestream:" + hotStream(0), Amount: decimal("50000000.00")},
		domain.Change{Kind: domain.ChangeFundingAllocate, Period: hotPeriod, To: "valuestream:" + hotStream(1), Amount: decimal("50000000.00")})
	if err := r.gen.handle(ctx, d); err != nil {
		return err
	}
	for k := range maxClients {
		d := domain.Decision{ID: fmt.Sprintf("bench-cold-%d", k), By: sample.Root, Authority: domain.RootMandate,
			Reason: "a client's own aggregates", Effective: c.effective, Changes: []domain.Change{
				{Kind: domain.ChangeTeamForm, ID: coldTeam(k, 0), Name: "Cold team", Type: "stream-aligned"},
				{Kind: domain.ChangeTeamForm, ID: coldTeam(k, 1), Name: "Cold team", Type: "stream-aligned"},
				{Kind: domain.ChangePersonJoin, ID: coldPerson(k), Name: "Cold person", Team: coldTeam(k, 0)},
			}}
		if err := r.gen.handle(ctx, d); err != nil {
			return err
		}
	}
	r.contention = c
	return nil
}

// measureContention measures contention with each number of clients, with
// the handler's per-aggregate queueing and, for comparison in the same
// run, without it (optimistic only, as before queueing).
func (r *run) measureContention(ctx context.Context, rep *Report) error {
	if err := r.setupContention(ctx); err != nil {
		return err
	}
	optimistic, err := ledger.New(r.store, ledger.Options{NoQueue: true})
	if err != nil {
		return err
	}
	for _, clients := range r.cfg.Clients {
		for _, m := range []struct {
			key string
			h   *ledger.Handler
		}{
			{contentionKey(clients, false), r.handler},
			{contentionKey(clients, true), optimistic},
		} {
			r.progress(Progress{Step: fmt.Sprintf("%s: %d clients, half of the decisions on 5 people and one budget", m.key, clients)})
			f, err := r.contend(ctx, m.h, clients)
			if err != nil {
				return fmt.Errorf("%s: %w", m.key, err)
			}
			rep.Figures[m.key] = f
		}
	}
	return nil
}

// contentionKey is the figure's key: contention for 8 clients,
// contention_64 for 64, with _optimistic without queueing.
func contentionKey(clients int, optimistic bool) string {
	k := KeyContention
	if clients != 8 {
		k += fmt.Sprintf("_%d", clients)
	}
	if optimistic {
		k += "_optimistic"
	}
	return k
}

// contend runs clients against h for ContentionDuration.
func (r *run) contend(ctx context.Context, h *ledger.Handler, clients int) (Figure, error) {
	c := r.contention
	c.runs++
	runID := c.runs
	type tally struct {
		lat                 []time.Duration
		ok, refused, gaveUp int64
		err                 error
	}
	tallies := make([]tally, clients)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	before := r.store.GroupStats()
	start := time.Now()
	deadline := start.Add(r.cfg.ContentionDuration)
	for k := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := &tallies[k]
			rng := rand.New(rand.NewPCG(uint64(r.cfg.Seed), uint64(runID<<16|k)))
			// Bounded by the deadline: every decision takes time.
			for n := 0; time.Now().Before(deadline); n++ {
				body := c.next(rng, runID, k, n)
				t0 := time.Now()
				_, err := h.Submit(ctx, body)
				lat := time.Since(t0)
				switch {
				case err == nil:
					t.ok++
				case errors.Is(err, domain.ErrRefused):
					// A hot person moved to the team it is already in:
					// answered, decided, nothing to write.
					t.refused++
				case errors.Is(err, domain.ErrConflict), errors.Is(err, domain.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
					// MaxAttempts conflicts in a row, a queue wait too long,
					// or the store's timeout: a client would be answered
					// 409 or 503 and try again.
					t.gaveUp++
				default:
					t.err = err
					cancel()
					return
				}
				t.lat = append(t.lat, lat)

				if err == nil && !isHot(n, k) {
					c.coldIn[k] = 1 - c.coldIn[k]
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	fill := perBatch(before, r.store.GroupStats())
	var (
		lat                 []time.Duration
		ok, refused, gaveUp int64
		errs                []error
	)
	for _, t := range tallies {
		lat = append(lat, t.lat...)
		ok, refused, gaveUp = ok+t.ok, refused+t.refused, gaveUp+t.gaveUp
		errs = append(errs, t.err)
	}
	if err := errors.Join(errs...); err != nil {
		return Figure{}, err
	}
	slices.Sort(lat)
	return Figure{Koers: percentile(lat, 99), Unit: "ms (p99)",
		P50: percentile(lat, 50), P95: percentile(lat, 95), P99: percentile(lat, 99), Max: percentile(lat, 100),
		Rate: float64(ok) / el.Seconds(), Count: int64(len(lat)), Refused: refused, GaveUp: gaveUp,
		Clients: clients, Seconds: el.Seconds(), PerBatch: fill}, nil
}

// isHot says whether client k's n-th decision is on the hot aggregates:
// every other one, starting hot or cold by client so that half of the
// clients start on each.
func isHot(n, k int) bool { return (n+k)%2 == 0 }

// next is client k's n-th decision of contention run runID.
func (c *contention) next(rng *rand.Rand, runID, k, n int) []byte {
	id := fmt.Sprintf("bench-c%d-%d-%d", runID, k, n)
	at := c.effective.Add(time.Duration(runID)*time.Hour + time.Duration(n)*time.Millisecond).Format(time.RFC3339Nano)
	head := fmt.Sprintf(`{"id":%q,"by":%q,"authority":%q,"reason":"bench: contention","effective":%q,"changes":[`,
		id, sample.Root, domain.RootMandate, at)
	switch {
	case !isHot(n, k):
		to := coldTeam(k, 1-c.coldIn[k])
		return fmt.Appendf(nil, `%s{"kind":"person.move","person":%q,"to":%q}]}`, head, coldPerson(k), to)
	case rng.IntN(2) == 0:
		return fmt.Appendf(nil, `%s{"kind":"person.move","person":%q,"to":%q}]}`, head, hotPerson(rng.IntN(hotPeople)), coldTeam(k, rng.IntN(2)))
	default:
		from := rng.IntN(2)
		to := 1 - from
		return fmt.Appendf(nil, `%s{"kind":"funding.shift","period":%q,"from":"valuestream:%s","to":"valuestream:%s","amount":"1.00"}]}`,
			head, hotPeriod, hotStream(from), hotStream(to))
	}
}

func decimal(s string) *domain.Decimal {
	d := domain.MustDecimal(s)
	return &d
}
