package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"koers/domain"
	"koers/eventstore"
	"koers/internal/sample"
	"koers/ledger"
)

// setPrefix starts the ids of the teams and people the bench moves in
// append and lag; the generated history leaves them alone.
const setPrefix = "bw"

// Size of a move set: its people move round the teams, so that each
// aggregate's history grows by one event in setTeams (team) or setPeople
// (person) decisions, as in an organisation of that size.
const (
	setTeams  = 20
	setPeople = 40
)

// moveSet is the teams and people one writer moves, one person.move per
// decision. It is for one goroutine.
type moveSet struct {
	k         int   // the set's number, in its ids
	team      []int // team of each person, an index in 0..setTeams-1
	n         int   // decisions made
	effective time.Time
}

func setTeam(k, j int) string   { return fmt.Sprintf("%s%d-t%02d", setPrefix, k, j) }
func setPerson(k, i int) string { return fmt.Sprintf("%s%d-p%02d", setPrefix, k, i) }

// setup records the organisation and a move set per writer and one for the
// single writer.
func (r *run) setup(ctx context.Context) error {
	r.progress(Progress{Step: "organisation"})
	r.gen = newGenerator(r.store, r.cfg.Seed)
	if r.keys != nil {
		r.gen.names = r.keys
	}
	if err := r.gen.start(ctx, sampleOptions(r.cfg.Events, r.cfg.Seed)); err != nil {
		return err
	}
	for k := 0; k <= r.cfg.Writers; k++ {
		s, err := r.newMoveSet(ctx, k)
		if err != nil {
			return err
		}
		r.sets = append(r.sets, s)
	}
	return nil
}

// newMoveSet records the teams and people of move set k.
func (r *run) newMoveSet(ctx context.Context, k int) (*moveSet, error) {
	s := &moveSet{k: k, team: make([]int, setPeople), effective: r.gen.nextEffective()}
	d := domain.Decision{ID: fmt.Sprintf("bench-set-%d", k), By: sample.Root, Authority: domain.RootMandate,
		Reason: "a move set for the bench", Effective: s.effective}
	for j := range setTeams {
		d.Changes = append(d.Changes, domain.Change{Kind: domain.ChangeTeamForm, ID: setTeam(k, j),
			Name: "Bench team " + strconv.Itoa(j), Type: "stream-aligned"})
	}
	for i := range setPeople {
		s.team[i] = i % setTeams
		d.Changes = append(d.Changes, domain.Change{Kind: domain.ChangePersonJoin, ID: setPerson(k, i),
			Name: "Bench person " + strconv.Itoa(i), Team: setTeam(k, s.team[i])})
	}
	if err := r.gen.handle(ctx, d); err != nil {
		return nil, err
	}
	return s, nil
}

// next returns the set's next decision: one person moves to the next team.
func (s *moveSet) next() []byte {
	i := s.n % setPeople
	s.team[i] = (s.team[i] + 1) % setTeams
	s.n++
	at := s.effective.Add(time.Duration(s.n) * time.Second)
	return fmt.Appendf(nil, `{"id":"bench-move-%d-%d","by":%q,"authority":%q,"reason":"bench: one move","effective":%q,"changes":[{"kind":"person.move","person":%q,"to":%q}]}`,
		s.k, s.n, sample.Root, domain.RootMandate, at.Format(time.RFC3339Nano), setPerson(s.k, i), setTeam(s.k, s.team[i]))
}

// timed calls op from writers goroutines at once, each as fast as it can,
// until d has passed, and returns how many calls succeeded and how long
// it took. The first error ends every writer.
func timed(ctx context.Context, writers int, d time.Duration, op func(ctx context.Context, w int) error) (int64, time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var count atomic.Int64
	errs := make([]error, writers)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Bounded by the deadline: every call takes time.
			for time.Now().Before(deadline) {
				if err := op(ctx, w); err != nil {
					errs[w] = err
					cancel()
					return
				}
				count.Add(1)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return 0, el, err
	}
	return count.Load(), el, nil
}

// shape is what one single-move decision writes: its messages' subjects
// and sizes.
type shape struct {
	subjects []string
	sizes    []int
}

func (s shape) bytes() int {
	n := 0
	for _, b := range s.sizes {
		n += b
	}
	return n
}

