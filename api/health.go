package api

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"sync"

	"koers/domain"
)

// health is the answer of /healthz when every dependency answers.
type health struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// The values of /healthz's check "projector".
const (
	ProjectorActive  = "active"  // this process's projector holds the lease
	ProjectorStandby = "standby" // another process's does; this one waits for it
)

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
	// A log that lost history stops the ledger's writes: the service is
	// not healthy, whatever still answers.
	if ic, ok := s.cfg.Log.(domain.IntegrityChecker); ok {
		checks["integrity"] = func(context.Context) error { return ic.Halted() }
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
	// Which process's projector writes the read models is information,
	// not health: a standby serves the API as well.
	if s.cfg.ProjectorActive != nil {
		results["projector"] = ProjectorStandby
		if s.cfg.ProjectorActive() {
			results["projector"] = ProjectorActive
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	if len(failed) == 0 {
		return writeJSON(w, http.StatusOK, health{Status: "ok", Checks: results})
	}
	sort.Strings(failed)
	writeProblem(w, &problem{Type: "unhealthy", Status: http.StatusServiceUnavailable,
		Detail: healthDetail(failed), Checks: results})
	return nil
}

// healthDetail says what failed: stores not answering, or the log's
// integrity.
func healthDetail(failed []string) string {
	var stores []string
	integrity := false
	for _, f := range failed {
		if f == "integrity" {
			integrity = true
		} else {
			stores = append(stores, f)
		}
	}
	var parts []string
	if len(stores) > 0 {
		parts = append(parts, strings.Join(stores, " and ")+" not answering")
	}
	if integrity {
		parts = append(parts, "the ledger lost integrity: writes stopped")
	}
	return strings.Join(parts, "; ")
}
