package domain

import (
	"errors"
	"fmt"
)

// KPIs belong to a product or a value stream; a change names exactly one
// of them. Their events are the subject kind's: product.kpi-defined on a
// product, valuestream.kpi-defined on a value stream, and so on.

// kpiEvent is the event type of what ("kpi-defined", …) on subject r.
func kpiEvent(r Ref, what string) string { return string(r.Kind) + "." + what }

// kpiIDs are the product and value stream fields of a KPI payload on r.
func kpiIDs(r Ref) (product, vs string) {
	if r.Kind == KindValueStream {
		return "", r.ID
	}
	return r.ID, ""
}

// kpiSubject is the active product or value stream c names.
func (k *work) kpiSubject(c Change) (Aggregate, error) {
	switch {
	case c.Product != "" && c.ValueStream != "":
		return Aggregate{}, &FieldError{Field: "valuestream", Err: errors.New("give product or valuestream, not both: a KPI belongs to one of them")}
	case c.Product != "":
		return k.active(ref(KindProduct, c.Product))
	case c.ValueStream != "":
		return k.active(ref(KindValueStream, c.ValueStream))
	}
	return Aggregate{}, &FieldError{Field: "product", Err: errors.New("give product or valuestream: whose KPI it is")}
}

// kpiOf is the defined KPI c.KPI of c's subject.
func (k *work) kpiOf(c Change) (Aggregate, KPIState, error) {
	s, err := k.kpiSubject(c)
	if err != nil {
		return s, KPIState{}, err
	}
	kpi, ok := s.kpis()[c.KPI]
	if !ok {
		return s, KPIState{}, &UnknownKPIError{Subject: s.Ref, KPI: c.KPI, Defined: sortedKeys(s.kpis())}
	}
	return s, kpi, nil
}

func (k *work) defineKPI(c Change) error {
	s, err := k.kpiSubject(c)
	if err != nil {
		return err
	}
	if _, ok := s.kpis()[c.KPI]; ok {
		return &StateError{Ref: s.Ref, Problem: fmt.Sprintf("already has KPI %q", c.KPI)}
	}
	p, vs := kpiIDs(s.Ref)
	return k.emit(s.Ref, kpiEvent(s.Ref, "kpi-defined"), KPIDefinition{Product: p, ValueStream: vs, KPI: c.KPI, Unit: c.Unit,
		Target: c.Target, Direction: orDefault(c.Direction, DirectionHigher), Category: orDefault(c.Category, KPICategories[0])})
}

func (k *work) recordKPI(c Change) error {
	s, kpi, err := k.kpiOf(c)
	if err != nil {
		return err
	}
	if c.Unit != "" && c.Unit != kpi.Unit {
		return &KPIUnitError{Subject: s.Ref, KPI: c.KPI, Unit: c.Unit, Want: kpi.Unit}
	}
	p, vs := kpiIDs(s.Ref)
	return k.emit(s.Ref, kpiEvent(s.Ref, "kpi-recorded"), KPIMeasurement{Product: p, ValueStream: vs, KPI: c.KPI,
		Value: *c.Value, Previous: kpi.Last, Note: c.Note})
}

func (k *work) setKPITarget(c Change) error {
	s, kpi, err := k.kpiOf(c)
	if err != nil {
		return err
	}
	prev := kpi.Target
	if c.Quarter != "" {
		prev = nil
		if t, ok := kpi.Targets[c.Quarter]; ok {
			prev = &t
		}
	}
	if sameDecimal(prev, c.Target) {
		what := "the default target"
		if c.Quarter != "" {
			what = "the target of " + c.Quarter
		}
		return &StateError{Ref: s.Ref, Problem: fmt.Sprintf("KPI %q: %s is %s already", c.KPI, what, decimalOrNone(prev))}
	}
	p, vs := kpiIDs(s.Ref)
	return k.emit(s.Ref, kpiEvent(s.Ref, "kpi-target-set"), KPITarget{Product: p, ValueStream: vs, KPI: c.KPI,
		Quarter: c.Quarter, Target: c.Target, Previous: prev})
}

func sameDecimal(a, b *Decimal) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Cmp(*b) == 0
}

func decimalOrNone(d *Decimal) string {
	if d == nil {
		return "none"
	}
	return d.String()
}

// undoKPI compensates a recorded KPI effect on r.
func (k *work) undoKPI(a Aggregate, typ string, v any) error {
	r := a.Ref
	if _, err := k.active(r); err != nil {
		return err
	}
	switch p := v.(type) {
	case *KPIDefinition:
		_, defined := a.kpis()[p.KPI]
		if typ == kpiEvent(r, "kpi-defined") {
			if !defined {
				return stale(r, "KPI %q is gone", p.KPI)
			}
			return k.emit(r, kpiEvent(r, "kpi-removed"), *p)
		}
		if defined {
			return stale(r, "KPI %q is defined again", p.KPI)
		}
		return k.emit(r, kpiEvent(r, "kpi-defined"), *p)
	case *KPIMeasurement:
		if typ != kpiEvent(r, "kpi-recorded") {
			return &StateError{Ref: r, Problem: typ + " cannot be undone"}
		}
		kpi, ok := a.kpis()[p.KPI]
		if !ok {
			return stale(r, "KPI %q is gone", p.KPI)
		}
		show := kpi.Last
		if kpi.Last != nil && kpi.Last.Cmp(p.Value) == 0 {
			show = p.Previous
		}
		pid, vs := kpiIDs(r)
		return k.emit(r, kpiEvent(r, "kpi-record-retracted"), KPIMeasurement{Product: pid, ValueStream: vs, KPI: p.KPI, Value: p.Value, Previous: show})
	case *KPITarget:
		kpi, ok := a.kpis()[p.KPI]
		if !ok {
			return stale(r, "KPI %q is gone", p.KPI)
		}
		cur := kpi.Target
		if p.Quarter != "" {
			cur = nil
			if t, ok := kpi.Targets[p.Quarter]; ok {
				cur = &t
			}
		}
		if !sameDecimal(cur, p.Target) {
			return stale(r, "KPI %q's target is %s now", p.KPI, decimalOrNone(cur))
		}
		return k.emit(r, typ, KPITarget{Product: p.Product, ValueStream: p.ValueStream, KPI: p.KPI, Quarter: p.Quarter,
			Target: p.Previous, Previous: p.Target})
	}
	return &StateError{Ref: r, Problem: typ + " cannot be undone"}
}
