package category

import (
	"math/big"
	"slices"
	"sort"
	"strings"
)

// Allocate divides amount into parts proportional to weights that add up
// to amount exactly: each part is rounded down in magnitude, and the units
// left are handed one by one to the parts with the largest remainders
// (ties to the earlier part). Negative weights count as zero; when every
// weight is zero the parts are even.
func Allocate(amount int64, weights []int64) []int64 {
	out := make([]int64, len(weights))
	if len(weights) == 0 || amount == 0 {
		return out
	}
	w := make([]*big.Int, len(weights))
	total := new(big.Int)
	for i, x := range weights {
		w[i] = big.NewInt(max(x, 0))
		total.Add(total, w[i])
	}
	if total.Sign() == 0 {
		for i := range w {
			w[i].SetInt64(1)
		}
		total.SetInt64(int64(len(w)))
	}

	abs := new(big.Int).Abs(big.NewInt(amount))
	rems := make([]*big.Int, len(w))
	given := new(big.Int)
	for i := range w {
		q, r := new(big.Int).QuoRem(new(big.Int).Mul(abs, w[i]), total, new(big.Int))
		out[i], rems[i] = q.Int64(), r
		given.Add(given, q)
	}

	order := make([]int, len(w))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return rems[order[a]].Cmp(rems[order[b]]) > 0 })
	left := new(big.Int).Sub(abs, given).Int64() // fewer than len(w)
	for k := int64(0); k < left; k++ {
		out[order[k]]++
	}

	if amount < 0 {
		for i := range out {
			out[i] = -out[i]
		}
	}
	return out
}

// Part is one bucket's measures in a group being split.
type Part struct {
	Bucket   string
	Eff      int64
	List     int64
	Tokens   int64
	Requests int64
}

// Allocation says how one shared bucket's money is spread: over Targets
// in proportion to Weights.
type Allocation struct {
	Shared  string
	Targets []string
	Weights []int64
}

// Allocations computes, from a group's totals over a whole range, the
// allocation of each split in definition order; later splits weigh the
// totals as the earlier ones left them. A split without targets is left
// out: its bucket keeps its cost.
func (c *Category) Allocations(totals []Part) []Allocation {
	parts := slices.Clone(totals)
	shared := c.SharedBuckets()
	var out []Allocation
	for _, s := range c.Splits {
		names, weights := s.targets(parts, shared)
		if len(names) == 0 {
			continue
		}
		a := Allocation{Shared: s.Bucket, Targets: names, Weights: weights}
		parts = ApplyAllocations(parts, []Allocation{a})
		out = append(out, a)
	}
	return out
}

// ApplyAllocations moves each shared bucket's effective and list cost to
// its targets, adding absent targets to parts. The sum of each money
// measure over the parts is unchanged, to the nano.
func ApplyAllocations(parts []Part, allocs []Allocation) []Part {
	for _, a := range allocs {
		i := slices.IndexFunc(parts, func(p Part) bool { return p.Bucket == a.Shared })
		if i < 0 || (parts[i].Eff == 0 && parts[i].List == 0) {
			continue
		}
		effs, lists := Allocate(parts[i].Eff, a.Weights), Allocate(parts[i].List, a.Weights)
		parts[i].Eff, parts[i].List = 0, 0
		for k, name := range a.Targets {
			j := slices.IndexFunc(parts, func(p Part) bool { return p.Bucket == name })
			if j < 0 {
				parts = append(parts, Part{Bucket: name})
				j = len(parts) - 1
			}
			parts[j].Eff += effs[k]
			parts[j].List += lists[k]
		}
	}
	return parts
}

// Apply spreads the shared buckets of parts by allocations computed from
// parts themselves.
func (c *Category) Apply(parts []Part) []Part {
	return ApplyAllocations(parts, c.Allocations(parts))
}

// targets returns the buckets a split spreads over, in name order, with
// their weights.
func (s *Split) targets(parts []Part, shared map[string]bool) ([]string, []int64) {
	if s.Method == MethodFixed {
		shares := slices.Clone(s.Shares)
		slices.SortFunc(shares, func(a, b Share) int { return strings.Compare(a.Bucket, b.Bucket) })
		names, weights := make([]string, len(shares)), make([]int64, len(shares))
		for i, sh := range shares {
			names[i], weights[i] = sh.Bucket, int64(sh.BasisPoints)
		}
		return names, weights
	}

	byName := make(map[string]Part, len(parts))
	for _, p := range parts {
		byName[p.Bucket] = p
	}
	names := slices.Clone(s.Targets)
	if len(names) == 0 {
		for _, p := range parts {
			if !shared[p.Bucket] {
				names = append(names, p.Bucket)
			}
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)

	weights := make([]int64, len(names))
	for i, n := range names {
		p := byName[n]
		switch s.Method {
		case MethodCost:
			weights[i] = p.Eff
		case MethodTokens:
			weights[i] = p.Tokens
		case MethodRequests:
			weights[i] = p.Requests
		default:
			weights[i] = 1
		}
	}
	return names, weights
}
