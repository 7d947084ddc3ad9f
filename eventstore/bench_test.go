package eventstore_test

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"koers/domain"
	"koers/eventstore"
)

// The append benchmarks come in pairs: Koers' append and the raw JetStream
// publish it is built on, with the same payload size, in the same run, so
// that the ratio means something on a shared, noisy machine.

func BenchmarkAppendOneEvent(b *testing.B) {
	st, _ := newStore(b)
	p := person("p-bench")
	var version uint64
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		res, err := st.Append(ctx(b), meta("b-"+strconv.Itoa(i)), []domain.Event{event(p, "person.renamed", map[string]int{"n": i})},
			map[domain.Ref]uint64{p: version})
		if err != nil {
			b.Fatal(err)
		}
		version = res.Sequences[0]
	}
}

func BenchmarkRawPublishOneEvent(b *testing.B) {
	st, js := newStore(b)
	// The same size as an envelope Koers would write.
	body := rawEnvelopeSize(b, st)
	var last uint64
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		msg := nats.NewMsg("koers.person.p-raw")
		msg.Data = body
		msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(last, 10))
		msg.Header.Set(jetstream.MsgIDHeader, "raw-"+strconv.Itoa(i))
		ack, err := js.PublishMsg(ctx(b), msg)
		if err != nil {
			b.Fatal(err)
		}
		last = ack.Sequence
	}
}

func BenchmarkAppendDecisionOfThree(b *testing.B) {
	st, _ := newStore(b)
	p, tm := person("p-bench"), team("t-bench")
	var vp, vt uint64
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		id := "b-" + strconv.Itoa(i)
		rec := domain.Ref{Kind: domain.KindDecision, ID: id}
		res, err := st.Append(ctx(b), meta(id), []domain.Event{
			event(p, "person.moved", map[string]int{"n": i}), event(tm, "team.member-added", map[string]int{"n": i}), event(rec, "decision.recorded", nil),
		}, map[domain.Ref]uint64{p: vp, tm: vt, rec: 0})
		if err != nil {
			b.Fatal(err)
		}
		vp, vt = res.Sequences[0], res.Sequences[1]
	}
}

func BenchmarkLoad100Events(b *testing.B) {
	st, _ := newStore(b)
	p := person("p-bench")
	var v uint64
	for i := range 100 {
		v = mustAppend(b, st, meta("l-"+strconv.Itoa(i)), map[domain.Ref]uint64{p: v}, event(p, "person.renamed", map[string]int{"n": i})).Sequences[0]
	}
	b.ReportAllocs()
	for b.Loop() {
		h, err := st.Load(ctx(b), p)
		if err != nil || len(h.Events) != 100 {
			b.Fatal(err, len(h.Events))
		}
	}
}

// BenchmarkVerifyAndRawRead: verify as an auditor runs it (a fresh store
// without any key, so every decision's signature is checked once), next
// to Koers' checked read (its store remembers the roots it verified) and
// the raw ordered read both are built on, in the same run. "single" is a
// log of one-event decisions (a signature per event), "decisions" one of
// decisions of 100 events (a signature per 100 events).
func BenchmarkVerifyAndRawRead(b *testing.B) {
	const n = 2000
	for _, per := range []int{1, 100} {
		name := "single"
		if per > 1 {
			name = "decisions"
		}
		b.Run(name, func(b *testing.B) {
			st, js := newStore(b)
			mustAppend(b, st, meta(domain.GenesisDecision), map[domain.Ref]uint64{domain.LedgerKeysRef: 0},
				event(domain.LedgerKeysRef, domain.EventLedgerKeyRecorded, domain.LedgerKey{Key: st.PublicKey()}))
			versions := map[domain.Ref]uint64{}
			for i := 0; i < n/per; i++ {
				evs := make([]domain.Event, per)
				exp := map[domain.Ref]uint64{}
				for j := range evs {
					p := person("p-" + strconv.Itoa(j))
					evs[j] = event(p, "person.renamed", map[string]int{"n": i})
					exp[p] = versions[p]
				}
				res := mustAppend(b, st, meta("v-"+strconv.Itoa(i)), exp, evs...)
				for j := range evs {
					versions[person("p-"+strconv.Itoa(j))] = res.Sequences[j]
				}
			}
			last := uint64(n + 1)
			b.Run("verify", func(b *testing.B) {
				for b.Loop() {
					ro := openStore(b, js, func(c *eventstore.Config) { c.SealKey = nil })
					if r := mustVerify(b, ro, eventstore.VerifyOptions{}); !r.OK() {
						b.Fatal(r.Problems)
					}
				}
				b.ReportMetric(float64(int(last)*b.N)/b.Elapsed().Seconds(), "events/s")
			})
			b.Run("read", func(b *testing.B) {
				for b.Loop() {
					count := 0
					for _, err := range st.Read(ctx(b), 1, domain.ReadOptions{Until: last}) {
						if err != nil {
							b.Fatal(err)
						}
						count++
					}
					if count != int(last) {
						b.Fatal(count)
					}
				}
				b.ReportMetric(float64(int(last)*b.N)/b.Elapsed().Seconds(), "events/s")
			})
			b.Run("raw", func(b *testing.B) {
				for b.Loop() {
					if got := rawRead(b, js, last); got != int(last) {
						b.Fatal(got)
					}
				}
				b.ReportMetric(float64(int(last)*b.N)/b.Elapsed().Seconds(), "events/s")
			})
		})
	}
}

