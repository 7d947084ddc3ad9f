package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"koers/domain"
	"koers/ledger"
	"koers/projections"
)

// Ledger is what the API needs of the command handler; *ledger.Handler is one.
type Ledger interface {
	Submit(ctx context.Context, decision []byte, opts ...ledger.HandleOption) (ledger.Result, error)
	Act(ctx context.Context, a domain.Action) (ledger.Result, error)
}

// Log is what the API needs of the log; the event store is one.
// LastSequence also serves as the NATS health check.
type Log interface {
	Load(ctx context.Context, ref domain.Ref) (domain.History, error)
	LastSequence(ctx context.Context) (uint64, error)
}

// ReadModels is what the API needs of the read models; *projections.DB is
// one. Checkpoint also serves as the PostgreSQL health check.
type ReadModels interface {
	Organisation(ctx context.Context, at projections.At, page projections.Page) (projections.Organisation, error)
	History(ctx context.Context, ref domain.Ref, opts projections.HistoryOptions, page projections.Page) (projections.HistoryPage, error)
	Audit(ctx context.Context, f projections.AuditFilter) (projections.AuditPage, error)
	Decision(ctx context.Context, id string) (projections.Decision, error)
	Balances(ctx context.Context, period string, at projections.At, page projections.Page) (projections.BalancePage, error)
	Journal(ctx context.Context, period, account string, at projections.At, page projections.Page) (projections.JournalPage, error)
	Transition(ctx context.Context, quarter string, knownAt time.Time) (projections.Transition, error)
	Checkpoint(ctx context.Context) (uint64, error)
	Proposals(ctx context.Context, f projections.ProposalFilter) (projections.ProposalPage, error)
	Proposal(ctx context.Context, id string, now time.Time) (projections.ProposalView, error)
	Mandates(ctx context.Context, f projections.MandateFilter) ([]projections.Mandate, error)
	KPIValues(ctx context.Context, f projections.KPIFilter, at projections.At, page projections.Page) (projections.KPIPage, error)
	Review(ctx context.Context, quarter string, knownAt time.Time) (projections.Review, error)
}

// Projector is what the metrics need of the projector; *projections.Projector
// is one. Lag is asked on every scrape.
type Projector interface {
	Lag(ctx context.Context) (projections.Lag, error)
}

// Config configures [New]. Ledger, Log, ReadModels and Projector are
// required; other zero fields take the default in their doc.
type Config struct {
	Ledger     Ledger
	Log        Log
	ReadModels ReadModels
	Projector  Projector

	// Registerer receives the API's collectors and Collectors. Default: a
	// new registry of its own.
	Registerer prometheus.Registerer
	// Gatherer is what /metrics serves. Default: Registerer when it is also
	// a Gatherer (a *prometheus.Registry is both); required otherwise.
	Gatherer prometheus.Gatherer
	// Collectors are registered too, e.g. the feed's.
	Collectors []prometheus.Collector
	// ProjectorActive, when set, says whether this process's projector
	// holds the read models' lease (the one writing them) or stands by
	// while another process's does: /healthz shows it as check
	// "projector" ("active" or "standby", healthy either way) and the
	// gauge koers_projector_active as 1 or 0. Nil: neither is shown.
	ProjectorActive func() bool

	// MaxBodyBytes bounds a request body. Default 1 MiB
	// (domain.MaxDecisionBytes), at most 16 MiB.
	MaxBodyBytes int64
	// Location is the ledger's time zone, for dates in parameters. Default UTC.
	Location *time.Location
	// CheckTimeout bounds each health check and each lag read of a scrape.
	// Default 2s, at most 1m.
	CheckTimeout time.Duration
	// Logger receives the errors answered 5xx (level error) and those
	// answered 4xx whose cause is a storage engine's message, which no
	// answer carries (level info). Default slog.Default().
	Logger *slog.Logger
	// Tokens, when set, authenticate callers (see [Tokens]). Nil: anyone who
	// reaches the server may call it as any actor; keep it on loopback.
	Tokens *Tokens
	// Now is the clock proposals' expiry is judged by in queries; it should
	// be the command handler's. Default time.Now.
	Now func() time.Time
}

// DefaultMaxBodyBytes is the default of [Config].MaxBodyBytes.
const DefaultMaxBodyBytes = domain.MaxDecisionBytes

const maxBodyBytesMax = 16 << 20

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Registerer == nil && c.Gatherer == nil {
		reg := prometheus.NewRegistry()
		c.Registerer, c.Gatherer = reg, reg
	}
	if c.Gatherer == nil {
		if g, ok := c.Registerer.(prometheus.Gatherer); ok {
			c.Gatherer = g
		}
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.Location == nil {
		c.Location = time.UTC
	}
	if c.CheckTimeout == 0 {
		c.CheckTimeout = 2 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Ledger == nil:
		return errors.New("api: ledger is required")
	case c.Log == nil:
		return errors.New("api: log is required")
	case c.ReadModels == nil:
		return errors.New("api: read models are required")
	case c.Projector == nil:
		return errors.New("api: projector is required")
	case c.Registerer == nil:
		return errors.New("api: a gatherer needs a registerer")
	case c.Gatherer == nil:
		return errors.New("api: registerer is not a gatherer: set Gatherer")
	case c.MaxBodyBytes < 1 || c.MaxBodyBytes > maxBodyBytesMax:
		return fmt.Errorf("api: max body bytes %d: want 1 to %d", c.MaxBodyBytes, maxBodyBytesMax)
	case c.CheckTimeout < time.Millisecond || c.CheckTimeout > time.Minute:
		return fmt.Errorf("api: check timeout %s: want 1ms to 1m", c.CheckTimeout)
	}
	return nil
}

