package domain

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Personal data. The one field of Koers' vocabulary that holds personal
// data is the name of a person (person.join's name, carried on into
// person.joined, decision.recorded and proposal.opened). Ids are
// identifiers, not personal data: they must not be built from names.
// Reasons and refs are free text that the log keeps forever in clear and
// that nobody can erase: they must not hold names of people or other
// personal data (say "p-17 joins", not "Jan de Vries joins").
//
// The log keeps a person's name only sealed: a hiding commitment to it and
// the name encrypted under a data key of that person, which is kept outside
// the log. Erasing the person (person.erase) destroys the key: the log,
// its hashes, seals and signatures stay whole, and the name is gone. The
// domain only knows the sealed form's shape and the commitment, which is
// what signatures and idempotency compare; encryption, keys and their
// store belong to the edges (see package keyring).

// sealedPrefix starts a sealed name: "pd1:" (personal data, version 1),
// the commitment as 64 hex digits, ":" and the box in unpadded base64url.
// In a decision's canonical encoding a sealed name is written as "pd1:"
// and its commitment only, so that a signature never covers the box.
const sealedPrefix = "pd1:"

// SaltBytes is the size of the random salt that makes a name's commitment
// hiding: without it, anyone could try every name in a phone book against
// the commitment.
const SaltBytes = 32

// MaxBoxBytes bounds the encrypted part of a sealed name: a nonce, the salt,
// a name of MaxNameLen bytes and an authentication tag fit with room to
// spare.
const MaxBoxBytes = 512

// commitTag separates name commitments from every other SHA-256 use.
const commitTag = "koers-name-v1"

// SealedName is a person's name as the log keeps it.
type SealedName struct {
	// Commitment is NameCommitment(salt, name).
	Commitment [sha256.Size]byte
	// Box is the salt and the name encrypted under the person's data key,
	// opaque to the domain (its format belongs to package keyring).
	Box []byte
}

// String writes s in its log form.
func (s SealedName) String() string {
	return sealedPrefix + hex.EncodeToString(s.Commitment[:]) + ":" + base64.RawURLEncoding.EncodeToString(s.Box)
}

// IsSealedName reports whether a name is in sealed form (well formed or
// not): a plain name never starts with "pd1:".
func IsSealedName(s string) bool { return strings.HasPrefix(s, sealedPrefix) }

// SealedNameError is a name that starts like a sealed name but is not one.
type SealedNameError struct{ Problem string }

func (e *SealedNameError) Error() string {
	return "sealed name: " + e.Problem + " (a name starting with \"pd1:\" is a sealed name, written only by the ledger)"
}

func (e *SealedNameError) Unwrap() error { return ErrInvalid }

// ParseSealedName reads a sealed name in its log form.
func ParseSealedName(s string) (SealedName, error) {
	rest, ok := strings.CutPrefix(s, sealedPrefix)
	if !ok {
		return SealedName{}, &SealedNameError{Problem: "no pd1: prefix"}
	}
	commit, box, ok := strings.Cut(rest, ":")
	if !ok {
		return SealedName{}, &SealedNameError{Problem: "no box after the commitment"}
	}
	var out SealedName
	c, err := hex.DecodeString(commit)
	if err != nil || len(c) != sha256.Size || hex.EncodeToString(c) != commit {
		return SealedName{}, &SealedNameError{Problem: fmt.Sprintf("want a commitment of %d lower-case hex digits", 2*sha256.Size)}
	}
	copy(out.Commitment[:], c)
	if base64.RawURLEncoding.DecodedLen(len(box)) > MaxBoxBytes {
		return SealedName{}, &SealedNameError{Problem: fmt.Sprintf("box longer than %d bytes", MaxBoxBytes)}
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(box)
	if err != nil || len(b) == 0 {
		return SealedName{}, &SealedNameError{Problem: "box is not unpadded base64url"}
	}
	out.Box = b
	return out, nil
}

// NameCommitment is SHA-256 over "koers-name-v1", the salt and the name:
// it binds a signature to the name without revealing it once the name's
// key is destroyed (the salt is only inside the box).
func NameCommitment(salt []byte, name string) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(commitTag))
	h.Write(salt)
	h.Write([]byte(name))
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// ParseSalt reads a name salt written as 64 lower-case hex digits.
func ParseSalt(s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != SaltBytes || hex.EncodeToString(b) != s {
		return nil, fmt.Errorf("want a salt of %d lower-case hex digits", 2*SaltBytes)
	}
	return b, nil
}

