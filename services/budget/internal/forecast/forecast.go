// Package forecast forecasts a daily cost series with prediction
// intervals.
//
// With two weeks of history or more it fits additive damped Holt-Winters
// with weekly seasonality twice: on the series, and on its logarithm,
// where a level that grows or shrinks scales the weekly pattern and the
// noise with it, as spend usually does. The last week is held out to pick
// the one that forecasts it better, which is then refitted on everything.
// Intervals come from the model's h-step error variance; the log model's
// are asymmetric in money, as they should be. With less history it
// projects the recent daily run rate.
//
// Money is float64 here only: callers round results to integer nanos.
package forecast

import (
	"math"
	"math/rand/v2"
	"slices"
)

// Level is the coverage of the prediction intervals.
const Level = 0.8

// z is the standard normal quantile of (1 + Level) / 2.
const z = 1.2815515655446004

// Methods a forecast may use.
const (
	MethodHoltWinters    = "holt_winters"
	MethodLogHoltWinters = "log_holt_winters"
	MethodRunRate        = "run_rate"
	MethodNone           = "none"
)

// minSeasonal is the history a seasonal model needs: two full weeks.
const minSeasonal = 2 * season

// minHoldout is the history from which a week is held out to choose
// between the models.
const minHoldout = 5 * season

// Point is one day's forecast: the point forecast and the interval.
type Point struct {
	Mean, Lower, Upper float64
}

// Model is a fitted forecaster.
type Model struct {
	method string
	hw     fitted
	log    bool
	offset float64 // added before the logarithm

	runRate, runSD float64
}

// Method names the model.
func (m *Model) Method() string { return m.method }

// Fit fits a model to y, one value per day, oldest first, ending with the
// last complete day. Leading zeros (days before the scope had any spend)
// are ignored.
func Fit(y []float64) *Model {
	first := slices.IndexFunc(y, func(v float64) bool { return v != 0 })
	if first < 0 {
		return &Model{method: MethodNone}
	}
	y = y[first:]
	if len(y) < minSeasonal {
		return runRate(y)
	}

	cands := []bool{false}
	if canLog(y) {
		cands = append(cands, true)
	}
	useLog := cands[len(cands)-1]
	if len(cands) > 1 && len(y) >= minHoldout {
		train, test := y[:len(y)-season], y[len(y)-season:]
		best := math.Inf(1)
		for _, lg := range cands {
			if e := holdoutError(fitSeries(train, lg), test); e < best {
				best, useLog = e, lg
			}
		}
	}
	return fitSeries(y, useLog)
}

// canLog reports whether the logarithm suits y: no negative days (a
// correction can make one), and zeros rare enough that an offset does not
// dominate.
func canLog(y []float64) bool {
	zeros := 0
	for _, v := range y {
		if v < 0 {
			return false
		}
		if v == 0 {
			zeros++
		}
	}
	return zeros*10 <= len(y)
}

func fitSeries(y []float64, useLog bool) *Model {
	m := &Model{method: MethodHoltWinters}
	series := y
	if useLog {
		m.method, m.log = MethodLogHoltWinters, true
		m.offset = offsetFor(y)
		series = make([]float64, len(y))
		for i, v := range y {
			series[i] = math.Log(v + m.offset)
		}
	}
	m.hw = fitHW(series)
	return m
}

// offsetFor keeps zero days finite on the log scale: 1 % of the median
// spend, small against real days.
func offsetFor(y []float64) float64 {
	s := slices.Clone(y)
	slices.Sort(s)
	return math.Max(s[len(s)/2]*0.01, 1e-9)
}

// holdoutError is the mean absolute error of m's forecast of test.
func holdoutError(m *Model, test []float64) float64 {
	var sum float64
	for i, p := range m.Forecast(len(test)) {
		sum += math.Abs(p.Mean - test[i])
	}
	return sum / float64(len(test))
}

func runRate(y []float64) *Model {
	recent := y[max(0, len(y)-season):]
	mu := mean(recent)
	var ss float64
	for _, v := range recent {
		ss += (v - mu) * (v - mu)
	}
	sd := 0.0
	if len(recent) > 1 {
		sd = math.Sqrt(ss / float64(len(recent)-1))
	} else {
		sd = mu / 2 // one day tells little: a wide interval says so
	}
	// The mean of few days is itself uncertain.
	sd *= math.Sqrt(1 + 1/float64(len(recent)))
	return &Model{method: MethodRunRate, runRate: mu, runSD: sd}
}

// Forecast returns the forecast of the next h days.
func (m *Model) Forecast(h int) []Point {
	out := make([]Point, h)
	switch m.method {
	case MethodNone:
		return out
	case MethodRunRate:
		for i := range out {
			out[i] = Point{Mean: m.runRate, Lower: math.Max(0, m.runRate-z*m.runSD),
				Upper: m.runRate + z*m.runSD}
		}
		return out
	}

	vars := m.hw.p.variances(h)
	for i := range out {
		mu := m.hw.p.point(m.hw.st, i+1)
		half := z * m.hw.sigma * math.Sqrt(vars[i])
		if m.log {
			out[i] = Point{Mean: m.unlog(mu), Lower: m.unlog(mu - half),
				Upper: m.unlog(mu + half)}
			continue
		}
		out[i] = Point{Mean: math.Max(0, mu), Lower: math.Max(0, mu-half),
			Upper: math.Max(0, mu+half)}
	}
	return out
}

func (m *Model) unlog(v float64) float64 {
	return math.Max(0, math.Exp(v)-m.offset)
}

// SumInterval returns the mean of the total of the next h days and the
// offsets of its 80 % interval below and above that mean. It simulates
// sample paths of the fitted model, because the days' errors are
// correlated through the level and trend; the generator is seeded, so the
// answer is the same every time.
func (m *Model) SumInterval(h int) (mean, low, high float64) {
	pts := m.Forecast(h)
	for _, p := range pts {
		mean += p.Mean
	}
	if h == 0 || m.method == MethodNone {
		return mean, 0, 0
	}
	if m.method == MethodRunRate {
		// Days are independent draws around the run rate, and the rate
		// itself is shared: both parts grow with h.
		sd := m.runSD * math.Sqrt(float64(h)+float64(h*h)/float64(season))
		return mean, math.Min(mean, z*sd), z * sd
	}

	const paths = 500
	sums := make([]float64, paths)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range sums {
		sums[i] = m.simulate(h, rng)
	}
	slices.Sort(sums)
	lo := sums[int(0.1*paths)]
	hi := sums[int(0.9*paths)-1]
	return mean, math.Max(0, mean-lo), math.Max(0, hi-mean)
}

// simulate returns the total of one sample path of h days.
func (m *Model) simulate(h int, rng *rand.Rand) float64 {
	st, p := m.hw.st, m.hw.p
	var total float64
	for range h {
		k := st.t % season
		e := rng.NormFloat64() * m.hw.sigma
		v := st.level + p.phi*st.trend + st.seasonal[k] + e
		st.level = st.level + p.phi*st.trend + p.alpha*e
		st.trend = p.phi*st.trend + p.beta*e
		st.seasonal[k] += p.gamma * e
		st.t++
		if m.log {
			v = m.unlog(v)
		}
		total += math.Max(0, v)
	}
	return total
}