// shapeOf reads the messages of an appended decision.
func (r *run) shapeOf(ctx context.Context, js jetstream.JetStream, seqs []uint64) (shape, error) {
	st, err := js.Stream(ctx, r.stream)
	if err != nil {
		return shape{}, fmt.Errorf("stream %s: %w", r.stream, err)
	}
	var sh shape
	for _, seq := range seqs {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			return shape{}, fmt.Errorf("get message %d: %w", seq, err)
		}
		sh.subjects = append(sh.subjects, m.Subject)
		sh.sizes = append(sh.sizes, len(m.Data))
	}
	return sh, nil
}

// measureAppend times single-move decisions through the command handler,
// then a raw publish of the same bytes and a raw atomic batch of the same
// shape, each with one writer.
func (r *run) measureAppend(ctx context.Context, rep *Report) error {
	set := r.sets[0]
	first, err := r.handler.Submit(ctx, set.next())
	if err != nil {
		return err
	}
	sh, err := r.shapeOf(ctx, r.cfg.JS, first.Sequences)
	if err != nil {
		return err
	}
	r.progress(Progress{Step: "append: koers, 1 writer"})
	n, el, err := timed(ctx, 1, r.cfg.AppendDuration, func(ctx context.Context, _ int) error {
		_, err := r.handler.Submit(ctx, set.next())
		return err
	})
	if err != nil {
		return err
	}
	koers := float64(n) / el.Seconds()

	r.progress(Progress{Step: "append: raw publish, 1 writer"})
	raw, err := r.rawPublish(ctx, 1, sh.bytes())
	if err != nil {
		return err
	}
	rep.Figures[KeyAppend] = throughput(koers, raw, "decisions/s", "publishes/s", n, el)

	r.progress(Progress{Step: "append: raw atomic batch, 1 writer"})
	rawBatch, err := r.rawBatch(ctx, r.cfg.JS, sh, 1)
	if err != nil {
		return err
	}
	rep.Figures[KeyAppendRawBatch] = throughput(koers, rawBatch, "decisions/s", "batches/s", n, el)
	return nil
}

// measureAppendConcurrent is measureAppend's first pair with Writers
// writers, each on its own aggregates.
func (r *run) measureAppendConcurrent(ctx context.Context, rep *Report) error {
	r.progress(Progress{Step: fmt.Sprintf("append: koers, %d writers", r.cfg.Writers)})
	n, el, err := timed(ctx, r.cfg.Writers, r.cfg.AppendDuration, func(ctx context.Context, w int) error {
		_, err := r.handler.Submit(ctx, r.sets[1+w].next())
		return err
	})
	if err != nil {
		return err
	}
	koers := float64(n) / el.Seconds()
	first, err := r.handler.Submit(ctx, r.sets[1].next())
	if err != nil {
		return err
	}
	sh, err := r.shapeOf(ctx, r.cfg.JS, first.Sequences)
	if err != nil {
		return err
	}
	r.progress(Progress{Step: fmt.Sprintf("append: raw publish, %d writers", r.cfg.Writers)})
	raw, err := r.rawPublish(ctx, r.cfg.Writers, sh.bytes())
	if err != nil {
		return err
	}
	rep.Figures[KeyAppendConcurrent] = throughput(koers, raw, "decisions/s", "publishes/s", n, el)
	r.progress(Progress{Step: fmt.Sprintf("append: raw atomic batch, %d writers", r.cfg.Writers)})
	rawBatch, err := r.rawBatch(ctx, r.cfg.JS, sh, r.cfg.Writers)
	if err != nil {
		return err
	}
	rep.Figures[KeyAppendConcurrentRawBatch] = throughput(koers, rawBatch, "decisions/s", "batches/s", n, el)
	return nil
}

// writers64 is how many writers append_concurrent_64 runs.
const writers64 = 64

