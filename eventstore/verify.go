package eventstore

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"maps"
	"slices"
	"strings"

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
	// Anchors kept earlier (an auditor's files, the read models'): the
	// stream must reach each one and have the same digest there, else the
	// stream is shorter or different and that is a problem. At most
	// [MaxAnchors].
	Anchors []domain.Anchor
	// TreeHeads kept earlier (signed anchors with a tree size and root):
	// the stream's Merkle tree must have that root at that size, and each
	// later one must extend each earlier one, which Verify proves with an
	// RFC 9162 consistency proof computed from the stream. At most
	// [MaxAnchors].
	TreeHeads []TreeHead
}

// TreeHead is the size and root (hex) of the stream's Merkle tree.
type TreeHead struct {
	Size uint64 `json:"tree_size"`
	Root string `json:"root"`
}

// Consistency is the outcome of one consistency proof between two tree
// heads: the later (New) extends the earlier (Old) when OK.
type Consistency struct {
	Old   TreeHead `json:"old"`
	New   TreeHead `json:"new"`
	Proof []string `json:"proof"`
	OK    bool     `json:"ok"`
}

// MaxAnchors bounds [VerifyOptions].Anchors.
const MaxAnchors = 1_000_000

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
	// Consistency holds a proof for every two tree heads of different
	// sizes given, in order of size.
	Consistency []Consistency `json:"consistency,omitempty"`
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
// that subject (else it is out of place, a replay when its id was seen
// before), that its event id occurs once, that the events of one decision
// are consecutive, and that no sequence is missing. It returns every problem found and the stream digest
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
	// The stream's settings and extent first: a weakened setting or a
	// stream that no longer starts at 1 is a problem even where every
	// message left checks.
	var settings []string
	state, err := s.Check(ctx)
	if err != nil {
		var ie *IntegrityError
		if !errors.As(err, &ie) {
			return nil, fmt.Errorf("verify: %w", err)
		}
		settings = ie.Problems
	}
	if len(opts.Anchors) > MaxAnchors || len(opts.TreeHeads) > MaxAnchors {
		return nil, fmt.Errorf("verify: %d anchors: at most %d: %w", len(opts.Anchors), MaxAnchors, domain.ErrInvalid)
	}
	r := &Report{Keys: s.Keys(), LastSequence: last, Problems: []Problem{}}
	for _, p := range settings {
		if !strings.Contains(p, "were removed") { // missing sequences are reported where they are
			r.add(0, "", "%s", p)
		}
	}
	at := opts.At
	if at == 0 {
		at = last
	}
	anchors := make(map[uint64][]domain.Anchor, len(opts.Anchors))
	for _, a := range opts.Anchors {
		if a.Sequence > last {
			r.add(a.Sequence, "", "the stream ends at %d, but an anchor was taken at %d (digest %s): history was removed", last, a.Sequence, short(a.Digest))
			continue
		}
		if a.Sequence > 0 && !slices.ContainsFunc(anchors[a.Sequence], func(b domain.Anchor) bool { return b.Digest == a.Digest }) {
			anchors[a.Sequence] = append(anchors[a.Sequence], a)
		}
	}
	if at > last {
		// The sequence the auditor's digest was taken at is gone: the
		// stream is shorter than it was, a problem like any other.
		r.add(at, "", "the stream ends at %d, but the digest was taken at %d: history was removed", last, at)
		at = last
		opts.Expect = ""
	}
	if last == 0 || state.Messages == 0 {
		if last > 0 {
			r.add(last, "", "sequences 1 to %d are missing (deleted from the stream)", last)
		}
		for _, seq := range slices.Sorted(maps.Keys(anchors)) {
			r.add(seq, "", "message %d, where an anchor was taken, is missing: the log up to there has changed", seq)
		}
		r.Digest = newDigest().hex()
		r.compare(opts)
		return r, nil
	}

	d := newDigest()
	var leaves []Hash
	ch := newChains(nil)
	ids := make(map[uint64]uint64) // a hash of each genuine event's id -> its sequence
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
		if len(opts.TreeHeads) > 0 {
			leaves = append(leaves, MessageLeaf(m.seq, m.at, m.subject, m.body))
		}
		if m.seq == at {
			r.DigestAt, r.Digest = at, d.hex()
		}
		for _, a := range anchors[m.seq] {
			if got := d.hex(); got != a.Digest {
				r.add(m.seq, m.subject, "digest at %d is %s, the anchor says %s: the log up to there has changed", m.seq, short(got), short(a.Digest))
			}
		}
		delete(anchors, m.seq)
		env, reason := m.env, m.reason
		if reason != "" {
			r.add(m.seq, m.subject, "%s", reason)
			return nil
		}
		idKey := idHash(env.ID)
		if reason, _ = ch.place(m.subject, env); reason != "" {
			if first, seen := ids[idKey]; seen {
				reason = fmt.Sprintf("replay of event %s (genuine at sequence %d), ignored like a forgery", env.ID, first)
			}
			r.add(m.seq, m.subject, "%s", reason)
			return nil
		}
		if first, seen := ids[idKey]; seen {
			r.add(m.seq, m.subject, "event id %s occurs again (first at sequence %d): written with the seal key", env.ID, first)
		} else {
			ids[idKey] = m.seq
		}
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
	if r.DigestAt == 0 {
		// The sequence asked for is gone: the digest is the one at the
		// last message there is.
		r.DigestAt, r.Digest = prevSeq, d.hex()
	}
	if prevSeq < last {
		r.add(last, "", "sequences %d to %d are missing (deleted from the stream)", prevSeq+1, last)
	}
	for _, seq := range slices.Sorted(maps.Keys(anchors)) {
		r.add(seq, "", "message %d, where an anchor was taken, is missing: the log up to there has changed", seq)
	}
	r.checkTrees(opts.TreeHeads, leaves, prevSeq)
	r.compare(opts)
	return r, nil
}

