package eventstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"koers/domain"
	"koers/eventstore"
)

// The store speaks the domain's contract: a forged message is a
// *domain.RejectedError wrapping domain.ErrRejected, and a server that is
// gone is a *domain.LogError wrapping domain.ErrLogUnavailable, with no
// NATS type in the chain.
func TestReadErrorsAreTheDomains(t *testing.T) {
	srv, js := server(t, t.TempDir())
	st := openStore(t, js, func(c *eventstore.Config) { c.Timeout = 200 * time.Millisecond })
	if st.Ledger() != "KOERS" {
		t.Fatalf("ledger %q, want the stream's name KOERS", st.Ledger())
	}
	p := person("p-1")
	mustAppend(t, st, meta("d-1"), map[domain.Ref]uint64{p: 0}, event(p, "person.renamed", nil))
	ack, err := js.Publish(context.Background(), "koers.person.p-1", []byte(`{"v":1}`))
	if err != nil {
		t.Fatal(err)
	}
	var rejected []uint64
	for _, err := range st.Read(context.Background(), 1, domain.ReadOptions{Until: ack.Sequence}) {
		if err == nil {
			continue
		}
		var rej *domain.RejectedError
		if !errors.As(err, &rej) || !errors.Is(err, domain.ErrRejected) {
			t.Fatalf("read: %v, want a *domain.RejectedError", err)
		}
		rejected = append(rejected, rej.Sequence)
	}
	if len(rejected) != 1 || rejected[0] != ack.Sequence {
		t.Fatalf("rejected %v, want [%d]", rejected, ack.Sequence)
	}

	srv.Shutdown()
	_, err = st.LastSequence(context.Background())
	var logErr *domain.LogError
	if !errors.As(err, &logErr) || !errors.Is(err, domain.ErrLogUnavailable) {
		t.Fatalf("last sequence of a stopped server: %v, want a *domain.LogError", err)
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("last sequence of a stopped server: %v: a NATS error or the store's own timeout leaked", err)
	}
	// The caller's own context ending is the caller's error, not the log's.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := st.LastSequence(ctx); !errors.Is(err, context.Canceled) || errors.Is(err, domain.ErrLogUnavailable) {
		t.Fatalf("last sequence with an ended context: %v, want context.Canceled", err)
	}
}
