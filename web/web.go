package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"koers/domain"
	"koers/projections"
)

// ReadModels is what the web app needs of the read models; *projections.DB
// is one.
type ReadModels interface {
	Organisation(ctx context.Context, at projections.At, page projections.Page) (projections.Organisation, error)
	History(ctx context.Context, ref domain.Ref, opts projections.HistoryOptions, page projections.Page) (projections.HistoryPage, error)
	Audit(ctx context.Context, f projections.AuditFilter) (projections.AuditPage, error)
	Decision(ctx context.Context, id string) (projections.Decision, error)
	Balances(ctx context.Context, period string, at projections.At, page projections.Page) (projections.BalancePage, error)
	Journal(ctx context.Context, period, account string, at projections.At, page projections.Page) (projections.JournalPage, error)
	Transition(ctx context.Context, quarter string, knownAt time.Time) (projections.Transition, error)
	Measurements(ctx context.Context, product string, at projections.At, page projections.Page) (projections.MeasurementPage, error)
}

// Tokens says which actor a token speaks for; *api.Tokens is one.
type Tokens interface {
	Actor(token string) (actor string, ok bool)
}

// Config configures [New]. ReadModels is required; other zero fields take
// the default in their doc.
type Config struct {
	ReadModels ReadModels
	// Tokens, when set, make every page ask for a login with a token first
	// (the same tokens as the API's). Nil: anyone who reaches the server
	// may read; keep it on loopback.
	Tokens Tokens
	// Location is the ledger's time zone, for dates. Default UTC.
	Location *time.Location
	// Logger receives the errors answered 500. Default slog.Default().
	Logger *slog.Logger
	// SessionTTL is how long a login lasts. Default 12h, at most 7 days.
	SessionTTL time.Duration
	// MaxSessions bounds the sessions held in memory; the oldest is
	// dropped past it. Default 10,000, at most 1,000,000.
	MaxSessions int
	// QueryTimeout bounds the read-model queries of one request when the
	// request's context has no deadline. Default 10s, at most 1m.
	QueryTimeout time.Duration
	// Now is the clock, for "today" and sessions. Default time.Now.
	Now func() time.Time
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Location == nil {
		c.Location = time.UTC
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = 12 * time.Hour
	}
	if c.MaxSessions == 0 {
		c.MaxSessions = 10_000
	}
	if c.QueryTimeout == 0 {
		c.QueryTimeout = 10 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.ReadModels == nil:
		return errors.New("web: read models are required")
	case c.SessionTTL < time.Minute || c.SessionTTL > 7*24*time.Hour:
		return fmt.Errorf("web: session ttl %s: want 1m to 168h", c.SessionTTL)
	case c.MaxSessions < 1 || c.MaxSessions > 1_000_000:
		return fmt.Errorf("web: max sessions %d: want 1 to 1000000", c.MaxSessions)
	case c.QueryTimeout < time.Millisecond || c.QueryTimeout > time.Minute:
		return fmt.Errorf("web: query timeout %s: want 1ms to 1m", c.QueryTimeout)
	}
	return nil
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// server holds what the handlers share.
type server struct {
	cfg      Config
	rm       ReadModels
	pages    map[string]*template.Template
	static   http.Handler
	assets   map[string]string // file name → its URL with a content hash
	sessions *sessions
}

// route is one page or endpoint; every one is a GET but the login's and
// the logout's POSTs.
type route struct {
	pattern string
	handle  func(*server, http.ResponseWriter, *http.Request) error
	public  bool // served without a session when tokens are set
}

var routes = []route{
	{"GET /{$}", (*server).explorer, false},
	{"GET /search", (*server).search, false},
	{"GET /valuestreams/{id}", entity(domain.KindValueStream), false},
	{"GET /products/{id}", entity(domain.KindProduct), false},
	{"GET /teams/{id}", entity(domain.KindTeam), false},
	{"GET /people/{id}", entity(domain.KindPerson), false},
	{"GET /projects/{id}", entity(domain.KindProject), false},
	{"GET /mandates/{id}", entity(domain.KindMandate), false},
	{"GET /decisions", (*server).decisions, false},
	{"GET /decisions/{id}", (*server).decision, false},
	{"GET /funding", (*server).fundingIndex, false},
	{"GET /funding/{period}", (*server).funding, false},
	{"GET /funding/{period}/flows.json", (*server).flows, false},
	{"GET /funding/{period}/journal", (*server).journal, false},
	{"GET /transition", (*server).transition, false},
	{"GET /transition.json", (*server).transitionJSON, false},
	{"GET /compare", (*server).compare, false},
	{"GET /login", (*server).loginForm, true},
	{"POST /login", (*server).login, true},
	{"POST /logout", (*server).logout, true},
}

// Paths lists the route patterns the app serves, for a caller that mounts
// it beside other handlers: everything under "/" that is not another's.
func Paths() []string {
	out := make([]string, 0, len(routes)+1)
	for _, r := range routes {
		out = append(out, r.pattern)
	}
	return append(out, "GET /static/")
}

// New returns the web app's handler.
func New(cfg Config) (http.Handler, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &server{cfg: cfg, rm: cfg.ReadModels, sessions: newSessions(cfg.SessionTTL, cfg.MaxSessions, cfg.Now)}
	if err := s.loadAssets(); err != nil {
		return nil, err
	}
	if err := s.parseTemplates(); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	for _, rt := range routes {
		mux.Handle(rt.pattern, s.wrap(rt))
	}
	mux.Handle("GET /static/", s.static)
	mux.Handle("/", s.wrap(route{handle: func(s *server, w http.ResponseWriter, r *http.Request) error {
		return notFoundError(fmt.Sprintf("no page %s", r.URL.Path))
	}}))
	cop := http.NewCrossOriginProtection()
	return securityHeaders(cop.Handler(mux)), nil
}

// loadAssets serves the embedded static files, each under a URL that
// carries its content hash, so browsers may keep them for a year.
func (s *server) loadAssets() error {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return fmt.Errorf("web: static files: %w", err)
	}
	s.assets = map[string]string{}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		s.assets[p] = "/static/" + p + "?v=" + hex.EncodeToString(sum[:6])
		return nil
	})
	if err != nil {
		return fmt.Errorf("web: static files: %w", err)
	}
	files := http.StripPrefix("/static/", http.FileServerFS(sub))
	s.static = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("v") != "" {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		files.ServeHTTP(w, r)
	})
	return nil
}

