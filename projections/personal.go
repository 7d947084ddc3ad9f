package projections

import (
	"context"
	"encoding/json"
	"fmt"

	"koers/domain"
)

// Names opens the sealed names of people (see domain/personal.go): the
// read models hold names in clear, so that queries and reporting views
// need no key, until the person is erased.
type Names interface {
	// Open returns the plain name of a sealed (or plain) name, or
	// domain.ErasedLabel for an erased person; a missing key of a person
	// not erased is an error.
	Open(ctx context.Context, person, name string) (string, error)
	// Erase destroys the person's data key; again is not an error.
	Erase(ctx context.Context, person string) error
}

func (a *applier) openName(person, name string) (string, error) {
	if a.names == nil {
		return name, nil
	}
	n, err := a.names.Open(a.w.ctx, person, name)
	if err != nil {
		return "", fmt.Errorf("name of %s: %w", person, err)
	}
	return n, nil
}

// openChanges returns changes with the names of people opened.
func (a *applier) openChanges(changes []domain.Change) ([]domain.Change, error) {
	if a.names == nil {
		return changes, nil
	}
	return domain.WithNames(changes, func(p domain.PersonalName) (string, error) {
		return a.openName(p.Person, p.Name)
	})
}

// openDecision returns a decision's changes and effects as JSON with the
// names of people opened: decoded into the domain's changes and effects,
// opened, encoded again.
func (a *applier) openDecision(p *recordedDecision) (changes, effects string, err error) {
	var cs []domain.Change
	if len(p.Changes) > 0 {
		if err := json.Unmarshal(p.Changes, &cs); err != nil {
			return "", "", fmt.Errorf("decision %s: changes: %w", p.ID, err)
		}
	}
	var es []domain.Effect
	if len(p.Effects) > 0 {
		if err := json.Unmarshal(p.Effects, &es); err != nil {
			return "", "", fmt.Errorf("decision %s: effects: %w", p.ID, err)
		}
	}
	if cs, err = a.openChanges(cs); err != nil {
		return "", "", err
	}
	if es, err = domain.EffectsWithNames(es, a.openName); err != nil {
		return "", "", err
	}
	cb, err := json.Marshal(cs)
	if err != nil {
		return "", "", err
	}
	eb, err := json.Marshal(es)
	if err != nil {
		return "", "", err
	}
	return string(cb), string(eb), nil
}

// erase applies person.erased: the person's data key is destroyed (again,
// if the ledger did it already: this repairs a crash between the append
// and the key's destruction), and every row that held the name — each
// version of the person's name fact, the decisions and proposals whose
// changes named them — now shows domain.ErasedLabel. Decisions, counts and
// history stay; only the name goes.
func (a *applier) erase(person string) error {
	if a.names != nil {
		if err := a.names.Erase(a.w.ctx, person); err != nil {
			return fmt.Errorf("erase %s: %w", person, err)
		}
	}
	label := domain.ErasedLabel(person)
	// Rows held in the batch (the join may be in it) are written first.
	if err := a.w.flush(); err != nil {
		return err
	}
	if err := a.w.exec(`UPDATE facts SET value = $2 WHERE kind = 'person' AND id = $1 AND attr = 'name'`, person, label); err != nil {
		return fmt.Errorf("erase name facts of %s: %w", person, err)
	}
	joined, err := json.Marshal([]map[string]string{{"kind": domain.ChangePersonJoin, "id": person}})
	if err != nil {
		return err
	}
	relabel := func(changes []domain.Change) ([]domain.Change, error) {
		return domain.WithNames(changes, func(p domain.PersonalName) (string, error) {
			if p.Person == person {
				return label, nil
			}
			return p.Name, nil
		})
	}
	type decisionRow struct {
		Changes []domain.Change `json:"changes"`
		Effects []domain.Effect `json:"effects"`
	}
	if err := a.rewrite(`SELECT id, jsonb_build_object('changes', changes, 'effects', effects) FROM decisions WHERE changes @> $1::jsonb`, string(joined),
		`UPDATE decisions SET changes = ($2::jsonb)->'changes', effects = ($2::jsonb)->'effects' WHERE id = $1`, func(raw []byte) ([]byte, error) {
			var d decisionRow
			if err := json.Unmarshal(raw, &d); err != nil {
				return nil, err
			}
			var err error
			if d.Changes, err = relabel(d.Changes); err != nil {
				return nil, err
			}
			if d.Effects, err = domain.EffectsWithNames(d.Effects, func(p, name string) (string, error) {
				if p == person {
					return label, nil
				}
				return name, nil
			}); err != nil {
				return nil, err
			}
			return json.Marshal(d)
		}); err != nil {
		return fmt.Errorf("erase %s from decisions: %w", person, err)
	}
	inProposal, err := json.Marshal(map[string]any{"changes": json.RawMessage(joined)})
	if err != nil {
		return err
	}
	if err := a.rewrite(`SELECT id, decision FROM proposals WHERE decision @> $1::jsonb`, string(inProposal),
		`UPDATE proposals SET decision = $2 WHERE id = $1`, func(raw []byte) ([]byte, error) {
			var d domain.Decision
			if err := json.Unmarshal(raw, &d); err != nil {
				return nil, err
			}
			if d.Changes, err = relabel(d.Changes); err != nil {
				return nil, err
			}
			return json.Marshal(d)
		}); err != nil {
		return fmt.Errorf("erase %s from proposals: %w", person, err)
	}
	return nil
}

// maxNamedRows bounds the rows one erasure rewrites: a person joins once,
// so the decisions (and proposals) naming them are few.
const maxNamedRows = 1000

// rewrite selects (id, json) rows with sel, passes each json through f
// and writes it back with upd.
func (a *applier) rewrite(sel, arg, upd string, f func([]byte) ([]byte, error)) error {
	rows, err := a.w.query(sel, arg)
	if err != nil {
		return err
	}
	type row struct {
		id  string
		raw []byte
	}
	var found []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.raw); err != nil {
			rows.Close()
			return err
		}
		if len(found) == maxNamedRows {
			rows.Close()
			return fmt.Errorf("more than %d rows name the person", maxNamedRows)
		}
		found = append(found, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, r := range found {
		out, err := f(r.raw)
		if err != nil {
			return fmt.Errorf("row %s: %w", r.id, err)
		}
		if err := a.w.exec(upd, r.id, string(out)); err != nil {
			return err
		}
	}
	return nil
}
