package eventstore

import (
	"context"
	"fmt"

	"koers/domain"
)

// MaxProblems is the most problems a [Report] lists; beyond it they are
// only counted.
const MaxProblems = 1000

// VerifyOptions say where the digest is taken and what it should be.
type VerifyOptions struct {
	// At is the sequence the digest is taken at. 0: the last message.
	At uint64
	// Expect, when set, is a digest an auditor kept for sequence At; a
	// different digest is reported as a problem.
	Expect string
}

// Problem is one thing wrong in the log.
type Problem struct {
	Sequence uint64 `json:"seq"`
	Subject  string `json:"subject,omitempty"`
	What     string `json:"what"`
}

// Report is the outcome of a [Store.Verify].
type Report struct {
	// Checked is how many messages were read, LastSequence the last one.
	Checked      uint64 `json:"checked"`
	LastSequence uint64 `json:"last_seq"`
	// Digest is the stream digest at DigestAt (see the package doc).
	DigestAt uint64    `json:"digest_at"`
	Digest   string    `json:"digest"`
	Problems []Problem `json:"problems"`
	// MoreProblems counts problems beyond [MaxProblems].
	MoreProblems int `json:"more_problems,omitempty"`
	// Keys are the ledger's public keys the seals were checked against,
	// oldest first.
	Keys []LedgerKey `json:"keys"`
}

// OK reports whether everything checked.
func (r *Report) OK() bool { return len(r.Problems) == 0 && r.MoreProblems == 0 }

func (r *Report) add(seq uint64, subject, format string, args ...any) {
	if len(r.Problems) >= MaxProblems {
		r.MoreProblems++
		return
	}
	r.Problems = append(r.Problems, Problem{Sequence: seq, Subject: subject, What: fmt.Sprintf(format, args...)})
}

// Verify walks the whole stream as it stands when the call starts and checks
// every message: that it is a well-formed envelope whose hash matches its
// content, that it carries a valid seal by the ledger's key in force where
// its decision starts (else it is a forgery), that every signed decision's
// signature verifies under the key registered for its actor when it was
// recorded and that no decision is unsigned where the ledger required
// signatures, that it sits
// on the subject it names, that it chains to the previous genuine event on
// that subject, that the events of one decision are consecutive, and that no
// sequence is missing. It returns every problem found and the stream digest
// at opts.At. A problem in the log is not an error: err is only for failing
// to read.
func (s *Store) Verify(ctx context.Context, opts VerifyOptions) (*Report, error) {
	// The keys recorded up to the last message judge every seal by where
	// it stands, not by what a writer holds now.
	if err := s.refreshKeys(ctx); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	last, err := s.LastSequence(ctx)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	r := &Report{Keys: s.Keys(), LastSequence: last, Problems: []Problem{}}
	at := opts.At
	if at == 0 {
		at = last
	}
	if at > last {
		return nil, fmt.Errorf("verify: digest at %d: the stream ends at %d", at, last)
	}
	if last == 0 {
		r.Digest = newDigest().hex()
		r.compare(opts)
		return r, nil
	}

	d := newDigest()
	chains := make(map[string]string) // subject -> hash of its last genuine event
	audit := domain.NewSignatureAudit()
	var prevSeq uint64
	var run struct { // the decision whose events are being read
		id    string
		index int
		count int
	}
	err = s.readChecked(ctx, 1, domain.ReadOptions{Until: last}, func(m *checkedMsg) error {
		r.Checked++
		if m.seq != prevSeq+1 {
			r.add(m.seq, "", "sequences %d to %d are missing (deleted from the stream)", prevSeq+1, m.seq-1)
		}
		prevSeq = m.seq
		d.add(m.seq, m.at, m.subject, m.body)
		if m.seq == at {
			r.DigestAt, r.Digest = at, d.hex()
		}
		env, reason := m.env, m.reason
		if reason != "" {
			r.add(m.seq, m.subject, "%s", reason)
			return nil
		}
		if env.Prev != chains[m.subject] {
			r.add(m.seq, m.subject, "hash chain broken: prev is %q, the last genuine event on the subject has %q",
				short(env.Prev), short(chains[m.subject]))
		}
		chains[m.subject] = env.Hash
		if ref, ok := s.refOf(m.subject); ok && domain.Audited(env.Type) {
			if problem := audit.Observe(env.recorded(ref, m.seq, m.at)); problem != "" {
				r.add(m.seq, m.subject, "%s", problem)
			}
		}
		switch {
		case env.Index == 0:
			if run.id != "" && run.index+1 < run.count {
				r.add(m.seq, m.subject, "decision %s ended after %d of its %d events", run.id, run.index+1, run.count)
			}
		case env.Decision.ID != run.id || env.Index != run.index+1 || env.Count != run.count:
			r.add(m.seq, m.subject, "event %d of decision %s does not follow event %d of it", env.Index, env.Decision.ID, env.Index-1)
		}
		run.id, run.index, run.count = env.Decision.ID, env.Index, env.Count
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	if run.id != "" && run.index+1 < run.count {
		r.add(prevSeq, "", "decision %s ended after %d of its %d events", run.id, run.index+1, run.count)
	}
	if prevSeq < last {
		r.add(last, "", "sequences %d to %d are missing (deleted from the stream)", prevSeq+1, last)
	}
	r.compare(opts)
	return r, nil
}

func (r *Report) compare(opts VerifyOptions) {
	if opts.Expect != "" && opts.Expect != r.Digest {
		r.add(r.DigestAt, "", "digest at %d is %s, the auditor's copy says %s: the log up to there has changed",
			r.DigestAt, r.Digest, opts.Expect)
	}
}
