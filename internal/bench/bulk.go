package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"koers/domain"
	"koers/eventstore"
	"koers/internal/sample"
	"koers/ledger"
)

// Size of the organisation apply_bulk's file works on: its people join
// first, then move round the teams, one person.move per decision, as a
// history import does.
const (
	bulkTeams  = 50
	bulkPeople = 2000
)

// bulkLines yields n decisions in their public JSON format, as the lines
// of a file for `koers apply -f`: the teams, the people joining, then
// moves. Each decision builds on the ones before it.
func bulkLines(k string, n int, start time.Time) func(func(ledger.Line, error) bool) {
	return func(yield func(ledger.Line, error) bool) {
		team := func(j int) string { return fmt.Sprintf("bb%s-t%02d", k, j) }
		person := func(i int) string { return fmt.Sprintf("bb%s-p%04d", k, i) }
		at := func(i int) string { return start.Add(time.Duration(i) * time.Second).Format(time.RFC3339) }
		line := func(i int, changes string) bool {
			return yield(ledger.Line{Line: i + 1, Body: fmt.Appendf(nil,
				`{"id":"bulk-%s-%d","by":%q,"authority":%q,"reason":"bench: bulk apply","effective":%q,"changes":[%s]}`,
				k, i, sample.Root, domain.RootMandate, at(i), changes)}, nil)
		}
		var teams []string
		for j := range bulkTeams {
			teams = append(teams, fmt.Sprintf(`{"kind":"team.form","id":%q,"name":"Bulk team %d","type":"stream-aligned"}`, team(j), j))
		}
		if !line(0, strings.Join(teams, ",")) {
			return
		}
		in := make([]int, bulkPeople)
		for i := 1; i < n; i++ {
			var ok bool
			if p := i - 1; p < bulkPeople {
				in[p] = p % bulkTeams
				ok = line(i, fmt.Sprintf(`{"kind":"person.join","id":%q,"name":"Bulk person %d","team":%q}`, person(p), p, team(in[p])))
			} else {
				p := (i - 1) % bulkPeople
				in[p] = (in[p] + 1 + (i/bulkPeople)%(bulkTeams-1)) % bulkTeams
				ok = line(i, fmt.Sprintf(`{"kind":"person.move","person":%q,"to":%q}`, person(p), team(in[p])))
			}
			if !ok {
				return
			}
		}
	}
}

// measureApplyBulk applies ApplyBulk generated decisions through the
// handler's bulk path, as `koers apply -f` does, into a ledger of its own
// (so that the history the other figures read stays the same), then
// publishes the very messages it wrote again, as raw atomic batches of up
// to 1,000 messages with the same expected-sequence headers, into a raw
// stream: the raw engine doing the same writes.
func (r *run) measureApplyBulk(ctx context.Context, rep *Report) error {
	stream, rawStream := "KOERS_BENCH_BULK_"+r.id, "KOERS_BENCH_BULKRAW_"+r.id
	defer func() {
		for _, s := range []string{stream, rawStream} {
			_ = r.cfg.JS.DeleteStream(context.WithoutCancel(ctx), s) // best effort; cleanup removes it too
		}
	}()
	st, err := eventstore.Open(ctx, r.cfg.JS, eventstore.Config{Stream: stream, Prefix: "bench-bulk-" + r.id, SealKey: r.sealKey})
	if err != nil {
		return err
	}
	h, err := ledger.New(st, ledger.Options{})
	if err != nil {
		return err
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := h.Init(ctx, sample.Root, start); err != nil {
		return err
	}
	first, err := st.LastSequence(ctx)
	if err != nil {
		return err
	}
	n := r.cfg.ApplyBulk
	r.progress(Progress{Step: "apply_bulk: koers", Total: int64(n), Unit: "decisions"})
	done := int64(0)
	t0 := time.Now()
	sum, err := h.ApplyAll(ctx, bulkLines(r.id, n, start.Add(time.Hour)), ledger.BulkOptions{Report: func(ledger.LineResult) {
		done++
		if done%1000 == 0 {
			r.progress(Progress{Step: "apply_bulk: koers", Done: done, Total: int64(n), Unit: "decisions"})
		}
	}})
	el := time.Since(t0)
	if err != nil {
		return err
	}
	if sum.Applied != n {
		return fmt.Errorf("apply_bulk: %+v of %d decisions", sum, n)
	}
	last, err := st.LastSequence(ctx)
	if err != nil {
		return err
	}
	koers := float64(n) / el.Seconds()

	r.progress(Progress{Step: "apply_bulk: raw atomic batches"})
	info, err := r.cfg.JS.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", stream, err)
	}
	rc := info.CachedInfo().Config
	rc.Name, rc.Subjects, rc.Description = rawStream, []string{"bench-bulkraw-" + r.id + ".>"}, "koers bench: raw bulk"
	if _, err := r.cfg.JS.CreateStream(ctx, rc); err != nil {
		return fmt.Errorf("create stream %s: %w", rawStream, err)
	}
	rawEl, err := r.rawBulk(ctx, stream, "bench-bulk-"+r.id, "bench-bulkraw-"+r.id, first+1, last)
	if err != nil {
		return err
	}
	// The raw side carries the same messages; its rate is given in the
	// same decisions.
	raw := float64(n) / rawEl.Seconds()
	rep.Figures[KeyApplyBulk] = throughput(koers, raw, "decisions/s", "decisions/s (raw batches of the same messages)", int64(n), el)
	return nil
}