// rawRead reads the stream up to last through an ordered consumer and
// nothing else, as the bench's raw baseline does.
func rawRead(b *testing.B, js jetstream.JetStream, last uint64) int {
	b.Helper()
	stream, err := js.Stream(ctx(b), "KOERS")
	if err != nil {
		b.Fatal(err)
	}
	cons, err := stream.OrderedConsumer(ctx(b), jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		b.Fatal(err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1024))
	if err != nil {
		b.Fatal(err)
	}
	defer it.Stop()
	n := 0
	for {
		msg, err := it.Next()
		if err != nil {
			b.Fatal(err)
		}
		md, err := msg.Metadata()
		if err != nil {
			b.Fatal(err)
		}
		n++
		if md.Sequence.Stream >= last {
			return n
		}
	}
}

func rawEnvelopeSize(b *testing.B, st *eventstore.Store) []byte {
	b.Helper()
	p := person("p-size")
	mustAppend(b, st, meta("size"), map[domain.Ref]uint64{p: 0}, event(p, "person.renamed", map[string]int{"n": 1}))
	body, err := eventstore.RawMessage(ctx(b), st, 1)
	if err != nil {
		b.Fatal(err)
	}
	return []byte(fmt.Sprintf("%-*s", len(body), "x"))
}

func BenchmarkRawAtomicBatchOfThree(b *testing.B) {
	st, js := newStore(b)
	body := rawEnvelopeSize(b, st)
	var lp, lt uint64
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		msgs := make([]*nats.Msg, 3)
		for j, subj := range []string{"koers.person.p-raw", "koers.team.t-raw", "koers.decision.raw-" + strconv.Itoa(i)} {
			msgs[j] = nats.NewMsg(subj)
			msgs[j].Data = body
		}
		msgs[0].Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(lp, 10))
		msgs[1].Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(lt, 10))
		msgs[2].Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
		ack, err := jetstreamext.PublishMsgBatch(ctx(b), js, msgs)
		if err != nil {
			b.Fatal(err)
		}
		lp, lt = ack.Sequence-2, ack.Sequence-1
	}
}

// BenchmarkAppendConcurrentDecisions: 8 writers on different aggregates,
// each decision an atomic batch of two events; group commit lets them
// share batches.
func BenchmarkAppendConcurrentDecisions(b *testing.B) {
	st, _ := newStore(b)
	var n atomic.Int64
	b.SetParallelism(4) // 8 goroutines on 2 cores
	b.RunParallel(func(pb *testing.PB) {
		w := n.Add(1)
		p := person(fmt.Sprintf("p-%d", w))
		var v uint64
		for i := 0; pb.Next(); i++ {
			id := fmt.Sprintf("c%d-%d", w, i)
			rec := domain.Ref{Kind: domain.KindDecision, ID: id}
			res, err := st.Append(context.Background(), meta(id), []domain.Event{event(p, "person.renamed", nil), event(rec, "decision.recorded", nil)},
				map[domain.Ref]uint64{p: v, rec: 0})
			if err != nil {
				b.Fatal(err)
			}
			v = res.Sequences[0]
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
}
