package api

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
)

// health is the answer of /healthz when every dependency answers.
type health struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// getHealth asks NATS (the stream's last sequence) and PostgreSQL (the
// checkpoint) at once, each within CheckTimeout.
func (s *server) getHealth(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	checks := map[string]func(context.Context) error{
		"nats": func(ctx context.Context) error {
			_, err := s.cfg.Log.LastSequence(ctx)
			return err
		},
		"postgresql": func(ctx context.Context) error {
			_, err := s.cfg.ReadModels.Checkpoint(ctx)
			return err
		},
	}
	results := make(map[string]string, len(checks))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, check := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(r.Context(), s.cfg.CheckTimeout)
			defer cancel()
			res := "ok"
			if err := check(ctx); err != nil {
				res = oneLine(err.Error())
			}
			mu.Lock()
			results[name] = res
			mu.Unlock()
		}()
	}
	wg.Wait()
	var failed []string
	for name, res := range results {
		if res != "ok" {
			failed = append(failed, name)
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	if len(failed) == 0 {
		return writeJSON(w, http.StatusOK, health{Status: "ok", Checks: results})
	}
	sort.Strings(failed)
	writeProblem(w, &problem{Type: "unhealthy", Status: http.StatusServiceUnavailable,
		Detail: fmt.Sprintf("%s not answering", strings.Join(failed, " and ")), Checks: results})
	return nil
}
