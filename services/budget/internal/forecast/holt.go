package forecast

import "math"

// season is the period of the seasonal component: a week of days.
const season = 7

// params are the smoothing parameters of additive damped Holt-Winters in
// error-correction form (ETS(A,Ad,A)):
//
//	ŷ(t)  = l + φ·b + s[t mod 7]
//	e     = y(t) − ŷ(t)
//	l'    = l + φ·b + α·e
//	b'    = φ·b + β·e
//	s'[t] = s[t mod 7] + γ·e
type params struct {
	alpha, beta, gamma, phi float64
}

// fromFree maps unconstrained optimizer coordinates into the admissible
// region 0 < β ≤ α < 1, 0 < γ < 1 − α, φ in [0.8, 0.98], so the
// optimizer never leaves it.
func fromFree(x []float64) params {
	a := 0.001 + 0.998*logistic(x[0])
	return params{
		alpha: a,
		beta:  a * 0.5 * logistic(x[1]),
		gamma: (1 - a) * 0.999 * logistic(x[2]),
		phi:   0.8 + 0.18*logistic(x[3]),
	}
}

func logistic(v float64) float64 { return 1 / (1 + math.Exp(-v)) }

// state is the model's state after the last observation; t counts the
// observations so that seasonal indices line up with days.
type state struct {
	level, trend float64
	seasonal     [season]float64
	t            int
}

// initial estimates the starting state from the first weeks: the level is
// the first week's mean, the trend the weekly change of the means spread
// over a week, and each weekday's seasonal term its average deviation
// from its week's mean.
func initial(y []float64) state {
	weeks := min(len(y)/season, 4)
	means := make([]float64, weeks)
	for w := range weeks {
		means[w] = mean(y[w*season : (w+1)*season])
	}
	var st state
	st.level = means[0]
	if weeks > 1 {
		st.trend = (means[weeks-1] - means[0]) / float64((weeks-1)*season)
	}
	for i := range season {
		var dev float64
		for w := range weeks {
			dev += y[w*season+i] - means[w]
		}
		st.seasonal[i] = dev / float64(weeks)
	}
	// The level stands at the week's middle; move it to the start so the
	// first prediction includes no trend already counted.
	st.level -= st.trend * float64(season-1) / 2
	return st
}

// filter runs the model over y from st and returns the final state and the
// sum of squared one-step errors. resid, when not nil, receives each
// error.
func (p params) filter(y []float64, st state, resid []float64) (state, float64) {
	var sse float64
	for i, v := range y {
		k := st.t % season
		pred := st.level + p.phi*st.trend + st.seasonal[k]
		e := v - pred
		sse += e * e
		if resid != nil {
			resid[i] = e
		}
		st.level = st.level + p.phi*st.trend + p.alpha*e
		st.trend = p.phi*st.trend + p.beta*e
		st.seasonal[k] += p.gamma * e
		st.t++
	}
	return st, sse
}

// point returns the h-step-ahead forecast (h from 1) from st.
func (p params) point(st state, h int) float64 {
	var damp, f float64 = 0, 1
	for range h {
		f *= p.phi
		damp += f
	}
	return st.level + damp*st.trend + st.seasonal[(st.t+h-1)%season]
}

// variances returns the h-step forecast error variances for h = 1..n
// relative to the one-step variance:
// 1 + Σ_{j=1}^{h−1} (α + β·φ_j + γ·[j mod 7 = 0])², φ_j = φ + … + φ^j.
func (p params) variances(n int) []float64 {
	out := make([]float64, n)
	acc, phiSum, f := 1.0, 0.0, 1.0
	for h := 1; h <= n; h++ {
		out[h-1] = acc
		f *= p.phi
		phiSum += f
		c := p.alpha + p.beta*phiSum
		if h%season == 0 {
			c += p.gamma
		}
		acc += c * c
	}
	return out
}

// fitted is a Holt-Winters model fitted to a series.
type fitted struct {
	p     params
	st    state // after the last observation
	sigma float64
}

// fitHW fits the parameters by minimizing the one-step squared error from
// a few starting points, the best of which wins. y needs two weeks.
func fitHW(y []float64) fitted {
	st0 := initial(y)
	cost := func(x []float64) float64 {
		_, sse := fromFree(x).filter(y, st0, nil)
		return sse
	}
	starts := [][]float64{
		{-1, -2, -2, 1},  // α≈0.27, slow trend and season
		{0.5, -3, -1, 2}, // α≈0.62
		{-2.5, -4, 0, 0}, // α≈0.08, lively season
	}
	var best []float64
	bestCost := math.Inf(1)
	for _, s := range starts {
		x, c := nelderMead(cost, s, 250)
		if c < bestCost {
			best, bestCost = x, c
		}
	}

	p := fromFree(best)
	st, sse := p.filter(y, st0, nil)
	// Degrees of freedom: the four parameters and the nine initial
	// states are estimated from the same data.
	dof := max(len(y)-13, 1)
	return fitted{p: p, st: st, sigma: math.Sqrt(sse / float64(dof))}
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}
