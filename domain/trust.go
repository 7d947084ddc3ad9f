package domain

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// This file holds what makes decisions provable: the ledger's keys (the
// writer's Ed25519 key that seals the log, recorded in the log itself),
// actors' keys and their signatures over decisions, the ledger's policy
// that requires them, and what counts as the same decision when an id is
// submitted again.

// The aggregates of trust.
const (
	// KindLedger holds the ledger's own settings: ledger:keys (the writer's
	// public keys, oldest first) and ledger:policy.
	KindLedger AggregateKind = "ledger"
	// KindActor holds the public keys an actor signs decisions with.
	KindActor AggregateKind = "actor"
)

// The ledger aggregates' ids.
const (
	LedgerKeys   = "keys"
	LedgerPolicy = "policy"
)

// LedgerKeysRef and LedgerPolicyRef name the ledger's aggregates.
var (
	LedgerKeysRef   = Ref{Kind: KindLedger, ID: LedgerKeys}
	LedgerPolicyRef = Ref{Kind: KindLedger, ID: LedgerPolicy}
)

// The events of trust.
const (
	// EventLedgerKeyRecorded records the public key the ledger's writers
	// seal with from the end of its decision on (the genesis records the
	// first, ledger.rotate-key a successor).
	EventLedgerKeyRecorded = "ledger.key-recorded"
	// EventLedgerSignaturesRequired: from then on every decision must carry
	// its actor's signature.
	EventLedgerSignaturesRequired = "ledger.signatures-required"
	EventActorKeyRegistered       = "actor.key-registered"
	EventActorKeyRevoked          = "actor.key-revoked"
)

// MaxActorKeys bounds the keys one actor may have registered (revoked ones
// included): signature checks try each.
const MaxActorKeys = 16

// LedgerKey is the payload of ledger.key-recorded.
type LedgerKey struct {
	Key string `json:"key"` // Ed25519 public key, hex
	// Previous is the key it succeeds ("" for the genesis key).
	Previous string `json:"previous,omitempty"`
}

// LedgerPolicySet is the payload of ledger.signatures-required.
type LedgerPolicySet struct {
	RequireSignatures bool `json:"require_signatures"`
}

// ActorKey is the payload of actor.key-registered and actor.key-revoked.
type ActorKey struct {
	Actor string `json:"actor"`
	Key   string `json:"key"`
}

// LedgerState is ledger:keys or ledger:policy.
type LedgerState struct {
	// Keys are the writer's public keys (hex), oldest first; the last is in
	// force.
	Keys              []string
	RequireSignatures bool
}

// ActorState is the keys an actor signs with.
type ActorState struct {
	Keys []ActorKeyState
}

// ActorKeyState is one registered key.
type ActorKeyState struct {
	Key        string // hex
	Registered uint64 // sequence of its registration
	Revoked    uint64 // sequence of its revocation, 0 while in force
}

// Active returns the keys in force, in registration order.
func (a *ActorState) Active() []string {
	var out []string
	for _, k := range a.Keys {
		if k.Revoked == 0 {
			out = append(out, k.Key)
		}
	}
	return out
}

func (a *ActorState) find(key string) int {
	return slices.IndexFunc(a.Keys, func(k ActorKeyState) bool { return k.Key == key })
}

