package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"iter"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"koers/ledger"
)

// numbered is one decision of a file, with the line it came from.
type numbered struct {
	line int
	body []byte
	// problem is why the line cannot become a decision (a spreadsheet's
	// bad value): it is refused like a refused decision.
	problem error
	// explain, when set, names where in the line a refusal is about.
	explain func(error) error
}

// applyLines records the decisions of a JSON-lines stream in order.
func applyLines(cmd *cobra.Command, h *ledger.Handler, in io.Reader, keepGoing bool, bar *progressbar.ProgressBar, opts ...ledger.HandleOption) (applySummary, error) {
	return submitEach(cmd, h, jsonLines(in), keepGoing, bar, opts...)
}

// countLines counts the decision lines of a regular file, for a progress
// bar's total; -1 when it cannot tell.
func countLines(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return -1
	}
	defer f.Close()
	var n int64
	for l, err := range jsonLines(f) {
		if err != nil {
			return -1
		}
		_ = l
		n++
	}
	return n
}

// jsonLines yields the non-blank, non-comment lines of in.
func jsonLines(in io.Reader) iter.Seq2[numbered, error] {
	return func(yield func(numbered, error) bool) {
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64*1024), maxLineBytes)
		line := 0
		for sc.Scan() {
			line++
			text := bytes.TrimSpace(sc.Bytes())
			if len(text) == 0 || text[0] == '#' {
				continue
			}
			if !yield(numbered{line: line, body: bytes.Clone(text)}, nil) {
				return
			}
		}
		if err := sc.Err(); err != nil {
			yield(numbered{}, fmt.Errorf("line %d: %w", line+1, err))
		}
	}
}

// inFlightMax bounds how long the decision in flight when the command is
// interrupted may take to finish.
const inFlightMax = 30 * time.Second

// interruptedError is what a long command answers to SIGINT or SIGTERM
// once the decision (or batch) in flight is finished: how far it got, and
// that the same command resumes, since what was recorded is recorded once.
type interruptedError struct {
	done int
	what string // "decisions", "events"
	next string // what running it again does
}

func (e interruptedError) Error() string {
	return fmt.Sprintf("interrupted after %d %s; %s", e.done, e.what, e.next)
}

func (e interruptedError) ExitCode() int { return 130 }

func interrupted(done int) error {
	return interruptedError{done: done, what: "decisions", next: "run the same command again to resume"}
}

// submitEach records decisions in order, each atomic. A refused one stops
// the run (nothing after it is submitted) unless keepGoing. When the
// command's context ends (SIGINT, SIGTERM), the decision in flight is
// finished and the run stops with an interruptedError.
func submitEach(cmd *cobra.Command, h *ledger.Handler, decisions iter.Seq2[numbered, error], keepGoing bool, bar *progressbar.ProgressBar, opts ...ledger.HandleOption) (applySummary, error) {
	var sum applySummary
	ctx := cmd.Context()
	for d, err := range decisions {
		if ctx.Err() != nil {
			return sum, interrupted(sum.Applied + sum.Duplicates + sum.Proposed)
		}
		if err != nil {
			return sum, err
		}
		var res ledger.Result
		err := d.problem
		if err == nil {
			// Not cut off by the interrupt: the decision in flight finishes.
			subCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), inFlightMax)
			res, err = h.Submit(subCtx, d.body, opts...)
			cancel()
			if err != nil && d.explain != nil {
				err = d.explain(err)
			}
		}
		if bar != nil {
			_ = bar.Add(1)
		}
		if err != nil {
			sum.Refused++
			problem := fmt.Sprintf("line %d: %s", d.line, oneLine(err))
			sum.Problems = append(sum.Problems, problem)
			if !keepGoing {
				return sum, fmt.Errorf("%s (nothing after line %d was applied)", problem, d.line)
			}
			fmt.Fprintln(cmd.ErrOrStderr(), problem)
			continue
		}
		if res.Proposal != nil {
			// Under a board's mandate: recorded as a proposal, decided
			// only when the board's quorum approves it.
			fmt.Fprintf(cmd.ErrOrStderr(), "line %d: %s\n", d.line, proposalLine(res))
			if !res.Duplicate {
				sum.Proposed++
				continue
			}
		}
		if res.Duplicate {
			sum.Duplicates++
		} else {
			sum.Applied++
		}
	}
	if ctx.Err() != nil {
		return sum, interrupted(sum.Applied + sum.Duplicates + sum.Proposed)
	}
	return sum, nil
}

// isTerminal reports whether w is an interactive terminal: progress bars
// are drawn there only, never into files, pipes or CI logs.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// newBar is a progress bar on w counting unit (decisions, events), with
// the rate and the time left, shown only when w is a terminal; max -1 when
// the total is not known.
func newBar(w io.Writer, max int64, desc, unit string) *progressbar.ProgressBar {
	return progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetVisibility(isTerminal(w)),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString(unit),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}
