package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"koers/domain"
	"koers/eventstore"
	"koers/internal/sample"
)

// maxPlanRounds bounds how often one generated decision asks for more
// aggregates, as the command handler's MaxLoadRounds does.
const maxPlanRounds = 8

// generator writes decisions the way the command handler does (decide,
// append with expected versions) but against state it keeps in memory:
// every aggregate the bench ever wrote, so nothing is loaded from the log.
// It is for one goroutine.
type generator struct {
	store *eventstore.Store
	// names seals people's names; nil: they are recorded in clear.
	names interface {
		Seal(ctx context.Context, decisionID string, p domain.PersonalName) (string, error)
	}
	world domain.World
	opts  domain.DecodeOptions
	rng   *rand.Rand
	// last is the stream's last sequence after the generator's appends.
	last uint64
	// effective is the valid time of the next generated decision; it only
	// moves forward.
	effective time.Time
	// genesis is the ledger's first valid time, firstAt and lastAt the
	// span of recorded times, for as_of.
	genesis, firstAt, lastAt time.Time
	n                        int // decisions generated, for ids
}

func newGenerator(store *eventstore.Store, seed int64) *generator {
	return &generator{
		store: store, world: domain.World{},
		opts: domain.DecodeOptions{Location: time.UTC, Now: func() time.Time { return time.Now().UTC() },
			NewID: func() string { return "" }},
		rng: rand.New(rand.NewPCG(uint64(seed), 0x62656e6368)),
	}
}

// state is what the generator knows of ref; Version 0 if it was never written.
func (g *generator) state(ref domain.Ref) domain.Aggregate {
	if a, ok := g.world[ref]; ok {
		return a
	}
	return domain.Aggregate{Ref: ref}
}

// submit decodes and records one decision.
func (g *generator) submit(ctx context.Context, data []byte) error {
	d, err := domain.DecodeDecision(data, g.opts)
	if err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	if d.Authority == sample.BoardMandate {
		// The board's quorum, as if its proposal had been approved: the
		// bench measures the log, not the approvals.
		d.Approvers = []string{sample.Board, sample.Approver}
	}
	return g.handle(ctx, d)
}

// handle decides d on the generator's state and appends it.
func (g *generator) handle(ctx context.Context, d domain.Decision) error {
	if g.names != nil {
		// Names are sealed as the ledger seals them, so that rebuild,
		// verify and lag measure a history of sealed names.
		changes, err := domain.WithNames(d.Changes, func(p domain.PersonalName) (string, error) {
			return g.names.Seal(ctx, d.ID, p)
		})
		if err != nil {
			return fmt.Errorf("generate decision %s: %w", d.ID, err)
		}
		d.Changes = changes
	}
	world := domain.World{}
	refs := domain.Plan(d)
	now := g.opts.Now()
	for round := 0; round < maxPlanRounds; round++ {
		for _, r := range refs {
			world[r] = g.state(r)
		}
		events, err := domain.Decide(world, d, now)
		var need *domain.NeedError
		if errors.As(err, &need) {
			refs = need.Refs
			continue
		}
		if err != nil {
			return fmt.Errorf("generate decision %s: %w", d.ID, err)
		}
		expected := make(map[domain.Ref]uint64, len(events))
		for _, e := range events {
			expected[e.Aggregate] = g.state(e.Aggregate).Version
		}
		return g.append(ctx, d.Meta(), events, expected)
	}
	return fmt.Errorf("generate decision %s: still needs more aggregates after %d rounds", d.ID, maxPlanRounds)
}

