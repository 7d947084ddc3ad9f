package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"koers/feed"
)

func feedCmd(s *settings) *cobra.Command {
	var to, name, metricsAddr string
	var fromSeq uint64
	var batch int
	cmd := &cobra.Command{
		Use:   "feed --to URL [--name NAME] [--from-seq N]",
		Short: "Send every event to a broker, Redis stream, SQL table or webhook as CloudEvents, until interrupted",
		Example: `  koers feed --to amqp://guest:guest@localhost:5672/ --name finance
  koers feed --to https://bi.example.org/koers-events --name bi`,
		Long: `Read the ledger's stream from the feed's checkpoint and publish every event, in
order, as a CloudEvents 1.0 JSON message to the target:

  amqp://user:pass@host:5672/vhost   durable exchange and queue named NAME, publisher confirms
  redis://host:6379/0                Redis stream NAME
  postgres://user@host/db            table "watermill_NAME" in that database
  http(s)://host/path                one POST per event

The checkpoint (in the read models' database, schema koers_feed) moves only
after the target confirmed, so stopping and starting again loses nothing; an
event sent just before a crash may arrive twice, with the same id. A target
that is down is waited for. Runs until interrupted; see "koers feed status".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to == "" {
				return errors.New("--to URL is required (amqp://, redis://, postgres://, http(s)://)")
			}
			if name == "" {
				name = feed.DefaultName(to)
			}
			ctx := cmd.Context()
			a, err := openApp(ctx, *s.reading())
			if err != nil {
				return err
			}
			defer a.Close()
			dbURL, err := a.databaseURL(ctx)
			if err != nil {
				return err
			}
			metrics := feed.NewMetrics()
			f, err := feed.Open(ctx, a.store, dbURL, feed.Config{
				Name: name, Target: to, Ledger: s.ledger, FromSeq: fromSeq, BatchSize: batch,
				Metrics: metrics, Logger: slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)), Names: a.names,
			})
			if err != nil {
				return err
			}
			defer f.Close()
			if metricsAddr != "" {
				stop, err := serveMetrics(metricsAddr, metrics)
				if err != nil {
					return err
				}
				defer stop()
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "feed %s to %s from sequence %d; interrupt to stop\n", f.Name(), f.Target(), f.Checkpoint()+1)
			if err := f.Run(ctx); err != nil {
				return err
			}
			fmt.Fprintf(out, "feed %s stopped: delivered through sequence %d\n", f.Name(), f.Checkpoint())
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "target URL: amqp(s)://, redis(s)://, postgres(ql)://, http(s):// (required)")
	cmd.Flags().StringVar(&name, "name", "", "the feed's name: its checkpoint, exchange, queue, stream or table (default: the target's scheme, e.g. amqp)")
	cmd.Flags().Uint64Var(&fromSeq, "from-seq", 0, "where a new feed starts (default 1, the beginning); an existing feed goes on from its checkpoint")
	cmd.Flags().IntVar(&batch, "batch", 0, fmt.Sprintf("events per round before the checkpoint moves (default 500, at most %d)", feed.MaxBatchSize))
	cmd.Flags().StringVar(&metricsAddr, "metrics-listen", "", "serve Prometheus metrics (lag, delivered, retries) on this address, e.g. 127.0.0.1:9464")
	cmd.AddCommand(feedStatusCmd(s))
	return cmd
}

func feedStatusCmd(s *settings) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [--json]",
		Short: "Show each feed's target, checkpoint, the stream's last sequence and the lag",
		Example: `  koers feed status
  koers feed status --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			a, err := openApp(ctx, *s.reading())
			if err != nil {
				return err
			}
			defer a.Close()
			dbURL, err := a.databaseURL(ctx)
			if err != nil {
				return err
			}
			st, err := feed.ReadStatus(ctx, a.store, dbURL)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if st == nil {
					st = []feed.Status{}
				}
				return json.NewEncoder(out).Encode(st)
			}
			if len(st) == 0 {
				fmt.Fprintln(out, "no feeds yet: start one with koers feed --to URL")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tTARGET\tCHECKPOINT\tLAST SEQ\tLAG\tDELIVERED\tPOISONED\tUPDATED")
			for _, f := range st {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", f.Name, f.Target, f.Checkpoint, f.LastSequence, f.Lag,
					f.DeliveredTotal, f.PoisonedTotal, f.UpdatedAt.UTC().Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the feeds as JSON")
	return cmd
}

// serveMetrics exposes the feed's metrics on addr until stop is called.
func serveMetrics(addr string, c prometheus.Collector) (stop func(), err error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(c); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close() }, nil
}