// ParsePublicKey reads an Ed25519 public key written as 64 lower-case hex
// digits.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize || hex.EncodeToString(b) != s {
		return nil, fmt.Errorf("want an Ed25519 public key as %d lower-case hex digits", 2*ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// decisionTag starts the canonical encoding of a decision, so that a
// signature over it can never be taken for a signature over anything else.
const decisionTag = "koers-decision-v1"

// CanonicalDecision is the byte string an actor signs: the ASCII tag
// "koers-decision-v1" followed by these fields, in this order, each written
// as its length in bytes (unsigned 64-bit big-endian) and then its bytes:
//
//	id, by, authority, reason, number of refs (decimal), each ref,
//	effective time (RFC 3339 with nanoseconds, UTC; empty when the
//	decision names none and takes its recording time), number of changes
//	(decimal), each change in its public JSON form (compact, kind first,
//	then its fields in the order of the change table; optional fields only
//	when set; amounts as written; times in RFC 3339 UTC; a person's
//	name as "pd1:" and the 64 hex digits of its commitment when it is
//	sealed or has a name_salt, which is then left out — see
//	[NameCommitment])
//
// The signature itself, the approvers and anything the ledger adds when
// recording are not part of it.
func CanonicalDecision(d Decision) ([]byte, error) {
	return canonical(d, d.EffectiveGiven)
}

func canonical(d Decision, withEffective bool) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(decisionTag)
	field := func(s string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		b.Write(n[:])
		b.WriteString(s)
	}
	field(d.ID)
	field(d.By)
	field(d.Authority)
	field(d.Reason)
	field(strconv.Itoa(len(d.Refs)))
	for _, r := range d.Refs {
		field(r)
	}
	if withEffective {
		field(d.Effective.UTC().Format(time.RFC3339Nano))
	} else {
		field("")
	}
	field(strconv.Itoa(len(d.Changes)))
	for i, c := range d.Changes {
		if !c.ValidUntil.IsZero() {
			c.ValidUntil = c.ValidUntil.UTC()
		}
		c, err := c.signingForm()
		if err != nil {
			return nil, fmt.Errorf("canonical decision %s: change %d: %w", d.ID, i, err)
		}
		j, err := c.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("canonical decision %s: change %d: %w", d.ID, i, err)
		}
		field(string(j))
	}
	return b.Bytes(), nil
}

// SameContent reports whether d, submitted again under the id of an
// earlier decision, is that decision: the same by, authority, reason, refs,
// effective time and changes (compared in their canonical encoding). The
// signature is not content. A d that named no effective time matches
// whatever effective time the earlier one took.
func SameContent(earlier, d Decision) bool {
	a, errA := canonical(earlier, d.EffectiveGiven)
	b, errB := canonical(d, d.EffectiveGiven)
	return errA == nil && errB == nil && bytes.Equal(a, b)
}

// DecisionOf returns the decision a decision.recorded describes, as it was
// submitted (effective named, signature included).
func (r DecisionRecorded) DecisionOf() (Decision, error) {
	d := Decision{ID: r.ID, By: r.By, Authority: r.Authority, Reason: r.Reason, Refs: r.Refs,
		Effective: r.Effective, Changes: r.Changes, EffectiveGiven: !r.EffectiveOmitted}
	if r.Signature != "" {
		sig, err := hex.DecodeString(r.Signature)
		if err != nil {
			return Decision{}, fmt.Errorf("decision %s: signature: %w", r.ID, ErrInvalid)
		}
		d.Signature = sig
	}
	return d, nil
}

// VerifySignature checks d's signature against key (hex).
func VerifySignature(d Decision, key string) bool {
	pub, err := ParsePublicKey(key)
	if err != nil || len(d.Signature) != ed25519.SignatureSize {
		return false
	}
	msg, err := CanonicalDecision(d)
	if err != nil {
		return false
	}
	return ed25519.Verify(pub, msg, d.Signature)
}

// ContentHash is a short fingerprint of a decision's content, for messages.
func ContentHash(d Decision) string {
	b, _ := canonical(d, true)
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:8])
}

// SignatureError is a decision whose signature does not verify under any
// key registered for its actor (or whose actor has none).
type SignatureError struct {
	ID    string
	Actor string
	// Keys is how many keys of the actor are in force.
	Keys int
}

func (e *SignatureError) Error() string {
	if e.Keys == 0 {
		return fmt.Sprintf("decision %s is signed, but %s has no key registered in the ledger; register one with an actor.register-key decision (koers keys new --actor %s prints it)",
			e.ID, e.Actor, e.Actor)
	}
	return fmt.Sprintf("decision %s: its signature does not verify under any of the %d keys registered for %s (wrong key, a revoked key, or the decision changed after it was signed)",
		e.ID, e.Keys, e.Actor)
}

func (e *SignatureError) Unwrap() error { return ErrUnauthorized }

// SignatureRequiredError is an unsigned decision under a ledger whose
// policy requires signatures.
type SignatureRequiredError struct {
	ID    string
	Actor string
}

func (e *SignatureRequiredError) Error() string {
	return fmt.Sprintf("decision %s is not signed: the ledger requires every decision to carry its actor's signature; %s signs with the key registered for them (koers decide signs with ~/.config/koers/keys/%s.key or --key)",
		e.ID, e.Actor, e.Actor)
}

