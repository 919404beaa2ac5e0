package money

import (
	"errors"
	"math"
	"testing"
)

func TestCost(t *testing.T) {
	tests := []struct {
		name          string
		amount, price int64
		want          int64
	}{
		// 1M tokens at $2.50/M is $2.50.
		{"whole million", 1_000_000, 2_500_000_000, 2_500_000_000},
		// 1 token at $0.075/M is 75 nanos.
		{"single token", 1, 75_000_000, 75},
		// 3 tokens at $0.0375/M = 112.5 nanos, rounds half away to 113.
		{"half rounds up", 3, 37_500_000, 113},
		{"negative correction rounds away", -3, 37_500_000, -113},
		{"zero", 0, 15_000_000_000, 0},
		// Large product that overflows int64 before the division.
		{"big product", 4_000_000_000, 75_000_000_000_000, 300_000_000_000_000_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Cost(tt.amount, tt.price)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Cost(%d, %d) = %d, want %d", tt.amount, tt.price, got, tt.want)
			}
		})
	}
}

func TestMulDivOverflow(t *testing.T) {
	if _, err := MulDiv(math.MaxInt64, math.MaxInt64, 1); !errors.Is(err, ErrOverflow) {
		t.Fatalf("err = %v, want ErrOverflow", err)
	}
	if _, err := Add(math.MaxInt64, 1); !errors.Is(err, ErrOverflow) {
		t.Fatalf("Add err = %v, want ErrOverflow", err)
	}
}

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		out  string
	}{
		{"1.5", 1_500_000_000, "1.50"},
		{"0.000000001", 1, "0.000000001"},
		{"-2", -2_000_000_000, "-2.00"},
		{".25", 250_000_000, "0.25"},
		{"123.456789012", 123_456_789_012, "123.456789012"},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.in, err)
		}
		if got != tt.want {
			t.Errorf("Parse(%q) = %d, want %d", tt.in, got, tt.want)
		}
		if s := Format(got); s != tt.out {
			t.Errorf("Format(%d) = %q, want %q", got, s, tt.out)
		}
	}
	for _, bad := range []string{"", "abc", "1.0000000001", "1e3", "--1", "."} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) succeeded, want an error", bad)
		}
	}
}

func TestSumRejectsMixedCurrencies(t *testing.T) {
	if _, err := Sum(New("USD", 1), New("EUR", 1)); err == nil {
		t.Fatal("Sum of USD and EUR succeeded")
	}
	got, err := Sum(New("USD", 1), nil, New("USD", -3))
	if err != nil || got.Nanos != -2 || got.CurrencyCode != "USD" {
		t.Fatalf("Sum = %v, %v; want USD -2", got, err)
	}
}
