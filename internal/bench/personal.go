package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"koers/domain"
	"koers/internal/sample"
	"koers/keyring"
	"koers/ledger"
)

// personalTeams are the teams of move set 0 that the people of the
// personal figure join.
const personalTeams = setTeams

// openPersonal opens the run's key bucket; the rebuild and lag projectors
// open names with it (Config.Projector.Names, when the caller set none).
func (r *run) openPersonal(ctx context.Context) error {
	key := make([]byte, keyring.KeyBytes)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("names key: %w", err)
	}
	k, err := keyring.Open(ctx, r.cfg.JS, keyring.Config{Ledger: r.stream, Bucket: r.keyBucket(), NamesKey: key})
	if err != nil {
		return err
	}
	r.keys, r.namesKey = k, key
	if r.cfg.Projector.Names == nil {
		r.cfg.Projector.Names = k
	}
	return nil
}

func (r *run) keyBucket() string { return r.stream + "_KEYS" }

// deleteKeyBucket removes the run's key bucket.
func (r *run) deleteKeyBucket(ctx context.Context) error {
	if r.keys == nil {
		return nil
	}
	err := r.cfg.JS.DeleteKeyValue(ctx, r.keyBucket())
	if err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
		return fmt.Errorf("delete key bucket %s: %w", r.keyBucket(), err)
	}
	return nil
}

// measurePersonal is what sealing people's names costs: person.join
// decisions (one person each, a new data key each) through a handler that
// seals names, next to the same decisions through one that does not, in
// the same run; then how fast sealed names open (the projector's and the
// feeds' share), with warm keys.
func (r *run) measurePersonal(ctx context.Context, rep *Report) error {
	sealing, err := ledger.New(r.store, ledger.Options{Names: r.keys})
	if err != nil {
		return err
	}
	n := 0
	join := func(h *ledger.Handler, tag string) func(ctx context.Context, _ int) error {
		return func(ctx context.Context, _ int) error {
			n++
			id := fmt.Sprintf("bj-%s-%d", tag, n)
			d := domain.Decision{ID: "bench-join-" + id, By: sample.Root, Authority: domain.RootMandate, Reason: "bench: one hire",
				Effective: r.sets[0].effective, EffectiveGiven: true,
				Changes: []domain.Change{{Kind: domain.ChangePersonJoin, ID: id, Name: "Bench Person " + id, Team: setTeam(0, n%personalTeams)}}}
			_, err := h.Handle(ctx, d)
			return err
		}
	}
	r.progress(Progress{Step: "personal: person.join, names in clear"})
	plain, plainEl, err := timed(ctx, 1, r.cfg.AppendDuration, join(r.handler, "p"))
	if err != nil {
		return err
	}
	r.progress(Progress{Step: "personal: person.join, names sealed"})
	sealed, sealedEl, err := timed(ctx, 1, r.cfg.AppendDuration, join(sealing, "s"))
	if err != nil {
		return err
	}
	rep.Figures[KeyPersonal] = throughput(float64(sealed)/sealedEl.Seconds(), float64(plain)/plainEl.Seconds(),
		"decisions/s", "decisions/s (names in clear)", sealed, sealedEl)

	// Open: the names just sealed, each once per round, keys cached as
	// the projector's are after its first batch.
	r.progress(Progress{Step: "personal: open sealed names"})
	names := make([][2]string, 0, min(sealed, 1000))
	for i := int64(1); i <= sealed && len(names) < cap(names); i++ {
		id := fmt.Sprintf("bj-s-%d", int64(plain)+i)
		s, err := r.keys.Seal(ctx, "bench-open", domain.PersonalName{Person: id, Name: "Bench Person " + id})
		if err != nil {
			return err
		}
		names = append(names, [2]string{id, s})
	}
	if len(names) == 0 {
		return errors.New("no sealed name to open")
	}
	opened := 0
	start := time.Now()
	deadline := start.Add(r.cfg.AppendDuration / 5)
	for time.Now().Before(deadline) { // bounded by the deadline
		p := names[opened%len(names)]
		if _, err := r.keys.Open(ctx, p[0], p[1]); err != nil {
			return err
		}
		opened++
	}
	el := time.Since(start)
	rep.Figures[KeyPersonalOpen] = throughput(float64(opened)/el.Seconds(), 0, "names/s", "", int64(opened), el)
	return nil
}
