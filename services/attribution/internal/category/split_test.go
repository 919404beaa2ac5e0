package category_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/costplane/costplane/services/attribution/internal/category"
)

func TestAllocate(t *testing.T) {
	tests := []struct {
		name    string
		amount  int64
		weights []int64
		want    []int64
	}{
		{"even thirds", 100, []int64{1, 1, 1}, []int64{34, 33, 33}},
		{"proportional", 1000, []int64{1, 3}, []int64{250, 750}},
		{"remainder to largest fraction", 10, []int64{1, 2, 4}, []int64{1, 3, 6}},
		{"zero weights split evenly", 5, []int64{0, 0}, []int64{3, 2}},
		{"negative amount", -100, []int64{1, 1, 1}, []int64{-34, -33, -33}},
		{"negative weight counts as zero", 9, []int64{-5, 1, 2}, []int64{0, 3, 6}},
		{"huge amount", math.MaxInt64, []int64{1, 1}, []int64{math.MaxInt64/2 + 1, math.MaxInt64 / 2}},
		{"no parts", 7, nil, []int64{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := category.Allocate(tc.amount, tc.weights)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Allocate(%d, %v) (-want +got):\n%s", tc.amount, tc.weights, diff)
			}
		})
	}
}

func TestAllocateSumsExactly(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		n := 1 + r.IntN(12)
		weights := make([]int64, n)
		for i := range weights {
			weights[i] = r.Int64N(1 << uint(r.IntN(62)+1))
		}
		amount := r.Int64() - r.Int64()
		var sum int64
		for _, p := range category.Allocate(amount, weights) {
			sum += p
		}
		if sum != amount {
			t.Fatalf("Allocate(%d, %v) sums to %d", amount, weights, sum)
		}
	}
}

func TestApplyMovesSharedCost(t *testing.T) {
	c := &category.Category{Splits: []category.Split{
		{Bucket: "shared", Method: category.MethodCost},
	}}
	got := c.Apply([]category.Part{
		{Bucket: "a", Eff: 100, List: 200}, {Bucket: "shared", Eff: 11, List: 7},
		{Bucket: "b", Eff: 300, List: 1},
	})
	want := []category.Part{
		{Bucket: "a", Eff: 103, List: 202}, {Bucket: "shared"},
		{Bucket: "b", Eff: 308, List: 6},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Apply (-want +got):\n%s", diff)
	}
}
