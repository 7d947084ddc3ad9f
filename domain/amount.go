package domain

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// Amount is money in the minor units of its budget period's currency (cents
// for EUR). It is never a float.
type Amount int64

// maxDecimalDigits bounds the significant digits of a Decimal so that every
// amount fits an int64 in minor units with room for sums.
const maxDecimalDigits = 17

// Format renders a in its currency's decimals: Amount(12500).Format("EUR") is "125.00".
func (a Amount) Format(cur Currency) string {
	d, _ := cur.Decimals()
	return Decimal{coef: int64(a), exp: d}.String()
}

// Decimal returns a as an exact decimal in its currency.
func (a Amount) Decimal(cur Currency) Decimal {
	d, _ := cur.Decimals()
	return Decimal{coef: int64(a), exp: d}
}

// Decimal is an exact decimal number as written in a decision ("125000.00"):
// coef × 10^-exp. It keeps the written precision, so "1.50" has exp 2.
type Decimal struct {
	coef int64
	exp  int
}

// ParseDecimal parses a decimal string in its one canonical form: an
// optional '-', digits without leading zeros, an optional '.' and digits.
// No '+', no exponents, no thousands separators, at most 17 significant
// digits. A number written otherwise ("+5", "007", "-0") is refused with a
// [*NonCanonicalError] that gives the canonical form: one amount has one
// spelling, in the log and in every hash over it.
func ParseDecimal(s string) (Decimal, error) {
	d, err := parseDecimal(s)
	if err != nil {
		return Decimal{}, err
	}
	if c := d.String(); c != s {
		return Decimal{}, &NonCanonicalError{Value: truncate(s, 40), Canonical: c}
	}
	return d, nil
}

// parseDecimal reads any decimal spelling ParseDecimal would read with its
// sign, leading zeros and all.
func parseDecimal(s string) (Decimal, error) {
	orig := s
	if s == "" {
		return Decimal{}, fmt.Errorf("amount is empty (want e.g. 125000.00): %w", ErrInvalid)
	}
	neg := false
	switch s[0] {
	case '-':
		neg, s = true, s[1:]
	case '+':
		s = s[1:]
	}
	intPart, frac, hasDot := strings.Cut(s, ".")
	if intPart == "" || (hasDot && frac == "") {
		return Decimal{}, fmt.Errorf("%q is not a decimal number (want e.g. 125000.00): %w", truncate(orig, 40), ErrInvalid)
	}
	digits := intPart + frac
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return Decimal{}, fmt.Errorf("%q is not a decimal number (want e.g. 125000.00): %w", truncate(orig, 40), ErrInvalid)
		}
	}
	sig := strings.TrimLeft(digits, "0")
	if len(sig) > maxDecimalDigits || len(frac) > maxDecimalDigits {
		return Decimal{}, fmt.Errorf("%q has more than %d digits: %w", truncate(orig, 40), maxDecimalDigits, ErrInvalid)
	}
	coef := int64(0)
	if sig != "" {
		var err error
		coef, err = strconv.ParseInt(sig, 10, 64)
		if err != nil {
			return Decimal{}, fmt.Errorf("%q: %w", truncate(orig, 40), ErrInvalid)
		}
	}
	if neg {
		coef = -coef
	}
	return Decimal{coef: coef, exp: len(frac)}, nil
}

// MustDecimal is ParseDecimal for constants in tests and examples; it panics on a bad literal.
func MustDecimal(s string) Decimal {
	d, err := ParseDecimal(s)
	if err != nil {
		panic(err)
	}
	return d
}

