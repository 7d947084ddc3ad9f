package consumer

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Limits of a [Backoff].
const (
	// MaxAttempts bounds Backoff.Attempts.
	MaxAttempts = 100_000
	// MaxWaitCap bounds Backoff.Max: a longer pause is an outage to report,
	// not to sit out.
	MaxWaitCap = time.Hour
)

// Backoff is the one retry policy of the packages that read the log:
// capped exponential with jitter, for a bounded number of attempts. Zero
// fields take the default in their doc.
type Backoff struct {
	// Initial is the wait before the first retry, doubled for each retry
	// after it. Default 100ms.
	Initial time.Duration
	// Max caps every wait. Default 30s, at most [MaxWaitCap].
	Max time.Duration
	// Attempts is how many passes in a row may fail without the checkpoint
	// moving before the consumer gives up and returns the last error (1: no
	// retry). Progress starts the count again. Default 10, at most
	// [MaxAttempts].
	Attempts int
}

// WithDefaults returns b with every zero field set to its default.
func (b Backoff) WithDefaults() Backoff {
	if b.Initial == 0 {
		b.Initial = 100 * time.Millisecond
	}
	if b.Max == 0 {
		b.Max = 30 * time.Second
	}
	if b.Attempts == 0 {
		b.Attempts = 10
	}
	return b
}

func (b Backoff) validate() error {
	switch {
	case b.Initial <= 0 || b.Initial > b.Max:
		return fmt.Errorf("backoff: initial wait %s: want more than 0 and at most the longest wait %s", b.Initial, b.Max)
	case b.Max > MaxWaitCap:
		return fmt.Errorf("backoff: longest wait %s: want at most %s", b.Max, MaxWaitCap)
	case b.Attempts < 1 || b.Attempts > MaxAttempts:
		return fmt.Errorf("backoff: attempts %d: want 1 to %d", b.Attempts, MaxAttempts)
	}
	return nil
}

// Wait is the pause before retry n (0: the first retry): d = Initial
// doubled n times, capped at Max, then a random point between d/2 and d
// ("equal jitter"). So a wait is never longer than Max nor shorter than
// half its share, and readers that failed together (one NATS server gone
// for all of them) do not all come back at the same instant.
func (b Backoff) Wait(n int) time.Duration {
	b = b.WithDefaults()
	d := b.Initial
	for i := 0; i < n && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	half := d / 2
	return half + rand.N(d-half+1)
}