// server holds what the handlers share.
type server struct {
	cfg     Config
	metrics *metrics
}

// route is one entry of the API: the mux pattern is Method+" "+Path, and
// the OpenAPI document must list exactly these.
type route struct {
	Method, Path string
	handle       func(*server, http.ResponseWriter, *http.Request) error
}

// routes is every route the API serves.
var routes = []route{
	{"POST", "/v1/decisions", (*server).postDecision},
	{"GET", "/v1/decisions/{id}", (*server).getDecision},
	{"GET", "/v1/aggregates/{kind}/{id}", (*server).getAggregate},
	{"GET", "/v1/org", (*server).getOrg},
	{"GET", "/v1/history/{kind}/{id}", (*server).getHistory},
	{"GET", "/v1/audit", (*server).getAudit},
	{"GET", "/v1/funding/{period}", (*server).getFunding},
	{"GET", "/v1/reports/transition", (*server).getTransition},
	{"GET", "/v1/reports/review", (*server).getReview},
	{"GET", "/v1/kpis", (*server).getKPIs},
	{"GET", "/v1/proposals", (*server).getProposals},
	{"GET", "/v1/proposals/{id}", (*server).getProposal},
	{"POST", "/v1/proposals/{id}/approve", (*server).postApprove},
	{"POST", "/v1/proposals/{id}/reject", (*server).postReject},
	{"POST", "/v1/proposals/{id}/withdraw", (*server).postWithdraw},
	{"GET", "/v1/mandates", (*server).getMandates},
	{"GET", "/v1/openapi.json", (*server).getOpenAPI},
	{"GET", "/metrics", nil}, // promhttp, see New
	{"GET", "/healthz", (*server).getHealth},
}

// New returns the API's handler. Its collectors are registered on
// cfg.Registerer, so New is called once per registry.
func New(cfg Config) (http.Handler, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg)
	if err != nil {
		return nil, err
	}
	s := &server{cfg: cfg, metrics: m}
	mux := http.NewServeMux()
	for _, rt := range routes {
		pattern := rt.Method + " " + rt.Path
		if rt.handle == nil {
			mux.Handle(pattern, m.handler(cfg.Gatherer))
			continue
		}
		mux.Handle(pattern, s.wrap(rt.handle))
	}
	return notFound(mux), nil
}

// notFound answers what mux does not route with a problem document instead
// of the mux's plain text: 405 with Allow when the path has other methods,
// 404 otherwise.
func notFound(mux *http.ServeMux) http.Handler {
	methods := map[string]bool{}
	for _, rt := range routes {
		methods[rt.Method] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A path with an empty, "." or ".." segment names no resource: the
		// mux would redirect it to its cleaned form, another resource
		// (/v1/proposals//approve to the proposal "approve").
		if p := r.URL.Path; p != "/" && path.Clean(p) != strings.TrimSuffix(p, "/") {
			writeProblem(w, &problem{Type: "not-found", Status: http.StatusNotFound,
				Detail: fmt.Sprintf("no route %s %.200q: a path without empty, . or .. segments (see /v1/openapi.json)", r.Method, r.URL.Path)})
			return
		}
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		var allow []string
		for m := range methods {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != "" {
				allow = append(allow, m)
			}
		}
		if slices.Contains(allow, http.MethodGet) {
			allow = append(allow, http.MethodHead) // RFC 9110: GET routes answer HEAD too
		}
		if len(allow) > 0 {
			sort.Strings(allow)
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeProblem(w, &problem{Type: "method-not-allowed", Status: http.StatusMethodNotAllowed,
				Detail: fmt.Sprintf("%s %s: allowed %s", r.Method, r.URL.Path, strings.Join(allow, ", "))})
			return
		}
		writeProblem(w, &problem{Type: "not-found", Status: http.StatusNotFound,
			Detail: fmt.Sprintf("no route %s %s (see /v1/openapi.json)", r.Method, r.URL.Path)})
	})
}

// wrap turns a handler that returns an error into an http.Handler that
// answers the error as a problem document and counts the request.
func (s *server) wrap(h func(*server, http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := s.authenticate(r)
		if err == nil {
			err = h(s, w, r)
		}
		if err != nil {
			p := problemFor(err)
			switch {
			case p.Status >= 500:
				s.cfg.Logger.ErrorContext(r.Context(), "api", "method", r.Method, "path", r.URL.Path, "error", err)
			case p.logCause:
				s.cfg.Logger.InfoContext(r.Context(), "api", "method", r.Method, "path", r.URL.Path, "status", p.Status, "error", err)
			}
			writeProblem(w, p)
		}
	})
}

// callerKey carries the authenticated actor in a request's context.
type callerKey struct{}

// authenticate checks the bearer token when tokens are configured.
func (s *server) authenticate(r *http.Request) error {
	if s.cfg.Tokens == nil || open(r.URL.Path) {
		return nil
	}
	actor, err := s.cfg.Tokens.actorOf(r)
	if err != nil {
		return err
	}
	*r = *r.WithContext(context.WithValue(r.Context(), callerKey{}, actor))
	return nil
}

// Routes lists the routes the API serves as "METHOD /path" mux patterns,
// in the order they are registered.
func Routes() []string {
	out := make([]string, len(routes))
	for i, rt := range routes {
		out[i] = rt.Method + " " + rt.Path
	}
	return out
}
