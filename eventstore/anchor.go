package eventstore

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"koers/domain"
)

// Anchor extends from with the stream's messages after it up to sequence
// to and returns the anchor at to: the stream digest of the package doc,
// computed from from's digest on, so that anchors taken at intervals cost
// only the messages between them. from is the zero Anchor for the
// beginning of the stream.
func (s *Store) Anchor(ctx context.Context, from domain.Anchor, to uint64) (domain.Anchor, error) {
	if to < from.Sequence {
		return domain.Anchor{}, fmt.Errorf("anchor at %d: before the anchor it extends (%d): %w", to, from.Sequence, domain.ErrInvalid)
	}
	d := newDigest()
	if from.Sequence > 0 {
		if err := d.set(from.Digest); err != nil {
			return domain.Anchor{}, fmt.Errorf("anchor at %d: %w", from.Sequence, err)
		}
	}
	out := from
	if to == from.Sequence {
		return out, nil
	}
	next := from.Sequence + 1
	err := s.readRaw(ctx, next, domain.ReadOptions{Until: to}, func(m rawMsg) error {
		if m.seq != next {
			return fmt.Errorf("sequences %d to %d are missing: %w", next, m.seq-1, ErrIntegrity)
		}
		next++
		out.Prev = d.hex()
		d.add(m.seq, m.at, m.subject, m.body)
		out.Sequence, out.Digest = m.seq, d.hex()
		return nil
	})
	if err != nil {
		return domain.Anchor{}, fmt.Errorf("anchor at %d: %w", to, err)
	}
	if out.Sequence != to {
		return domain.Anchor{}, fmt.Errorf("anchor at %d: the stream ends at %d: %w", to, out.Sequence, ErrIntegrity)
	}
	return out, nil
}

// set starts the digest from an earlier one.
func (d *digest) set(hexDigest string) error {
	b, err := hex.DecodeString(hexDigest)
	if err != nil || len(b) != sha256.Size {
		return fmt.Errorf("digest %q: want %d hex digits", hexDigest, 2*sha256.Size)
	}
	copy(d.sum[:], b)
	return nil
}

// checkAnchorMessage checks the one message an anchor ends with: that it
// is still stored and that it, after the anchor's Prev, gives the anchor's
// digest. It is the watcher's cheap check; Verify checks everything.
func (s *Store) checkAnchorMessage(ctx context.Context, a domain.Anchor) (string, error) {
	if a.Sequence == 0 {
		return "", nil
	}
	m, err := s.stream.GetMsg(ctx, a.Sequence)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Sprintf("message %d, anchored by the read models, is gone", a.Sequence), nil
	}
	if err != nil {
		return "", serverError(fmt.Sprintf("get anchored message %d", a.Sequence), err)
	}
	d := newDigest()
	if a.Sequence > 1 {
		if err := d.set(a.Prev); err != nil {
			return fmt.Sprintf("anchor at %d: %v", a.Sequence, err), nil
		}
	}
	d.add(m.Sequence, m.Time, m.Subject, m.Data)
	if d.hex() != a.Digest {
		return fmt.Sprintf("message %d differs from the one the read models anchored (digest %s, anchored %s)",
			a.Sequence, short(d.hex()), short(a.Digest)), nil
	}
	return "", nil
}

// SignedAnchor is an anchor as an auditor keeps it, in a file outside the
// ledger: see the package doc, section Anchors.
type SignedAnchor struct {
	Format    string    `json:"format"` // "koers-anchor-v1"
	Ledger    string    `json:"ledger"` // the stream's name
	Sequence  uint64    `json:"seq"`
	Digest    string    `json:"digest"`
	Prev      string    `json:"prev"`
	Taken     time.Time `json:"taken"`               // when the anchor was taken, by the writer's clock; informative
	Algorithm string    `json:"sig_alg"`             // how Signature was made: "ed25519"
	Key       string    `json:"key"`                 // the id of the ledger key that signed ([KeyID]), as the log records it
	Signature string    `json:"signature,omitempty"` // over the canonical encoding, see anchorMessage
	// TreeSize and Root make the anchor a signed tree head: the size
	// (= Sequence) and root hash (hex) of the stream's Merkle tree (see
	// merkle.go). Anchors written before carry neither and still verify.
	TreeSize uint64 `json:"tree_size,omitempty"`
	Root     string `json:"root,omitempty"`
}