// contentSecurityPolicy allows scripts, styles, images and requests of the
// app's own origin only, and no inline script.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.ServeHTTP(w, r)
	})
}

// startKey carries when a request started, for its Server-Timing.
type startKey struct{}

// wrap checks the session where tokens are set, bounds the request's
// queries, and answers an error as an error page.
func (s *server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx := context.WithValue(r.Context(), startKey{}, start)
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, s.cfg.QueryTimeout)
			defer cancel()
		}
		r = r.WithContext(ctx)
		var err error
		v := s.viewer(r)
		if s.cfg.Tokens != nil && v.Actor == "" && !rt.public {
			err = s.toLogin(w, r)
		} else {
			r = r.WithContext(context.WithValue(r.Context(), viewerKey{}, v))
			err = rt.handle(s, w, r)
		}
		if err != nil {
			s.fail(w, r, err)
		}
	})
}

// HTTPError is an error the app answers with its status.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, a ...any) error {
	return &httpError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, a...)}
}

func notFoundError(msg string) error { return &httpError{status: http.StatusNotFound, msg: msg} }

// fail answers err as a page, or as JSON for a .json endpoint.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := http.StatusInternalServerError, "the read models could not answer; the server's log says why"
	var he *httpError
	var pe *projections.PageError
	switch {
	case errors.As(err, &he):
		status, msg = he.status, he.msg
	case errors.As(err, &pe):
		status, msg = http.StatusBadRequest, pe.Error()
	case errors.Is(err, domain.ErrNotFound):
		status, msg = http.StatusNotFound, "not found: "+err.Error()
	case errors.Is(err, domain.ErrInvalid):
		status, msg = http.StatusBadRequest, err.Error()
	case errors.Is(err, domain.ErrUnavailable):
		status, msg = http.StatusServiceUnavailable, "the read models are not answering; try again in a moment"
	case errors.Is(err, context.DeadlineExceeded):
		status, msg = http.StatusServiceUnavailable, "the read models took too long to answer"
	}
	if status >= 500 {
		s.cfg.Logger.ErrorContext(r.Context(), "web", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	if strings.HasSuffix(r.URL.Path, ".json") {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
		return
	}
	_ = s.render(w, r, status, "error", "Error", map[string]any{"Status": status, "StatusText": http.StatusText(status), "Message": msg})
}

// page is what every page's template gets.
type page struct {
	Title   string
	Nav     string // the section the page belongs to
	Viewer  viewer
	Assets  map[string]string
	Partial bool // an htmx request: the content only
	Data    any
}

// render executes a page's template into a buffer first, so that a
// template error is a clean 500, and reports the server time in a
// Server-Timing header.
func (s *server) render(w http.ResponseWriter, r *http.Request, status int, name, title string, data any) error {
	t, ok := s.pages[name]
	if !ok {
		return fmt.Errorf("render: no template %s", name)
	}
	v, _ := r.Context().Value(viewerKey{}).(viewer)
	p := page{Title: title, Nav: navOf(name), Viewer: v, Assets: s.assets, Data: data,
		Partial: r.Header.Get("HX-Request") == "true" && r.Header.Get("HX-Boosted") != "true"}
	var buf bytes.Buffer
	tmpl := "layout"
	if p.Partial {
		tmpl = "content"
	}
	if err := t.ExecuteTemplate(&buf, tmpl, p); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Vary", "HX-Request")
	serverTiming(w, r)
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// writeJSON answers v as JSON with the server time.
func writeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode answer: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	serverTiming(w, r)
	_, err = w.Write(b)
	return err
}

func serverTiming(w http.ResponseWriter, r *http.Request) {
	if start, ok := r.Context().Value(startKey{}).(time.Time); ok {
		w.Header().Set("Server-Timing", fmt.Sprintf("app;dur=%.1f", float64(time.Since(start).Microseconds())/1000))
	}
}

func navOf(page string) string {
	switch page {
	case "explorer", "entity", "search":
		return "org"
	case "decisions", "decision":
		return "decisions"
	case "funding", "journal", "fundingIndex":
		return "funding"
	case "transition":
		return "transition"
	case "compare":
		return "compare"
	}
	return ""
}
