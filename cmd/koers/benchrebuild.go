package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"koers/eventstore"
	"koers/internal/bench"
	"koers/keyring"
	"koers/projections"
)

// benchRebuildEnv carries a bench.RebuildJob (JSON) and the NATS URL to
// the child process of rebuild_rss_mib.
const benchRebuildEnv = "KOERS_BENCH_REBUILD"

type benchRebuildJob struct {
	bench.RebuildJob
	NATSURL string
}

// benchRebuildCmd is `koers rebuild` of the bench's stream and schema, for
// rebuild_rss_mib: hidden, started by `koers bench` only.
func benchRebuildCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "bench-rebuild",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var job benchRebuildJob
			if err := json.Unmarshal([]byte(os.Getenv(benchRebuildEnv)), &job); err != nil {
				return fmt.Errorf("bench-rebuild: %s: %w", benchRebuildEnv, err)
			}
			ctx := cmd.Context()
			nc, err := nats.Connect(job.NATSURL, nats.Name("koers-bench-rebuild"))
			if err != nil {
				return fmt.Errorf("bench-rebuild: connect: %w", err)
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				return fmt.Errorf("bench-rebuild: %w", err)
			}
			st, err := eventstore.Open(ctx, js, eventstore.Config{Stream: job.Stream, Prefix: job.Prefix, SealKey: job.SealKey})
			if err != nil {
				return err
			}
			db, err := projections.Open(ctx, job.DatabaseURL, projections.Options{Schema: job.Schema, ReportingSchema: job.ReportingSchema})
			if err != nil {
				return err
			}
			defer db.Close()
			var opts projections.ProjectorOptions
			if len(job.NamesKey) > 0 {
				k, err := keyring.Open(ctx, js, keyring.Config{Ledger: job.Stream, Bucket: job.KeyBucket, NamesKey: job.NamesKey, Existing: true})
				if err != nil {
					return fmt.Errorf("bench-rebuild: %w", err)
				}
				opts.Names = k
			}
			if err := db.Rebuild(ctx, st, opts, func(projections.Progress) {}); err != nil {
				return err
			}
			// The child's own peak: a child's rusage on Linux starts from
			// its parent's peak at fork (it said 427 MiB, the bench's own).
			_, err = fmt.Fprintln(cmd.OutOrStdout(), bench.OwnPeakRSS())
			return err
		},
	}
}

// benchRebuildProcess runs bench-rebuild in a child process on the NATS
// server at url and returns the child's peak resident set size.
func benchRebuildProcess(url string) func(context.Context, bench.RebuildJob) (uint64, error) {
	return func(ctx context.Context, job bench.RebuildJob) (uint64, error) {
		if url == "" {
			return 0, errors.New("the NATS server has no client URL")
		}
		self, err := os.Executable()
		if err != nil {
			return 0, fmt.Errorf("bench: own executable: %w", err)
		}
		b, err := json.Marshal(benchRebuildJob{RebuildJob: job, NATSURL: url})
		if err != nil {
			return 0, err
		}
		ctx, cancel := context.WithTimeout(ctx, time.Hour)
		defer cancel()
		c := exec.CommandContext(ctx, self, "bench-rebuild")
		c.Env = append(os.Environ(), benchRebuildEnv+"="+string(b))
		var stdout, stderr bytes.Buffer
		c.Stdout, c.Stderr = &stdout, &stderr
		if err := c.Run(); err != nil {
			return 0, fmt.Errorf("bench-rebuild: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
		}
		peak, err := strconv.ParseUint(string(bytes.TrimSpace(stdout.Bytes())), 10, 64)
		if err != nil || peak == 0 {
			return 0, fmt.Errorf("bench-rebuild: no peak RSS in its answer %q", stdout.Bytes())
		}
		return peak, nil
	}
}
