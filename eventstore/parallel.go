package eventstore

import (
	"context"
	"errors"
	"runtime"
	"sync"

	"koers/domain"
)

// Checking a message (decoding its envelope, hashing it, checking its seal)
// is the costly part of reading the log, and it does not depend on other
// messages; the order does. So readChecked checks messages on every core
// and hands them to fn one at a time, in stream order.

// checkAhead bounds the messages being checked ahead of fn.
const checkAhead = 512

// checkedMsg is a stored message with the outcome of its check.
type checkedMsg struct {
	rawMsg
	env    *envelope
	reason string // "" for a genuine event
	done   chan struct{}
}

// readChecked is readRaw with every message checked, on all cores.
func (s *Store) readChecked(ctx context.Context, from uint64, opts domain.ReadOptions, fn func(*checkedMsg) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := max(1, runtime.GOMAXPROCS(0))
	jobs := make(chan *checkedMsg, checkAhead)
	ordered := make(chan *checkedMsg, checkAhead)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range jobs {
				m.env, m.reason = s.check(m.subject, m.body, m.seq)
				close(m.done)
			}
		}()
	}
	readErr := make(chan error, 1)
	go func() {
		defer close(ordered)
		defer close(jobs)
		readErr <- s.readRaw(ctx, from, opts, func(m rawMsg) error {
			c := &checkedMsg{rawMsg: m, done: make(chan struct{})}
			select {
			case ordered <- c:
			case <-ctx.Done():
				return ctx.Err()
			}
			jobs <- c // never blocks for long: workers drain it, and ordered bounds how far ahead
			return nil
		})
	}()
	var fnErr error
	for c := range ordered {
		if fnErr != nil {
			continue // drain so that the reader can end
		}
		<-c.done
		if err := fn(c); err != nil {
			fnErr = err
			cancel()
		}
	}
	wg.Wait()
	err := <-readErr
	if fnErr != nil {
		return fnErr
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil && opts.Until == 0 {
		return nil
	}
	return err
}
