package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"koers/domain"
	"koers/projections"
)

// auditPageSize is the decision trail's page.
const auditPageSize = 50

type auditData struct {
	Filter struct {
		By, Authority, Kind, Subject, From, To, Axis string
	}
	Kinds     []string
	Decisions []projections.Decision
	Names     names
	Next      string // the URL of the next page; "" on the last
	First     bool
}

func (s *server) decisions(w http.ResponseWriter, r *http.Request) error {
	q := s.query(r)
	d := auditData{Kinds: domain.ChangeKinds()}
	f := projections.AuditFilter{Limit: auditPageSize}
	d.Filter.By, d.Filter.Authority = q.id("by"), q.id("authority")
	f.Actor, f.Mandate = d.Filter.By, d.Filter.Authority
	d.Filter.Kind = q.str("kind")
	if d.Filter.Kind != "" && !slices.Contains(d.Kinds, d.Filter.Kind) {
		q.fail("kind", "unknown change kind %q", d.Filter.Kind)
	}
	f.ChangeKind = d.Filter.Kind
	if d.Filter.Subject = q.str("subject"); d.Filter.Subject != "" {
		ref, err := domain.ParseRef(d.Filter.Subject)
		if err != nil {
			q.fail("subject", "%v (want kind:id, e.g. person:p-0042)", err)
		}
		f.Aggregate = ref.String()
	}
	f.From, f.To = q.date("from"), q.date("to")
	d.Filter.From, d.Filter.To = q.str("from"), q.str("to")
	switch d.Filter.Axis = q.str("axis"); d.Filter.Axis {
	case "", "recorded":
		f.Axis = projections.Recorded
	case "effective":
		f.Axis = projections.Effective
	default:
		q.fail("axis", "want recorded or effective")
	}
	f.Before = q.uint("before", 1<<63-1)
	d.First = f.Before == 0
	if q.err != nil {
		return q.err
	}
	page, err := s.rm.Audit(r.Context(), f)
	if err != nil {
		return err
	}
	o, err := s.org(r.Context(), projections.At{})
	if err != nil {
		return err
	}
	d.Decisions, d.Names = page.Decisions, namesOf(o.Organisation)
	if page.Next != 0 {
		next := r.URL.Query()
		next.Set("before", strconv.FormatUint(page.Next, 10))
		d.Next = "/decisions?" + next.Encode()
	}
	return s.render(w, r, http.StatusOK, "decisions", "Decisions", d)
}

// changeView is one change of a decision, its kind and fields.
type changeView struct {
	Kind   string
	Fields []field
}

type field struct {
	Name, Value string
	Ref         *Ref
}

// effectView is one event a decision produced.
type effectView struct {
	Aggregate Ref
	Type      string
	Data      string
}

type decisionData struct {
	D           projections.Decision
	Names       names
	Actor       Ref
	Chain       []mandateLink
	Refs        []refLink
	Changes     []changeView
	Effects     []effectView
	Retracts    string
	RetractedBy string
}

type refLink struct {
	Text string
	URL  string // "" when it is not a web address
}

// changeFieldRefs says which fields of a change name aggregates.
var changeFieldRefs = map[string]string{
	"person": "person", "owner": "person", "holder": "person", "by": "person",
	"team": "team", "to": "team", "product": "product", "valuestream": "valuestream",
	"project": "project", "mandate": "mandate", "decision": "decision",
}

func (s *server) decision(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := domain.ValidID(id); err != nil {
		return notFoundError("no such decision: " + err.Error())
	}
	dec, err := s.rm.Decision(r.Context(), id)
	if errors.Is(err, domain.ErrNotFound) {
		return notFoundError("the ledger has no decision " + id)
	}
	if err != nil {
		return err
	}
	o, err := s.org(r.Context(), projections.At{})
	if err != nil {
		return err
	}
	n := namesOf(o.Organisation)
	d := decisionData{D: dec, Names: n, Actor: n.Ref("person", dec.Actor), Retracts: dec.Retracts, RetractedBy: dec.RetractedBy}
	if d.Chain, err = s.chain(r.Context(), dec.Mandate, time.Time{}); err != nil {
		return err
	}
	for _, ref := range dec.Refs {
		l := refLink{Text: ref}
		if u, err := url.Parse(ref); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
			l.URL = u.String()
		}
		d.Refs = append(d.Refs, l)
	}
	d.Changes = changesOf(dec.Changes, n)
	for _, e := range dec.Effects {
		var pretty bytes.Buffer
		if json.Indent(&pretty, e.Data, "", "  ") != nil {
			pretty.Reset()
			pretty.Write(e.Data)
		}
		kind, aid, _ := strings.Cut(e.Aggregate, ":")
		d.Effects = append(d.Effects, effectView{Aggregate: n.Ref(kind, aid), Type: e.Type, Data: pretty.String()})
	}
	return s.render(w, r, http.StatusOK, "decision", "Decision "+dec.ID, d)
}

// changesOf lays the public format's changes out as fields; a field that
// names an aggregate links to it.
func changesOf(raw json.RawMessage, n names) []changeView {
	var cs []map[string]any
	if json.Unmarshal(raw, &cs) != nil {
		return []changeView{{Kind: "(unreadable)", Fields: []field{{Name: "changes", Value: string(raw)}}}}
	}
	out := make([]changeView, 0, len(cs))
	for _, c := range cs {
		kind, _ := c["kind"].(string)
		v := changeView{Kind: kind}
		for _, k := range sortedKeys(c) {
			if k == "kind" {
				continue
			}
			f := field{Name: k}
			switch val := c[k].(type) {
			case string:
				f.Value = val
			default:
				b, _ := json.Marshal(val)
				f.Value = string(b)
			}
			target := changeFieldRefs[k]
			if k == "to" && strings.HasPrefix(kind, "funding.") || k == "from" {
				target = ""
			}
			if k == "id" {
				target = idKinds[strings.SplitN(kind, ".", 2)[0]]
			}
			if target != "" && domain.ValidID(f.Value) == nil {
				rf := n.Ref(target, f.Value)
				f.Ref = &rf
			}
			v.Fields = append(v.Fields, f)
		}
		out = append(out, v)
	}
	return out
}

// idKinds: the aggregate a change's id field names, by the change kind's
// first word.
var idKinds = map[string]string{
	"valuestream": "valuestream", "product": "product", "team": "team", "person": "person",
	"project": "project", "mandate": "mandate",
}