func (e *SignatureRequiredError) Unwrap() error { return ErrUnauthorized }

// DecisionReusedError is a decision submitted under the id of an earlier
// one with other content: the id is the idempotency key of what was
// recorded first, and the new content is refused, not dropped.
type DecisionReusedError struct {
	ID string
	// Sequence and RecordedAt are the first recording's (the decision
	// record's, or the proposal's when the id is a proposal).
	Sequence   uint64
	RecordedAt time.Time
	// Proposal is true when the first recording is a proposal.
	Proposal bool
}

func (e *DecisionReusedError) Error() string {
	what := "decision"
	if e.Proposal {
		what = "proposal"
	}
	return fmt.Sprintf("decision id %q is already recorded with other content (%s at sequence %d, %s); nothing was written: give the new decision another id",
		e.ID, what, e.Sequence, e.RecordedAt.UTC().Format(time.RFC3339))
}

func (e *DecisionReusedError) Unwrap() error { return ErrConflict }

// actionTag starts the canonical encoding of an action on a proposal.
const actionTag = "koers-action-v1"

// CanonicalAction is the byte string a member signs to approve, reject or
// withdraw a proposal: the ASCII tag "koers-action-v1" followed by the
// proposal id, the action (approve, reject, withdraw), the member and the
// reason, each as its length in bytes (unsigned 64-bit big-endian) and
// then its bytes.
func CanonicalAction(a Action) []byte {
	var b bytes.Buffer
	b.WriteString(actionTag)
	for _, s := range []string{a.Proposal, a.Kind, a.By, a.Reason} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		b.Write(n[:])
		b.WriteString(s)
	}
	return b.Bytes()
}

func verifyAction(a Action, key string) bool {
	pub, err := ParsePublicKey(key)
	return err == nil && len(a.Signature) == ed25519.SignatureSize && ed25519.Verify(pub, CanonicalAction(a), a.Signature)
}

// checkActionSignature judges an action's signature like a decision's and
// returns the key that verified it ("" for an unsigned action).
func (k *work) checkActionSignature(a Action) (string, error) {
	id := a.Kind + " of proposal " + a.Proposal
	pol, err := k.get(LedgerPolicyRef)
	if err != nil {
		return "", err
	}
	if len(a.Signature) == 0 {
		if pol.Ledger != nil && pol.Ledger.RequireSignatures {
			return "", &SignatureRequiredError{ID: id, Actor: a.By}
		}
		return "", nil
	}
	act, err := k.get(ref(KindActor, a.By))
	if err != nil {
		return "", err
	}
	var keys []string
	if act.Actor != nil {
		keys = act.Actor.Active()
	}
	for _, key := range keys {
		if verifyAction(a, key) {
			return key, nil
		}
	}
	return "", &SignatureError{ID: id, Actor: a.By, Keys: len(keys)}
}

// checkSignature judges the decision's signature against the keys
// registered for its actor and the ledger's policy, and remembers the key
// that verified it.
func (k *work) checkSignature() error {
	d := k.d
	pol, err := k.get(LedgerPolicyRef)
	if err != nil {
		return err
	}
	required := pol.Ledger != nil && pol.Ledger.RequireSignatures
	if len(d.Signature) == 0 {
		if required {
			return &SignatureRequiredError{ID: d.ID, Actor: d.By}
		}
		return nil
	}
	act, err := k.get(ref(KindActor, d.By))
	if err != nil {
		return err
	}
	var keys []string
	if act.Actor != nil {
		keys = act.Actor.Active()
	}
	for _, key := range keys {
		if VerifySignature(d, key) {
			k.signedWith = key
			return nil
		}
	}
	return &SignatureError{ID: d.ID, Actor: d.By, Keys: len(keys)}
}

