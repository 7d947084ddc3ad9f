package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"koers/eventstore"
	"koers/keyring"
	"koers/ledger"
	"koers/projections"
)

// The keys of a [Report]'s figures, in the order they are measured.
const (
	KeyAppend           = "append"
	KeyAppendRawBatch   = "append_raw_batch"
	KeyAppendConcurrent = "append_concurrent"
	// KeyAppendConcurrentRawBatch is append_concurrent next to raw atomic
	// batches of the same shape from as many writers.
	KeyAppendConcurrentRawBatch = "append_concurrent_raw_batch"
	// KeyApplyBulk is `koers apply -f` of generated decisions (the
	// handler's bulk path) next to raw atomic batches of the same messages.
	KeyApplyBulk = "apply_bulk"
	// KeyAppendConcurrent64 is append_concurrent with 64 writers, next to
	// raw atomic batches of the same shape from 64 writers.
	KeyAppendConcurrent64 = "append_concurrent_64"
	KeyRebuild            = "rebuild"
	// KeyRebuildRSS is the peak resident set size of a rebuild of the
	// whole history in a process of its own (`koers rebuild`), in MiB.
	KeyRebuildRSS = "rebuild_rss_mib"
	KeyVerify     = "verify"
	KeyAsOf       = "as_of"
	KeyLag        = "lag"
	// KeyAppendDefaultSync is append (Koers and a raw atomic batch, one
	// writer) on a second server with nats-server's default sync
	// interval (2 minutes) instead of syncing every write: what durable
	// acknowledgements cost. Measured only with [Config].DefaultSyncJS.
	KeyAppendDefaultSync = "append_default_sync"
	// KeyContention is the latency of decisions from 8 clients, half of
	// them on a few hot aggregates; KeyContention64 from 64 clients. The
	// _optimistic keys are the same without the handler's per-aggregate
	// queueing (ledger.Options.NoQueue), in the same run.
	KeyContention             = "contention"
	KeyContention64           = "contention_64"
	KeyContentionOptimistic   = "contention_optimistic"
	KeyContention64Optimistic = "contention_64_optimistic"
	// KeyPersonal is person.join decisions/s through a handler that seals
	// names (a new data key per person) next to the same through one that
	// does not; KeyPersonalOpen is sealed names opened per second with
	// warm keys (the projector's and feeds' share). Rebuild and lag open
	// names with the run's key bucket.
	KeyPersonal     = "personal"
	KeyPersonalOpen = "personal_open"
)

// Keys lists every figure a complete [Report] holds, in measuring order.
var Keys = []string{KeyAppend, KeyAppendRawBatch, KeyAppendConcurrent, KeyAppendConcurrentRawBatch, KeyAppendConcurrent64,
	KeyAppendDefaultSync, KeyContention, KeyContentionOptimistic, KeyContention64, KeyContention64Optimistic,
	KeyApplyBulk, KeyPersonal, KeyPersonalOpen, KeyRebuild, KeyRebuildRSS, KeyVerify, KeyAsOf, KeyLag}