// String renders d with its written precision.
func (d Decimal) String() string {
	neg := d.coef < 0
	c := d.coef
	if neg {
		c = -c
	}
	s := strconv.FormatInt(c, 10)
	if d.exp > 0 {
		if len(s) <= d.exp {
			s = strings.Repeat("0", d.exp-len(s)+1) + s
		}
		s = s[:len(s)-d.exp] + "." + s[len(s)-d.exp:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// Sign is -1, 0 or +1.
func (d Decimal) Sign() int {
	switch {
	case d.coef < 0:
		return -1
	case d.coef > 0:
		return 1
	}
	return 0
}

// IsZero reports whether d is the zero value (also "0.00").
func (d Decimal) IsZero() bool { return d.coef == 0 }

// Neg is -d.
func (d Decimal) Neg() Decimal { return Decimal{coef: -d.coef, exp: d.exp} }

// Cmp compares d and e exactly: -1 if d < e, 0 if equal, +1 if d > e.
func (d Decimal) Cmp(e Decimal) int {
	if d.exp == e.exp {
		switch {
		case d.coef < e.coef:
			return -1
		case d.coef > e.coef:
			return 1
		}
		return 0
	}
	a, b := big.NewInt(d.coef), big.NewInt(e.coef)
	ten := big.NewInt(10)
	if d.exp < e.exp {
		a.Mul(a, new(big.Int).Exp(ten, big.NewInt(int64(e.exp-d.exp)), nil))
	} else {
		b.Mul(b, new(big.Int).Exp(ten, big.NewInt(int64(d.exp-e.exp)), nil))
	}
	return a.Cmp(b)
}

// Minor converts d to minor units of cur. It refuses a value with more
// significant decimals than cur has; trailing zeros are fine ("12.00" JPY is
// 12 yen, "12.50" JPY is refused).
func (d Decimal) Minor(cur Currency) (Amount, error) {
	dec, ok := cur.Decimals()
	if !ok {
		return 0, &UnknownCurrencyError{Currency: string(cur)}
	}
	c, e := d.coef, d.exp
	for e > dec && c%10 == 0 {
		c /= 10
		e--
	}
	if e > dec {
		return 0, &PrecisionError{Value: d.String(), Currency: string(cur), Decimals: dec}
	}
	for ; e < dec; e++ {
		if c > (1<<62)/10 || c < -(1<<62)/10 {
			return 0, fmt.Errorf("%s %s is too large: %w", d, cur, ErrInvalid)
		}
		c *= 10
	}
	return Amount(c), nil
}

// Exact converts an amount of a decision to minor units of cur, as
// [Decimal.Minor] does, but refuses more decimals than cur has even when
// they are zeros: "5.000" EUR is refused like "12.345", with a
// [*PrecisionError] that gives the canonical form ("5.00"). Minor, used on
// the log's payloads, still reads what earlier builds accepted.
func (d Decimal) Exact(cur Currency) (Amount, error) {
	dec, ok := cur.Decimals()
	if !ok {
		return 0, &UnknownCurrencyError{Currency: string(cur)}
	}
	if d.exp > dec {
		e := &PrecisionError{Value: d.String(), Currency: string(cur), Decimals: dec}
		if c, err := d.Minor(cur); err == nil {
			e.Canonical = c.Format(cur)
		}
		return 0, e
	}
	return d.Minor(cur)
}

// MarshalJSON writes d as a JSON string, keeping its precision.
func (d Decimal) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a JSON string holding a decimal.
func (d *Decimal) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a decimal string like \"125000.00\", got %s: %w", truncate(string(b), 40), ErrInvalid)
	}
	v, err := ParseDecimal(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Currency is an ISO 4217 code.
type Currency string

// currencyDecimals is the ISO 4217 minor-unit exponent of the currencies the
// ledger accepts. A currency not listed here is refused rather than guessed.
var currencyDecimals = map[Currency]int{
	"EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2,
	"CZK": 2, "HUF": 2, "RON": 2, "CAD": 2, "AUD": 2, "NZD": 2, "CNY": 2, "HKD": 2,
	"SGD": 2, "INR": 2, "BRL": 2, "MXN": 2, "ZAR": 2, "TRY": 2, "ILS": 2, "THB": 2,
	"JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "VND": 0,
	"BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3,
}

// Decimals is the ISO 4217 exponent of c; ok is false for an unknown currency.
func (c Currency) Decimals() (int, bool) {
	d, ok := currencyDecimals[c]
	return d, ok
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
