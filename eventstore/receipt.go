package eventstore

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"koers/domain"
)

// Receipt is a self-contained proof that a decision was recorded in the
// ledger: see the package doc, section Receipts.
type Receipt struct {
	Format   string           `json:"format"` // "koers-receipt-v1"
	Ledger   string           `json:"ledger"`
	Decision string           `json:"decision"`
	Messages []ReceiptMessage `json:"messages"`
	// KeyRecords are the log's ledger.key-recorded messages that record
	// its keys, oldest first, proven in the same tree: the keys the seals
	// and the tree head are checked with come from the log, not from a
	// claim of the receipt.
	KeyRecords []ReceiptMessage `json:"key_records"`
	TreeHead   SignedAnchor     `json:"tree_head"`
}

// ReceiptMessage is one stored message of the decision, as it is in the
// stream, with its inclusion proof in the tree head's tree.
type ReceiptMessage struct {
	Sequence uint64    `json:"seq"`
	Recorded time.Time `json:"recorded"` // the server's timestamp, RFC 3339 with nanoseconds, UTC
	Subject  string    `json:"subject"`
	Body     string    `json:"body"`  // the stored bytes, standard base64
	Proof    []string  `json:"proof"` // RFC 9162 audit path of leaf seq-1, hex, nearest sibling first
}

const receiptFormat = "koers-receipt-v1"

// Tree returns the stream's Merkle leaves for sequences 1 to the last and
// the anchor there. It reads the whole stream; a gap is [ErrIntegrity].
func (s *Store) Tree(ctx context.Context, to uint64) ([]Hash, domain.Anchor, error) {
	return s.tree(ctx, to, nil)
}

// tree is Tree calling fn, when given, with every message checked.
func (s *Store) tree(ctx context.Context, to uint64, fn func(*checkedMsg) error) ([]Hash, domain.Anchor, error) {
	var an domain.Anchor
	if to == 0 {
		return nil, an, nil
	}
	leaves := make([]Hash, 0, to)
	d := newDigest()
	next := uint64(1)
	visit := func(seq uint64, at time.Time, subject string, body []byte) error {
		if seq != next {
			return fmt.Errorf("sequences %d to %d are missing: %w", next, seq-1, ErrIntegrity)
		}
		next++
		an.Prev = d.hex()
		d.add(seq, at, subject, body)
		an.Sequence, an.Digest = seq, d.hex()
		leaves = append(leaves, MessageLeaf(seq, at, subject, body))
		return nil
	}
	var err error
	if fn == nil {
		err = s.readRaw(ctx, 1, domain.ReadOptions{Until: to}, func(m rawMsg) error { return visit(m.seq, m.at, m.subject, m.body) })
	} else {
		err = s.readChecked(ctx, 1, domain.ReadOptions{Until: to}, func(m *checkedMsg) error {
			if err := visit(m.seq, m.at, m.subject, m.body); err != nil {
				return err
			}
			return fn(m)
		})
	}
	if err != nil {
		return nil, an, fmt.Errorf("tree at %d: %w", to, err)
	}
	if an.Sequence != to {
		return nil, an, fmt.Errorf("tree at %d: the stream ends at %d: %w", to, an.Sequence, ErrIntegrity)
	}
	return leaves, an, nil
}

// SignTreeHead signs the anchor at the tree's size together with the
// tree's root: a signed tree head, as `koers anchor` writes it.
func (s *Store) SignTreeHead(ctx context.Context, an domain.Anchor, leaves []Hash, taken time.Time) (SignedAnchor, error) {
	if uint64(len(leaves)) != an.Sequence {
		return SignedAnchor{}, fmt.Errorf("tree head: %d leaves for an anchor at %d: %w", len(leaves), an.Sequence, domain.ErrInvalid)
	}
	root := TreeHash(leaves)
	if err := s.checkWriter(ctx); err != nil {
		return SignedAnchor{}, fmt.Errorf("sign tree head at %d: %w", an.Sequence, err)
	}
	sa := SignedAnchor{Format: anchorFormat, Ledger: s.cfg.Stream, Sequence: an.Sequence, Digest: an.Digest, Prev: an.Prev,
		Taken: taken.UTC(), Algorithm: anchorAlgorithm, Key: KeyID(s.priv.Public().(ed25519.PublicKey)),
		TreeSize: an.Sequence, Root: hex.EncodeToString(root[:])}
	return s.signAnchor(sa), nil
}

// ErrNoDecision is a receipt asked for a decision the log does not hold.
var ErrNoDecision = errors.New("no such decision in the log")

