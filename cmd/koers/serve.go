package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"koers/api"
	"koers/consumer"
	"koers/domain"
	"koers/eventstore"
	"koers/feed"
	"koers/internal/secretfile"
	"koers/projections"
	"koers/web"
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

// The projector is started again when it fails, after a pause from the
// one backoff policy of the log's readers (projectorBackoff). While the
// read models' PostgreSQL or the log is unavailable it is started again
// for as long as it takes: the log is the source of truth, decisions are
// still accepted, and the projector catches up when the store returns.
// Any other failure (another ledger's read models, an unreadable event) is
// not cured by waiting: after projectorRestartsMax of those in a row, each
// run shorter than projectorHealthyRun, serve gives up.
const (
	projectorRestartsMax = 10
	projectorHealthyRun  = time.Minute
)

var projectorBackoff = consumer.Backoff{Initial: time.Second, Max: 30 * time.Second}

// The projector's lease (see projections.Lease): several serve processes
// on one PostgreSQL all serve the API, and the one whose projector holds
// the lease writes the read models. The others try to take it every
// leaseRetry, each attempt bounded by leaseAttemptTimeout; the holder
// checks every leaseCheck that its session still holds it, and stops its
// projector when not.
var (
	leaseRetry          = time.Second
	leaseAttemptTimeout = 5 * time.Second
	leaseCheck          = time.Second
)

// serveWatchInterval is how often serve checks the stream's settings,
// extent and the read models' last anchor by default.
const serveWatchInterval = 10 * time.Second