// Config configures [Run]. Zero fields take the default in their doc.
type Config struct {
	// JS is the JetStream the bench creates its streams in. Required.
	JS jetstream.JetStream
	// DatabaseURL names the PostgreSQL database the bench creates its
	// schemas in. Required.
	DatabaseURL string
	// Events is the size of the history rebuilt, verified and queried, in
	// stream messages. Default 1,000,000.
	Events int
	// Writers append at once in append_concurrent and lag. Default 8.
	Writers int
	// AppendDuration is how long each append measurement (Koers and raw)
	// runs. Default 5s.
	AppendDuration time.Duration
	// LagRate is the decisions per second lag aims for. Default 1000.
	LagRate int
	// LagDuration is how long decisions are appended in lag. Default 5s.
	LagDuration time.Duration
	// ApplyBulk is how many generated decisions apply_bulk applies.
	// Default 100,000.
	ApplyBulk int
	// RebuildProcess, if set, rebuilds the bench's read models in a
	// process of its own and returns that process's peak resident set
	// size (rebuild_rss_mib). Without it rebuild_rss_mib is the peak of
	// the in-process rebuild, in the bench's process.
	RebuildProcess func(ctx context.Context, job RebuildJob) (peakRSSBytes uint64, err error)
	// Queries is how many as_of queries are timed. Default 300.
	Queries int
	// Projector configures the projector of rebuild and lag. Default: the
	// projector's defaults, as `koers serve` and `koers rebuild` run it.
	Projector projections.ProjectorOptions
	// DefaultSyncJS, if set, is a second JetStream server whose store is
	// synced at nats-server's default interval rather than on every write,
	// for append_default_sync. JS should then be a server that syncs every
	// write, as the embedded server does by default.
	DefaultSyncJS jetstream.JetStream
	// Clients are the numbers of clients of the contention figures, each a
	// key (contention for 8, contention_<n> for others). Default 8 and 64.
	Clients []int
	// ContentionDuration is how long each contention measurement runs.
	// Default 5s.
	ContentionDuration time.Duration
	// Only, if set, limits the run to these keys (and what they need:
	// as_of and rebuild_rss_mib need rebuild; they, rebuild and verify
	// the history).
	Only []string
	// Seed makes the generated history and the random queries repeatable.
	// Default 1.
	Seed int64
	// Progress, if set, is told what is being measured and how far it got.
	Progress func(Progress)
}