// checkTrees checks every tree head against the stream's tree (leaves,
// the messages from sequence 1 to last) and proves each later one
// consistent with each earlier one.
func (r *Report) checkTrees(heads []TreeHead, leaves []Hash, last uint64) {
	if len(heads) == 0 {
		return
	}
	if uint64(len(leaves)) != last {
		r.add(last, "", "the stream's Merkle tree cannot be built (messages are missing): %d tree heads not checked", len(heads))
		return
	}
	heads = slices.Clone(heads)
	slices.SortFunc(heads, func(a, b TreeHead) int { return cmp.Compare(a.Size, b.Size) })
	heads = slices.Compact(heads)
	var good []TreeHead
	for _, h := range heads {
		root, ok := parseHash(h.Root)
		switch {
		case !ok:
			r.add(h.Size, "", "tree head at %d: root %q is not a SHA-256 in hex", h.Size, h.Root)
		case h.Size > last:
			r.add(h.Size, "", "the stream ends at %d, but a tree head was taken at size %d: history was removed", last, h.Size)
		case TreeHash(leaves[:h.Size]) != root:
			r.add(h.Size, "", "the stream's Merkle tree at size %d has root %s, the tree head says %s: the log up to there has changed", h.Size, short(hexHash(TreeHash(leaves[:h.Size]))), short(h.Root))
		default:
			good = append(good, h)
		}
	}
	// Two tree heads of different sizes: prove that the later extends the
	// earlier, as a log's auditor would with RFC 9162's consistency proof.
	for i := 1; i < len(good); i++ {
		old, cur := good[i-1], good[i]
		if old.Size == cur.Size {
			r.add(cur.Size, "", "two tree heads at size %d with different roots", cur.Size)
			continue
		}
		proof := ConsistencyProof(leaves[:cur.Size], old.Size)
		oldRoot, _ := parseHash(old.Root)
		newRoot, _ := parseHash(cur.Root)
		c := Consistency{Old: old, New: cur, Proof: []string{}, OK: VerifyConsistency(old.Size, cur.Size, oldRoot, newRoot, proof)}
		for _, p := range proof {
			c.Proof = append(c.Proof, hexHash(p))
		}
		if !c.OK {
			r.add(cur.Size, "", "the tree head at size %d does not extend the one at size %d", cur.Size, old.Size)
		}
		r.Consistency = append(r.Consistency, c)
	}
}

func parseHash(s string) (Hash, bool) {
	var h Hash
	n, err := hex.Decode(h[:], []byte(s))
	return h, err == nil && n == len(h) && len(s) == 2*len(h)
}

func hexHash(h Hash) string { return hex.EncodeToString(h[:]) }

// idSeed keys the set of event ids Verify has seen: 64-bit hashes keep
// the set small on a long log, and a collision (about one in 10^7 on a log
// of a million events) would only report a repeated id that is not one.
var idSeed = maphash.MakeSeed()

func idHash(id string) uint64 { return maphash.String(idSeed, id) }

func (r *Report) compare(opts VerifyOptions) {
	if opts.Expect != "" && opts.Expect != r.Digest {
		r.add(r.DigestAt, "", "digest at %d is %s, the auditor's copy says %s: the log up to there has changed",
			r.DigestAt, r.Digest, opts.Expect)
	}
}
