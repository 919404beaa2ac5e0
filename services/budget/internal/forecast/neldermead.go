package forecast

import (
	"math"
	"sort"
)

// nelderMead minimizes f from x0 with the Nelder-Mead simplex method and
// returns the best point and its value after at most iters iterations.
// The parameter spaces here are small (four coordinates), smooth and
// bounded by the transforms, which suits the method.
func nelderMead(f func([]float64) float64, x0 []float64, iters int) ([]float64, float64) {
	n := len(x0)
	pts := make([][]float64, n+1)
	vals := make([]float64, n+1)
	for i := range pts {
		pts[i] = append([]float64(nil), x0...)
		if i > 0 {
			pts[i][i-1] += 1
		}
		vals[i] = f(pts[i])
	}

	centroid := make([]float64, n)
	for range iters {
		sortSimplex(pts, vals)
		if math.Abs(vals[n]-vals[0]) <= 1e-10*(math.Abs(vals[0])+1e-12) {
			break
		}
		for j := range n {
			centroid[j] = 0
			for i := range n {
				centroid[j] += pts[i][j] / float64(n)
			}
		}

		refl := along(centroid, pts[n], -1)
		fr := f(refl)
		switch {
		case fr < vals[0]:
			exp := along(centroid, pts[n], -2)
			if fe := f(exp); fe < fr {
				pts[n], vals[n] = exp, fe
			} else {
				pts[n], vals[n] = refl, fr
			}
		case fr < vals[n-1]:
			pts[n], vals[n] = refl, fr
		default:
			con := along(centroid, pts[n], 0.5)
			if fc := f(con); fc < vals[n] {
				pts[n], vals[n] = con, fc
				continue
			}
			for i := 1; i <= n; i++ { // shrink towards the best point
				pts[i] = along(pts[0], pts[i], 0.5)
				vals[i] = f(pts[i])
			}
		}
	}
	sortSimplex(pts, vals)
	return pts[0], vals[0]
}

// along returns c + t·(p − c).
func along(c, p []float64, t float64) []float64 {
	out := make([]float64, len(c))
	for i := range c {
		out[i] = c[i] + t*(p[i]-c[i])
	}
	return out
}

func sortSimplex(pts [][]float64, vals []float64) {
	idx := make([]int, len(pts))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return vals[idx[a]] < vals[idx[b]] })
	p2 := make([][]float64, len(pts))
	v2 := make([]float64, len(vals))
	for i, j := range idx {
		p2[i], v2[i] = pts[j], vals[j]
	}
	copy(pts, p2)
	copy(vals, v2)
}
