package main

import (
	"bufio"
	"bytes"
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
}

// applyLines records the decisions of a JSON-lines stream in order.
func applyLines(cmd *cobra.Command, h *ledger.Handler, in io.Reader, keepGoing bool, opts ...ledger.HandleOption) (applySummary, error) {
	return submitEach(cmd, h, jsonLines(in), keepGoing, opts...)
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

// submitEach records decisions in order, each atomic, many per atomic
// batch (ledger.Handler.ApplyAll). A refused one stops the run (nothing
// after it is applied) unless keepGoing.
func submitEach(cmd *cobra.Command, h *ledger.Handler, decisions iter.Seq2[numbered, error], keepGoing bool, opts ...ledger.HandleOption) (applySummary, error) {
	var (
		problems []string
		lastLine int // the last refused line
	)
	lines := func(yield func(ledger.Line, error) bool) {
		for d, err := range decisions {
			if !yield(ledger.Line{Line: d.line, Body: d.body}, err) {
				return
			}
		}
	}
	report := func(r ledger.LineResult) {
		switch {
		case r.Err != nil:
			problem := fmt.Sprintf("line %d: %s", r.Line, oneLine(r.Err))
			problems = append(problems, problem)
			lastLine = r.Line
			if keepGoing {
				fmt.Fprintln(cmd.ErrOrStderr(), problem)
			}
		case r.Result.Proposal != nil:
			// Under a board's mandate: recorded as a proposal, decided
			// only when the board's quorum approves it.
			fmt.Fprintf(cmd.ErrOrStderr(), "line %d: %s\n", r.Line, proposalLine(r.Result))
		}
	}
	s, err := h.ApplyAll(cmd.Context(), lines, ledger.BulkOptions{KeepGoing: keepGoing, Handle: opts, Report: report})
	sum := applySummary{Applied: s.Applied, Proposed: s.Proposed, Duplicates: s.Duplicates, Refused: s.Refused, Problems: problems}
	if errors.Is(err, ledger.ErrStopped) && len(problems) > 0 {
		return sum, fmt.Errorf("%s (nothing after line %d was applied)", problems[len(problems)-1], lastLine)
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

// newBar is a progress bar on w, shown only when w is a terminal.
func newBar(w io.Writer, max int64, desc string, bytes bool) *progressbar.ProgressBar {
	return progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetVisibility(isTerminal(w)),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(bytes),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}