// measureAppendConcurrent64 is measureAppendConcurrent with 64 writers,
// each on move sets of its own, next to raw atomic batches of the same
// shape from 64 writers.
func (r *run) measureAppendConcurrent64(ctx context.Context, rep *Report) error {
	r.progress(Progress{Step: "append: koers, 64 writers (move sets)"})
	sets := make([]*moveSet, writers64)
	for w := range sets {
		s, err := r.newMoveSet(ctx, 100+w)
		if err != nil {
			return err
		}
		sets[w] = s
	}
	r.progress(Progress{Step: "append: koers, 64 writers"})
	before := r.store.GroupStats()
	n, el, err := timed(ctx, writers64, r.cfg.AppendDuration, func(ctx context.Context, w int) error {
		_, err := r.handler.Submit(ctx, sets[w].next())
		return err
	})
	if err != nil {
		return err
	}
	fill := perBatch(before, r.store.GroupStats())
	koers := float64(n) / el.Seconds()
	first, err := r.handler.Submit(ctx, sets[0].next())
	if err != nil {
		return err
	}
	sh, err := r.shapeOf(ctx, r.cfg.JS, first.Sequences)
	if err != nil {
		return err
	}
	r.progress(Progress{Step: "append: raw atomic batch, 64 writers"})
	rawBatch, err := r.rawBatch(ctx, r.cfg.JS, sh, writers64)
	if err != nil {
		return err
	}
	f := throughput(koers, rawBatch, "decisions/s", "batches/s", n, el)
	f.PerBatch = fill
	rep.Figures[KeyAppendConcurrent64] = f
	// The raw messages are done with: deleting them frees what the server
	// holds of them before the memory of the rebuild is measured.
	if err := r.cfg.JS.DeleteStream(ctx, r.rawName); err != nil {
		return fmt.Errorf("delete stream %s: %w", r.rawName, err)
	}
	return nil
}

// rawPublish publishes bodies of size bytes from writers goroutines, each
// on its own subject with the expected last subject sequence and a message
// id, as Koers' append of one message does, and returns publishes/s.
func (r *run) rawPublish(ctx context.Context, writers, size int) (float64, error) {
	body := []byte(strings.Repeat("x", size))
	last := make([]uint64, writers)
	runID := r.nextRawRun()
	n, el, err := timed(ctx, writers, r.cfg.AppendDuration, func(ctx context.Context, w int) error {
		msg := nats.NewMsg(fmt.Sprintf("%s.p%d.w%d", r.rawPre, runID, w))
		msg.Data = body
		msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(last[w], 10))
		msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("raw-%d-%d-%d", runID, w, last[w]))
		ack, err := r.cfg.JS.PublishMsg(ctx, msg)
		if err != nil {
			return fmt.Errorf("raw publish: %w", err)
		}
		last[w] = ack.Sequence
		return nil
	})
	if err != nil {
		return 0, err
	}
	return float64(n) / el.Seconds(), nil
}