// anchorFormat is the Format of a [SignedAnchor].
const anchorFormat = "koers-anchor-v1"

// anchorTag starts the message an anchor's signature covers, so that no
// anchor signature can pass for a seal or the other way round.
const anchorTag = "koers-anchor-sig-v1"

// Anchor returns the anchor a signed anchor holds.
func (a SignedAnchor) Anchor() domain.Anchor {
	return domain.Anchor{Sequence: a.Sequence, Digest: a.Digest, Prev: a.Prev}
}

// anchorMessage is the canonical encoding a signature covers: a tag, the
// format, the algorithm and key, and the fields in this order, each
// length-prefixed as in the event hash.
func (a SignedAnchor) anchorMessage() []byte {
	var b []byte
	field := func(s string) {
		var n [8]byte
		for i := range 8 {
			n[7-i] = byte(uint64(len(s)) >> (8 * i))
		}
		b = append(b, n[:]...)
		b = append(b, s...)
	}
	field(anchorTag)
	field(anchorFormat)
	field(a.Algorithm)
	field(a.Key)
	field(a.Ledger)
	field(fmt.Sprint(a.Sequence))
	field(a.Digest)
	field(a.Prev)
	field(a.Taken.UTC().Format(time.RFC3339Nano))
	if a.TreeSize != 0 || a.Root != "" {
		field("tree")
		field(fmt.Sprint(a.TreeSize))
		field(a.Root)
	}
	return b
}

// anchorAlgorithm names the signing of anchors: the writer's Ed25519
// ledger key, the one that seals. [Store.SignAnchor] and
// [Store.CheckAnchorSignature] are the one place that knows how.
const anchorAlgorithm = "ed25519"

// SignAnchor signs an anchor taken at taken with the writer's ledger key,
// which must be the key in force (a store opened without a seal key is
// [ErrReadOnly]; a superseded key is a [*KeyNotInForceError]).
func (s *Store) SignAnchor(ctx context.Context, a domain.Anchor, taken time.Time) (SignedAnchor, error) {
	if err := s.checkWriter(ctx); err != nil {
		return SignedAnchor{}, fmt.Errorf("sign anchor at %d: %w", a.Sequence, err)
	}
	sa := SignedAnchor{Format: anchorFormat, Ledger: s.cfg.Stream, Sequence: a.Sequence, Digest: a.Digest, Prev: a.Prev,
		Taken: taken.UTC(), Algorithm: anchorAlgorithm, Key: KeyID(s.priv.Public().(ed25519.PublicKey))}
	return s.signAnchor(sa), nil
}

func (s *Store) signAnchor(sa SignedAnchor) SignedAnchor {
	sa.Signature = hex.EncodeToString(ed25519.Sign(s.priv, sa.anchorMessage()))
	return sa
}

// CheckAnchorSignature reports whether sa was signed by one of this
// ledger's keys, as the log records them: it needs no secret. The key must
// not have been superseded before the anchor's sequence (an anchor over
// messages written under a later key is not that key's to sign).
func (s *Store) CheckAnchorSignature(ctx context.Context, sa SignedAnchor) error {
	if sa.Format != anchorFormat {
		return fmt.Errorf("anchor format %q: want %s", sa.Format, anchorFormat)
	}
	if sa.Algorithm != anchorAlgorithm {
		if strings.HasPrefix(sa.Algorithm, "hmac") {
			return fmt.Errorf("anchor signed with %q, the shared-secret seal this ledger no longer uses: take a new anchor with `koers anchor` (signed with the ledger's Ed25519 key)", sa.Algorithm)
		}
		return fmt.Errorf("anchor signed with %q: this build checks %s", sa.Algorithm, anchorAlgorithm)
	}
	if sa.Ledger != s.cfg.Stream {
		return fmt.Errorf("anchor of ledger %q, not of %q", sa.Ledger, s.cfg.Stream)
	}
	if err := s.refreshKeys(ctx); err != nil {
		return fmt.Errorf("anchor signature: %w", err)
	}
	return CheckAnchorWithKeys(sa, s.Keys())
}

