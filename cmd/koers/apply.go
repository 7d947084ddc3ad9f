package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
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
func applyLines(cmd *cobra.Command, h *ledger.Handler, in io.Reader, keepGoing bool, sg *signer, bar *progressbar.ProgressBar, opts ...ledger.HandleOption) (applySummary, error) {
	return submitEach(cmd, h, signed(h, sg, jsonLines(in)), keepGoing, bar, opts...)
}

// signed signs each decision with its actor's key, when there is one.
func signed(h *ledger.Handler, sg *signer, lines iter.Seq2[numbered, error]) iter.Seq2[numbered, error] {
	return func(yield func(numbered, error) bool) {
		for l, err := range lines {
			if err == nil {
				var body []byte
				if body, err = sg.sign(h, l.body); err != nil {
					err = fmt.Errorf("line %d: sign: %w", l.line, err)
				}
				l.body = body
			}
			if !yield(l, err) {
				return
			}
		}
	}
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

// inFlightMax bounds how long the decisions in flight when the command is
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

// submitEach records decisions in order, each atomic, many per atomic
// batch (ledger.Handler.ApplyAll). A refused one stops the run (nothing
// after it is applied) unless keepGoing. When the command's context ends
// (SIGINT, SIGTERM), no further line is read, the decisions already taken
// in are finished (within inFlightMax) and the run stops with an
// interruptedError.
func submitEach(cmd *cobra.Command, h *ledger.Handler, decisions iter.Seq2[numbered, error], keepGoing bool, bar *progressbar.ProgressBar, opts ...ledger.HandleOption) (applySummary, error) {
	ctx := cmd.Context()
	var (
		problems []string
		lastLine int // the last refused line
		// explain holds the explain of the lines in flight, by line.
		explain = map[int]func(error) error{}
		// unfit counts the lines that could not become decisions; stopped
		// is set when one of them ended the run.
		unfit   int
		stopped bool
	)
	refuse := func(line int, err error) {
		problem := fmt.Sprintf("line %d: %s", line, oneLine(err))
		problems = append(problems, problem)
		lastLine = line
		if keepGoing {
			fmt.Fprintln(cmd.ErrOrStderr(), problem)
		}
	}
	lines := func(yield func(ledger.Line, error) bool) {
		for d, err := range decisions {
			if ctx.Err() != nil {
				return
			}
			if err == nil && d.problem != nil {
				// Refused before the ledger sees it, like a refused decision.
				if bar != nil {
					_ = bar.Add(1)
				}
				unfit++
				refuse(d.line, d.problem)
				if !keepGoing {
					stopped = true
					return
				}
				continue
			}
			if d.explain != nil {
				explain[d.line] = d.explain
			}
			if !yield(ledger.Line{Line: d.line, Body: d.body}, err) {
				return
			}
		}
	}
	report := func(r ledger.LineResult) {
		if bar != nil {
			_ = bar.Add(1)
		}
		ex := explain[r.Line]
		delete(explain, r.Line)
		switch {
		case r.Err != nil:
			err := r.Err
			if ex != nil {
				err = ex(err)
			}
			refuse(r.Line, err)
		case r.Result.Proposal != nil:
			// Under a board's mandate: recorded as a proposal, decided
			// only when the board's quorum approves it.
			fmt.Fprintf(cmd.ErrOrStderr(), "line %d: %s\n", r.Line, proposalLine(r.Result))
		}
	}
	// Not cut off by the interrupt: what is in flight finishes, bounded.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(inFlightMax, cancel)
		context.AfterFunc(runCtx, func() { t.Stop() })
	})
	defer stop()
	s, err := h.ApplyAll(runCtx, lines, ledger.BulkOptions{KeepGoing: keepGoing, Handle: opts, Report: report})
	sum := applySummary{Applied: s.Applied, Proposed: s.Proposed, Duplicates: s.Duplicates, Refused: s.Refused + unfit, Problems: problems}
	if (errors.Is(err, ledger.ErrStopped) || (err == nil && stopped)) && len(problems) > 0 {
		return sum, fmt.Errorf("%s (nothing after line %d was applied)", problems[len(problems)-1], lastLine)
	}
	if err == nil && ctx.Err() != nil {
		return sum, interrupted(sum.Applied + sum.Duplicates + sum.Proposed)
	}
	return sum, err
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
