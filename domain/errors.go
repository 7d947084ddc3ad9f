package domain

import "errors"

// ErrConflict is returned when an aggregate changed between the moment a
// decision read it and the moment its events were appended (the expected
// version no longer matches). The command handler re-reads and re-decides a
// bounded number of times; callers beyond it should reload and try again.
var ErrConflict = errors.New("conflict: the aggregate changed since it was read")

// ErrNotFound is returned when a referenced aggregate, decision or event
// does not exist in the ledger.
var ErrNotFound = errors.New("not found")