// Progress is one step of a run.
type Progress struct {
	Step  string // what is being measured, e.g. "rebuild"
	Done  int64
	Total int64 // 0: unknown
	Unit  string
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Events == 0 {
		c.Events = 1_000_000
	}
	if c.Writers == 0 {
		c.Writers = 8
	}
	if c.AppendDuration == 0 {
		c.AppendDuration = 5 * time.Second
	}
	if c.LagRate == 0 {
		c.LagRate = 1000
	}
	if c.LagDuration == 0 {
		c.LagDuration = 5 * time.Second
	}
	if c.Queries == 0 {
		c.Queries = 300
	}
	if c.ApplyBulk == 0 {
		c.ApplyBulk = 100_000
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if len(c.Clients) == 0 {
		c.Clients = []int{8, 64}
	}
	if c.ContentionDuration == 0 {
		c.ContentionDuration = 5 * time.Second
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.JS == nil {
		errs = append(errs, errors.New("a JetStream is required"))
	}
	if c.DatabaseURL == "" {
		errs = append(errs, errors.New("a database URL is required"))
	}
	if c.Events < 1000 || c.Events > 100_000_000 {
		errs = append(errs, fmt.Errorf("events %d: want 1000 to 100000000", c.Events))
	}
	if c.Writers < 1 || c.Writers > 64 {
		errs = append(errs, fmt.Errorf("writers %d: want 1 to 64", c.Writers))
	}
	if c.AppendDuration < 10*time.Millisecond || c.AppendDuration > time.Hour {
		errs = append(errs, fmt.Errorf("append duration %s: want 10ms to 1h", c.AppendDuration))
	}
	if c.LagRate < 1 || c.LagRate > 100_000 {
		errs = append(errs, fmt.Errorf("lag rate %d: want 1 to 100000 decisions/s", c.LagRate))
	}
	if c.LagDuration < 10*time.Millisecond || c.LagDuration > time.Hour {
		errs = append(errs, fmt.Errorf("lag duration %s: want 10ms to 1h", c.LagDuration))
	}
	if c.ApplyBulk < 100 || c.ApplyBulk > 10_000_000 {
		errs = append(errs, fmt.Errorf("apply bulk %d: want 100 to 10000000 decisions", c.ApplyBulk))
	}
	if c.Queries < 1 || c.Queries > 1_000_000 {
		errs = append(errs, fmt.Errorf("queries %d: want 1 to 1000000", c.Queries))
	}
	for _, n := range c.Clients {
		if n < 1 || n > 1024 {
			errs = append(errs, fmt.Errorf("clients %d: want 1 to 1024", n))
		}
	}
	if c.ContentionDuration < 10*time.Millisecond || c.ContentionDuration > time.Hour {
		errs = append(errs, fmt.Errorf("contention duration %s: want 10ms to 1h", c.ContentionDuration))
	}
	for _, k := range c.Only {
		if !slices.Contains(Keys, k) && !strings.HasPrefix(k, KeyContention) {
			errs = append(errs, fmt.Errorf("key %q: want one of %s", k, strings.Join(Keys, ", ")))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bench config: %w", err)
	}
	return nil
}

// RebuildJob names what [Config.RebuildProcess] rebuilds: the bench's
// stream (with its subject prefix and seal key) into its read models.
type RebuildJob struct {
	Stream, Prefix string
	SealKey        []byte
	DatabaseURL    string
	Schema         string
	// ReportingSchema holds the reporting views of Schema.
	ReportingSchema string
	// NamesKey and KeyBucket open the history's sealed names, as the
	// in-process rebuild does.
	NamesKey  []byte
	KeyBucket string
}

// Figure is one measurement and its raw baseline.
type Figure struct {
	// Koers is the figure of Koers in Unit: a throughput, or for a
	// latency its headline percentile (p99 for lag, p95 for as_of).
	Koers float64 `json:"koers"`
	// Raw is the raw baseline measured in the same run, in RawUnit; 0 when
	// there is none.
	Raw float64 `json:"raw"`
	// Ratio is Koers/Raw for throughputs (1: as fast as the raw
	// operation); 0 when there is no baseline.
	Ratio float64 `json:"ratio"`
	Unit  string  `json:"unit"`
	// RawUnit is what Raw counts when it differs from Unit.
	RawUnit string `json:"raw_unit,omitempty"`
	// Latency percentiles in milliseconds, for latency figures.
	P50 float64 `json:"p50_ms,omitempty"`
	P95 float64 `json:"p95_ms,omitempty"`
	P99 float64 `json:"p99_ms,omitempty"`
	// Max is the slowest, in milliseconds, for contention.
	Max float64 `json:"max_ms,omitempty"`
	// Rate is the rate achieved where one was aimed at (lag), or of
	// decisions recorded (contention), per second.
	Rate float64 `json:"rate,omitempty"`
	// Clients, Refused and GaveUp, for contention: how many clients sent
	// decisions, how many were refused by the ledger's state (a hot
	// person moved to the team it is in), and how many gave up (after
	// MaxAttempts conflicts, or a queue wait too long).
	Clients int   `json:"clients,omitempty"`
	Refused int64 `json:"refused,omitempty"`
	GaveUp  int64 `json:"gave_up,omitempty"`
	// PerBatch is how many decisions group commit put in one atomic batch
	// on average while the figure was measured (append_concurrent_64,
	// contention): its throughput comes from that.
	PerBatch float64 `json:"decisions_per_batch,omitempty"`
	// Count is how many operations or events the figure is over.
	Count int64 `json:"count"`
	// Seconds is how long the Koers side took.
	Seconds float64 `json:"seconds"`
}

// perBatch is the decisions per atomic batch group commit sent between
// two readings of its counts.
func perBatch(before, after eventstore.GroupStats) float64 {
	if after.Batches == before.Batches {
		return 0
	}
	return float64(after.Decisions-before.Decisions) / float64(after.Batches-before.Batches)
}

func throughput(koers, raw float64, unit, rawUnit string, count int64, el time.Duration) Figure {
	f := Figure{Koers: koers, Raw: raw, Unit: unit, RawUnit: rawUnit, Count: count, Seconds: el.Seconds()}
	if raw > 0 {
		f.Ratio = koers / raw
	}
	return f
}

// Machine describes where a report was measured.
type Machine struct {
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go"`
}

// Report is the outcome of [Run].
type Report struct {
	Figures map[string]Figure
	// Events is the size of the generated history, in stream messages.
	Events uint64
	// PeakRSSBytes is the process's peak resident set size at the end
	// (getrusage), whatever ran in it: the embedded NATS server too.
	PeakRSSBytes uint64
	// RebuildPeakRSSBytes is the peak resident set size during the rebuild
	// alone, where the system lets the peak be reset (Linux); else 0.
	RebuildPeakRSSBytes uint64
	// Sync is how the server of the measurements syncs its store, as the
	// caller said ([Config] cannot tell): "always" for the embedded server.
	Sync    string
	Machine Machine
}

// MarshalJSON writes one object: a member per figure key, and events,
// peak_rss_bytes, rebuild_peak_rss_bytes and machine.
func (r Report) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(r.Figures)+4)
	for k, f := range r.Figures {
		m[k] = f
	}
	m["events"] = r.Events
	m["peak_rss_bytes"] = r.PeakRSSBytes
	m["rebuild_peak_rss_bytes"] = r.RebuildPeakRSSBytes
	m["machine"] = r.Machine
	if r.Sync != "" {
		m["sync"] = r.Sync
	}
	return json.Marshal(m)
}

// run is one bench: its stream, store, read models and names.
type run struct {
	cfg      Config
	id       string // random, in every name the run creates
	stream   string // the Koers stream
	prefix   string
	rawName  string // the stream of the raw baselines
	rawPre   string
	schema   string
	store    *eventstore.Store
	handler  *ledger.Handler
	db       *projections.DB
	gen      *generator
	sets     []*moveSet // sets[0]: append; sets[1:]: the concurrent writers
	sealKey  []byte
	rawRuns  int // raw measurements so far
	progress func(Progress)

	contention *contention
	keys       *keyring.Keyring // the run's key bucket of people's names
	namesKey   []byte           // its names key
	// The stream on DefaultSyncJS, when there is one.
	defaultSyncStream bool
}

// Run creates a stream and a schema of its own, generates the history,
// measures everything in [Keys] and removes what it created, also when it
// fails or ctx ends. A failure to remove them is an error that comes with
// the report.
func Run(ctx context.Context, cfg Config) (rep Report, err error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return Report{}, err
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Report{}, fmt.Errorf("bench: random name: %w", err)
	}
	id := hex.EncodeToString(b[:])
	r := &run{
		cfg: cfg, id: id,
		stream: "KOERS_BENCH_" + id, prefix: "bench-" + id,
		rawName: "KOERS_BENCH_RAW_" + id, rawPre: "bench-raw-" + id,
		schema:   "koers_bench_" + id,
		progress: cfg.Progress,
	}
	if r.progress == nil {
		r.progress = func(Progress) {}
	}
	defer func() {
		if cerr := r.cleanup(context.WithoutCancel(ctx)); cerr != nil {
			err = errors.Join(err, fmt.Errorf("bench: clean up: %w", cerr))
		}
	}()
	rep, err = r.all(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("bench: %w", err)
	}
	return rep, nil
}

