package domain

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Bounds on a decision. A change emits at most a handful of events (a
// person.move touches the person and two teams, an owner change the product
// and two people) and the log's atomic batch holds at most 1000 messages, so
// MaxChanges keeps a decision well inside one batch; Decide still refuses a
// decision whose events exceed MaxEvents.
const (
	MaxDecisionBytes = 1 << 20 // the decoder's input limit
	MaxChanges       = 200
	MaxEvents        = 1000
	MaxRefs          = 20
	MaxRefLen        = 2048
	MaxReasonLen     = 4000
	MaxNameLen       = 200
	MaxUnitLen       = 32
	MaxKinds         = 32 // patterns in one mandate
	MaxMembers       = 50 // members of one board
)

// Decision is what a person decides: a set of changes that succeed or fail
// together, taken by an actor under a mandate.
type Decision struct {
	ID        string // idempotency key; generated when the JSON has none
	By        string // the actor
	Authority string // the mandate the decision is taken under
	Reason    string
	Refs      []string // links to minutes, documents
	Effective time.Time
	Changes   []Change
	// Approvers are the board members who approved the decision, when it is
	// taken under a board's mandate (set from its proposal; not part of the
	// public format: approvals are recorded by `approve`, never claimed).
	Approvers []string
	// Signature is the actor's Ed25519 signature over the decision's
	// canonical encoding ([CanonicalDecision]); nil when unsigned. It is not
	// part of the decision's content.
	Signature []byte
	// EffectiveGiven tells whether the decision named its effective time
	// (false: it took its recording time). A retry of a decision that named
	// none matches its first recording whatever time that was.
	EffectiveGiven bool
}

// Meta is the metadata every event of d carries.
func (d Decision) Meta() Meta {
	return Meta{DecisionID: d.ID, By: d.By, Authority: d.Authority, Reason: d.Reason,
		Refs: append([]string(nil), d.Refs...), Effective: d.Effective}
}

// MarshalJSON writes d in the public decision format, effective as an
// RFC 3339 time; DecodeDecision reads it back unchanged.
func (d Decision) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		ID        string   `json:"id"`
		By        string   `json:"by"`
		Authority string   `json:"authority"`
		Reason    string   `json:"reason"`
		Refs      []string `json:"refs,omitempty"`
		Effective string   `json:"effective"`
		Changes   []Change `json:"changes"`
		Signature string   `json:"signature,omitempty"`
	}{d.ID, d.By, d.Authority, d.Reason, d.Refs, d.Effective.Format(time.RFC3339Nano), d.Changes, hex.EncodeToString(d.Signature)})
}

