package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"koers/eventstore"
	"koers/internal/bench"
)

func benchCmd(s *settings) *cobra.Command {
	var (
		cfg         bench.Config
		asJSON      bool
		compareSync bool
		cpuProfile  string
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure appends, rebuild, verify, queries and projection lag next to raw NATS and PostgreSQL",
		Example: `  koers bench
  koers bench --json > bench.json`,
		Long: `Measure Koers against the raw operations it is built on, in one process and on
the same data: appends (one writer and many) next to raw JetStream publishes and
atomic batches, a rebuild of every read model next to a raw read and COPY of the
stream, a verify next to a raw read, the organisation at random (as of, known at)
over the whole history, and the lag from an append to its visibility in the read
models at a steady rate; the latency of decisions from 8 and 64 clients when half
of them change a few hot aggregates (contention, with and without the handler's
per-aggregate queueing); and, with the embedded server, which syncs every write
before acknowledging it, the append figures again on a second server with
nats-server's default sync interval (append_default_sync: the cost of durable
acknowledgements).

The bench works in a stream and a PostgreSQL schema of its own (KOERS_BENCH_*,
koers_bench_*) and removes them when it ends: it never touches the ledger. With
no --nats-url it runs an embedded NATS server in a temporary folder. Progress
goes to stderr, the figures to stdout.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			js, url, done, err := benchNATS(s, 0)
			if err != nil {
				return err
			}
			defer done()
			sync := "as the server at --nats-url is configured (sync_interval)"
			if s.natsURL == "" {
				sync = "always (the embedded server's default)"
				if compareSync {
					// A second embedded server with nats-server's default
					// sync interval, for append_default_sync.
					other, _, otherDone, err := benchNATS(s, 2*time.Minute)
					if err != nil {
						return err
					}
					defer otherDone()
					cfg.DefaultSyncJS = other
				}
			}
			// Only the database is resolved: the ledger's stream and seal key
			// are never opened.
			a := &app{settings: *s}
			defer a.Close()
			cfg.DatabaseURL, err = a.databaseURL(ctx)
			if err != nil {
				return err
			}
			cfg.JS = js
			cfg.RebuildProcess = benchRebuildProcess(url)
			cfg.Progress = benchProgress(cmd.ErrOrStderr())
			if cpuProfile != "" {
				stop, err := startCPUProfile(cpuProfile)
				if err != nil {
					return err
				}
				defer stop()
			}
			rep, err := bench.Run(ctx, cfg)
			cfg.Progress(bench.Progress{}) // the last bar ends
			if err != nil {
				return err
			}
			rep.Sync = sync
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			return printBench(cmd.OutOrStdout(), rep)
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Events, "events", 1_000_000, "size of the generated history rebuilt, verified and queried, in events")
	f.BoolVar(&asJSON, "json", false, `print one JSON object: {"<key>": {"koers": …, "raw": …, "ratio": …, "unit": …}, …}`)
	f.IntVar(&cfg.Writers, "writers", 8, "writers in append_concurrent and lag")
	f.DurationVar(&cfg.AppendDuration, "append-duration", 5*time.Second, "how long each append measurement runs")
	f.IntVar(&cfg.LagRate, "lag-rate", 1000, "decisions per second lag aims for")
	f.DurationVar(&cfg.LagDuration, "lag-duration", 5*time.Second, "how long lag appends")
	f.IntVar(&cfg.Queries, "queries", 300, "as_of queries timed")
	f.IntSliceVar(&cfg.Clients, "clients", []int{8, 64}, "clients of the contention figures (contention for 8, contention_<n> for others)")
	f.DurationVar(&cfg.ContentionDuration, "contention-duration", 5*time.Second, "how long each contention measurement runs")
	f.StringSliceVar(&cfg.Only, "only", nil, "measure only these keys (and what they need), e.g. --only append,contention")
	f.BoolVar(&compareSync, "compare-sync", true, "with the embedded server: measure append_default_sync on a second server with nats-server's default sync interval")
	f.IntVar(&cfg.ApplyBulk, "bulk-decisions", 100_000, "decisions apply_bulk applies")
	f.StringVar(&cpuProfile, "cpu-profile", "", "write a CPU profile of the measurements (setup included) to this file, for go tool pprof")
	f.DurationVar(&cfg.Projector.FlushInterval, "flush-interval", 0, "the projector's flush interval in rebuild and lag; 0: its default (100ms), as koers serve runs it")
	return cmd
}

// startCPUProfile profiles the process's CPU into path until stop.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// benchNATS connects to --nats-url, or starts an embedded server in a
// temporary folder that done removes, syncing its store every syncInterval
// (0: on every write, the embedded server's default). url is where another
// process reaches the server (rebuild_rss_mib's child): the embedded server
// listens on a random loopback port for it, while the bench itself stays
// connected in-process, as koers serve is.
func benchNATS(s *settings, syncInterval time.Duration) (js jetstream.JetStream, url string, done func(), err error) {
	var (
		nc   *nats.Conn
		stop = func() {}
	)
	if s.natsURL != "" && syncInterval == 0 {
		url = s.natsURL
		nc, err = nats.Connect(s.natsURL, nats.Name("koers-bench"), nats.Timeout(5*time.Second))
		if err != nil {
			return nil, "", nil, fmt.Errorf("connect to NATS: %w", err)
		}
	} else {
		dir, err := os.MkdirTemp("", "koers-bench-")
		if err != nil {
			return nil, "", nil, fmt.Errorf("bench: temporary folder: %w", err)
		}
		srv, err := eventstore.StartEmbedded(eventstore.EmbeddedOptions{Dir: dir, Port: -1, SyncInterval: syncInterval})
		if err != nil {
			os.RemoveAll(dir)
			return nil, "", nil, err
		}
		stop = func() { srv.Shutdown(); os.RemoveAll(dir) }
		url = srv.ClientURL()
		if nc, err = nats.Connect("", nats.Name("koers-bench"), nats.InProcessServer(srv.Server())); err != nil {
			stop()
			return nil, "", nil, fmt.Errorf("connect to NATS: %w", err)
		}
	}
	js, err = jetstream.New(nc)
	if err != nil {
		nc.Close()
		stop()
		return nil, "", nil, fmt.Errorf("jetstream: %w", err)
	}
	return js, url, func() { nc.Close(); stop() }, nil
}

// benchProgress shows a bar per step with a known total, and a line for
// every other step, on w. A zero Progress ends the current bar.
func benchProgress(w io.Writer) func(bench.Progress) {
	var (
		step string
		bar  *progressbar.ProgressBar
	)
	return func(p bench.Progress) {
		if p.Step != step {
			if bar != nil {
				_ = bar.Finish()
				bar = nil
			}
			step = p.Step
			if step == "" {
				return
			}
			fmt.Fprintf(w, "bench: %s\n", step)
			if p.Total > 0 {
				bar = newBar(w, p.Total, step, "")
			}
		}
		if bar != nil {
			_ = bar.Set64(p.Done)
		}
	}
}

// printBench writes the report as a table: each figure, its raw baseline,
// the ratio and the target.
func printBench(w io.Writer, rep bench.Report) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "what\tkoers\traw\tkoers/raw\ttarget\t")
	for _, k := range bench.Keys {
		f, ok := rep.Figures[k]
		if !ok {
			continue
		}
		koers, raw := f.Describe()
		ratio := "—"
		if f.Ratio > 0 {
			ratio = fmt.Sprintf("%.2f", f.Ratio)
		}
		target := ""
		if t, ok := bench.Targets[k]; ok {
			verdict := "met"
			if !t.Met(f) {
				verdict = "MISSED"
			}
			target = t.What + ": " + verdict
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", k, koers, raw, ratio, target)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if rep.Events > 0 {
		fmt.Fprintf(w, "history: %d events; peak RSS of the process %.0f MiB; during the rebuild %.0f MiB (target for %d events: < %d MiB)\n",
			rep.Events, float64(rep.PeakRSSBytes)/(1<<20), float64(rep.RebuildPeakRSSBytes)/(1<<20), bench.RebuildRSSEvents, bench.RebuildRSSTarget>>20)
	}
	fmt.Fprintf(w, "store synced: %s\n", rep.Sync)
	m := rep.Machine
	_, err := fmt.Fprintf(w, "machine: %s/%s, %d CPUs, %s\n", m.OS, m.Arch, m.CPUs, m.GoVersion)
	return err
}