// ErasedLabel is what read models, feeds and answers show instead of the
// name of an erased person.
func ErasedLabel(person string) string { return "erased person (" + person + ")" }

// signingForm is c as the canonical encoding writes it: a person's name
// replaced by its commitment ("pd1:" and 64 hex digits), from its sealed
// form or from the plain name and the salt the signer chose. A plain name
// without a salt (decisions written before names were sealed) is written
// as it is.
func (c Change) signingForm() (Change, error) {
	if c.Kind != ChangePersonJoin {
		return c, nil
	}
	switch {
	case IsSealedName(c.Name):
		s, err := ParseSealedName(c.Name)
		if err != nil {
			return c, err
		}
		c.Name = sealedPrefix + hex.EncodeToString(s.Commitment[:])
	case c.NameSalt != "":
		salt, err := ParseSalt(c.NameSalt)
		if err != nil {
			return c, &FieldError{Field: "name_salt", Err: err}
		}
		commit := NameCommitment(salt, c.Name)
		c.Name = sealedPrefix + hex.EncodeToString(commit[:])
	}
	c.NameSalt = ""
	return c, nil
}

// PersonalName is one person's name in a decision, for the ledger to seal
// or a reader to open.
type PersonalName struct {
	Change int    // index in the decision's changes
	Person string // the person's id
	Name   string // plain or sealed
	Salt   string // the signer's salt (hex), "" when none was given
}

// PersonalNames lists the names of people in changes, in order.
func PersonalNames(changes []Change) []PersonalName {
	var out []PersonalName
	for i, c := range changes {
		if c.Kind == ChangePersonJoin {
			out = append(out, PersonalName{Change: i, Person: c.ID, Name: c.Name, Salt: c.NameSalt})
		}
	}
	return out
}

// WithNames returns a copy of changes with the names of people replaced by
// what name returns for each (the changes' other fields are shared).
func WithNames(changes []Change, name func(PersonalName) (string, error)) ([]Change, error) {
	out := changes
	copied := false
	for _, p := range PersonalNames(changes) {
		n, err := name(p)
		if err != nil {
			return nil, err
		}
		if !copied {
			out = append([]Change(nil), changes...)
			copied = true
		}
		out[p.Change].Name = n
		out[p.Change].NameSalt = ""
	}
	return out, nil
}

// EffectsWithNames returns effects with the names in their person.joined
// data replaced by what open returns (opened, or relabelled); effects
// itself is not changed.
func EffectsWithNames(effects []Effect, open func(person, name string) (string, error)) ([]Effect, error) {
	out := effects
	copied := false
	for i, e := range effects {
		if e.Type != EventPersonJoined {
			continue
		}
		var p PersonJoined
		if err := json.Unmarshal(e.Data, &p); err != nil {
			return nil, fmt.Errorf("effect %d: %w", i, err)
		}
		n, err := open(p.ID, p.Name)
		if err != nil {
			return nil, err
		}
		p.Name = n
		data, err := json.Marshal(p)
		if err != nil {
			return nil, err
		}
		if !copied {
			out = append([]Effect(nil), effects...)
			copied = true
		}
		out[i].Data = data
	}
	return out, nil
}

// ErrPlainSealed is a decision submitted with a name already in sealed
// form: names are sealed by the ledger, from the plain name.
var ErrPlainSealed = errors.New("names are submitted in clear and sealed by the ledger")

// ErrErased is wrapped by the error of sealing the name of a person who
// was erased.
var ErrErased = errors.New("the person was erased")
