package web

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/url"
	"strings"
	"time"

	"koers/domain"
)

// parseTemplates parses the layout with each page's template.
func (s *server) parseTemplates() error {
	loc := s.cfg.Location
	funcs := template.FuncMap{
		"link": link,
		"date": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.In(loc).Format(time.DateOnly)
		},
		"datep": func(t *time.Time) string {
			if t == nil {
				return ""
			}
			return t.In(loc).Format(time.DateOnly)
		},
		"datetime": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.In(loc).Format("2006-01-02 15:04:05")
		},
		"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"pct": func(f float64) string { return fmt.Sprintf("%.0f%%", 100*f) },
		"num": func(f float64) string { return fmt.Sprintf("%.1f", f) },
		"amount": func(m domain.Amount, cur domain.Currency) string {
			return m.Format(cur)
		},
		"journalURL": func(period, account string, c timeControls) string {
			v := url.Values{"account": {account}}
			if c.AsOf != "" {
				v.Set("as_of", c.AsOf)
			}
			if c.KnownAt != "" {
				v.Set("known_at", c.KnownAt)
			}
			return "/funding/" + url.PathEscape(period) + "/journal?" + v.Encode()
		},
		"decisionRef": func(id string) Ref { return Ref{Kind: "decision", ID: id} },
		"kindLabel":   func(k string) string { return kindLabels[k] },
		"changeKinds": func(raw []byte) string {
			return strings.Join(changeKindsOf(raw), ", ")
		},
		"subjectURL": func(r Ref) string {
			return "/decisions?subject=" + url.QueryEscape(r.Kind+":"+r.ID)
		},
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return fmt.Errorf("web: templates: %w", err)
	}
	s.pages = map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return fmt.Errorf("web: template %s: %w", base, err)
		}
		s.pages[base] = t
	}
	return nil
}

// changeKindsOf lists the kinds of a decision's changes.
func changeKindsOf(raw []byte) []string {
	var cs []struct{ Kind string }
	if err := json.Unmarshal(raw, &cs); err != nil {
		return nil
	}
	var out []string
	for _, c := range cs {
		if len(out) == 0 || out[len(out)-1] != c.Kind {
			out = append(out, c.Kind)
		}
	}
	return out
}
