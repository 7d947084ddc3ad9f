package eventstore

import "koers/domain"

// The store's results are the domain's types (domain/log.go): the packages
// that read or write the log name them in the domain's terms, never the
// store's. These names let the store's own code read as it did.
type (
	// History is [domain.History].
	History = domain.History
	// Cursor is [domain.Cursor].
	Cursor = domain.Cursor
	// AppendResult is [domain.AppendResult].
	AppendResult = domain.AppendResult
)

// The store is the log of the domain's contract.
var _ domain.LogReader = (*Store)(nil)

// Ledger is the name of the ledger the store holds: its stream's name.
func (s *Store) Ledger() string { return s.cfg.Stream }
