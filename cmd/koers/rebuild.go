package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"koers/projections"
)

func rebuildCmd(s *settings) *cobra.Command {
	return &cobra.Command{
		Use:   "rebuild",
		Short: "Rebuild every read model from the log into a fresh schema, then switch to it atomically",
		Example: `  koers rebuild
  koers --database-url postgres://koers@db/koers rebuild`,
		Long: `Rebuild every read model from sequence 1 into a fresh schema while the current
read models keep answering, then switch to the new ones in one transaction.
Downstream feeds keep their own checkpoints: a rebuild re-sends nothing. Read
models built from another ledger are replaced. SIGINT or SIGTERM stops it (exit
130) and leaves the read models in use as they were.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApp(cmd, s.reading(), func(a *app) error {
				db, err := a.readModels(cmd.Context())
				if err != nil {
					return err
				}
				last, err := a.store.LastSequence(cmd.Context())
				if err != nil {
					return err
				}
				bar := newBar(cmd.ErrOrStderr(), int64(last), "rebuilding", "events")
				start := time.Now()
				var done uint64
				err = db.Rebuild(cmd.Context(), a.store, projections.ProjectorOptions{Names: a.names}, func(p projections.Progress) {
					if p.Total > 0 {
						bar.ChangeMax64(int64(p.Total))
					}
					_ = bar.Set64(int64(p.Done))
					done = p.Done
				})
				_ = bar.Finish()
				if err != nil && cmd.Context().Err() != nil {
					// The batch in flight is committed or rolled back as a
					// whole; the live read models were never touched.
					return interruptedError{done: int(done), what: "events",
						next: "the read models in use are unchanged; run the same command again to rebuild"}
				}
				if err != nil {
					return err
				}
				el := time.Since(start)
				fmt.Fprintf(cmd.OutOrStdout(), "rebuilt the read models from %d messages in %s (%.0f messages/s)\n",
					done, el.Round(time.Millisecond), float64(done)/max(el.Seconds(), 1e-9))
				return nil
			})
		},
	}
}