func serveCmd(s *settings) *cobra.Command {
	var listen, tokens string
	var feeds []string
	var watch time.Duration
	cmd := &cobra.Command{
		Use:   "serve [--listen 127.0.0.1:8080]",
		Short: "Serve the web app and the HTTP JSON API, and keep the read models up to date",
		Example: `  koers serve --listen 127.0.0.1:8080 --tokens tokens.txt
  koers serve --feed bi=https://bi.example.org/koers-events`,
		Long: `Serve the web app at / (the organisation through time, the decision trail,
funding, the transition), the HTTP JSON API (GET /v1/openapi.json describes it),
Prometheus metrics on /metrics and a health check on /healthz, and run the
projector following the log so that the read models stay current. Several
serve processes may share one NATS and one PostgreSQL: all of them accept
decisions, and one projector at a time writes the read models (a lease in
PostgreSQL); the others stand by and take over within seconds when it stops
(/healthz check "projector": active or standby). With
--tokens, the web app asks for a token once and keeps a session cookie. Stops cleanly on SIGINT or SIGTERM:
requests in flight get ` + serveShutdownTimeout.String() + ` to finish.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var tok *api.Tokens
			if tokens != "" {
				b, err := secretfile.Read(tokens, "tokens file")
				if err != nil {
					return fmt.Errorf("--tokens: %w", err)
				}
				tok, err = api.ParseTokens(bytes.NewReader(b))
				if err != nil {
					return fmt.Errorf("--tokens %s: %w", tokens, err)
				}
			} else {
				fmt.Fprintln(cmd.ErrOrStderr(), "koers: no --tokens: whoever reaches this address may record decisions in any actor's name")
			}
			return serve(cmd.Context(), *s, listen, tok, feeds, watch, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&listen, "listen", envOr("KOERS_LISTEN", "127.0.0.1:8080"), "address to serve on (env KOERS_LISTEN); :0 picks a free port")
	cmd.Flags().DurationVar(&watch, "watch-interval", serveWatchInterval, "how often to check the stream's settings, extent and the read models' last anchor (100ms to 10m); a problem stops writes")
	cmd.Flags().StringArrayVar(&feeds, "feed", nil, "also run a downstream feed: [NAME=]URL, as koers feed --to URL (repeatable)")
	cmd.Flags().StringVar(&tokens, "tokens", envOr("KOERS_TOKENS_FILE", ""), "file of \"<actor> <token>\" lines (env KOERS_TOKENS_FILE): callers must send Authorization: Bearer <token> and decide in their own name")
	return cmd
}

// serve runs the API and the projector until ctx ends or one of them fails.
func serve(ctx context.Context, s settings, listen string, tokens *api.Tokens, feedSpecs []string, watch time.Duration, stdout, stderr io.Writer) error {
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
	proj, err := projections.NewProjector(db, a.store, projections.ProjectorOptions{Names: a.names})
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	reg := prometheus.NewRegistry()
	feedMetrics := feed.NewMetrics()
	feeds, err := openFeeds(ctx, a, feedSpecs, feedMetrics, logger)
	defer func() {
		for _, f := range feeds {
			_ = f.Close()
		}
	}()
	if err != nil {
		return err
	}
	var active atomic.Bool
	handler, err := api.New(api.Config{
		Ledger:          a.handler,
		Log:             a.store,
		ReadModels:      db,
		Projector:       proj,
		ProjectorActive: active.Load,
		Registerer:      reg,
		Collectors: []prometheus.Collector{
			feedMetrics,
			integrityMetric(a.store),
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
	var webTokens web.Tokens
	if tokens != nil {
		webTokens = tokens
	}
	webApp, err := web.New(web.Config{ReadModels: db, Tokens: webTokens, Location: loc, Logger: logger})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", listen, err)
	}
	srv := newHTTPServer(withWebApp(handler, webApp), logger)

	// The parts run side by side; the first to fail stops the others, and
	// the API gets serveShutdownTimeout to finish the requests in flight.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return runLeasedProjector(gctx, db, proj, &active, logger) })
	g.Go(func() error { return watchStream(gctx, a.store, db, watch, logger) })
	for _, f := range feeds {
		g.Go(func() error {
			if err := f.Run(gctx); err != nil {
				return fmt.Errorf("feed %s: %w", f.Name(), err)
			}
			return nil
		})
	}
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		shutdownCtx, stop := context.WithTimeout(context.Background(), serveShutdownTimeout)
		defer stop()
		if err := srv.Shutdown(shutdownCtx); err != nil {
			// Requests still running past the timeout are cut off.
			_ = srv.Close()
			return fmt.Errorf("serve: shut down the API: %w", err)
		}
		return nil
	})
	fmt.Fprintf(stdout, "serving ledger %s on http://%s (read models in schema %s)\n", s.ledger, ln.Addr(), db.Schema())
	fmt.Fprintf(stdout, "the web app: open http://%s/ in a browser\n", ln.Addr())
	for _, f := range feeds {
		fmt.Fprintf(stdout, "feeding %s to %s from sequence %d\n", f.Name(), f.Target(), f.Checkpoint()+1)
	}
	return g.Wait()
}

// openFeeds opens the --feed feeds; on an error, those opened so far are
// returned too, for the caller to close.
func openFeeds(ctx context.Context, a *app, specs []string, metrics *feed.Metrics, logger *slog.Logger) ([]*feed.Feed, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	dbURL, err := a.databaseURL(ctx)
	if err != nil {
		return nil, err
	}
	var feeds []*feed.Feed
	for _, spec := range specs {
		name, target, ok := strings.Cut(spec, "=")
		if !ok || strings.Contains(name, ":") {
			name, target = feed.DefaultName(spec), spec
		}
		f, err := feed.Open(ctx, a.store, dbURL, feed.Config{Name: name, Target: target, Ledger: a.settings.ledger,
			Metrics: metrics, Logger: logger.With("feed", name), Names: a.names})
		if err != nil {
			return feeds, fmt.Errorf("--feed %s: %w", name, err) // not spec: the URL may hold a secret
		}
		feeds = append(feeds, f)
	}
	return feeds, nil
}

// withWebApp serves the API's paths (/v1/, /metrics, /healthz) with the
// API and everything else with the web app.
func withWebApp(apiHandler, webApp http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v1/", apiHandler)
	mux.Handle("/metrics", apiHandler)
	mux.Handle("/healthz", apiHandler)
	mux.Handle("/", webApp)
	return mux
}

// newHTTPServer bounds what a slow or hostile client can hold.
func newHTTPServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: serveReadHeaderTimeout,
		ReadTimeout:       serveReadTimeout,
		WriteTimeout:      serveWriteTimeout,
		IdleTimeout:       serveIdleTimeout,
		MaxHeaderBytes:    serveMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// runLeasedProjector runs the projector while this process holds the read
// models' lease, until ctx ends: it waits for the lease (another serve's
// projector may hold it), runs the projector with [runProjector] while
// the lease holds, and waits for it again when it is lost. active says
// whether it holds the lease.
func runLeasedProjector(ctx context.Context, db *projections.DB, p *projections.Projector, active *atomic.Bool, logger *slog.Logger) error {
	for {
		lease := waitLease(ctx, db, logger)
		if lease == nil {
			return nil
		}
		logger.Info("projector active: this process holds the read models' lease", "schema", db.Schema())
		active.Store(true)
		lctx, cancel := context.WithCancel(ctx)
		lost := make(chan error, 1)
		go func() {
			err := lease.Watch(lctx, leaseCheck, leaseAttemptTimeout)
			if err != nil {
				cancel()
			}
			lost <- err
		}()
		err := runProjector(lctx, p, logger)
		cancel()
		lostErr := <-lost
		active.Store(false)
		lease.Release()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		logger.Warn("projector standing by: the read models' lease was lost", "error", lostErr)
	}
}

// waitLease takes the read models' lease, trying every leaseRetry for as
// long as another process holds it or PostgreSQL does not answer; it
// returns nil when ctx ends first.
func waitLease(ctx context.Context, db *projections.DB, logger *slog.Logger) *projections.Lease {
	standby := false
	for {
		actx, cancel := context.WithTimeout(ctx, leaseAttemptTimeout)
		lease, err := db.TakeLease(actx)
		cancel()
		if err == nil {
			return lease
		}
		if ctx.Err() != nil {
			return nil
		}
		if !standby {
			standby = true
			if errors.Is(err, projections.ErrLeaseHeld) {
				logger.Info("projector standing by: another process's projector writes the read models", "schema", db.Schema())
			} else {
				logger.Warn("projector standing by: could not take the read models' lease", "error", err)
			}
		}
		t := time.NewTimer(leaseRetry)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// runProjector runs the projector until ctx ends, starting it again after
// a failure: for ever while a store is unavailable, a bounded number of
// times in a row for anything else.
func runProjector(ctx context.Context, p *projections.Projector, logger *slog.Logger) error {
	var lastErr error
	for failures, other := 0, 0; other < projectorRestartsMax; {
		start := time.Now()
		err := p.Run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, domain.ErrIntegrity) {
			// Not to be retried: the read models keep what they saw, the
			// API answers 503 on /healthz, and an operator looks.
			logger.Error("projector stopped: the ledger lost integrity; run koers verify", "error", err)
			<-ctx.Done()
			return nil
		}
		if err == nil {
			err = errors.New("stopped without a reason")
		}
		if time.Since(start) >= projectorHealthyRun {
			failures, other = 0, 0
		}
		lastErr = err
		if !errors.Is(err, domain.ErrUnavailable) {
			other++
			if other == projectorRestartsMax {
				break
			}
		}
		pause := projectorBackoff.Wait(min(failures, 16))
		failures++
		logger.Warn("projector failed, starting it again", "error", err, "failures", failures, "pause", pause.Round(time.Millisecond),
			"store_unavailable", errors.Is(err, domain.ErrUnavailable))
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
	return fmt.Errorf("projector: failed %d times in a row, the last time: %w", projectorRestartsMax, lastErr)
}

// integrityMetric is koers_integrity_problems: how many integrity problems
// the store found in its stream (0 while none; writes stop at the first).
func integrityMetric(st *eventstore.Store) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "koers", Name: "integrity_problems",
		Help: "Integrity problems found in the ledger's stream (removed, shortened, an anchored message gone or changed, a setting weakened); writes stop at the first."},
		func() float64 {
			var ie *eventstore.IntegrityError
			if errors.As(st.Halted(), &ie) {
				return float64(len(ie.Problems))
			}
			return 0
		})
}

// watchStream checks the stream every interval against what a ledger's
// must be and against the read models' last anchor, until ctx ends. A
// problem stops the store's writes; it is logged once, and again when it
// changes.
func watchStream(ctx context.Context, st *eventstore.Store, db *projections.DB, interval time.Duration, logger *slog.Logger) error {
	var reported string
	return st.Watch(ctx, eventstore.WatchOptions{
		Interval: interval,
		Anchors: func(ctx context.Context) ([]domain.Anchor, error) {
			a, ok, err := db.LastAnchor(ctx)
			if err != nil || !ok {
				return nil, err
			}
			return []domain.Anchor{a}, nil
		},
		OnCheck: func(err error) {
			var ie *eventstore.IntegrityError
			switch {
			case errors.As(err, &ie):
				if msg := ie.Error(); msg != reported {
					reported = msg
					logger.Error("ledger integrity lost: writes stopped, /healthz answers 503; run koers verify",
						"ledger", ie.Stream, "problems", strings.Join(ie.Problems, "; "))
				}
			case err != nil:
				logger.Warn("could not check the ledger's stream", "error", err)
			}
		},
	})
}