// rawBatch publishes atomic batches of sh's shape from writers goroutines,
// each on subjects of its own: the same sizes, an expected last subject
// sequence on each subject, the decision record's subject new every time.
// It returns batches/s.
func (r *run) rawBatch(ctx context.Context, js jetstream.JetStream, sh shape, writers int) (float64, error) {
	runID := r.nextRawRun()
	bodies := make([][]byte, len(sh.sizes))
	record := make([]bool, len(sh.subjects))
	for i, size := range sh.sizes {
		bodies[i] = []byte(strings.Repeat("x", size))
		record[i] = strings.Contains(sh.subjects[i], "."+string(domain.KindDecision)+".")
	}
	type state struct {
		n    int
		last map[string]uint64
	}
	states := make([]state, writers)
	for w := range states {
		states[w].last = map[string]uint64{}
	}
	n, el, err := timed(ctx, writers, r.cfg.AppendDuration, func(ctx context.Context, w int) error {
		st := &states[w]
		st.n++
		msgs := make([]*nats.Msg, len(bodies))
		seen := make(map[string]bool, len(msgs))
		for i := range msgs {
			subj := fmt.Sprintf("%s.b%d.w%d.s%d", r.rawPre, runID, w, i)
			if record[i] {
				subj = fmt.Sprintf("%s.b%d.w%d.d%d", r.rawPre, runID, w, st.n)
			}
			msgs[i] = nats.NewMsg(subj)
			msgs[i].Data = bodies[i]
			if !seen[subj] {
				seen[subj] = true
				msgs[i].Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(st.last[subj], 10))
			}
		}
		msgs[0].Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("raw-b%d-%d-%d", runID, w, st.n))
		msgs[0].Header.Set(jetstream.ExpectedStreamHeader, r.rawName)
		ack, err := publishBatchRetrying(ctx, js, msgs)
		if err != nil {
			return fmt.Errorf("raw atomic batch: %w", err)
		}
		for i, m := range msgs {
			st.last[m.Subject] = ack.Sequence - uint64(len(msgs)-1-i)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return float64(n) / el.Seconds(), nil
}

// nextRawRun numbers the raw measurements, so that each has subjects of
// its own.
func (r *run) nextRawRun() int {
	r.rawRuns++
	return r.rawRuns
}

// measureAppendDefaultSync is measureAppend's Koers and raw atomic batch
// figures on Config.DefaultSyncJS, a server that syncs its store at
// nats-server's default interval: next to append and append_raw_batch, on
// a server that syncs every write, it says what durable acknowledgements
// cost.
func (r *run) measureAppendDefaultSync(ctx context.Context, rep *Report) error {
	js := r.cfg.DefaultSyncJS
	key := make([]byte, eventstore.MinSealKeyBytes)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("seal key: %w", err)
	}
	r.defaultSyncStream = true
	store, err := eventstore.Open(ctx, js, eventstore.Config{Stream: r.stream, Prefix: r.prefix, SealKey: key})
	if err != nil {
		return err
	}
	info, err := js.Stream(ctx, r.stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", r.stream, err)
	}
	rc := info.CachedInfo().Config
	rc.Name, rc.Subjects, rc.Description = r.rawName, []string{r.rawPre + ".>"}, "koers bench: raw baselines"
	if _, err := js.CreateStream(ctx, rc); err != nil {
		return fmt.Errorf("create stream %s: %w", r.rawName, err)
	}
	h, err := ledger.New(store, ledger.Options{})
	if err != nil {
		return err
	}
	set := r.sets[0]
	if _, err := h.Init(ctx, sample.Root, set.effective.Add(-time.Hour)); err != nil {
		return err
	}
	// The single writer's move set, as it stands now, on this server.
	d := domain.Decision{ID: "bench-set-default-sync", By: sample.Root, Authority: domain.RootMandate,
		Reason: "a move set for the bench", Effective: set.effective}
	for j := range setTeams {
		d.Changes = append(d.Changes, domain.Change{Kind: domain.ChangeTeamForm, ID: setTeam(set.k, j),
			Name: "Bench team " + strconv.Itoa(j), Type: "stream-aligned"})
	}
	for i := range setPeople {
		d.Changes = append(d.Changes, domain.Change{Kind: domain.ChangePersonJoin, ID: setPerson(set.k, i),
			Name: "Bench person " + strconv.Itoa(i), Team: setTeam(set.k, set.team[i])})
	}
	if _, err := h.Handle(ctx, d); err != nil {
		return err
	}
	first, err := h.Submit(ctx, set.next())
	if err != nil {
		return err
	}
	sh, err := r.shapeOf(ctx, js, first.Sequences)
	if err != nil {
		return err
	}
	r.progress(Progress{Step: "append: koers, 1 writer, default sync interval"})
	n, el, err := timed(ctx, 1, r.cfg.AppendDuration, func(ctx context.Context, _ int) error {
		_, err := h.Submit(ctx, set.next())
		return err
	})
	if err != nil {
		return err
	}
	r.progress(Progress{Step: "append: raw atomic batch, 1 writer, default sync interval"})
	rawBatch, err := r.rawBatch(ctx, js, sh, 1)
	if err != nil {
		return err
	}
	rep.Figures[KeyAppendDefaultSync] = throughput(float64(n)/el.Seconds(), rawBatch, "decisions/s", "batches/s", n, el)
	return nil
}

// errCodeTooManyInflight is the server's answer to an atomic batch while
// too many others of the stream are in flight (50 on nats-server 2.12):
// 64 raw writers meet it, and a raw writer would simply try again.
const errCodeTooManyInflight = 10210

// maxInflightRetries bounds the retries of one raw batch.
const maxInflightRetries = 1000

// publishBatchRetrying publishes an atomic batch, trying again after a
// short pause while the server has too many batches in flight.
func publishBatchRetrying(ctx context.Context, js jetstream.JetStream, msgs []*nats.Msg) (*jetstreamext.BatchAck, error) {
	for attempt := 0; ; attempt++ {
		ack, err := jetstreamext.PublishMsgBatch(ctx, js, msgs)
		var apiErr *jetstream.APIError
		if err == nil || !errors.As(err, &apiErr) || apiErr.ErrorCode != errCodeTooManyInflight || attempt >= maxInflightRetries {
			return ack, err
		}
		for _, m := range msgs {
			m.Reply = ""
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Microsecond):
		}
	}
}
