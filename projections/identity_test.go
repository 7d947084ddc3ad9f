package projections

import (
	"context"
	"errors"
	"testing"
)

func TestReadModelsOfOneLedgerRefuseAnotherLedgersEvents(t *testing.T) {
	a, b := newLog(t), newLog(t)
	a.play(t, script...)
	b.play(t, bootstrap)
	ctx := context.Background()
	idA, err := IdentityOf(ctx, a.st)
	if err != nil {
		t.Fatal(err)
	}
	idB, err := IdentityOf(ctx, b.st)
	if err != nil {
		t.Fatal(err)
	}
	if idA.IsZero() || idB.IsZero() || idA.Same(idB) || idA.Stream != "KOERS" {
		t.Fatalf("identities of two ledgers: %v and %v, want two different ones", idA, idB)
	}

	db := newDB(t)
	if have, err := db.LedgerIdentity(ctx); err != nil || !have.IsZero() {
		t.Fatalf("identity of empty read models: %v, %v", have, err)
	}
	if err := db.CheckLedger(ctx, b.st); err != nil {
		t.Fatalf("empty read models refuse a ledger: %v", err)
	}
	catchUp(t, db, a.st)
	have, err := db.LedgerIdentity(ctx)
	if err != nil || have != idA {
		t.Fatalf("identity recorded with the checkpoint: %+v, %v; want %+v", have, err, idA)
	}
	if err := db.CheckLedger(ctx, a.st); err != nil {
		t.Fatalf("check against its own ledger: %v", err)
	}
	before := dump(t, db)

	var mismatch *LedgerMismatchError
	if err := db.CheckLedger(ctx, b.st); !errors.As(err, &mismatch) || mismatch.Have != idA || mismatch.Want != idB {
		t.Fatalf("check against another ledger: %v, want a *LedgerMismatchError{Have: A, Want: B}", err)
	}
	err = newProjector(t, db, b.st, ProjectorOptions{}).Run(ctx)
	if !errors.As(err, &mismatch) || mismatch.Have != idA || mismatch.Want != idB {
		t.Fatalf("projector of another ledger: %v, want a *LedgerMismatchError", err)
	}

	// The check under the checkpoint's lock refuses too, whatever the
	// sequences: here B's genesis would be skipped as applied already.
	units := unitsOf(t, b.st)
	if _, err := db.apply(ctx, units, LedgerIdentity{}, nil); !errors.As(err, &mismatch) {
		t.Fatalf("batch holding another ledger's sequence 1: %v, want a *LedgerMismatchError", err)
	}
	if _, err := db.apply(ctx, units[1:], idB, nil); !errors.As(err, &mismatch) {
		t.Fatalf("batch of another ledger: %v, want a *LedgerMismatchError", err)
	}
	if got := dump(t, db); got != before {
		t.Fatalf("refused batches changed the read models:\n%s\nwant:\n%s", got, before)
	}

	// A rebuild replaces read models of another ledger, even further ahead.
	if err := db.Rebuild(ctx, b.st, ProjectorOptions{}, nil); err != nil {
		t.Fatal(err)
	}
	if have, err := db.LedgerIdentity(ctx); err != nil || !have.Same(idB) {
		t.Fatalf("identity after rebuilding from B: %v, %v", have, err)
	}
	clean := newDB(t)
	catchUp(t, clean, b.st)
	if got, want := dump(t, db), dump(t, clean); got != want {
		t.Fatalf("rebuilt from another ledger:\n%s\nwant:\n%s", got, want)
	}
}
