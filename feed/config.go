package feed

import (
	"fmt"
	"log/slog"
	"regexp"
	"time"
)

// Limits on the configuration: everything the feed does is bounded.
const (
	// MaxBatchSize bounds how many events one publish round holds.
	MaxBatchSize = 5000
	// MaxRetriesPerRound bounds the Retry middleware of one round.
	MaxRetriesPerRound = 100
	// MaxBackoff bounds every wait between attempts.
	MaxBackoff = 10 * time.Minute
	// MaxAttempts bounds Attempts.
	MaxAttempts = 100_000
)

var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Config says where a feed sends the ledger's events and how hard it tries.
type Config struct {
	// Name identifies the feed: its checkpoint, its AMQP exchange and queue,
	// its Redis stream and its SQL table are named after it. 1 to 63
	// characters a-z 0-9 _ -, starting with a letter or digit. Required.
	Name string
	// Target is the URL of the broker or receiver: amqp(s)://, redis(s)://,
	// postgres(ql)://, http(s)://. Required.
	Target string
	// Ledger is the ledger's stream name; the CloudEvents source is
	// "/koers/<Ledger>". Default "KOERS".
	Ledger string
	// FromSeq is where a new feed starts (1 = the beginning of the log, the
	// default). A feed that already has a checkpoint goes on from it; giving
	// another FromSeq for it is refused rather than skipping or re-sending.
	FromSeq uint64
	// BatchSize is at most how many events one round publishes before the
	// checkpoint moves; a decision is never split, so a round holds at
	// least one whole decision even when that is more. Default 500, at most
	// MaxBatchSize.
	BatchSize int
	// PublishTimeout bounds one publish call (and its confirmation).
	// Default 30s.
	PublishTimeout time.Duration
	// Retries is how many times the Retry middleware repeats a failed publish
	// within one round before the feed reconnects. Default 5, at most
	// MaxRetriesPerRound.
	Retries int
	// RetryInitial is the first wait of the Retry middleware; it doubles up to
	// RetryMax. Defaults 100ms and 5s.
	RetryInitial, RetryMax time.Duration
	// BackoffMax caps the wait before the log is read again after an
	// interruption (the target, the feed's database or the log was down);
	// the wait doubles from RetryInitial, with jitter. Default 30s, at most
	// MaxBackoff.
	BackoffMax time.Duration
	// Attempts bounds the interruptions in a row without progress before
	// Run gives up and returns. Default 1000 (with a BackoffMax of 30s,
	// about eight hours of outage), at most MaxAttempts.
	Attempts int
	// LagInterval is how often the lag gauge is refreshed. Default 5s.
	LagInterval time.Duration
	// Metrics receives the feed's figures. Default: a set of its own that no
	// registry exports.
	Metrics *Metrics
	// Logger reports retries and reconnects. Default: discard.
	Logger *slog.Logger
	// Names opens people's sealed names before they are published (see
	// personal.go). Default nil: names are published as the log holds
	// them — only for ledgers without sealed names.
	Names Names
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Ledger == "" {
		c.Ledger = "KOERS"
	}
	if c.FromSeq == 0 {
		c.FromSeq = 1
	}
	if c.BatchSize == 0 {
		c.BatchSize = 500
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = 30 * time.Second
	}
	if c.Retries == 0 {
		c.Retries = 5
	}
	if c.RetryInitial == 0 {
		c.RetryInitial = 100 * time.Millisecond
	}
	if c.RetryMax == 0 {
		c.RetryMax = 5 * time.Second
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = 30 * time.Second
	}
	if c.Attempts == 0 {
		c.Attempts = 1000
	}
	if c.LagInterval == 0 {
		c.LagInterval = 5 * time.Second
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c Config) validate() error {
	if !validName.MatchString(c.Name) {
		return fmt.Errorf("feed name %q: want 1 to 63 of a-z 0-9 _ -, starting with a letter or digit", c.Name)
	}
	if c.Target == "" {
		return fmt.Errorf("feed %s: no target URL", c.Name)
	}
	if c.BatchSize < 1 || c.BatchSize > MaxBatchSize {
		return fmt.Errorf("feed %s: batch size %d: want 1 to %d", c.Name, c.BatchSize, MaxBatchSize)
	}
	if c.Retries < 0 || c.Retries > MaxRetriesPerRound {
		return fmt.Errorf("feed %s: retries %d: want 0 to %d", c.Name, c.Retries, MaxRetriesPerRound)
	}
	if c.Attempts < 1 || c.Attempts > MaxAttempts {
		return fmt.Errorf("feed %s: attempts %d: want 1 to %d", c.Name, c.Attempts, MaxAttempts)
	}
	if c.RetryInitial > c.BackoffMax {
		return fmt.Errorf("feed %s: retry initial %s: want at most the back-off max %s", c.Name, c.RetryInitial, c.BackoffMax)
	}
	for what, d := range map[string]time.Duration{
		"publish timeout": c.PublishTimeout, "retry initial": c.RetryInitial, "retry max": c.RetryMax,
		"back-off max": c.BackoffMax, "lag interval": c.LagInterval,
	} {
		if d <= 0 || d > MaxBackoff {
			return fmt.Errorf("feed %s: %s %s: want more than 0 and at most %s", c.Name, what, d, MaxBackoff)
		}
	}
	return nil
}
