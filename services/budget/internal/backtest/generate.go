package backtest

import (
	"math"
	"math/rand/v2"
)

// Seasonal generates daily cost series with a trend, a weekly pattern and
// noise, each drawn per series:
//
//   - a base of 20 to 5,000 a day;
//   - a linear trend of −0.3 % to +1 % of the base per day;
//   - a weekly pattern: weekends at 40 % to 95 % of weekdays, and each
//     weekday ±8 % around its level;
//   - multiplicative Gaussian noise with a coefficient of variation of 3 %
//     to 10 %.
func Seasonal(cfg Config) [][]float64 {
	rng := rand.New(rand.NewPCG(cfg.Seed, 1))
	out := make([][]float64, cfg.Series)
	for i := range out {
		base := 20 * math.Pow(250, rng.Float64())
		trend := (-0.003 + 0.013*rng.Float64()) * base
		weekend := 0.4 + 0.55*rng.Float64()
		cv := 0.03 + 0.07*rng.Float64()
		var week [7]float64
		for d := range week {
			week[d] = 1 + 0.08*(2*rng.Float64()-1)
			if d >= 5 {
				week[d] *= weekend
			}
		}
		phase := rng.IntN(7)

		y := make([]float64, cfg.Days)
		for t := range y {
			level := math.Max(base+trend*float64(t), base*0.05)
			noise := 1 + cv*rng.NormFloat64()
			y[t] = math.Max(0, level*week[(t+phase)%7]*noise)
		}
		out[i] = y
	}
	return out
}

// DemoLike generates series shaped like the demo workload of
// services/loadgen, summed per day: runs of seven agents whose costs are
// log-normal with agent-specific means, 5 % of runs running away at 8 to
// 14 times the cost, weekday-heavy traffic that grows, and now and then a
// busier day (a launch, a batch job) at 1.3 to 2 times the usual.
func DemoLike(cfg Config) [][]float64 {
	rng := rand.New(rand.NewPCG(cfg.Seed, 2))
	out := make([][]float64, cfg.Series)
	for i := range out {
		var agentMean [7]float64
		for a := range agentMean {
			agentMean[a] = 0.002 * math.Pow(100, rng.Float64()) // $0.002 to $0.2 a run
		}
		runs := 300 + 3000*rng.Float64()
		growth := 0.002 + 0.006*rng.Float64()
		weekend := 0.25 + 0.5*rng.Float64()
		phase := rng.IntN(7)

		y := make([]float64, cfg.Days)
		for t := range y {
			lambda := runs * (1 + growth*float64(t))
			if (t+phase)%7 >= 5 {
				lambda *= weekend
			}
			if rng.Float64() < 0.04 {
				lambda *= 1.3 + 0.7*rng.Float64()
			}
			y[t] = dayCost(rng, poisson(rng, lambda), agentMean[:])
		}
		out[i] = y
	}
	return out
}

func dayCost(rng *rand.Rand, runs int, agentMean []float64) float64 {
	const sigma = 0.9
	var total float64
	for range runs {
		mu := agentMean[rng.IntN(len(agentMean))]
		c := mu * math.Exp(sigma*rng.NormFloat64()-sigma*sigma/2)
		if rng.Float64() < 0.05 {
			c *= 8 + 6*rng.Float64()
		}
		total += c
	}
	return total
}

// poisson draws a Poisson variate by the normal approximation, which is
// close at the rates used here (hundreds and more).
func poisson(rng *rand.Rand, lambda float64) int {
	return max(0, int(math.Round(lambda+math.Sqrt(lambda)*rng.NormFloat64())))
}