// rawBulk reads the messages from..to of stream and publishes them again
// on the raw prefix, in atomic batches of up to 1,000 messages with an
// expected last subject sequence on the first message of each subject in a
// batch and a message id on each decision record, as AppendMany does. The
// messages are read first; only the publishing is timed.
func (r *run) rawBulk(ctx context.Context, stream, prefix, rawPrefix string, from, to uint64) (time.Duration, error) {
	var msgs []*nats.Msg
	for seq := from; seq <= to; {
		batch, err := jetstreamext.GetBatch(ctx, r.cfg.JS, stream, 1000, jetstreamext.GetBatchSeq(seq))
		if err != nil {
			return 0, fmt.Errorf("read %s: %w", stream, err)
		}
		n := 0
		for m, err := range batch {
			if errors.Is(err, jetstreamext.ErrNoMessages) {
				break
			}
			if err != nil {
				return 0, fmt.Errorf("read %s: %w", stream, err)
			}
			n++
			seq = m.Sequence + 1
			if m.Sequence > to {
				break
			}
			msg := nats.NewMsg(rawPrefix + strings.TrimPrefix(m.Subject, prefix))
			msg.Data = m.Data
			msgs = append(msgs, msg)
		}
		if n == 0 {
			break
		}
	}
	last := map[string]uint64{}
	decision := "." + string(domain.KindDecision) + "."
	t0 := time.Now()
	for len(msgs) > 0 {
		n := min(eventstore.MaxBatchServer, len(msgs))
		batch := msgs[:n]
		msgs = msgs[n:]
		seen := make(map[string]bool, n)
		for _, m := range batch {
			if !seen[m.Subject] {
				seen[m.Subject] = true
				m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(last[m.Subject], 10))
			}
			if strings.Contains(m.Subject, decision) {
				m.Header.Set(jetstream.MsgIDHeader, m.Subject)
			}
		}
		batch[0].Header.Set(jetstream.ExpectedStreamHeader, "KOERS_BENCH_BULKRAW_"+r.id)
		ack, err := jetstreamext.PublishMsgBatch(ctx, r.cfg.JS, batch)
		if err != nil {
			return 0, fmt.Errorf("raw bulk batch: %w", err)
		}
		for i, m := range batch {
			last[m.Subject] = ack.Sequence - uint64(len(batch)-1-i)
		}
	}
	return time.Since(t0), nil
}
