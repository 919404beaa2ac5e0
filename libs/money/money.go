// Package money does cost arithmetic in integer nano-units (1e-9 of a
// currency unit). Floating point never touches money: prices per million
// units are integers of nanos, and products are rounded half away from
// zero exactly once, at the end.
package money

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

// NanosPerUnit is the number of nanos in one currency unit.
const NanosPerUnit int64 = 1_000_000_000

// ErrOverflow is returned when a result does not fit in int64 nanos
// (about 9.2 billion currency units).
var ErrOverflow = errors.New("money: amount overflows int64 nanos")

// Add returns a+b, or ErrOverflow.
func Add(a, b int64) (int64, error) {
	s := a + b
	if (a > 0 && b > 0 && s < 0) || (a < 0 && b < 0 && s >= 0) {
		return 0, ErrOverflow
	}
	return s, nil
}

// MulDiv returns a*b/c rounded half away from zero, computed without
// intermediate overflow. c must not be zero.
func MulDiv(a, b, c int64) (int64, error) {
	if c == 0 {
		return 0, errors.New("money: division by zero")
	}
	// Fast path: the product fits in int64.
	if p := a * b; a == 0 || (p/a == b && !(a == -1 && b == math.MinInt64)) {
		return roundDiv(p, c), nil
	}

	num := new(big.Int).Mul(big.NewInt(a), big.NewInt(b))
	den := big.NewInt(c)
	q, r := new(big.Int).QuoRem(num, den, new(big.Int))
	r2 := new(big.Int).Abs(r)
	r2.Lsh(r2, 1)
	if r2.Cmp(new(big.Int).Abs(den)) >= 0 {
		if (num.Sign() < 0) != (den.Sign() < 0) {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	if !q.IsInt64() {
		return 0, ErrOverflow
	}
	return q.Int64(), nil
}

func roundDiv(p, c int64) int64 {
	q, r := p/c, p%c
	if r < 0 {
		r = -r
	}
	ac := c
	if ac < 0 {
		ac = -ac
	}
	if 2*r >= ac {
		if (p < 0) != (c < 0) {
			q--
		} else {
			q++
		}
	}
	return q
}

// Cost returns the nanos owed for amount units at pricePerMillion nanos per
// one million units.
func Cost(amount, pricePerMillion int64) (int64, error) {
	return MulDiv(amount, pricePerMillion, 1_000_000)
}

// Percent applies basisPoints/10000 to nanos (a 15 % discount is
// Percent(n, 8500)).
func Percent(nanos int64, basisPoints int64) (int64, error) {
	return MulDiv(nanos, basisPoints, 10_000)
}

// Parse reads a decimal amount of currency units such as "12.5" or
// "-0.000000001" into nanos. More than nine decimals is an error rather
// than a silent rounding.
func Parse(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("money: empty amount")
	}
	neg := false
	if s[0] == '-' || s[0] == '+' {
		neg = s[0] == '-'
		s = s[1:]
	}
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" && frac == "" {
		return 0, fmt.Errorf("money: %q is not a decimal amount", s)
	}
	if len(frac) > 9 {
		return 0, fmt.Errorf("money: %q has more than 9 decimal places", s)
	}
	if whole == "" {
		whole = "0"
	}
	w, err := strconv.ParseUint(whole, 10, 63)
	if err != nil {
		return 0, fmt.Errorf("money: %q is not a decimal amount", s)
	}
	var f uint64
	if frac != "" {
		f, err = strconv.ParseUint(frac+strings.Repeat("0", 9-len(frac)), 10, 63)
		if err != nil {
			return 0, fmt.Errorf("money: %q is not a decimal amount", s)
		}
	}
	if w > uint64(math.MaxInt64/NanosPerUnit) {
		return 0, ErrOverflow
	}
	n := int64(w)*NanosPerUnit + int64(f)
	if neg {
		n = -n
	}
	return n, nil
}

// Format renders nanos as a decimal with all nine places trimmed of
// trailing zeros but keeping at least two: 1500000000 is "1.50".
func Format(nanos int64) string {
	sign := ""
	u := uint64(nanos)
	if nanos < 0 {
		sign = "-"
		u = uint64(-nanos) // correct for MinInt64 too, as uint64
	}
	whole, frac := u/uint64(NanosPerUnit), u%uint64(NanosPerUnit)
	fs := strings.TrimRight(fmt.Sprintf("%09d", frac), "0")
	for len(fs) < 2 {
		fs += "0"
	}
	return fmt.Sprintf("%s%d.%s", sign, whole, fs)
}

// FormatCurrency renders nanos with an ISO currency code: "USD 1.50".
func FormatCurrency(currency string, nanos int64) string {
	return currency + " " + Format(nanos)
}

// New returns a Money message.
func New(currency string, nanos int64) *eventv1.Money {
	return &eventv1.Money{CurrencyCode: currency, Nanos: nanos}
}

// Sum adds Money values of one currency. Mixed currencies are an error,
// never a silent conversion.
func Sum(ms ...*eventv1.Money) (*eventv1.Money, error) {
	var out eventv1.Money
	for _, m := range ms {
		if m == nil {
			continue
		}
		if out.CurrencyCode == "" {
			out.CurrencyCode = m.CurrencyCode
		} else if m.CurrencyCode != out.CurrencyCode {
			return nil, fmt.Errorf("money: cannot add %s to %s", m.CurrencyCode, out.CurrencyCode)
		}
		n, err := Add(out.Nanos, m.Nanos)
		if err != nil {
			return nil, err
		}
		out.Nanos = n
	}
	return &out, nil
}