// UnmarshalJSON reads d in the public decision format, as written by
// MarshalJSON (a proposal keeps its decision that way); id and effective
// must be present.
func (d *Decision) UnmarshalJSON(data []byte) error {
	v, err := DecodeDecision(data, DecodeOptions{Now: func() time.Time { return time.Time{} }, NewID: func() string { return "" }})
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Change is one change of a decision. Kind says which fields are set; see
// the table in the package documentation.
type Change struct {
	Kind        string
	ID          string // id of what the change creates
	Name        string
	ValueStream string
	Product     string
	Owner       string
	Team        string
	Type        string // team type
	Person      string
	Role        string // person.join: the person's role in the team, optional
	To          string // a team (person.move) or an account (funding.*)
	From        string // an account (funding.*)
	Project     string
	Period      string
	Amount      *Decimal
	Currency    Currency
	Holder      string
	Kinds       []string
	Scope       string
	Limit       *Decimal
	PeriodLimit *Decimal
	ValidUntil  time.Time // zero: none
	Mandate     string
	KPI         string
	Unit        string
	Target      *Decimal
	Value       *Decimal
	Direction   string // a KPI's: higher or lower
	Category    string // a KPI's: one of KPICategories
	Quarter     string // a KPI target's quarter: 2026-Q2
	Note        string // a KPI measurement's note
	Decision    string
	Board       string
	Members     []string
	Quorum      int    // 0: not given
	Actor       string // actor.register-key, actor.revoke-key
	Key         string // an Ed25519 public key, 64 lower-case hex digits
	// NameSalt is person.join's salt for the commitment to the name (64
	// hex digits), chosen by a signer so that its signature covers the
	// commitment (see personal.go); "" lets the ledger choose one.
	NameSalt string
}

// The change kinds.
const (
	ChangeValueStreamDefine = "valuestream.define"
	ChangeValueStreamRetire = "valuestream.retire"
	ChangeProductLaunch     = "product.launch"
	ChangeProductMove       = "product.move"
	ChangeProductOwner      = "product.assign-owner"
	ChangeProductRetire     = "product.retire"
	ChangeTeamForm          = "team.form"
	ChangeTeamAssign        = "team.assign"
	ChangeTeamUnassign      = "team.unassign"
	ChangeTeamDisband       = "team.disband"
	ChangePersonJoin        = "person.join"
	ChangePersonMove        = "person.move"
	ChangePersonLeave       = "person.leave"
	ChangePersonErase       = "person.erase"
	ChangeProjectStart      = "project.start"
	ChangeProjectClose      = "project.close"
	ChangeProjectConvert    = "project.convert"
	ChangeBudgetOpen        = "budget.open"
	ChangeBudgetAdjust      = "budget.adjust"
	ChangeFundingAllocate   = "funding.allocate"
	ChangeFundingShift      = "funding.shift"
	ChangeFundingRelease    = "funding.release"
	ChangeMandateGrant      = "mandate.grant"
	ChangeMandateRevoke     = "mandate.revoke"
	ChangeKPIDefine         = "kpi.define"
	ChangeKPIRecord         = "kpi.record"
	ChangeKPITarget         = "kpi.target"
	ChangeDecisionRetract   = "decision.retract"
	ChangeBoardForm         = "board.form"
	ChangeBoardAddMember    = "board.add-member"
	ChangeBoardRemoveMember = "board.remove-member"
	ChangeBoardDisband      = "board.disband"
	ChangeActorRegisterKey  = "actor.register-key"
	ChangeActorRevokeKey    = "actor.revoke-key"
	ChangeLedgerRotateKey   = "ledger.rotate-key"
	ChangeLedgerRequireSigs = "ledger.require-signatures"
)

// Team types (Team Topologies).
var TeamTypes = []string{"stream-aligned", "platform", "enabling", "complicated-subsystem"}

type fieldType int

const (
	fID         fieldType = iota // a valid id
	fName                        // free text, 1..MaxNameLen
	fAccount                     // a funding account
	fPositive                    // decimal > 0
	fSigned                      // decimal != 0
	fNumber                      // any decimal
	fCurrency                    // ISO 4217 code with a known exponent
	fKinds                       // list of kind patterns
	fScope                       // *, valuestream:<id>, product:<id>
	fTeamType                    // one of TeamTypes
	fUnit                        // short text
	fTime                        // a date or RFC 3339 time, like effective
	fHolder                      // a person id or board:<id>
	fMembers                     // list of person ids
	fQuorum                      // a count of members, 1..MaxMembers (a JSON number or a string of digits)
	fDirection                   // higher or lower
	fCategory                    // one of KPICategories
	fQuarter                     // a quarter: 2026-Q2
	fNote                        // free text, up to MaxNameLen, may be empty
	fKey                         // an Ed25519 public key as 64 lower-case hex digits
	fPersonName                  // a person's name: like fName, or sealed (personal.go)
	fSalt                        // a name salt: 64 lower-case hex digits
)

type fieldSpec struct {
	name     string
	typ      fieldType
	optional bool
}

func req(name string, t fieldType) fieldSpec { return fieldSpec{name: name, typ: t} }
func opt(name string, t fieldType) fieldSpec { return fieldSpec{name: name, typ: t, optional: true} }

// changeSpecs is the public decision vocabulary: per kind, its fields in
// the order they are written back.
var changeSpecs = map[string][]fieldSpec{
	ChangeValueStreamDefine: {req("id", fID), req("name", fName)},
	ChangeValueStreamRetire: {req("valuestream", fID)},
	ChangeProductLaunch:     {req("id", fID), req("name", fName), req("valuestream", fID), opt("owner", fID)},
	ChangeProductMove:       {req("product", fID), req("valuestream", fID)},
	ChangeProductOwner:      {req("product", fID), req("owner", fID)},
	ChangeProductRetire:     {req("product", fID)},
	ChangeTeamForm:          {req("id", fID), req("name", fName), req("type", fTeamType)},
	ChangeTeamAssign:        {req("team", fID), req("product", fID)},
	ChangeTeamUnassign:      {req("team", fID), req("product", fID)},
	ChangeTeamDisband:       {req("team", fID)},
	ChangePersonJoin:        {req("id", fID), req("name", fPersonName), req("team", fID), opt("role", fName), opt("name_salt", fSalt)},
	ChangePersonMove:        {req("person", fID), req("to", fID)},
	ChangePersonLeave:       {req("person", fID)},
	ChangePersonErase:       {req("person", fID)},
	ChangeProjectStart:      {req("id", fID), req("name", fName), opt("valuestream", fID)},
	ChangeProjectClose:      {req("project", fID)},
	ChangeProjectConvert:    {req("project", fID), req("product", fID), req("name", fName), req("valuestream", fID), opt("owner", fID)},
	ChangeBudgetOpen:        {req("period", fID), req("amount", fPositive), req("currency", fCurrency)},
	ChangeBudgetAdjust:      {req("period", fID), req("amount", fSigned)},
	ChangeFundingAllocate:   {req("period", fID), req("to", fAccount), req("amount", fPositive)},
	ChangeFundingShift:      {req("period", fID), req("from", fAccount), req("to", fAccount), req("amount", fPositive)},
	ChangeFundingRelease:    {req("period", fID), req("from", fAccount), req("amount", fPositive)},
	ChangeMandateGrant: {req("id", fID), req("holder", fHolder), req("kinds", fKinds), req("scope", fScope), opt("limit", fPositive),
		opt("period_limit", fPositive), opt("valid_until", fTime)},
	ChangeMandateRevoke: {req("mandate", fID)},
	ChangeKPIDefine: {opt("product", fID), opt("valuestream", fID), req("kpi", fID), req("unit", fUnit), opt("target", fNumber),
		opt("direction", fDirection), opt("category", fCategory)},
	ChangeKPIRecord: {opt("product", fID), opt("valuestream", fID), req("kpi", fID), req("value", fNumber), opt("unit", fUnit),
		opt("note", fNote)},
	ChangeKPITarget:         {opt("product", fID), opt("valuestream", fID), req("kpi", fID), opt("quarter", fQuarter), opt("target", fNumber)},
	ChangeDecisionRetract:   {req("decision", fID)},
	ChangeBoardForm:         {req("id", fID), req("name", fName), req("members", fMembers), req("quorum", fQuorum)},
	ChangeBoardAddMember:    {req("board", fID), req("person", fID), opt("quorum", fQuorum)},
	ChangeBoardRemoveMember: {req("board", fID), req("person", fID), opt("quorum", fQuorum)},
	ChangeBoardDisband:      {req("board", fID)},
	ChangeActorRegisterKey:  {req("actor", fID), req("public_key", fKey)},
	ChangeActorRevokeKey:    {req("actor", fID), req("public_key", fKey)},
	ChangeLedgerRotateKey:   {req("public_key", fKey)},
	ChangeLedgerRequireSigs: {},
}

// ChangeKinds lists the public change kinds.
func ChangeKinds() []string { return sortedKeys(changeSpecs) }

// ChangeField is one field of a change kind in the public format.
type ChangeField struct {
	Name     string
	Optional bool
	// List is true for the one field that takes several values (kinds).
	List bool
}

// ChangeFields returns the fields of a change kind, in their written order
// (false for an unknown kind).
func ChangeFields(kind string) ([]ChangeField, bool) {
	specs, ok := changeSpecs[kind]
	if !ok {
		return nil, false
	}
	out := make([]ChangeField, len(specs))
	for i, f := range specs {
		out[i] = ChangeField{Name: f.name, Optional: f.optional, List: f.typ == fKinds || f.typ == fMembers}
	}
	return out, true
}

func (c *Change) str(name string) *string {
	switch name {
	case "id":
		return &c.ID
	case "name":
		return &c.Name
	case "valuestream":
		return &c.ValueStream
	case "product":
		return &c.Product
	case "owner":
		return &c.Owner
	case "team":
		return &c.Team
	case "type":
		return &c.Type
	case "person":
		return &c.Person
	case "role":
		return &c.Role
	case "to":
		return &c.To
	case "from":
		return &c.From
	case "project":
		return &c.Project
	case "period":
		return &c.Period
	case "holder":
		return &c.Holder
	case "scope":
		return &c.Scope
	case "mandate":
		return &c.Mandate
	case "kpi":
		return &c.KPI
	case "unit":
		return &c.Unit
	case "direction":
		return &c.Direction
	case "category":
		return &c.Category
	case "quarter":
		return &c.Quarter
	case "note":
		return &c.Note
	case "decision":
		return &c.Decision
	case "board":
		return &c.Board
	case "actor":
		return &c.Actor
	case "public_key":
		return &c.Key
	case "name_salt":
		return &c.NameSalt
	}
	return nil
}

func (c *Change) dec(name string) **Decimal {
	switch name {
	case "amount":
		return &c.Amount
	case "limit":
		return &c.Limit
	case "period_limit":
		return &c.PeriodLimit
	case "target":
		return &c.Target
	case "value":
		return &c.Value
	}
	return nil
}

// MarshalJSON writes c in the public format: kind first, then its fields in
// the vocabulary's order; optional fields only when set.
func (c Change) MarshalJSON() ([]byte, error) {
	spec, ok := changeSpecs[c.Kind]
	if !ok {
		return nil, fmt.Errorf("change kind %q: %w", c.Kind, ErrInvalid)
	}
	var b bytes.Buffer
	b.WriteString(`{"kind":`)
	k, _ := json.Marshal(c.Kind)
	b.Write(k)
	for _, f := range spec {
		var v any
		switch f.typ {
		case fPositive, fSigned, fNumber:
			p := *c.dec(f.name)
			if p == nil {
				continue
			}
			v = p.String()
		case fCurrency:
			v = string(c.Currency)
		case fTime:
			if c.ValidUntil.IsZero() {
				continue
			}
			v = c.ValidUntil.Format(time.RFC3339Nano)
		case fKinds:
			v = c.Kinds
		case fMembers:
			v = c.Members
		case fQuorum:
			if c.Quorum == 0 {
				continue
			}
			v = c.Quorum
		default:
			s := *c.str(f.name)
			if s == "" && f.optional {
				continue
			}
			v = s
		}
		b.WriteString(`,"` + f.name + `":`)
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		b.Write(raw)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON reads one change in the public format, as strictly as
// DecodeDecision does.
func (c *Change) UnmarshalJSON(data []byte) error {
	v, err := decodeChange(data, "change", nil)
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// DecodeOptions are what DecodeDecision needs from outside the domain.
type DecodeOptions struct {
	// Location is the ledger's time zone for a date-only effective; nil is UTC.
	Location *time.Location
	// Now gives the effective time when the decision has none. Required.
	Now func() time.Time
	// NewID gives the decision id when the decision has none. Required.
	NewID func() string
}

var decisionFields = []string{"id", "by", "authority", "reason", "refs", "effective", "changes", "signature"}

type rawDecision struct {
	ID        *string           `json:"id"`
	By        string            `json:"by"`
	Authority string            `json:"authority"`
	Reason    string            `json:"reason"`
	Refs      []string          `json:"refs"`
	Effective *string           `json:"effective"`
	Changes   []json.RawMessage `json:"changes"`
	Signature *string           `json:"signature"`
}

// DecodeDecision parses and validates a decision in its public JSON format.
// Errors wrap ErrInvalid and name the offending field.
func DecodeDecision(data []byte, opts DecodeOptions) (Decision, error) {
	if opts.Now == nil || opts.NewID == nil {
		return Decision{}, errors.New("decode decision: DecodeOptions.Now and NewID are required")
	}
	if len(data) > MaxDecisionBytes {
		return Decision{}, fmt.Errorf("decision is %d bytes, at most %d: %w", len(data), MaxDecisionBytes, ErrInvalid)
	}
	// encoding/json reads invalid UTF-8 into U+FFFD without a word; the
	// ledger keeps text as it was sent or refuses it.
	if !utf8.Valid(data) {
		return Decision{}, fmt.Errorf("decision: invalid UTF-8 at byte %d: %w", invalidUTF8At(data), ErrInvalid)
	}
	if kind := jsonKind(data); kind != "an object" {
		return Decision{}, fmt.Errorf("decision: want a JSON object, got %s: %w", kind, ErrInvalid)
	}
	// encoding/json matches struct fields case-insensitively; the contract
	// is exact, so check the names first.
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err == nil {
		for _, name := range sortedKeys(top) {
			if !contains(decisionFields, name) {
				return Decision{}, &FieldError{Field: truncate(name, 40), Err: fmt.Errorf("unknown field (fields: %s)", strings.Join(decisionFields, ", "))}
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var raw rawDecision
	if err := dec.Decode(&raw); err != nil {
		return Decision{}, fmt.Errorf("decision: %s: %w", jsonProblem(err), ErrInvalid)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Decision{}, fmt.Errorf("decision: data after the JSON object: %w", ErrInvalid)
	}
	var d Decision
	if raw.ID != nil {
		d.ID = *raw.ID
	} else {
		d.ID = opts.NewID()
	}
	if err := ValidID(d.ID); err != nil {
		return Decision{}, &FieldError{Field: "id", Err: err}
	}
	d.By, d.Authority = raw.By, raw.Authority
	if err := ValidID(d.By); err != nil {
		return Decision{}, &FieldError{Field: "by", Err: err}
	}
	if err := ValidID(d.Authority); err != nil {
		return Decision{}, &FieldError{Field: "authority", Err: err}
	}
	if err := checkText(raw.Reason, MaxReasonLen, true); err != nil {
		return Decision{}, &FieldError{Field: "reason", Err: err}
	}
	d.Reason = raw.Reason
	if len(raw.Refs) > MaxRefs {
		return Decision{}, &FieldError{Field: "refs", Err: fmt.Errorf("%d refs, at most %d", len(raw.Refs), MaxRefs)}
	}
	for i, r := range raw.Refs {
		if err := checkText(r, MaxRefLen, false); err != nil {
			return Decision{}, &FieldError{Field: fmt.Sprintf("refs[%d]", i), Err: err}
		}
	}
	d.Refs = raw.Refs
	if raw.Effective == nil {
		d.Effective = opts.Now().UTC()
	} else {
		t, err := ParseEffective(*raw.Effective, opts.Location)
		if err != nil {
			return Decision{}, &FieldError{Field: "effective", Err: err}
		}
		d.Effective, d.EffectiveGiven = t, true
	}
	if raw.Signature != nil {
		sig, err := hex.DecodeString(*raw.Signature)
		if err != nil || len(sig) != ed25519.SignatureSize {
			return Decision{}, &FieldError{Field: "signature", Err: fmt.Errorf("want %d hex digits (an Ed25519 signature)", 2*ed25519.SignatureSize)}
		}
		d.Signature = sig
	}
	if len(raw.Changes) == 0 {
		return Decision{}, &FieldError{Field: "changes", Err: errors.New("a decision needs at least one change")}
	}
	if len(raw.Changes) > MaxChanges {
		return Decision{}, &FieldError{Field: "changes", Err: fmt.Errorf("%d changes, at most %d (split the decision)", len(raw.Changes), MaxChanges)}
	}
	d.Changes = make([]Change, len(raw.Changes))
	for i, rc := range raw.Changes {
		c, err := decodeChange(rc, fmt.Sprintf("changes[%d]", i), opts.Location)
		if err != nil {
			return Decision{}, err
		}
		d.Changes[i] = c
	}
	return d, nil
}

// ParseEffective reads a valid time: a date ("2026-07-01", the start of that
// day in loc, UTC when nil) or an RFC 3339 time. The result is in UTC.
func ParseEffective(s string, loc *time.Location) (time.Time, error) {
	if loc == nil {
		loc = time.UTC
	}
	var t time.Time
	var err error
	if len(s) == len("2006-01-02") {
		t, err = time.ParseInLocation("2006-01-02", s, loc)
	} else {
		t, err = time.Parse(time.RFC3339Nano, s)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a date (2026-07-01) nor an RFC 3339 time: %w", truncate(s, 40), ErrInvalid)
	}
	// The bound holds in UTC: 9999-12-31T23:59:59-14:00 is in the year
	// 10000 there, which neither PostgreSQL's answers nor RFC 3339 can carry.
	t = t.UTC()
	if t.Before(MinTime) || t.After(MaxTime) {
		return time.Time{}, &TimeRangeError{Value: truncate(s, 40)}
	}
	return t, nil
}

// The times the ledger accepts, in UTC: valid times, validity ends and the
// times of queries. Quarters run from 1900-Q1 to 9999-Q3 (the last whose
// end is still in the range).
var (
	MinTime = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	MaxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
)

// jsonKind names the JSON value data starts with, for messages: "an
// object", "an array", "a string", "a number", "true", "false", "null" or
// "nothing".
func jsonKind(data []byte) string {
	data = bytes.TrimLeft(data, " \t\r\n")
	if len(data) == 0 {
		return "nothing"
	}
	switch c := data[0]; {
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == '"':
		return "a string"
	case c == '-' || (c >= '0' && c <= '9'):
		return "a number"
	case bytes.HasPrefix(data, []byte("null")):
		return "null"
	case bytes.HasPrefix(data, []byte("true")):
		return "true"
	case bytes.HasPrefix(data, []byte("false")):
		return "false"
	}
	return "something else"
}

// invalidUTF8At is the offset of the first byte of data that is not valid UTF-8.
func invalidUTF8At(data []byte) int {
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(data)
}

// jsonTypeName names a Go type in JSON's words, so that no Go type name
// reaches a message.
func jsonTypeName(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.String {
			return "a list of strings"
		}
		return "a list"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "another value"
}

func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, se)
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("%s: want %s, got %s", truncate(te.Field, 40), jsonTypeName(te.Type), te.Value)
		}
		return fmt.Sprintf("want %s, got %s", jsonTypeName(te.Type), te.Value)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "empty or truncated JSON"
	}
	return err.Error()
}

func checkText(s string, maxLen int, required bool) error {
	if s == "" {
		if required {
			return errors.New("is empty")
		}
		return nil
	}
	if strings.TrimSpace(s) == "" {
		return errors.New("is blank")
	}
	if len(s) > maxLen {
		return fmt.Errorf("is %d bytes, at most %d", len(s), maxLen)
	}
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8")
	}
	if strings.ContainsRune(s, utf8.RuneError) {
		// What JSON decoding makes of a lone surrogate escape ("\ud800"):
		// the text as sent was not Unicode.
		return errors.New("contains U+FFFD: send text as valid UTF-8, without lone surrogate escapes")
	}
	for _, r := range s {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return fmt.Errorf("contains control character %U", r)
		}
	}
	return nil
}

// decodeChange reads one change; loc is the ledger's zone for date-only times.
func decodeChange(data []byte, path string, loc *time.Location) (Change, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil || fields == nil {
		return Change{}, &FieldError{Field: path, Err: errors.New("want a JSON object")}
	}
	var c Change
	rawKind, ok := fields["kind"]
	if !ok {
		return Change{}, &FieldError{Field: path + ".kind", Err: errors.New("is missing")}
	}
	if err := json.Unmarshal(rawKind, &c.Kind); err != nil {
		return Change{}, &FieldError{Field: path + ".kind", Err: errors.New("want a string")}
	}
	spec, ok := changeSpecs[c.Kind]
	if !ok {
		return Change{}, &FieldError{Field: path + ".kind", Err: fmt.Errorf("unknown kind %q", truncate(c.Kind, 40))}
	}
	allowed := make(map[string]fieldSpec, len(spec))
	names := make([]string, 0, len(spec))
	for _, f := range spec {
		allowed[f.name] = f
		names = append(names, f.name)
	}
	for _, name := range sortedKeys(fields) {
		if name == "kind" {
			continue
		}
		if _, ok := allowed[name]; !ok {
			return Change{}, &FieldError{Field: path + "." + truncate(name, 40),
				Err: fmt.Errorf("unknown field for %s (fields: %s)", c.Kind, strings.Join(names, ", "))}
		}
	}
	for _, f := range spec {
		raw, ok := fields[f.name]
		fp := path + "." + f.name
		if !ok || string(raw) == "null" {
			if f.optional {
				continue
			}
			return Change{}, &FieldError{Field: fp, Err: errors.New("is missing")}
		}
		if err := c.setField(f, raw, fp, loc); err != nil {
			return Change{}, err
		}
	}
	if c.Kind == ChangeBudgetOpen {
		// The only change that names its currency; the others are checked
		// against their period's currency by Decide.
		if _, err := c.Amount.Exact(c.Currency); err != nil {
			return Change{}, &FieldError{Field: path + ".amount", Err: err}
		}
	}
	return c, nil
}

func (c *Change) setField(f fieldSpec, raw json.RawMessage, fp string, loc *time.Location) error {
	fail := func(err error) error { return &FieldError{Field: fp, Err: err} }
	if f.typ == fKinds {
		var kinds []string
		if err := json.Unmarshal(raw, &kinds); err != nil {
			return fail(errors.New("want a list of kind patterns like [\"funding.*\"]"))
		}
		if len(kinds) == 0 || len(kinds) > MaxKinds {
			return fail(fmt.Errorf("want 1 to %d kind patterns, got %d", MaxKinds, len(kinds)))
		}
		for i, k := range kinds {
			if err := validKindPattern(k); err != nil {
				return &FieldError{Field: fmt.Sprintf("%s[%d]", fp, i), Err: err}
			}
		}
		c.Kinds = kinds
		return nil
	}
	if f.typ == fMembers {
		var members []string
		if err := json.Unmarshal(raw, &members); err != nil {
			return fail(errors.New("want a list of person ids like [\"p-0041\", \"p-0042\"]"))
		}
		if len(members) == 0 || len(members) > MaxMembers {
			return fail(fmt.Errorf("want 1 to %d members, got %d", MaxMembers, len(members)))
		}
		for i, m := range members {
			if err := ValidID(m); err != nil {
				return &FieldError{Field: fmt.Sprintf("%s[%d]", fp, i), Err: err}
			}
			if contains(members[:i], m) {
				return &FieldError{Field: fmt.Sprintf("%s[%d]", fp, i), Err: fmt.Errorf("%q is named twice", m)}
			}
		}
		c.Members = members
		return nil
	}
	if f.typ == fQuorum {
		var n int
		if err := json.Unmarshal(raw, &n); err != nil {
			var s string
			if json.Unmarshal(raw, &s) != nil || len(s) == 0 || len(s) > 3 || strings.Trim(s, "0123456789") != "" {
				return fail(fmt.Errorf("want a whole number of members, got %s", truncate(string(raw), 40)))
			}
			n, _ = strconv.Atoi(s)
		}
		if n < 1 || n > MaxMembers {
			return fail(fmt.Errorf("quorum %d: want 1 to %d", n, MaxMembers))
		}
		c.Quorum = n
		return nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		if f.typ == fPositive || f.typ == fSigned || f.typ == fNumber {
			return fail(fmt.Errorf("want a decimal string like \"125000.00\", got %s", truncate(string(raw), 40)))
		}
		return fail(fmt.Errorf("want a string, got %s", truncate(string(raw), 40)))
	}
	switch f.typ {
	case fID:
		if err := ValidID(s); err != nil {
			return fail(err)
		}
	case fHolder:
		if err := ValidHolder(s); err != nil {
			return fail(err)
		}
	case fKey:
		if _, err := ParsePublicKey(s); err != nil {
			return fail(err)
		}
	case fPersonName:
		if IsSealedName(s) {
			if _, err := ParseSealedName(s); err != nil {
				return fail(err)
			}
			break
		}
		if err := checkText(s, MaxNameLen, true); err != nil {
			return fail(err)
		}
	case fSalt:
		if _, err := ParseSalt(s); err != nil {
			return fail(err)
		}
	case fName:
		if err := checkText(s, MaxNameLen, true); err != nil {
			return fail(err)
		}
	case fUnit:
		if err := checkText(s, MaxUnitLen, true); err != nil {
			return fail(err)
		}
	case fNote:
		if err := checkText(s, MaxNameLen, false); err != nil {
			return fail(err)
		}
	case fDirection:
		if s != DirectionHigher && s != DirectionLower {
			return fail(fmt.Errorf("%q: want higher or lower (which way is better)", truncate(s, 40)))
		}
	case fCategory:
		if !contains(KPICategories, s) {
			return fail(fmt.Errorf("%q is not a KPI category (%s)", truncate(s, 40), strings.Join(KPICategories, ", ")))
		}
	case fQuarter:
		if _, err := ParseQuarter(s); err != nil {
			return fail(err)
		}
	case fAccount:
		a, err := ParseAccount(s)
		if err != nil {
			return fail(err)
		}
		s = string(a)
	case fScope:
		if err := validScope(s); err != nil {
			return fail(err)
		}
	case fTeamType:
		if !contains(TeamTypes, s) {
			return fail(fmt.Errorf("%q is not a team type (%s)", truncate(s, 40), strings.Join(TeamTypes, ", ")))
		}
	case fTime:
		t, err := ParseEffective(s, loc)
		if err != nil {
			return fail(err)
		}
		c.ValidUntil = t
		return nil
	case fCurrency:
		if _, ok := Currency(s).Decimals(); !ok {
			return fail(&UnknownCurrencyError{Currency: truncate(s, 10)})
		}
		c.Currency = Currency(s)
		return nil
	case fPositive, fSigned, fNumber:
		d, err := ParseDecimal(s)
		if err != nil {
			return fail(err)
		}
		if f.typ == fPositive && d.Sign() <= 0 {
			return fail(fmt.Errorf("%q must be positive", s))
		}
		if f.typ == fSigned && d.IsZero() {
			return fail(fmt.Errorf("%q must not be zero", s))
		}
		*c.dec(f.name) = &d
		return nil
	}
	*c.str(f.name) = s
	return nil
}

// kindPrefixes are the families a kind pattern may name with ".*".
var kindPrefixes = []string{"valuestream", "product", "team", "person", "project", "budget", "funding", "mandate", "kpi", "decision", "board", "actor", "ledger"}

func validKindPattern(p string) error {
	if p == "*" {
		return nil
	}
	if prefix, ok := strings.CutSuffix(p, ".*"); ok {
		if contains(kindPrefixes, prefix) {
			return nil
		}
		return fmt.Errorf("%q: unknown kind family %q", truncate(p, 40), truncate(prefix, 40))
	}
	if _, ok := changeSpecs[p]; ok {
		return nil
	}
	return fmt.Errorf("%q is neither *, a family like funding.* nor a change kind", truncate(p, 40))
}

func validScope(s string) error {
	if s == "*" {
		return nil
	}
	k, id, ok := strings.Cut(s, ":")
	if !ok || (k != string(KindValueStream) && k != string(KindProduct)) {
		return fmt.Errorf("scope %q: want *, valuestream:<id> or product:<id>", truncate(s, 40))
	}
	if err := ValidID(id); err != nil {
		return fmt.Errorf("scope %q: %w", truncate(s, 80), err)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
