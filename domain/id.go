package domain

import (
	"fmt"
	"strings"
)

// MaxIDLen is the longest id an aggregate, decision, KPI or budget period may
// have. Ids become subject tokens in the log (koers.<kind>.<id>).
const MaxIDLen = 64

// ValidID reports whether id can name an aggregate: 1 to 64 lower-case ASCII
// letters, digits, '-' or '_'. The event store reuses it to refuse ids that
// would make a bad subject.
func ValidID(id string) error {
	if id == "" {
		return &InvalidIDError{ID: id, Problem: "is empty"}
	}
	if len(id) > MaxIDLen {
		return &InvalidIDError{ID: id[:MaxIDLen] + "…", Problem: fmt.Sprintf("is longer than %d characters", MaxIDLen)}
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' {
			continue
		}
		return &InvalidIDError{ID: id, Problem: fmt.Sprintf("has %q at %d (allowed: a-z 0-9 - _)", rune(c), i)}
	}
	return nil
}

// BoardHolderPrefix marks a mandate holder that is a board: "board:<id>".
const BoardHolderPrefix = "board:"

// ValidHolder reports whether h can hold a mandate: a person id or
// "board:<id>".
func ValidHolder(h string) error {
	if id, ok := strings.CutPrefix(h, BoardHolderPrefix); ok {
		return ValidID(id)
	}
	return ValidID(h)
}

// ParseRef parses "kind:id" into a Ref with a known kind and a valid id.
func ParseRef(s string) (Ref, error) {
	k, id, ok := strings.Cut(s, ":")
	if !ok {
		return Ref{}, fmt.Errorf("ref %q: want kind:id: %w", s, ErrInvalid)
	}
	kind := AggregateKind(k)
	if !kind.Valid() {
		return Ref{}, fmt.Errorf("ref %q: unknown kind %q: %w", s, k, ErrInvalid)
	}
	if err := ValidID(id); err != nil {
		return Ref{}, fmt.Errorf("ref %q: %w", s, err)
	}
	return Ref{Kind: kind, ID: id}, nil
}

// Valid reports whether k is one of the ledger's aggregate kinds.
func (k AggregateKind) Valid() bool {
	switch k {
	case KindValueStream, KindProduct, KindTeam, KindPerson, KindProject, KindBudget, KindMandate, KindDecision, KindBoard, KindProposal:
		return true
	}
	return false
}

// Account names a funding account within a budget period: "pool",
// "valuestream:<id>", "product:<id>" or "project:<id>".
type Account string

// Pool is the unallocated money of a budget period.
const Pool Account = "pool"

// ParseAccount validates s as an account name.
func ParseAccount(s string) (Account, error) {
	if s == string(Pool) {
		return Pool, nil
	}
	k, id, ok := strings.Cut(s, ":")
	if !ok {
		return "", fmt.Errorf("account %q: want pool, valuestream:<id>, product:<id> or project:<id>: %w", s, ErrInvalid)
	}
	switch AggregateKind(k) {
	case KindValueStream, KindProduct, KindProject:
	default:
		return "", fmt.Errorf("account %q: kind %q holds no funds (want pool, valuestream, product or project): %w", s, k, ErrInvalid)
	}
	if err := ValidID(id); err != nil {
		return "", fmt.Errorf("account %q: %w", s, err)
	}
	return Account(s), nil
}

// Ref is the aggregate that owns the account; ok is false for the pool.
func (a Account) Ref() (ref Ref, ok bool) {
	k, id, found := strings.Cut(string(a), ":")
	if !found {
		return Ref{}, false
	}
	return Ref{Kind: AggregateKind(k), ID: id}, true
}

// AccountOf is the funding account of an aggregate.
func AccountOf(r Ref) Account { return Account(r.String()) }
