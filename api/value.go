package api

import (
	"net/http"

	"koers/domain"
	"koers/projections"
)

// getKPIs answers GET /v1/kpis: KPI values over time against their
// targets, of products and value streams, paged with limit and cursor.
func (s *server) getKPIs(w http.ResponseWriter, r *http.Request) error {
	p := newParams(r, s.cfg.Location, "product", "valuestream", "kpi", "from", "to", "as_of", "known_at", "limit", "cursor")
	f := projections.KPIFilter{KPI: p.id("kpi"), From: p.time("from"), To: p.time("to")}
	product, vs := p.id("product"), p.id("valuestream")
	switch {
	case product != "" && vs != "":
		p.fail("valuestream", "give product or valuestream, not both")
	case product != "":
		f.Subject = domain.Ref{Kind: domain.KindProduct, ID: product}
	case vs != "":
		f.Subject = domain.Ref{Kind: domain.KindValueStream, ID: vs}
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		p.fail("to", "is not after from")
	}
	at, page := p.at(), p.page()
	if p.err != nil {
		return p.err
	}
	out, err := s.cfg.ReadModels.KPIValues(r.Context(), f, at, page)
	if err != nil {
		return pageParam(err)
	}
	return writeJSON(w, http.StatusOK, KPIsAnswer(out))
}

// KPIsAnswer is the answer of GET /v1/kpis, which koers kpi --json prints
// too: the page as it is, an empty list as [].
func KPIsAnswer(p projections.KPIPage) projections.KPIPage {
	p.Values = nonNil(p.Values)
	return p
}

// ReviewAnswer is the answer of GET /v1/reports/review, which koers
// report review --json prints too.
func ReviewAnswer(r projections.Review) projections.Review {
	r.ValueStreams = nonNil(r.ValueStreams)
	return r
}

// getReview answers GET /v1/reports/review: the quarterly portfolio
// review.
func (s *server) getReview(w http.ResponseWriter, r *http.Request) error {
	p := newParams(r, s.cfg.Location, "quarter", "known_at")
	knownAt := p.time("known_at")
	q := p.str("quarter")
	if q == "" {
		p.fail("quarter", "is required (a quarter such as 2026-Q2)")
	} else if _, err := domain.ParseQuarter(q); err != nil {
		p.fail("quarter", "%v", err)
	}
	if p.err != nil {
		return p.err
	}
	out, err := s.cfg.ReadModels.Review(r.Context(), q, knownAt)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ReviewAnswer(out))
}