func (r *run) all(ctx context.Context) (Report, error) {
	rep := Report{Figures: map[string]Figure{}, Machine: Machine{
		OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), GoVersion: runtime.Version(),
	}}
	if err := r.open(ctx); err != nil {
		return Report{}, err
	}
	if err := r.setup(ctx); err != nil {
		return Report{}, err
	}
	steps := []struct {
		name string
		fn   func(context.Context, *Report) error
	}{
		{KeyAppend, r.measureAppend},
		{KeyAppendConcurrent, r.measureAppendConcurrent},
		{KeyAppendConcurrent64, r.measureAppendConcurrent64},
		{KeyAppendDefaultSync, r.measureAppendDefaultSync},
		{KeyContention, r.measureContention},
		{KeyApplyBulk, r.measureApplyBulk},
		{KeyPersonal, r.measurePersonal},
		{"history", r.history},
		{KeyRebuild, r.measureRebuild},
		{KeyRebuildRSS, r.measureRebuildRSS},
		{KeyVerify, r.measureVerify},
		{KeyAsOf, r.measureAsOf},
		{KeyLag, r.measureLag},
	}
	want := r.steps()
	for _, s := range steps {
		if !want[s.name] {
			continue
		}
		if err := s.fn(ctx, &rep); err != nil {
			return Report{}, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	rep.PeakRSSBytes = peakRSS()
	return rep, nil
}

// steps says which steps run: every one, or those Config.Only names and
// those they need.
func (r *run) steps() map[string]bool {
	want := map[string]bool{}
	if len(r.cfg.Only) == 0 {
		for _, k := range Keys {
			want[k] = true
		}
	}
	for _, k := range r.cfg.Only {
		switch {
		case k == KeyAppendRawBatch:
			k = KeyAppend
		case k == KeyAppendConcurrentRawBatch:
			k = KeyAppendConcurrent
		case strings.HasPrefix(k, KeyContention):
			k = KeyContention
		case k == KeyPersonalOpen:
			k = KeyPersonal
		}
		want[k] = true
	}
	if want[KeyAsOf] || want[KeyRebuildRSS] {
		want[KeyRebuild] = true
	}
	want["history"] = want[KeyRebuild] || want[KeyVerify] || want[KeyAsOf] || want[KeyRebuildRSS]
	if r.cfg.DefaultSyncJS == nil {
		want[KeyAppendDefaultSync] = false
	}
	return want
}

// open creates the bench's Koers stream, raw stream and read models.
func (r *run) open(ctx context.Context) error {
	key := make([]byte, eventstore.MinSealKeyBytes)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("seal key: %w", err)
	}
	r.sealKey = key
	var err error
	r.store, err = eventstore.Open(ctx, r.cfg.JS, eventstore.Config{Stream: r.stream, Prefix: r.prefix, SealKey: key})
	if err != nil {
		return err
	}
	// The raw stream has the Koers stream's settings, on its own subjects:
	// raw messages in the Koers stream would be forgeries to verify and
	// to the projector.
	info, err := r.cfg.JS.Stream(ctx, r.stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", r.stream, err)
	}
	rc := info.CachedInfo().Config
	rc.Name, rc.Subjects, rc.Description = r.rawName, []string{r.rawPre + ".>"}, "koers bench: raw baselines"
	if _, err := r.cfg.JS.CreateStream(ctx, rc); err != nil {
		return fmt.Errorf("create stream %s: %w", r.rawName, err)
	}
	r.handler, err = ledger.New(r.store, ledger.Options{})
	if err != nil {
		return err
	}
	r.db, err = projections.Open(ctx, r.cfg.DatabaseURL, projections.Options{Schema: r.schema, ReportingSchema: r.schema + "_reporting"})
	if err != nil {
		return err
	}
	return r.openPersonal(ctx)
}

