package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"koers/api"
	"koers/feed"
	"koers/projections"
)

// Bounds of the HTTP server: a slow or hostile client holds a connection
// for a bounded time and memory.
const (
	serveReadHeaderTimeout = 5 * time.Second
	serveReadTimeout       = 30 * time.Second // a 1 MiB decision on a slow link
	serveWriteTimeout      = 60 * time.Second // a decision with conflict retries, a long transition report
	serveIdleTimeout       = 2 * time.Minute
	serveMaxHeaderBytes    = 64 << 10
	// serveShutdownTimeout bounds how long requests in flight may finish
	// once the command is asked to stop.
	serveShutdownTimeout = 15 * time.Second
)

// The projector is started again when it fails (NATS or PostgreSQL went
// away for a moment), after a pause that doubles from the first to the
// longest; after projectorRestartsMax failures in a row, each run shorter
// than projectorHealthyRun, serve gives up.
const (
	projectorRestartsMax  = 10
	projectorPauseFirst   = time.Second
	projectorPauseLongest = 30 * time.Second
	projectorHealthyRun   = time.Minute
)

func serveCmd(s *settings) *cobra.Command {
	var listen, tokens string
	var feeds []string
	cmd := &cobra.Command{
		Use:   "serve [--listen 127.0.0.1:8080]",
		Short: "Serve the HTTP JSON API and keep the read models up to date",
		Long: `Serve the HTTP JSON API (GET /v1/openapi.json describes it), Prometheus metrics
on /metrics and a health check on /healthz, and run the projector following the
log so that the read models stay current. Stops cleanly on SIGINT or SIGTERM:
requests in flight get ` + serveShutdownTimeout.String() + ` to finish.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var tok *api.Tokens
			if tokens != "" {
				f, err := os.Open(tokens)
				if err != nil {
					return fmt.Errorf("--tokens: %w", err)
				}
				tok, err = api.ParseTokens(f)
				f.Close()
				if err != nil {
					return fmt.Errorf("--tokens %s: %w", tokens, err)
				}
			} else {
				fmt.Fprintln(cmd.ErrOrStderr(), "koers: no --tokens: whoever reaches this address may record decisions in any actor's name")
			}
			return serve(cmd.Context(), *s, listen, tok, feeds, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&listen, "listen", envOr("KOERS_LISTEN", "127.0.0.1:8080"), "address to serve on (env KOERS_LISTEN); :0 picks a free port")
	cmd.Flags().StringArrayVar(&feeds, "feed", nil, "also run a downstream feed: [NAME=]URL, as koers feed --to URL (repeatable)")
	cmd.Flags().StringVar(&tokens, "tokens", envOr("KOERS_TOKENS_FILE", ""), "file of \"<actor> <token>\" lines (env KOERS_TOKENS_FILE): callers must send Authorization: Bearer <token> and decide in their own name")
	return cmd
}

// serve runs the API and the projector until ctx ends or one of them fails.
func serve(ctx context.Context, s settings, listen string, tokens *api.Tokens, feedSpecs []string, stdout, stderr io.Writer) error {
	loc, err := time.LoadLocation(s.timezone)
	if err != nil {
		return fmt.Errorf("time zone %q: %w", s.timezone, err)
	}
	a, err := openApp(ctx, s)
	if err != nil {
		return err
	}
	defer a.Close()
	db, err := a.readModels(ctx)
	if err != nil {
		return err
	}
	if err := a.sameLedger(ctx, db); err != nil {
		return err
	}
	proj, err := projections.NewProjector(db, a.store, projections.ProjectorOptions{})
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	reg := prometheus.NewRegistry()
	feedMetrics := feed.NewMetrics()
	var feeds []*feed.Feed
	defer func() {
		for _, f := range feeds {
			_ = f.Close()
		}
	}()
	if len(feedSpecs) > 0 {
		dbURL, err := a.databaseURL(ctx)
		if err != nil {
			return err
		}
		for _, spec := range feedSpecs {
			name, target, ok := strings.Cut(spec, "=")
			if !ok || strings.Contains(name, ":") {
				name, target = feed.DefaultName(spec), spec
			}
			f, err := feed.Open(ctx, a.store, dbURL, feed.Config{Name: name, Target: target, Ledger: s.ledger,
				Metrics: feedMetrics, Logger: logger.With("feed", name)})
			if err != nil {
				return fmt.Errorf("--feed %s: %w", spec, err)
			}
			feeds = append(feeds, f)
		}
	}
	handler, err := api.New(api.Config{
		Ledger:     a.handler,
		Log:        a.store,
		ReadModels: db,
		Projector:  proj,
		Registerer: reg,
		Collectors: []prometheus.Collector{
			feedMetrics,
			collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		},
		Location: loc,
		Logger:   logger,
		Tokens:   tokens,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", listen, err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: serveReadHeaderTimeout,
		ReadTimeout:       serveReadTimeout,
		WriteTimeout:      serveWriteTimeout,
		IdleTimeout:       serveIdleTimeout,
		MaxHeaderBytes:    serveMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	projDone := make(chan error, 1)
	go func() { projDone <- runProjector(ctx, proj, logger) }()
	srvDone := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		srvDone <- err
	}()
	feedsDone := make(chan error, len(feeds))
	for _, f := range feeds {
		go func() {
			err := f.Run(ctx)
			if err != nil {
				err = fmt.Errorf("feed %s: %w", f.Name(), err)
			}
			feedsDone <- err
		}()
	}
	fmt.Fprintf(stdout, "serving ledger %s on http://%s (read models in schema %s)\n", s.ledger, ln.Addr(), db.Schema())
	for _, f := range feeds {
		fmt.Fprintf(stdout, "feeding %s to %s from sequence %d\n", f.Name(), f.Target(), f.Checkpoint()+1)
	}

	var projErr, srvErr, feedErr error
	projRunning, srvRunning, feedsRunning := true, true, len(feeds)
	select {
	case <-ctx.Done():
	case projErr = <-projDone:
		projRunning = false
	case srvErr = <-srvDone:
		srvRunning = false
	case feedErr = <-feedsDone:
		feedsRunning--
	}
	cancel()
	for ; feedsRunning > 0; feedsRunning-- {
		feedErr = errors.Join(feedErr, <-feedsDone)
	}
	if srvRunning {
		shutdownCtx, stop := context.WithTimeout(context.Background(), serveShutdownTimeout)
		err := srv.Shutdown(shutdownCtx)
		stop()
		if err != nil {
			// Requests still running past the timeout are cut off.
			_ = srv.Close()
			err = fmt.Errorf("shut down the API: %w", err)
		}
		srvErr = errors.Join(err, <-srvDone)
	}
	if projRunning {
		projErr = <-projDone
	}
	if srvErr != nil {
		srvErr = fmt.Errorf("serve: %w", srvErr)
	}
	return errors.Join(srvErr, projErr, feedErr)
}

// runProjector runs the projector until ctx ends, starting it again after a
// failure, a bounded number of times in a row.
func runProjector(ctx context.Context, p *projections.Projector, logger *slog.Logger) error {
	pause := projectorPauseFirst
	var lastErr error
	for failures := 0; failures < projectorRestartsMax; {
		start := time.Now()
		err := p.Run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			err = errors.New("stopped without a reason")
		}
		if time.Since(start) >= projectorHealthyRun {
			failures, pause = 0, projectorPauseFirst
		}
		failures++
		lastErr = err
		if failures == projectorRestartsMax {
			break
		}
		logger.Warn("projector failed, starting it again", "error", err, "failures", failures, "pause", pause)
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		pause = min(2*pause, projectorPauseLongest)
	}
	return fmt.Errorf("projector: failed %d times in a row, the last time: %w", projectorRestartsMax, lastErr)
}
