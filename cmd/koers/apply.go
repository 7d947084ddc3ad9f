package main

import (
	"bufio"
	"bytes"
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
func applyLines(cmd *cobra.Command, h *ledger.Handler, in io.Reader, keepGoing bool, sg *signer, opts ...ledger.HandleOption) (applySummary, error) {
	return submitEach(cmd, h, signed(h, sg, jsonLines(in)), keepGoing, opts...)
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

// submitEach records decisions in order, each atomic. A refused one stops
// the run (nothing after it is submitted) unless keepGoing.
func submitEach(cmd *cobra.Command, h *ledger.Handler, decisions iter.Seq2[numbered, error], keepGoing bool, opts ...ledger.HandleOption) (applySummary, error) {
	var sum applySummary
	for d, err := range decisions {
		if err != nil {
			return sum, err
		}
		res, err := h.Submit(cmd.Context(), d.body, opts...)
		if err != nil {
			sum.Refused++
			problem := fmt.Sprintf("line %d: %s", d.line, oneLine(err))
			sum.Problems = append(sum.Problems, problem)
			if !keepGoing || cmd.Context().Err() != nil {
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