// trust applies the changes of this file.
func (k *work) trust(c Change) error {
	switch c.Kind {
	case ChangeActorRegisterKey:
		r := ref(KindActor, c.Actor)
		a, err := k.get(r)
		if err != nil {
			return err
		}
		if a.Actor != nil {
			if i := a.Actor.find(c.Key); i >= 0 {
				return &StateError{Ref: r, Problem: "has this key registered already (a revoked key cannot be registered again)"}
			}
			if len(a.Actor.Keys) >= MaxActorKeys {
				return &StateError{Ref: r, Problem: fmt.Sprintf("has %d keys registered, at most %d", len(a.Actor.Keys), MaxActorKeys)}
			}
		}
		return k.emit(r, EventActorKeyRegistered, ActorKey{Actor: c.Actor, Key: c.Key})
	case ChangeActorRevokeKey:
		r := ref(KindActor, c.Actor)
		a, err := k.get(r)
		if err != nil {
			return err
		}
		i := -1
		if a.Actor != nil {
			i = a.Actor.find(c.Key)
		}
		if i < 0 || a.Actor.Keys[i].Revoked != 0 {
			return &StateError{Ref: r, Problem: "has no such key in force"}
		}
		return k.emit(r, EventActorKeyRevoked, ActorKey{Actor: c.Actor, Key: c.Key})
	case ChangeLedgerRotateKey, ChangeLedgerRequireSigs:
		if k.d.Authority != RootMandate {
			return &AuthorityError{Mandate: k.d.Authority, Actor: k.d.By,
				Problem: "only a decision under the root mandate changes the ledger's key or policy", Advice: "decide it under mandate \"root\""}
		}
	}
	switch c.Kind {
	case ChangeLedgerRotateKey:
		l, err := k.get(LedgerKeysRef)
		if err != nil {
			return err
		}
		var prev string
		if l.Ledger != nil && len(l.Ledger.Keys) > 0 {
			prev = l.Ledger.Keys[len(l.Ledger.Keys)-1]
			if slices.Contains(l.Ledger.Keys, c.Key) {
				return &StateError{Ref: LedgerKeysRef, Problem: "has recorded this key before: a successor is a new key"}
			}
		}
		return k.emit(LedgerKeysRef, EventLedgerKeyRecorded, LedgerKey{Key: c.Key, Previous: prev})
	case ChangeLedgerRequireSigs:
		p, err := k.get(LedgerPolicyRef)
		if err != nil {
			return err
		}
		if p.Ledger != nil && p.Ledger.RequireSignatures {
			return &StateError{Ref: LedgerPolicyRef, Problem: "requires signatures already"}
		}
		return k.emit(LedgerPolicyRef, EventLedgerSignaturesRequired, LedgerPolicySet{RequireSignatures: true})
	}
	return fmt.Errorf("change kind %q: %w", c.Kind, ErrInvalid)
}

// evolveTrust applies the events of this file; they create their
// aggregate when it does not exist yet.
func evolveTrust(a *Aggregate, e Recorded, v any) error {
	switch p := v.(type) {
	case *LedgerKey:
		l := LedgerState{}
		if a.Ledger != nil {
			l = *a.Ledger
		}
		l.Keys = append(slices.Clip(l.Keys), p.Key)
		a.Ledger = &l
	case *LedgerPolicySet:
		l := LedgerState{}
		if a.Ledger != nil {
			l = *a.Ledger
		}
		l.RequireSignatures = p.RequireSignatures
		a.Ledger = &l
	case *ActorKey:
		s := ActorState{}
		if a.Actor != nil {
			s.Keys = slices.Clone(a.Actor.Keys)
		}
		i := s.find(p.Key)
		switch e.Type {
		case EventActorKeyRegistered:
			if i >= 0 {
				return fmt.Errorf("event %s: %s has key %s already", e.Type, a.Ref, shortKey(p.Key))
			}
			s.Keys = append(s.Keys, ActorKeyState{Key: p.Key, Registered: e.Sequence})
		default:
			if i < 0 {
				return fmt.Errorf("event %s: %s has no key %s", e.Type, a.Ref, shortKey(p.Key))
			}
			s.Keys[i].Revoked = e.Sequence
		}
		a.Actor = &s
	default:
		return errors.New("not a trust event")
	}
	return nil
}

func shortKey(k string) string {
	if len(k) > 16 {
		return k[:16]
	}
	return k
}

// SignatureAudit follows the log in order and checks every recorded
// decision's signature against the key registered for its actor when the
// decision was recorded, and that unsigned decisions were allowed then. It
// is what a verifier needs on top of the log's seals; feed it every genuine
// event (Observe) and it reports what is wrong.
type SignatureAudit struct {
	actors   map[string]*ActorState
	required bool
}