// cleanup removes the streams and schemas the run created.
func (r *run) cleanup(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if r.db != nil {
		r.db.Close()
	}
	var errs []error
	if err := r.deleteKeyBucket(ctx); err != nil {
		errs = append(errs, err)
	}
	for _, name := range []string{r.stream, r.rawName} {
		err := r.cfg.JS.DeleteStream(ctx, name)
		if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			errs = append(errs, fmt.Errorf("delete stream %s: %w", name, err))
		}
		if r.cfg.DefaultSyncJS == nil || !r.defaultSyncStream {
			continue
		}
		err = r.cfg.DefaultSyncJS.DeleteStream(ctx, name)
		if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			errs = append(errs, fmt.Errorf("delete stream %s on the default-sync server: %w", name, err))
		}
	}
	conn, err := pgx.Connect(ctx, r.cfg.DatabaseURL)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("connect to drop schemas %s*: %w", r.schema, err))...)
	}
	defer conn.Close(ctx)
	for _, s := range []string{r.schema + "_reporting", r.schema, r.schema + "_rebuild", r.schema + "_retired", r.schema + "_raw"} {
		if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{s}.Sanitize()+` CASCADE`); err != nil {
			errs = append(errs, fmt.Errorf("drop schema %s: %w", s, err))
		}
	}
	return errors.Join(errs...)
}
