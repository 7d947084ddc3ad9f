package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"koers/domain"
	"koers/eventstore"
)

func receiptCmd(s *settings) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "receipt DECISION [-o FILE]",
		Short: "Write a self-contained proof that a decision is in the ledger, checked offline by koers verify --receipt",
		Long: `Write a receipt of a decision: its events' messages as stored (subject,
sequence, recorded time, bytes), the ledger's public keys, a tree head of the
stream's Merkle tree (RFC 9162) signed now with the ledger's Ed25519 key, and
each message's inclusion proof against it. koers verify --receipt FILE checks
it without NATS, PostgreSQL or the data folder; anyone can write their own
checker from the format in the eventstore package doc. The receipt grows with
the logarithm of the log's length. Needs the writer's seal key (it signs the
tree head) and reads the whole stream.`,
		Example: `  koers receipt 2026-07-reorg -o 2026-07-reorg.receipt.json
  koers verify --receipt 2026-07-reorg.receipt.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withApp(cmd, s, func(a *app) error {
				r, err := a.store.Receipt(cmd.Context(), args[0], time.Now())
				if errors.Is(err, domain.ErrIntegrity) {
					return exitError{code: 2, err: err}
				}
				if err != nil {
					return err
				}
				b, err := r.Marshal()
				if err != nil {
					return err
				}
				if file == "" || file == "-" {
					_, err = cmd.OutOrStdout().Write(b)
					return err
				}
				if err := os.WriteFile(file, b, 0o644); err != nil {
					return fmt.Errorf("-o: %w", err)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "receipt of decision %s (%d events, tree size %d) written to %s\n",
					r.Decision, len(r.Messages), r.TreeHead.TreeSize, file)
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&file, "output", "o", "", "file to write the receipt to (default: standard output)")
	return cmd
}

// verifyReceipt is koers verify --receipt: offline, exit 0 or 2.
func verifyReceipt(cmd *cobra.Command, file string, asJSON bool) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("--receipt: %w", err)
	}
	c := eventstore.VerifyReceipt(b)
	out := cmd.OutOrStdout()
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(c); err != nil {
			return err
		}
	} else {
		for _, p := range c.Problems {
			fmt.Fprintf(out, "problem: %s\n", p)
		}
		if c.OK() {
			fmt.Fprintf(out, "receipt ok: decision %s, %d events, in ledger %s at tree size %d (root %s), signed by ledger key %s\n",
				c.Decision, c.Events, c.Ledger, c.TreeSize, c.Root, c.Key)
		}
	}
	if !c.OK() {
		return exitError{code: 2, err: fmt.Errorf("receipt %s: %d problems", file, len(c.Problems))}
	}
	return nil
}
