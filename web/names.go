package web

import (
	"context"
	"fmt"
	"html/template"
	"net/url"
	"strings"

	"koers/domain"
	"koers/projections"
)

// maxOrgPages bounds how many pages of the organisation one request reads
// (each of projections.MaxPageLimit entries): the demo's fits in one.
const maxOrgPages = 10

// wholeOrg reads the organisation at at, page after page, at most
// maxOrgPages; Truncated says whether there was more.
type wholeOrg struct {
	projections.Organisation
	Truncated bool
}

func (s *server) org(ctx context.Context, at projections.At) (wholeOrg, error) {
	var out wholeOrg
	pg := projections.Page{Limit: projections.MaxPageLimit}
	for i := 0; i < maxOrgPages; i++ {
		o, err := s.rm.Organisation(ctx, at, pg)
		if err != nil {
			return wholeOrg{}, fmt.Errorf("organisation: %w", err)
		}
		if i == 0 {
			out.Organisation = o
		} else {
			out.ValueStreams = append(out.ValueStreams, o.ValueStreams...)
			out.Teams = append(out.Teams, o.Teams...)
			out.Projects = append(out.Projects, o.Projects...)
			out.Unassigned = append(out.Unassigned, o.Unassigned...)
		}
		if o.Next == "" {
			out.Next = ""
			return out, nil
		}
		pg.Cursor = o.Next
	}
	out.Truncated = true
	return out, nil
}

// names holds the names of what an organisation holds, by "kind:id".
type names map[string]string

func namesOf(o projections.Organisation) names {
	n := names{}
	for _, vs := range o.ValueStreams {
		n["valuestream:"+vs.ID] = vs.Name
		for _, p := range vs.Products {
			n["product:"+p.ID] = p.Name
		}
	}
	for _, t := range o.Teams {
		n["team:"+t.ID] = t.Name
		for _, m := range t.Members {
			n["person:"+m.ID] = m.Name
		}
	}
	for _, p := range o.Unassigned {
		n["person:"+p.ID] = p.Name
	}
	for _, p := range o.Projects {
		n["project:"+p.ID] = p.Name
	}
	return n
}

// Ref is what templates link to: an aggregate with its name, when known.
type Ref struct {
	Kind, ID, Name string
}

// Ref returns the link to kind:id with its name.
func (n names) Ref(kind, id string) Ref { return Ref{Kind: kind, ID: id, Name: n[kind+":"+id]} }

// Account returns the link to the aggregate an account belongs to; the
// pool has none.
func (n names) Account(account string) Ref {
	kind, id, ok := strings.Cut(account, ":")
	if !ok {
		return Ref{Kind: account, ID: account, Name: accountLabel(account)}
	}
	return n.Ref(kind, id)
}

func accountLabel(account string) string {
	switch {
	case account == string(domain.Pool):
		return "unallocated pool"
	case strings.HasPrefix(account, "budget:"):
		return "budget total"
	}
	return account
}

// paths of the aggregate pages by kind.
var kindPaths = map[string]string{
	string(domain.KindValueStream): "valuestreams",
	string(domain.KindProduct):     "products",
	string(domain.KindTeam):        "teams",
	string(domain.KindPerson):      "people",
	string(domain.KindProject):     "projects",
	string(domain.KindMandate):     "mandates",
	string(domain.KindDecision):    "decisions",
}

var kindLabels = map[string]string{
	string(domain.KindValueStream): "value stream",
	string(domain.KindProduct):     "product",
	string(domain.KindTeam):        "team",
	string(domain.KindPerson):      "person",
	string(domain.KindProject):     "project",
	string(domain.KindMandate):     "mandate",
	string(domain.KindDecision):    "decision",
	string(domain.KindBudget):      "budget",
}

// URL is the page of r; "" when it has none.
func (r Ref) URL() string {
	p, ok := kindPaths[r.Kind]
	if !ok || r.ID == "" {
		return ""
	}
	return "/" + p + "/" + url.PathEscape(r.ID)
}

// Label is the name, or the id when the name is not known.
func (r Ref) Label() string {
	if r.Name != "" {
		return r.Name
	}
	return r.ID
}

// link renders a Ref as a link with its id beside its name.
func link(r Ref) template.HTML {
	esc := template.HTMLEscapeString
	if r.ID == "" {
		return "—"
	}
	label := esc(r.Label())
	if r.Name != "" && r.Name != r.ID {
		label += ` <span class="id">` + esc(r.ID) + `</span>`
	}
	u := r.URL()
	if u == "" {
		return template.HTML(label)
	}
	return template.HTML(`<a href="` + esc(u) + `" data-ref="` + esc(r.Kind+":"+r.ID) + `">` + label + `</a>`)
}
