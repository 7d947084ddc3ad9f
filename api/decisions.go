package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"koers/domain"
	"koers/ledger"
)

// maxIfMatchTags bounds the aggregates one If-Match may name.
const maxIfMatchTags = 100

// decisionResult is the answer to a recorded decision.
type decisionResult struct {
	ID        string   `json:"id"`
	Sequences []uint64 `json:"sequences"`
	Duplicate bool     `json:"duplicate,omitempty"`
	// State and Proposal are set when the decision is under a board's
	// mandate: it was recorded as a proposal (state pending, 202).
	State    string           `json:"state,omitempty"`
	Proposal *ledger.Proposal `json:"proposal,omitempty"`
}

func (s *server) postDecision(w http.ResponseWriter, r *http.Request) error {
	p := newParams(r, s.cfg.Location, "expires")
	var ttl time.Duration
	if v := p.str("expires"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < domain.MinProposalTTL || d > domain.MaxProposalTTL {
			p.fail("expires", "%.20q: want a duration from %s to %s, like 72h", v, domain.MinProposalTTL, domain.MaxProposalTTL)
		}
		ttl = d
	}
	if p.err != nil {
		return p.err
	}
	if err := jsonBody(r); err != nil {
		return err
	}
	expect, err := parseIfMatch(r.Header.Values("If-Match"))
	if err != nil {
		return err
	}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return &http.MaxBytesError{Limit: s.cfg.MaxBodyBytes}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		return fmt.Errorf("read decision: %w", err)
	}
	if !json.Valid(body) {
		var v any
		return &malformedError{err: json.Unmarshal(body, &v)}
	}
	if caller, ok := r.Context().Value(callerKey{}).(string); ok {
		if err := checkBy(caller, body); err != nil {
			return err
		}
	}
	opts := []ledger.HandleOption{ledger.Expires(ttl)}
	if expect != nil {
		opts = append(opts, ledger.ExpectVersions(expect))
	}
	start := time.Now()
	res, err := s.cfg.Ledger.Submit(r.Context(), body, opts...)
	s.metrics.observeAppend(time.Since(start), res, err)
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if res.Duplicate {
		status = http.StatusOK
	}
	out := decisionResult{ID: res.DecisionID, Sequences: res.Sequences, Duplicate: res.Duplicate, State: res.State, Proposal: res.Proposal}
	if res.Proposal != nil {
		// Accepted, not decided: the board's members decide it.
		if out.Sequences == nil {
			out.Sequences = []uint64{}
		}
		w.Header().Set("Location", "/v1/proposals/"+res.DecisionID)
		return writeJSON(w, http.StatusAccepted, out)
	}
	w.Header().Set("Location", "/v1/decisions/"+res.DecisionID)
	return writeJSON(w, status, out)
}

// jsonBody refuses a request whose body is not declared JSON: a body
// without Content-Type is refused too (415), so that a form or a file sent
// by mistake is never read as a decision.
func jsonBody(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return &mediaTypeError{got: ct}
	}
	return nil
}

// parseIfMatch reads If-Match entity tags "kind:id@version", comma
// separated, over any number of header lines. No header: nil.
func parseIfMatch(lines []string) (map[domain.Ref]uint64, error) {
	if len(lines) == 0 {
		return nil, nil
	}
	bad := func(format string, a ...any) error {
		return &ParameterError{Name: "If-Match", Problem: fmt.Sprintf(format, a...)}
	}
	expect := map[domain.Ref]uint64{}
	for _, line := range lines {
		for _, tag := range strings.Split(line, ",") {
			tag = strings.TrimSpace(tag)
			switch {
			case tag == "":
				continue
			case tag == "*":
				return nil, bad(`"*" is not supported: name each aggregate as "kind:id@version"`)
			case strings.HasPrefix(tag, "W/"):
				return nil, bad("weak entity tag %s: If-Match compares strong tags only", tag)
			case len(tag) < 2 || tag[0] != '"' || tag[len(tag)-1] != '"':
				return nil, bad(`entity tag %.80s: want a quoted "kind:id@version"`, tag)
			}
			ref, version, err := parseETag(tag[1 : len(tag)-1])
			if err != nil {
				return nil, bad("%v", err)
			}
			if v, ok := expect[ref]; ok && v != version {
				return nil, bad("%s named at versions %d and %d", ref, v, version)
			}
			expect[ref] = version
			if len(expect) > maxIfMatchTags {
				return nil, bad("more than %d aggregates", maxIfMatchTags)
			}
		}
	}
	if len(expect) == 0 {
		return nil, bad("no entity tag")
	}
	return expect, nil
}

func parseETag(s string) (domain.Ref, uint64, error) {
	r, v, ok := strings.Cut(s, "@")
	if !ok {
		return domain.Ref{}, 0, fmt.Errorf("entity tag %.80q: want kind:id@version", s)
	}
	ref, err := domain.ParseRef(r)
	if err != nil {
		return domain.Ref{}, 0, err
	}
	version, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return domain.Ref{}, 0, fmt.Errorf("entity tag %.80q: version %.20q is not a whole number", s, v)
	}
	return ref, version, nil
}

func etag(ref domain.Ref, version uint64) string {
	return fmt.Sprintf(`"%s@%d"`, ref, version)
}

// aggregateVersion is the answer of GET /v1/aggregates/{kind}/{id}.
type aggregateVersion struct {
	Kind    string `json:"kind"`
	ID      string `json:"id"`
	Version uint64 `json:"version"`
	Events  int    `json:"events"`
	ETag    string `json:"etag"`
}

func (s *server) getAggregate(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	ref, err := pathRef(r)
	if err != nil {
		return err
	}
	h, err := s.cfg.Log.Load(r.Context(), ref)
	if err != nil {
		return err
	}
	if h.Version == 0 {
		return fmt.Errorf("%s: %w (If-Match %s expects that it still does not)", ref, domain.ErrNotFound, etag(ref, 0))
	}
	tag := etag(ref, h.Version)
	w.Header().Set("ETag", tag)
	return writeJSON(w, http.StatusOK, aggregateVersion{Kind: string(ref.Kind), ID: ref.ID, Version: h.Version, Events: len(h.Events), ETag: tag})
}

func (s *server) getDecision(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := domain.ValidID(id); err != nil {
		return &ParameterError{Name: "id", Problem: err.Error()}
	}
	d, err := s.cfg.ReadModels.Decision(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, decisionOut(d))
}

// pathRef reads {kind} and {id} from the path.
func pathRef(r *http.Request) (domain.Ref, error) {
	kind := domain.AggregateKind(r.PathValue("kind"))
	if !kind.Valid() {
		return domain.Ref{}, &ParameterError{Name: "kind", Problem: fmt.Sprintf("unknown aggregate kind %.40q", kind)}
	}
	id := r.PathValue("id")
	if err := domain.ValidID(id); err != nil {
		return domain.Ref{}, &ParameterError{Name: "id", Problem: err.Error()}
	}
	return domain.Ref{Kind: kind, ID: id}, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode answer: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// Headers are out: when the client went away mid-answer there is
	// nothing left to tell it.
	_, _ = w.Write(append(b, '\n'))
	return nil
}

var errNoQuery = errors.New("takes no parameters")

func noQuery(r *http.Request) error {
	for name := range r.URL.Query() {
		return &ParameterError{Name: name, Problem: errNoQuery.Error()}
	}
	return nil
}