// Receipt builds the receipt of a decision: its genuine events' messages
// with their inclusion proofs against a tree head signed now, at the
// stream's last sequence, and the ledger's keys. It needs the writer's key
// (the tree head is signed) and reads the whole stream.
func (s *Store) Receipt(ctx context.Context, decision string, taken time.Time) (*Receipt, error) {
	if err := s.refreshKeys(ctx); err != nil {
		return nil, fmt.Errorf("receipt: %w", err)
	}
	last, err := s.LastSequence(ctx)
	if err != nil {
		return nil, fmt.Errorf("receipt: %w", err)
	}
	keys := s.Keys()
	if len(keys) == 0 || keys[0].Recorded == 0 {
		return nil, fmt.Errorf("receipt: the log records no ledger key yet (no genesis): nothing for a receipt's checker to trust: %w", domain.ErrInvalid)
	}
	recorded := make(map[uint64]bool, len(keys))
	for _, k := range keys {
		recorded[k.Recorded] = true
	}
	ch := newChains(nil)
	var msgs, keyMsgs []ReceiptMessage
	count := 0
	leaves, an, err := s.tree(ctx, last, func(m *checkedMsg) error {
		if recorded[m.seq] {
			keyMsgs = append(keyMsgs, ReceiptMessage{Sequence: m.seq, Recorded: m.at.UTC(), Subject: m.subject,
				Body: base64.StdEncoding.EncodeToString(m.body)})
		}
		if m.reason != "" {
			return nil
		}
		reason, err := ch.place(m.subject, m.env)
		if err != nil || reason != "" {
			return err
		}
		if m.env.Decision.ID == decision {
			count = m.env.Count
			msgs = append(msgs, ReceiptMessage{Sequence: m.seq, Recorded: m.at.UTC(), Subject: m.subject,
				Body: base64.StdEncoding.EncodeToString(m.body)})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("receipt: %w", err)
	}
	if len(msgs) == 0 {
		return nil, fmt.Errorf("receipt: decision %q: %w", decision, ErrNoDecision)
	}
	if len(msgs) != count {
		return nil, fmt.Errorf("receipt: decision %q has %d genuine events of its %d (koers verify says what is wrong): %w", decision, len(msgs), count, ErrIntegrity)
	}
	head, err := s.SignTreeHead(ctx, an, leaves, taken)
	if err != nil {
		return nil, fmt.Errorf("receipt: %w", err)
	}
	if len(keyMsgs) != len(keys) {
		return nil, fmt.Errorf("receipt: %d key records found for %d keys: %w", len(keyMsgs), len(keys), ErrIntegrity)
	}
	for _, ms := range [][]ReceiptMessage{msgs, keyMsgs} {
		for i := range ms {
			ms[i].Proof = []string{}
			for _, p := range InclusionProof(leaves, ms[i].Sequence-1) {
				ms[i].Proof = append(ms[i].Proof, hex.EncodeToString(p[:]))
			}
		}
	}
	return &Receipt{Format: receiptFormat, Ledger: s.cfg.Stream, Decision: decision, Messages: msgs, KeyRecords: keyMsgs, TreeHead: head}, nil
}

// Marshal is the receipt's canonical file: indented JSON as
// [json.MarshalIndent] writes it with two spaces, and a newline.
func (r *Receipt) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// ReceiptCheck is what [VerifyReceipt] found.
type ReceiptCheck struct {
	Receipt  *Receipt `json:"-"`
	Ledger   string   `json:"ledger"`
	Decision string   `json:"decision"`
	Events   int      `json:"events"`
	TreeSize uint64   `json:"tree_size"`
	Root     string   `json:"root"`
	Key      string   `json:"key"` // the ledger key that signed the tree head
	Problems []string `json:"problems"`
}

// OK reports whether the receipt checked.
func (c *ReceiptCheck) OK() bool { return len(c.Problems) == 0 }

// VerifyReceipt checks a receipt file offline: no server, no database.
// Every problem is listed; a file that is not a receipt at all is one
// problem too. See the package doc, section Receipts, for what is checked.
func VerifyReceipt(b []byte) *ReceiptCheck {
	c := &ReceiptCheck{Problems: []string{}}
	bad := func(format string, args ...any) { c.Problems = append(c.Problems, fmt.Sprintf(format, args...)) }
	var r Receipt
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		bad("not a receipt: %v", err)
		return c
	}
	c.Receipt, c.Ledger, c.Decision = &r, r.Ledger, r.Decision
	c.TreeSize, c.Root, c.Key = r.TreeHead.TreeSize, r.TreeHead.Root, r.TreeHead.Key
	// The file is exactly as koers receipt writes it: every byte counts,
	// so that no change (a field's case, a spacing, a second copy of a
	// field) goes unnoticed.
	if canon, err := r.Marshal(); err != nil || !bytes.Equal(canon, b) {
		bad("the file is not the receipt's canonical encoding (changed after it was written)")
	}
	if !lowerHex(r.TreeHead.Signature) || !lowerHex(r.TreeHead.Root) {
		bad("tree head: signature and root are written in lower-case hex")
	}
	if r.Format != receiptFormat {
		bad("format %q: want %s", r.Format, receiptFormat)
	}
	if r.TreeHead.Ledger != r.Ledger {
		bad("tree head of ledger %q, receipt of %q", r.TreeHead.Ledger, r.Ledger)
	}
	var root Hash
	if r.TreeHead.TreeSize == 0 {
		bad("tree head has no tree size and root")
	} else if n, err := hex.Decode(root[:], []byte(r.TreeHead.Root)); err != nil || n != sha256.Size {
		bad("tree head root %q is not a SHA-256 in hex", r.TreeHead.Root)
	}
	// The keys, from their records in the log, each judged as the store
	// judges it (the genesis key seals its own record, a later one is
	// sealed by the key in force before it) and proven in the tree.
	kr := &keyring{}
	for i, m := range r.KeyRecords {
		at := fmt.Sprintf("key record %d (sequence %d)", i, m.Sequence)
		body, ok := included(m, r.TreeHead.TreeSize, root)
		if !ok {
			bad("%s: not included in the tree head's tree (changed, or not at this place in the log)", at)
			continue
		}
		if i > 0 && m.Sequence <= r.KeyRecords[i-1].Sequence {
			bad("%s: key records out of order", at)
			continue
		}
		key, ok := kr.judgeKeyRecord(&jetstream.RawStreamMsg{Subject: m.Subject, Sequence: m.Sequence, Data: body, Time: m.Recorded})
		if !ok {
			bad("%s: does not record a ledger key sealed by the key in force before it", at)
			continue
		}
		kr.keys = append(kr.keys, key)
	}
	keys := kr.keys
	if len(keys) == 0 {
		bad("no ledger key recorded in the receipt")
	}
	if err := CheckAnchorWithKeys(r.TreeHead, keys); err != nil {
		bad("tree head: %v", err)
	}
	if len(r.Messages) == 0 {
		bad("no messages")
	}
	c.Events = len(r.Messages)
	for i, m := range r.Messages {
		at := fmt.Sprintf("message %d (sequence %d)", i, m.Sequence)
		body, err := base64.StdEncoding.Strict().DecodeString(m.Body)
		if err != nil {
			bad("%s: body is not base64", at)
			continue
		}
		if m.Sequence == 0 || m.Sequence > r.TreeHead.TreeSize {
			bad("%s: outside the tree head's %d messages", at, r.TreeHead.TreeSize)
			continue
		}
		env, err := decodeEnvelope(body)
		if err != nil {
			bad("%s: %v", at, err)
			continue
		}
		switch {
		case env.Subject != m.Subject:
			bad("%s: the envelope names subject %s, the message was on %s", at, env.Subject, m.Subject)
		case env.Decision.ID != r.Decision:
			bad("%s: event of decision %q, not %q", at, env.Decision.ID, r.Decision)
		case env.Index != i || env.Count != len(r.Messages):
			bad("%s: event %d of %d, where the receipt holds event %d of %d", at, env.Index, env.Count, i, len(r.Messages))
		case i > 0 && m.Sequence != r.Messages[i-1].Sequence+1:
			bad("%s: the decision's events are not consecutive in the log", at)
		}
		if reason := sealWithKeys(env, m.Sequence, keys); reason != "" {
			bad("%s: %s", at, reason)
		}
		if _, ok := included(m, r.TreeHead.TreeSize, root); !ok {
			bad("%s: its inclusion proof does not lead to the tree head's root: not this message at this place in the log", at)
		}
	}
	return c
}

// included returns a receipt message's body and whether its inclusion
// proof leads from its leaf to root in a tree of size n.
func included(m ReceiptMessage, n uint64, root Hash) ([]byte, bool) {
	body, err := base64.StdEncoding.Strict().DecodeString(m.Body)
	if err != nil || m.Sequence == 0 || m.Sequence > n {
		return nil, false
	}
	proof := make([]Hash, len(m.Proof))
	for j, p := range m.Proof {
		if k, err := hex.Decode(proof[j][:], []byte(p)); err != nil || k != sha256.Size || !lowerHex(p) {
			return nil, false
		}
	}
	return body, VerifyInclusion(MessageLeaf(m.Sequence, m.Recorded, m.Subject, body), m.Sequence-1, n, proof, root)
}

// sealWithKeys is the seal check against a list of keys: "" when env,
// at sequence seq, is sealed by the key in force where its decision starts.
func sealWithKeys(env *envelope, seq uint64, keys []LedgerKey) string {
	if uint64(env.Index) >= seq {
		return fmt.Sprintf("event %d of its decision cannot stand at sequence %d", env.Index, seq)
	}
	start := seq - uint64(env.Index)
	var cur *LedgerKey
	for i := range keys {
		if keys[i].From <= start {
			cur = &keys[i]
		}
	}
	if cur == nil {
		return "no ledger key in force at its sequence"
	}
	if cur.ID != env.Key {
		return fmt.Sprintf("sealed with key %s, but key %s was in force at sequence %d", short(env.Key), cur.ID, start)
	}
	pub, err := cur.public()
	if err != nil {
		return err.Error()
	}
	if !sealValid(pub, env) {
		return "seal does not verify under the ledger's key"
	}
	return ""
}

// ParseReceipt decodes a receipt file without checking it.
func ParseReceipt(b []byte) (*Receipt, error) {
	var r Receipt
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("receipt: %w", err)
	}
	return &r, nil
}

// lowerHex reports whether s is non-empty lower-case hex: the only way a
// receipt writes bytes in hex, so that no other spelling of the same bytes
// passes.
func lowerHex(s string) bool {
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return s != "" && len(s)%2 == 0
}