// append records events and folds them into the generator's state.
func (g *generator) append(ctx context.Context, meta domain.Meta, events []domain.Event, expected map[domain.Ref]uint64) error {
	res, err := g.store.Append(ctx, meta, events, expected)
	if err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	if res.Duplicate {
		return fmt.Errorf("generate decision %s: recorded before", meta.DecisionID)
	}
	for i, e := range events {
		a, err := domain.Evolve(g.state(e.Aggregate), domain.Recorded{Event: e, Meta: meta,
			EventID: meta.DecisionID + "/" + strconv.Itoa(i), Sequence: res.Sequences[i]})
		if err != nil {
			return fmt.Errorf("generate decision %s: %w", meta.DecisionID, err)
		}
		a.Version = res.Sequences[i]
		g.world[e.Aggregate] = a
	}
	g.last = max(g.last, res.Sequences[len(res.Sequences)-1])
	if meta.Effective.After(g.effective) {
		g.effective = meta.Effective
	}
	now := time.Now()
	if g.firstAt.IsZero() {
		g.firstAt = now
	}
	g.lastAt = now
	return nil
}

// sampleOptions sizes the realistic organisation: the default one for a
// history of a million events, a small one for a small history, so that
// the organisation is not most of it.
func sampleOptions(events int, seed int64) sample.Options {
	if events >= 100_000 {
		return sample.Options{Seed: seed}
	}
	return sample.Options{Seed: seed, Years: 1, People: 60, Teams: 14, Products: 10}
}

// start records the genesis and a realistic organisation's history.
func (g *generator) start(ctx context.Context, o sample.Options) error {
	g.genesis = sample.Genesis(o)
	d, events, err := domain.Genesis(sample.Root, g.genesis)
	if err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	expected := make(map[domain.Ref]uint64, len(events))
	for _, e := range events {
		expected[e.Aggregate] = 0
	}
	if err := g.append(ctx, d.Meta(), events, expected); err != nil {
		return err
	}
	hist, err := sample.History(o)
	if err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	for _, line := range hist {
		if err := g.submit(ctx, []byte(line)); err != nil {
			return err
		}
	}
	return nil
}

// nextEffective moves the generator's valid time on by a minute.
func (g *generator) nextEffective() time.Time {
	g.effective = g.effective.Add(time.Minute)
	return g.effective
}

// active lists the active aggregates of one kind, in id order, leaving out
// the bench's own move sets.
func (g *generator) active(kind domain.AggregateKind) []string {
	var ids []string
	for ref, a := range g.world {
		if ref.Kind == kind && a.Exists() && a.Active() && !strings.HasPrefix(ref.ID, setPrefix) {
			ids = append(ids, ref.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// fill records decisions of up to domain.MaxChanges moves, each of a
// different person of the organisation into another active team, until the
// stream holds at least events messages.
func (g *generator) fill(ctx context.Context, events uint64, progress func(done uint64)) error {
	people, teams := g.active(domain.KindPerson), g.active(domain.KindTeam)
	if len(people) == 0 || len(teams) < 2 {
		return fmt.Errorf("generate: %d people and %d teams: too few to move", len(people), len(teams))
	}
	// Bounded: every decision writes at least one message.
	for i := 0; g.last < events && i < int(events); i++ {
		g.rng.Shuffle(len(people), func(a, b int) { people[a], people[b] = people[b], people[a] })
		n := min(domain.MaxChanges, len(people))
		d := domain.Decision{ID: fmt.Sprintf("bench-fill-%d", g.n), By: sample.Root, Authority: domain.RootMandate,
			Reason: "rebalance the teams", Effective: g.nextEffective(), Changes: make([]domain.Change, 0, n)}
		g.n++
		for _, p := range people[:n] {
			from := g.state(domain.Ref{Kind: domain.KindPerson, ID: p}).Person.Team
			to := teams[g.rng.IntN(len(teams))]
			if to == from {
				to = teams[(slices.Index(teams, to)+1)%len(teams)]
			}
			d.Changes = append(d.Changes, domain.Change{Kind: domain.ChangePersonMove, Person: p, To: to})
		}
		if err := g.handle(ctx, d); err != nil {
			return err
		}
		progress(g.last)
	}
	if g.last < events {
		return fmt.Errorf("generate: %d messages of %d after the bound on decisions", g.last, events)
	}
	return nil
}
