package domain

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

var testOpts = DecodeOptions{
	Now:   func() time.Time { return time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC) },
	NewID: func() string { return "generated-1" },
}

const issueExample = `{"id": "2026-07-reorg-payments", "by": "p-0001", "authority": "m-portfolio-board", "reason": "stabilise the payments team",
 "refs": ["https://wiki.example.org/minutes/2026-06-28"], "effective": "2026-07-01",
 "changes": [
   {"kind": "person.move", "person": "p-0042", "to": "t-payments-core"},
   {"kind": "funding.shift", "period": "2026", "from": "valuestream:lending", "to": "valuestream:payments", "amount": "125000.00"}]}`

func TestDecodeDecisionExample(t *testing.T) {
	d, err := DecodeDecision([]byte(issueExample), testOpts)
	if err != nil {
		t.Fatal(err)
	}
	amt := MustDecimal("125000.00")
	want := Decision{ID: "2026-07-reorg-payments", By: "p-0001", Authority: "m-portfolio-board", Reason: "stabilise the payments team",
		Refs: []string{"https://wiki.example.org/minutes/2026-06-28"}, Effective: time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC),
		Changes: []Change{{Kind: "person.move", Person: "p-0042", To: "t-payments-core"},
			{Kind: "funding.shift", Period: "2026", From: "valuestream:lending", To: "valuestream:payments", Amount: &amt}},
		EffectiveGiven: true}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("got  %+v\nwant %+v", d, want)
	}
	m := d.Meta()
	if m.DecisionID != d.ID || m.Authority != d.Authority || !m.Effective.Equal(d.Effective) {
		t.Fatalf("meta %+v", m)
	}
}

