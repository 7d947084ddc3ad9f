package api

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"koers/domain"
	"koers/ledger"
	"koers/projections"
)

// maxActionBytes bounds the body of an action on a proposal.
const maxActionBytes = 16 << 10

// actionBody is the body of POST /v1/proposals/{id}/approve, /reject and
// /withdraw.
type actionBody struct {
	By        string `json:"by"`
	Reason    string `json:"reason"`
	Signature string `json:"signature"`
}

// actionResult answers an action: the proposal after it, and the
// decision's sequences when the approval completed the quorum (state
// decided) or the refusal's reason (state refused).
type actionResult struct {
	ID        string           `json:"id"`
	State     string           `json:"state"`
	Sequences []uint64         `json:"sequences"`
	Proposal  *ledger.Proposal `json:"proposal"`
}

func (s *server) postApprove(w http.ResponseWriter, r *http.Request) error {
	return s.act(w, r, domain.ActionApprove)
}

func (s *server) postReject(w http.ResponseWriter, r *http.Request) error {
	return s.act(w, r, domain.ActionReject)
}

func (s *server) postWithdraw(w http.ResponseWriter, r *http.Request) error {
	return s.act(w, r, domain.ActionWithdraw)
}

func (s *server) act(w http.ResponseWriter, r *http.Request, kind string) error {
	if err := noQuery(r); err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := domain.ValidID(id); err != nil {
		return &ParameterError{Name: "id", Problem: err.Error()}
	}
	if err := jsonBody(r); err != nil {
		return err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxActionBytes))
	if err != nil {
		return fmt.Errorf("read action: %w", err)
	}
	var b actionBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return actionBodyError(body, err)
	}
	if caller, ok := r.Context().Value(callerKey{}).(string); ok && b.By != caller {
		return &impersonationError{caller: caller, by: b.By}
	}
	a := domain.Action{Proposal: id, Kind: kind, By: b.By, Reason: b.Reason}
	if b.Signature != "" {
		sig, err := hex.DecodeString(b.Signature)
		if err != nil || len(sig) != ed25519.SignatureSize {
			return &domain.FieldError{Field: "signature", Err: fmt.Errorf("want %d hex digits (an Ed25519 signature)", 2*ed25519.SignatureSize)}
		}
		a.Signature = sig
	}
	res, err := s.cfg.Ledger.Act(r.Context(), a)
	var nf *domain.NotFoundError
	if errors.As(err, &nf) && nf.Ref.Kind == domain.KindProposal {
		return &proposalNotFound{err: err}
	}
	if err != nil {
		return err
	}
	seqs := res.Sequences
	if seqs == nil {
		seqs = []uint64{}
	}
	if res.State == domain.ProposalDecided {
		w.Header().Set("Location", "/v1/decisions/"+res.DecisionID)
	}
	return writeJSON(w, http.StatusOK, actionResult{ID: id, State: res.State, Sequences: seqs, Proposal: res.Proposal})
}

// actionBodyError says in the API's words, never in encoding/json's (which
// name Go types), what is wrong with an action's body: 400 when it is not
// JSON, 422 when it is JSON but not {"by", "reason"}.
func actionBodyError(body []byte, err error) error {
	if !json.Valid(body) {
		var v any
		return &malformedError{err: json.Unmarshal(body, &v)}
	}
	var te *json.UnmarshalTypeError
	msg := `want a JSON object {"by", "reason"}`
	switch {
	case errors.As(err, &te) && te.Field != "":
		msg = fmt.Sprintf("%.40s: want a string, got %s", te.Field, te.Value)
	case errors.As(err, &te):
		msg = fmt.Sprintf("want a JSON object, got %s", te.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		msg = fmt.Sprintf("unknown member %.60s: want by and reason only", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return fmt.Errorf("action: %s: %w", msg, domain.ErrInvalid)
}

// proposalNotFound is an action on a proposal that does not exist: 404,
// where a decision naming a missing aggregate is refused (409).
type proposalNotFound struct{ err error }

func (e *proposalNotFound) Error() string { return e.err.Error() }
func (e *proposalNotFound) Unwrap() error { return domain.ErrNotFound }

func (s *server) getProposals(w http.ResponseWriter, r *http.Request) error {
	p := newParams(r, s.cfg.Location, "state", "before", "limit")
	f := projections.ProposalFilter{State: p.str("state"), Now: s.cfg.Now(), Before: p.uint("before", 1<<63-1),
		Limit: int(p.uint("limit", projections.MaxProposalLimit))}
	if f.State != "" && !slices.Contains(domain.ProposalStates, f.State) {
		p.fail("state", "%.20q: want one of %s", f.State, strings.Join(domain.ProposalStates, ", "))
	}
	if p.q.Has("limit") && f.Limit == 0 {
		p.fail("limit", "want 1 to %d", projections.MaxProposalLimit)
	}
	if p.err != nil {
		return p.err
	}
	page, err := s.cfg.ReadModels.Proposals(r.Context(), f)
	if err != nil {
		return err
	}
	if page.Proposals == nil {
		page.Proposals = []projections.ProposalView{}
	}
	return writeJSON(w, http.StatusOK, page)
}

func (s *server) getProposal(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := domain.ValidID(id); err != nil {
		return &ParameterError{Name: "id", Problem: err.Error()}
	}
	p, err := s.cfg.ReadModels.Proposal(r.Context(), id, s.cfg.Now())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}

// mandatesOut is the answer of GET /v1/mandates.
type mandatesOut struct {
	Mandates []projections.Mandate `json:"mandates"`
}

func (s *server) getMandates(w http.ResponseWriter, r *http.Request) error {
	p := newParams(r, s.cfg.Location, "holder", "as_of", "known_at")
	f := projections.MandateFilter{Holder: p.str("holder"), At: p.at()}
	if f.Holder != "" {
		if err := domain.ValidHolder(f.Holder); err != nil {
			p.fail("holder", "%v", err)
		}
	}
	if p.err != nil {
		return p.err
	}
	ms, err := s.cfg.ReadModels.Mandates(r.Context(), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, mandatesOut{Mandates: nonNil(ms)})
}
