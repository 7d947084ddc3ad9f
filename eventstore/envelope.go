package eventstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"

	"errors"
	"fmt"
	"hash"
	"strconv"
	"time"

	gojson "github.com/goccy/go-json"

	"koers/domain"
)

// envelopeVersion is the "v" of envelopes this package writes and reads;
// version 1 was sealed with an HMAC under a shared key (see
// [LegacyLedgerError]).
const envelopeVersion = 2

// hashTag starts the canonical encoding, so that a hash of an event can never
// be mistaken for a hash of anything else.
const hashTag = "koers-event-v1"

// envelope is the JSON body of every message in the stream.
type envelope struct {
	V             int             `json:"v"`
	ID            string          `json:"id"`
	Type          string          `json:"type"`
	SchemaVersion int             `json:"sv"`
	Subject       string          `json:"subject"`
	Decision      decisionMeta    `json:"decision"`
	Index         int             `json:"i"`
	Count         int             `json:"n"`
	Data          json.RawMessage `json:"data"`
	Prev          string          `json:"prev"`
	Hash          string          `json:"hash"`
	// Key, Sig and Path are the seal: the id of the ledger key that signed,
	// the Ed25519 signature over the decision's Merkle root, and this
	// event's inclusion path to that root (nearest sibling first; empty for
	// a decision of one event).
	Key  string   `json:"key"`
	Sig  string   `json:"sig"`
	Path []string `json:"path,omitempty"`
}

type decisionMeta struct {
	ID        string    `json:"id"`
	By        string    `json:"by"`
	Authority string    `json:"authority"`
	Reason    string    `json:"reason"`
	Refs      []string  `json:"refs"`
	Effective time.Time `json:"effective"`
}

// canonicalHash computes the event hash over the canonical encoding described
// in the package doc. The hash covers Prev but not Hash or Seal.
func (e *envelope) canonicalHash() [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(hashTag))
	field := func(s string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	fieldBytes := func(b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	field(e.ID)
	field(e.Type)
	field(strconv.Itoa(e.SchemaVersion))
	field(e.Subject)
	field(e.Decision.ID)
	field(e.Decision.By)
	field(e.Decision.Authority)
	field(e.Decision.Reason)
	field(strconv.Itoa(len(e.Decision.Refs)))
	for _, r := range e.Decision.Refs {
		field(r)
	}
	field(e.Decision.Effective.UTC().Format(time.RFC3339Nano))
	field(strconv.Itoa(e.Index))
	field(strconv.Itoa(e.Count))
	fieldBytes(e.Data)
	field(e.Prev)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// finish sets Hash once every other field but the seal is final.
func (e *envelope) finish() {
	sum := e.canonicalHash()
	e.Hash = hex.EncodeToString(sum[:])
}

// marshal writes the envelope without HTML escaping, so that the data bytes
// in the message are exactly the bytes that were hashed.
func (e *envelope) marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// compactData returns the canonical (compact, unescaped) form of an event's
// payload. An empty payload becomes {}.
func compactData(data json.RawMessage) (json.RawMessage, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return json.RawMessage("{}"), nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		return nil, fmt.Errorf("event data is not valid JSON: %w", err)
	}
	return buf.Bytes(), nil
}

// errMalformed marks an envelope that cannot be decoded or is incomplete.
var errMalformed = errors.New("malformed envelope")

// decodeEnvelope parses a message body and checks that it is complete and
// that its hash matches its content. It does not check the seal or the chain.
func decodeEnvelope(body []byte) (*envelope, error) {
	var e envelope
	if err := gojson.Unmarshal(body, &e); err != nil {
		return nil, fmt.Errorf("%w: %v", errMalformed, err)
	}
	switch {
	case e.V == 1:
		return nil, fmt.Errorf("%w: envelope v1, sealed with a shared HMAC key by an earlier Koers (not accepted: see LegacyLedgerError)", errMalformed)
	case e.V != envelopeVersion:
		return nil, fmt.Errorf("%w: unknown envelope version %d", errMalformed, e.V)
	case e.ID == "" || e.Type == "" || e.Subject == "" || e.Decision.ID == "":
		return nil, fmt.Errorf("%w: missing id, type, subject or decision id", errMalformed)
	case e.Count < 1 || e.Index < 0 || e.Index >= e.Count:
		return nil, fmt.Errorf("%w: index %d of %d events", errMalformed, e.Index, e.Count)
	case len(e.Hash) != 2*sha256.Size:
		return nil, fmt.Errorf("%w: hash missing or not SHA-256", errMalformed)
	}
	sum := e.canonicalHash()
	if hex.EncodeToString(sum[:]) != e.Hash {
		return nil, fmt.Errorf("hash mismatch: content does not match its hash %s", short(e.Hash))
	}
	return &e, nil
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// recorded turns a checked envelope into the domain's view of a stored event.
func (e *envelope) recorded(ref domain.Ref, seq uint64, at time.Time) domain.Recorded {
	return domain.Recorded{
		Event: domain.Event{
			Aggregate:     ref,
			Type:          e.Type,
			SchemaVersion: e.SchemaVersion,
			Data:          e.Data,
		},
		Meta: domain.Meta{
			DecisionID: e.Decision.ID,
			By:         e.Decision.By,
			Authority:  e.Decision.Authority,
			Reason:     e.Decision.Reason,
			Refs:       e.Decision.Refs,
			Effective:  e.Decision.Effective,
		},
		EventID:    e.ID,
		Sequence:   seq,
		RecordedAt: at,
	}
}

// digest is the running stream digest described in the package doc.
type digest struct {
	sum [sha256.Size]byte
	h   hash.Hash
}

func newDigest() *digest { return &digest{h: sha256.New()} }

func (d *digest) add(seq uint64, recorded time.Time, subject string, body []byte) {
	bodySum := sha256.Sum256(body)
	var n [8]byte
	d.h.Reset()
	d.h.Write(d.sum[:])
	binary.BigEndian.PutUint64(n[:], seq)
	d.h.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(recorded.UnixNano()))
	d.h.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(len(subject)))
	d.h.Write(n[:])
	d.h.Write([]byte(subject))
	d.h.Write(bodySum[:])
	d.h.Sum(d.sum[:0])
}

func (d *digest) hex() string { return hex.EncodeToString(d.sum[:]) }
