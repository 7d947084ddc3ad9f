package eventstore

import (
	"context"
	"encoding/hex"
	"encoding/json"
)

// RawMessage returns the stored body of one message, for tests that forge.
func RawMessage(ctx context.Context, s *Store, seq uint64) ([]byte, error) {
	m, err := s.stream.GetMsg(ctx, seq)
	if err != nil {
		return nil, err
	}
	return m.Data, nil
}

// CanonicalHash computes the documented hash of an envelope body.
func CanonicalHash(body []byte) (string, error) {
	var e envelope
	if err := json.Unmarshal(body, &e); err != nil {
		return "", err
	}
	sum := e.canonicalHash()
	return hex.EncodeToString(sum[:]), nil
}

// Reseal replaces the seal of a single-event decision's envelope with one
// by priv, for tests that forge with a key of their own.
func Reseal(body []byte, priv []byte) ([]byte, error) {
	e, err := decodeEnvelope(body)
	if err != nil {
		return nil, err
	}
	k, err := ParseSealKey(priv)
	if err != nil {
		return nil, err
	}
	if err := seal(k, []*envelope{e}); err != nil {
		return nil, err
	}
	return e.marshal()
}
