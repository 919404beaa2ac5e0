package budgets

import (
	"math"
	"testing"
)

func TestReached(t *testing.T) {
	tests := []struct {
		spent, amount int64
		bp            int32
		want          bool
	}{
		{80, 100, 8000, true},
		{79, 100, 8000, false},
		{0, 100, 1, false},
		{-5, 100, 1, false},
		{1, 3, 3334, false}, // a third is short of 33.34 %
		{1, 3, 3333, true},
		{math.MaxInt64, math.MaxInt64, 100_000, false},
		{math.MaxInt64, math.MaxInt64 / 10, 100_000, true},
	}
	for _, tc := range tests {
		if got := Reached(tc.spent, tc.amount, tc.bp); got != tc.want {
			t.Errorf("Reached(%d, %d, %d) = %v, want %v", tc.spent, tc.amount, tc.bp, got, tc.want)
		}
	}
}
