package ledger_test

import (
	"context"
	"fmt"
	"testing"

	"koers/internal/ledgertest"
)

// BenchmarkSubmitPersonMove: one single-change decision through the whole
// stack — decode, load, decide, append (an atomic batch with the record).
func BenchmarkSubmitPersonMove(b *testing.B) {
	l := ledgertest.New(b)
	l.Submit(b, org)
	teams := []string{"t-core", "t-edge"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		d := fmt.Sprintf(`{"by":"p-root","authority":"root","reason":"bench","changes":[{"kind":"person.move","person":"p-1","to":%q}]}`, teams[(i+1)%2])
		if _, err := l.Handler.Submit(context.Background(), []byte(d)); err != nil {
			b.Fatal(err)
		}
	}
}