// CheckAnchorWithKeys checks a signed anchor offline, against a list of
// the ledger's keys (oldest first, as [Store.Keys] returns them and a
// receipt carries them): the format, the algorithm, the key's id and that
// it was not superseded before the anchor's sequence, the signature, and
// for a tree head that its size is its sequence.
func CheckAnchorWithKeys(sa SignedAnchor, keys []LedgerKey) error {
	if sa.Format != anchorFormat {
		return fmt.Errorf("anchor format %q: want %s", sa.Format, anchorFormat)
	}
	if sa.Algorithm != anchorAlgorithm {
		if strings.HasPrefix(sa.Algorithm, "hmac") {
			return fmt.Errorf("anchor signed with %q, the shared-secret seal this ledger no longer uses: take a new anchor with `koers anchor` (signed with the ledger's Ed25519 key)", sa.Algorithm)
		}
		return fmt.Errorf("anchor signed with %q: this build checks %s", sa.Algorithm, anchorAlgorithm)
	}
	if (sa.TreeSize != 0 || sa.Root != "") && (sa.TreeSize != sa.Sequence || len(sa.Root) != 2*sha256.Size) {
		return fmt.Errorf("anchor at %d: tree size %d and root %q do not make a tree head of it", sa.Sequence, sa.TreeSize, sa.Root)
	}
	var key *LedgerKey
	var cur *LedgerKey
	for i := range keys {
		if keys[i].ID == sa.Key {
			key = &keys[i]
		}
		if keys[i].From <= sa.Sequence {
			cur = &keys[i]
		}
	}
	if key == nil {
		return fmt.Errorf("anchor signed with key %q, which the ledger's log does not record: not signed by this ledger's writer", sa.Key)
	}
	if cur != nil && cur.ID != key.ID && cur.From > key.From {
		return fmt.Errorf("anchor at %d signed with ledger key %s, superseded at sequence %d by key %s: not a valid signature for it", sa.Sequence, key.ID, cur.From, cur.ID)
	}
	pub, err := key.public()
	if err != nil {
		return err
	}
	sig, err := hex.DecodeString(sa.Signature)
	if err != nil {
		return errors.New("anchor signature is not hex")
	}
	if !ed25519.Verify(pub, sa.anchorMessage(), sig) {
		return fmt.Errorf("anchor signature does not verify under ledger key %s: not signed by this ledger's writer, or changed since", key.ID)
	}
	return nil
}

// public returns the key's public key, checking that its id names it.
func (k LedgerKey) public() (ed25519.PublicKey, error) {
	if k.pub != nil {
		return k.pub, nil
	}
	b, err := hex.DecodeString(k.Key)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("ledger key %s: not a hex Ed25519 public key", k.ID)
	}
	if KeyID(b) != k.ID {
		return nil, fmt.Errorf("ledger key %s: its id is %s", k.ID, KeyID(b))
	}
	return ed25519.PublicKey(b), nil
}

// ParseSignedAnchor decodes an anchor file.
func ParseSignedAnchor(b []byte) (SignedAnchor, error) {
	var sa SignedAnchor
	if err := json.Unmarshal(b, &sa); err != nil {
		return SignedAnchor{}, fmt.Errorf("anchor: %w", err)
	}
	if sa.Format != anchorFormat || sa.Sequence == 0 || len(sa.Digest) != 2*sha256.Size {
		return SignedAnchor{}, fmt.Errorf("anchor: not a %s with a sequence and a digest", anchorFormat)
	}
	return sa, nil
}