// Audited reports whether events of type typ matter to a SignatureAudit
// (the others need not be given to it).
func Audited(typ string) bool {
	switch typ {
	case EventActorKeyRegistered, EventActorKeyRevoked, EventLedgerSignaturesRequired, EventDecisionRecorded,
		EventProposalApproved, EventProposalRejected, EventProposalWithdrawn, EventProposalDecided, EventProposalRefused:
		return true
	}
	return false
}

// NewSignatureAudit starts an audit at the beginning of the log.
func NewSignatureAudit() *SignatureAudit {
	return &SignatureAudit{actors: map[string]*ActorState{}}
}

// Observe takes the next genuine event and returns a problem ("" if none).
func (s *SignatureAudit) Observe(r Recorded) string {
	switch r.Type {
	case EventActorKeyRegistered, EventActorKeyRevoked, EventLedgerSignaturesRequired:
		v, err := decodeData(r.Event)
		if err != nil {
			return err.Error()
		}
		if p, ok := v.(*LedgerPolicySet); ok {
			s.required = s.required || p.RequireSignatures
			return ""
		}
		p := v.(*ActorKey)
		a := Aggregate{Ref: r.Aggregate, Actor: s.actors[p.Actor]}
		if err := evolveTrust(&a, r, v); err != nil {
			return err.Error()
		}
		s.actors[p.Actor] = a.Actor
		return ""
	case EventProposalApproved, EventProposalRejected, EventProposalWithdrawn, EventProposalDecided, EventProposalRefused:
		return s.observeAction(r)
	case EventDecisionRecorded:
	default:
		return ""
	}
	v, err := decodeData(r.Event)
	if err != nil {
		return err.Error()
	}
	rec := v.(*DecisionRecorded)
	if rec.Signature == "" {
		if s.required && rec.ID != GenesisDecision {
			return fmt.Sprintf("decision %s is not signed, but the ledger required signatures when it was recorded", rec.ID)
		}
		return ""
	}
	d, err := rec.DecisionOf()
	if err != nil {
		return err.Error()
	}
	what := "decision " + rec.ID
	if problem := s.registered(what, rec.By, rec.SignedWith); problem != "" {
		return problem
	}
	if !VerifySignature(d, rec.SignedWith) {
		return fmt.Sprintf("%s: its signature does not verify under key %s of %s", what, shortKey(rec.SignedWith), rec.By)
	}
	return ""
}

// registered says what is wrong with key as by's key now ("" if nothing).
func (s *SignatureAudit) registered(what, by, key string) string {
	a := s.actors[by]
	if a == nil || a.find(key) < 0 {
		return fmt.Sprintf("%s is signed with key %s, which was not registered for %s when it was recorded", what, shortKey(key), by)
	}
	if rev := a.Keys[a.find(key)].Revoked; rev != 0 {
		return fmt.Sprintf("%s is signed with key %s of %s, revoked at sequence %d before it was recorded", what, shortKey(key), by, rev)
	}
	return ""
}

// observeAction checks the signature of an action on a proposal.
func (s *SignatureAudit) observeAction(r Recorded) string {
	v, err := decodeData(r.Event)
	if err != nil {
		return err.Error()
	}
	var a Action
	var key string
	switch p := v.(type) {
	case *ProposalVote:
		a = Action{Proposal: p.ID, By: p.By, Reason: p.Reason}
		a.Signature, _ = hex.DecodeString(p.Signature)
		key = p.SignedWith
	case *ProposalOutcome:
		a = Action{Proposal: p.ID, By: p.By, Reason: p.ApprovalReason}
		a.Signature, _ = hex.DecodeString(p.ApprovalSignature)
		key = p.ApprovalSignedWith
	}
	switch r.Type {
	case EventProposalRejected:
		a.Kind = ActionReject
	case EventProposalWithdrawn:
		a.Kind = ActionWithdraw
	default:
		a.Kind = ActionApprove
	}
	what := a.Kind + " of proposal " + a.Proposal + " by " + a.By
	if key == "" {
		if s.required {
			return what + " is not signed, but the ledger required signatures when it was recorded"
		}
		return ""
	}
	if problem := s.registered(what, a.By, key); problem != "" {
		return problem
	}
	if !verifyAction(a, key) {
		return fmt.Sprintf("%s: its signature does not verify under key %s", what, shortKey(key))
	}
	return ""
}