func TestDecodeDecisionDefaultsAndTime(t *testing.T) {
	body := `{"by":"p-1","authority":"root","reason":"r","changes":[{"kind":"team.disband","team":"t"}]}`
	d, err := DecodeDecision([]byte(body), testOpts)
	if err != nil {
		t.Fatal(err)
	}
	if d.ID != "generated-1" || !d.Effective.Equal(testOpts.Now()) {
		t.Fatalf("defaults: id %q effective %v", d.ID, d.Effective)
	}
	ams := time.FixedZone("CEST", 2*3600)
	opts := testOpts
	opts.Location = ams
	for _, tc := range []struct{ in, want string }{
		{"2026-07-01", "2026-06-30T22:00:00Z"},
		{"2026-07-01T09:30:00+02:00", "2026-07-01T07:30:00Z"},
		{"2026-07-01T09:30:00.5Z", "2026-07-01T09:30:00.5Z"},
	} {
		body := fmt.Sprintf(`{"by":"p-1","authority":"root","reason":"r","effective":%q,"changes":[{"kind":"team.disband","team":"t"}]}`, tc.in)
		d, err := DecodeDecision([]byte(body), opts)
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if got := d.Effective.Format(time.RFC3339Nano); got != tc.want {
			t.Errorf("effective %s: got %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestDecodeDecisionRoundTrip(t *testing.T) {
	d, err := DecodeDecision([]byte(issueExample), testOpts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := DecodeDecision(b, testOpts)
	if err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	if !reflect.DeepEqual(d, d2) {
		t.Fatalf("round trip changed the decision:\n%+v\n%+v", d, d2)
	}
}

func TestDecodeDecisionRefusals(t *testing.T) {
	wrap := func(changes ...string) string {
		return `{"by":"p-1","authority":"root","reason":"r","effective":"2026-01-01","changes":[` + strings.Join(changes, ",") + `]}`
	}
	many := make([]string, MaxChanges+1)
	for i := range many {
		many[i] = `{"kind":"team.disband","team":"t"}`
	}
	refs := make([]string, MaxRefs+1)
	for i := range refs {
		refs[i] = `"r"`
	}
	for _, tc := range []struct{ name, in, msg string }{
		{"not JSON", `{"by":]`, "malformed JSON at byte 7"},
		{"truncated", `{"by":`, "empty or truncated JSON"},
		{"empty", ``, "want a JSON object, got nothing"},
		{"null", `null`, "want a JSON object, got null"},
		{"array", `[{"by":"p-1"}]`, "want a JSON object, got an array"},
		{"string", `"decision"`, "want a JSON object, got a string"},
		{"list for a string", `{"by":["p-1"],"authority":"root","reason":"r","changes":[]}`, "by: want a string, got array"},
		{"object for the changes", `{"by":"p-1","authority":"root","reason":"r","changes":{}}`, "changes: want a list, got object"},
		{"invalid UTF-8 in the reason", "{\"by\":\"p-1\",\"authority\":\"root\",\"reason\":\"caf\xe9\",\"changes\":[{\"kind\":\"team.disband\",\"team\":\"t\"}]}", "invalid UTF-8 at byte 44"},
		{"lone surrogate in a name", wrap(`{"kind":"team.form","id":"t","name":"a\ud800b","type":"platform"}`), "changes[0].name: contains U+FFFD"},
		{"effective past 9999 in UTC", `{"by":"p-1","authority":"root","reason":"r","effective":"9999-12-31T23:59:59-14:00","changes":[{"kind":"team.disband","team":"t"}]}`, `effective: "9999-12-31T23:59:59-14:00" is outside the years 1900-9999 (in UTC)`},
		{"effective before 1900 in UTC", `{"by":"p-1","authority":"root","reason":"r","effective":"1900-01-01T00:30:00+01:00","changes":[{"kind":"team.disband","team":"t"}]}`, `is outside the years 1900-9999`},
		{"valid_until past 9999", wrap(`{"kind":"mandate.grant","id":"m","holder":"p","kinds":["*"],"scope":"*","valid_until":"10000-01-01"}`), `changes[0].valid_until: "10000-01-01" is neither a date`},
		{"amount with a plus sign", wrap(`{"kind":"funding.shift","period":"2026","from":"pool","to":"product:x","amount":"+5"}`), `changes[0].amount: "+5" is not written canonically: write "5"`},
		{"amount with leading zeros", wrap(`{"kind":"funding.release","period":"2026","from":"product:x","amount":"007.50"}`), `write "7.50"`},
		{"amount with zeros past EUR's decimals", wrap(`{"kind":"budget.open","period":"2026","amount":"5.000","currency":"EUR"}`), `changes[0].amount: "5.000" has more decimals than EUR allows (2): write "5.00"`},
		{"KPI value negative zero", wrap(`{"kind":"kpi.record","product":"x","kpi":"nps","value":"-0.0"}`), `write "0.0"`},
		{"trailing data", wrap(`{"kind":"team.disband","team":"t"}`) + `{}`, "data after the JSON object"},
		{"unknown top-level field", `{"by":"p-1","authority":"root","reason":"r","kind":"x","changes":[]}`, "kind: unknown field"},
		{"field name in another case", `{"BY":"p-1","authority":"root","reason":"r","changes":[{"kind":"team.disband","team":"t"}]}`, `BY: unknown field`},
		{"missing by", `{"authority":"root","reason":"r","changes":[{"kind":"team.disband","team":"t"}]}`, `by: id "" is empty`},
		{"bad authority", `{"by":"p-1","authority":"Root","reason":"r","changes":[{"kind":"team.disband","team":"t"}]}`, `authority: id "Root" has 'R' at 0`},
		{"bad id", `{"id":"a.b","by":"p-1","authority":"root","reason":"r","changes":[{"kind":"team.disband","team":"t"}]}`, `id: id "a.b" has '.'`},
		{"id too long", `{"id":"` + strings.Repeat("a", 65) + `","by":"p-1","authority":"root","reason":"r","changes":[{"kind":"team.disband","team":"t"}]}`, "longer than 64"},
		{"empty reason", `{"by":"p-1","authority":"root","reason":"","changes":[{"kind":"team.disband","team":"t"}]}`, "reason: is empty"},
		{"reason too long", `{"by":"p-1","authority":"root","reason":"` + strings.Repeat("x", MaxReasonLen+1) + `","changes":[{"kind":"team.disband","team":"t"}]}`, "reason: is 4001 bytes"},
		{"too many refs", `{"by":"p-1","authority":"root","reason":"r","refs":[` + strings.Join(refs, ",") + `],"changes":[{"kind":"team.disband","team":"t"}]}`, "refs: 21 refs, at most 20"},
		{"bad effective", `{"by":"p-1","authority":"root","reason":"r","effective":"1 July","changes":[{"kind":"team.disband","team":"t"}]}`, `effective: "1 July" is neither a date`},
		{"no changes", wrap(), "changes: a decision needs at least one change"},
		{"too many changes", wrap(many...), "changes: 201 changes, at most 200"},
		{"change not an object", wrap(`[]`), "changes[0]: want a JSON object"},
		{"missing kind", wrap(`{"team":"t"}`), "changes[0].kind: is missing"},
		{"unknown kind", wrap(`{"kind":"person.teleport","person":"p"}`), `changes[0].kind: unknown kind "person.teleport"`},
		{"unknown field", wrap(`{"kind":"person.move","person":"p","to":"t","colour":"red"}`), "changes[0].colour: unknown field for person.move (fields: person, to)"},
		{"missing field", wrap(`{"kind":"team.disband","team":"t"}`, `{"kind":"person.move","person":"p"}`), "changes[1].to: is missing"},
		{"bad reference id", wrap(`{"kind":"person.move","person":"P-1","to":"t"}`), `changes[0].person: id "P-1" has 'P'`},
		{"number for a string", wrap(`{"kind":"person.move","person":1,"to":"t"}`), "changes[0].person: want a string, got 1"},
		{"amount as number", wrap(`{"kind":"funding.release","period":"2026","from":"pool","amount":12.5}`), `changes[0].amount: want a decimal string like "125000.00", got 12.5`},
		{"amount malformed", wrap(`{"kind":"funding.release","period":"2026","from":"product:x","amount":"1e5"}`), `changes[0].amount: "1e5" is not a decimal number`},
		{"amount negative", wrap(`{"kind":"funding.shift","period":"2026","from":"pool","to":"product:x","amount":"-5"}`), `changes[0].amount: "-5" must be positive`},
		{"amount zero", wrap(`{"kind":"budget.adjust","period":"2026","amount":"0.00"}`), `changes[0].amount: "0.00" must not be zero`},
		{"amount too long", wrap(`{"kind":"budget.adjust","period":"2026","amount":"123456789012345678"}`), "more than 17 digits"},
		{"amount with more decimals than EUR", wrap(`{"kind":"budget.open","period":"2026","amount":"12.345","currency":"EUR"}`), `changes[0].amount: "12.345" has more decimals than EUR allows`},
		{"unknown currency", wrap(`{"kind":"budget.open","period":"2026","amount":"12","currency":"XYZ"}`), `changes[0].currency: unknown currency "XYZ"`},
		{"bad account", wrap(`{"kind":"funding.allocate","period":"2026","to":"team:t","amount":"1"}`), `changes[0].to: account "team:t": kind "team" holds no funds`},
		{"bad period", wrap(`{"kind":"funding.allocate","period":"2026/1","to":"pool","amount":"1"}`), `changes[0].period: id "2026/1"`},
		{"bad team type", wrap(`{"kind":"team.form","id":"t","name":"T","type":"feature"}`), `changes[0].type: "feature" is not a team type`},
		{"bad scope", wrap(`{"kind":"mandate.grant","id":"m","holder":"p","kinds":["*"],"scope":"team:t"}`), `changes[0].scope: scope "team:t": want *, valuestream:<id> or product:<id>`},
		{"bad kind pattern", wrap(`{"kind":"mandate.grant","id":"m","holder":"p","kinds":["funding.*","money.*"],"scope":"*"}`), `changes[0].kinds[1]: "money.*": unknown kind family "money"`},
		{"empty kinds", wrap(`{"kind":"mandate.grant","id":"m","holder":"p","kinds":[],"scope":"*"}`), "changes[0].kinds: want 1 to 32 kind patterns"},
		{"name with control character", wrap(`{"kind":"team.form","id":"t","name":"a\u0007b","type":"platform"}`), "changes[0].name: contains control character U+0007"},
		{"name too long", wrap(`{"kind":"team.form","id":"t","name":"` + strings.Repeat("n", MaxNameLen+1) + `","type":"platform"}`), "changes[0].name: is 201 bytes, at most 200"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeDecision([]byte(tc.in), testOpts)
			if err == nil {
				t.Fatal("want an error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not mention %q", err, tc.msg)
			}
		})
	}
}

func TestDecodeDecisionNeedsOptions(t *testing.T) {
	if _, err := DecodeDecision([]byte(issueExample), DecodeOptions{}); err == nil {
		t.Fatal("want an error without Now and NewID")
	}
}

func TestValidID(t *testing.T) {
	for _, ok := range []string{"a", "p-0042", "2026-h1", "x_y", strings.Repeat("z", 64)} {
		if err := ValidID(ok); err != nil {
			t.Errorf("ValidID(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "A", "a.b", "a b", "a*", "a>", "é", strings.Repeat("z", 65)} {
		if err := ValidID(bad); err == nil || !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidID(%q) = %v, want an ErrInvalid error", bad, err)
		}
	}
}

func TestDecimalAndAmount(t *testing.T) {
	for _, tc := range []struct {
		in, str string
		cur     Currency
		minor   Amount
		err     string
	}{
		{"125000.00", "125000.00", "EUR", 12500000, ""},
		{"125000", "125000", "EUR", 12500000, ""},
		{"0.5", "0.5", "EUR", 50, ""},
		{"-1.25", "-1.25", "USD", -125, ""},
		{"3", "3", "JPY", 3, ""},
		{"12.00", "12.00", "JPY", 12, ""}, // Minor reads what the log holds; Exact refuses it in a decision
		{"12.50", "12.50", "JPY", 0, `"12.50" has more decimals than JPY allows (0)`},
		{"1.2345", "1.2345", "KWD", 0, "more decimals than KWD allows (3)"},
		{"0.001", "0.001", "BHD", 1, ""},
		{"1", "1", "XXX", 0, `unknown currency "XXX"`},
	} {
		d, err := ParseDecimal(tc.in)
		if err != nil {
			t.Fatalf("parse %q: %v", tc.in, err)
		}
		if d.String() != tc.str {
			t.Errorf("%q renders %q, want %q", tc.in, d.String(), tc.str)
		}
		m, err := d.Minor(tc.cur)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q in %s: error %v, want %q", tc.in, tc.cur, err, tc.err)
			}
			continue
		}
		if err != nil || m != tc.minor {
			t.Errorf("%q in %s: %d, %v; want %d", tc.in, tc.cur, m, err, tc.minor)
		}
		if back, _ := m.Decimal(tc.cur).Minor(tc.cur); back != m {
			t.Errorf("%d %s does not round trip", m, tc.cur)
		}
	}
	for _, bad := range []string{"", "-", ".5", "5.", "1,000", "1e3", "0x10", " 1", "1.2.3", "--1", "+3", "03", "-0", "00.5", "+-1"} {
		if _, err := ParseDecimal(bad); err == nil {
			t.Errorf("ParseDecimal(%q) accepted", bad)
		}
	}
	if Amount(5).Format("EUR") != "0.05" || Amount(-105).Format("EUR") != "-1.05" || Amount(7).Format("JPY") != "7" {
		t.Error("Format")
	}
	if MustDecimal("1.50").Cmp(MustDecimal("1.5")) != 0 || MustDecimal("100000.01").Cmp(MustDecimal("100000")) != 1 ||
		MustDecimal("-2").Cmp(MustDecimal("1.999")) != -1 {
		t.Error("Cmp")
	}
}

func TestExactRefusesExtraDecimals(t *testing.T) {
	for _, tc := range []struct {
		in  string
		cur Currency
		err string
	}{
		{"5.00", "EUR", ""},
		{"5", "EUR", ""},
		{"5.5", "EUR", ""},
		{"5.000", "EUR", `"5.000" has more decimals than EUR allows (2): write "5.00"`},
		{"12.345", "EUR", `"12.345" has more decimals than EUR allows (2)`},
		{"12.00", "JPY", `write "12"`},
		{"1.0", "XYZ", "unknown currency"},
	} {
		_, err := MustDecimal(tc.in).Exact(tc.cur)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s %s: %v", tc.in, tc.cur, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrInvalid)):
			t.Errorf("%s %s: %v, want %q", tc.in, tc.cur, err, tc.err)
		}
	}
	if err := (&PrecisionError{Value: "12.345", Currency: "EUR", Decimals: 2}).Error(); strings.Contains(err, "write") {
		t.Errorf("%s: an amount with significant extra decimals has no canonical form", err)
	}
}

func TestParseEffectiveBounds(t *testing.T) {
	plus14 := time.FixedZone("+14", 14*3600)
	for _, tc := range []struct {
		in  string
		loc *time.Location
		ok  bool
	}{
		{"1900-01-01", nil, true},
		{"1900-01-01", plus14, false}, // 1899-12-31T10:00Z
		{"9999-12-31", nil, true},
		{"9999-12-31T23:59:59Z", nil, true},
		{"9999-12-31T23:59:59-14:00", nil, false},
		{"9999-12-31T09:59:59-14:00", nil, true},
		{"1899-12-31T23:00:00-01:00", nil, true},
		{"0001-01-01", nil, false},
	} {
		_, err := ParseEffective(tc.in, tc.loc)
		if (err == nil) != tc.ok {
			t.Errorf("ParseEffective(%q, %v) = %v, want ok %v", tc.in, tc.loc, err, tc.ok)
		}
		var re *TimeRangeError
		if err != nil && !tc.ok && strings.HasPrefix(tc.in, "9999") && !errors.As(err, &re) {
			t.Errorf("%q: %v, want a *TimeRangeError", tc.in, err)
		}
	}
}

func TestChangeFieldsDescribeEveryKind(t *testing.T) {
	for _, kind := range ChangeKinds() {
		fields, ok := ChangeFields(kind)
		// A policy switch names nothing but itself.
		if !ok || len(fields) == 0 && kind != ChangeLedgerRequireSigs {
			t.Fatalf("%s: no fields", kind)
		}
	}
	fields, _ := ChangeFields("mandate.grant")
	if fields[2].Name != "kinds" || !fields[2].List || !fields[4].Optional {
		t.Fatalf("mandate.grant fields: %+v", fields)
	}
	if _, ok := ChangeFields("team.explode"); ok {
		t.Fatal("an unknown kind has fields")
	}
}
