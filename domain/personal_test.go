package domain

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDecideErasure(t *testing.T) {
	erase := dec(ch("person.erase", "person", "p-0042"))
	runDecideCases(t, []decideCase{
		{name: "person.erase keeps the person, their team and history", when: erase,
			then: []string{"person:p-0042 person.erased"}},
		{name: "person.erase of a person who left", given: []string{dec(ch("person.leave", "person", "p-0042"))}, when: erase,
			then: []string{"person:p-0042 person.erased"}},
		{name: "person.erase refuses a second erasure", given: []string{erase}, when: erase,
			errAs: isA[*StateError](), msg: "erased already"},
		{name: "person.erase refuses an unknown person", when: dec(ch("person.erase", "person", "p-ghost")),
			errAs: isA[*NotFoundError]()},
		{name: "an erased person still moves", given: []string{erase},
			when: dec(ch("person.move", "person", "p-0042", "to", "t-empty")),
			then: []string{"person:p-0042 person.moved", "team:t-lending team.member-removed", "team:t-empty team.member-added"}},
		{name: "an erasure cannot be retracted", given: []string{decOpts([]string{"id=er"}, ch("person.erase", "person", "p-0042"))},
			when: retract("er"), errAs: isA[*RetractError](), msg: "an erasure cannot be undone"},
		{name: "person.erase needs a mandate that covers it",
			given: []string{dec(ch("mandate.grant", "id", "m-teams", "holder", "p-0042", "kinds", `["person.move"]`, "scope", "*"))},
			when:  decOpts([]string{"by=p-0042", "authority=m-teams"}, ch("person.erase", "person", "p-owner")),
			errIs: ErrUnauthorized},
	})
}

// A sealed name and the plain name with the signer's salt have the same
// canonical encoding: a signature made over the plain decision verifies
// against the sealed one in the log, which never shows the box.
func TestCanonicalEncodingCoversTheNameByItsCommitment(t *testing.T) {
	salt := bytes.Repeat([]byte{7}, SaltBytes)
	join := Change{Kind: ChangePersonJoin, ID: "p-1", Name: "Ada Lovelace", Team: "t-1", NameSalt: hex.EncodeToString(salt)}
	d := Decision{ID: "hire", By: "p-root", Authority: "root", Reason: "r", Effective: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		EffectiveGiven: true, Changes: []Change{join}}
	sealed := d
	sealed.Changes = []Change{join}
	sealed.Changes[0].NameSalt = ""
	sealed.Changes[0].Name = SealedName{Commitment: NameCommitment(salt, "Ada Lovelace"), Box: []byte("any ciphertext at all")}.String()
	a, err := CanonicalDecision(d)
	if err != nil {
		t.Fatal(err)
	}
	b, err := CanonicalDecision(sealed)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) || bytes.Contains(a, []byte("Ada")) || bytes.Contains(b, []byte("ciphertext")) {
		t.Fatalf("canonical forms:\n%q\n%q", a, b)
	}
	if !SameContent(sealed, d) {
		t.Fatal("the sealed decision and the salted plain one are not the same content")
	}
	other := d
	other.Changes = []Change{join}
	other.Changes[0].Name = "Ada King"
	if SameContent(sealed, other) {
		t.Fatal("another name under the same salt is the same content")
	}
	// A plain name without a salt (logs written before names were sealed)
	// is encoded as it always was.
	legacy := d
	legacy.Changes = []Change{join}
	legacy.Changes[0].NameSalt = ""
	c, err := CanonicalDecision(legacy)
	if err != nil || !bytes.Contains(c, []byte(`"name":"Ada Lovelace"`)) {
		t.Fatalf("legacy canonical form: %q %v", c, err)
	}
}

func TestDecoderTakesSealedNamesAndRefusesMalformedOnes(t *testing.T) {
	good := SealedName{Commitment: NameCommitment(make([]byte, SaltBytes), "x"), Box: []byte{1, 2, 3}}.String()
	for _, tc := range []struct {
		name, value, msg string
	}{
		{"sealed", good, ""},
		{"plain", "Ada", ""},
		{"prefix only", "pd1:", "no box"},
		{"short commitment", "pd1:abcd:AQID", "commitment"},
		{"upper-case commitment", "pd1:" + strings.ToUpper(good[4:68]) + good[68:], "commitment"},
		{"padded box", good + "=", "base64url"},
		{"empty box", good[:69], "base64url"},
		{"huge box", good[:69] + strings.Repeat("A", 2*MaxBoxBytes), "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeDecision([]byte(dec(ch("person.join", "id", "p-1", "name", tc.value, "team", "t-1"))), DecodeOptions{Now: time.Now, NewID: func() string { return "d" }})
			if tc.msg == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.msg) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("%q: %v, want an error about %q", tc.value, err, tc.msg)
			}
		})
	}
}

// FuzzParseSealedName: whatever the input, the parser never panics, and
// what it accepts writes back byte for byte.
func FuzzParseSealedName(f *testing.F) {
	f.Add(SealedName{Commitment: NameCommitment(nil, "x"), Box: []byte("box")}.String())
	f.Add("pd1:")
	f.Add("pd1:00:AA")
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseSealedName(s)
		if err != nil {
			return
		}
		if v.String() != s {
			t.Fatalf("%q parses to %+v, which writes %q", s, v, v.String())
		}
		if len(v.Box) == 0 || len(v.Box) > MaxBoxBytes {
			t.Fatalf("%q: box of %d bytes accepted", s, len(v.Box))
		}
	})
}
