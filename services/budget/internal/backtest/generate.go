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

// demoAgent is one agent of the demo fleet (services/loadgen/fleet.go)
// as its runs cost: its share of the runs (the app's weight split over
// its agents), the mean cost of a typical run in dollars, estimated from
// the agent's models at list prices and its calls and tokens per run,
// and whether its runs sometimes loop on a tool.
type demoAgent struct {
	share    float64
	runCost  float64
	calls    float64 // model calls of a typical run
	loopsome bool
}

var demoFleet = []demoAgent{
	{share: 2.5, runCost: 0.011, calls: 1.5},                 // triage, gpt-4.1
	{share: 2.5, runCost: 0.054, calls: 3, loopsome: true},   // resolver, claude-sonnet-4-5
	{share: 1.5, runCost: 0.095, calls: 3.5, loopsome: true}, // researcher, gemini-2.5-pro
	{share: 1.5, runCost: 0.006, calls: 1},                   // summarizer, gemini-2.5-flash
	{share: 2, runCost: 0.064, calls: 2.5},                   // reviewer, o3
	{share: 2, runCost: 0.053, calls: 2.5},                   // claims, bedrock sonnet
	{share: 1, runCost: 0.008, calls: 2},                     // prospector, claude-haiku-4-5
}

// demoMoments returns the mean and variance of one run's cost of agent a:
// log-normal around its typical cost (σ 0.6: prompts and answers vary
// in length), and, for loop-prone agents, 5 % of runs looping through 8
// to 14 more calls on a prompt that keeps growing.
func demoMoments(a demoAgent) (mean, variance float64) {
	const sigma = 0.6
	m2 := math.Exp(sigma * sigma) // E[X²]/E[X]² of a log-normal
	mean, second := a.runCost, a.runCost*a.runCost*m2
	if !a.loopsome {
		return mean, second - mean*mean
	}
	const p = 0.05
	var lm, l2 float64 // moments of the loop's multiplier, uniform over 8..14 calls
	for k := 8.0; k <= 14; k++ {
		f := 1 + 1.5*k/a.calls
		lm += f / 7
		l2 += f * f / 7
	}
	mean = (1 - p + p*lm) * a.runCost
	second = (1 - p + p*l2) * a.runCost * a.runCost * m2
	return mean, second - mean*mean
}

// demoDay draws one day's cost of runs runs of the demo fleet. Runs are
// many, so each agent's total is drawn from the normal its run count and
// per-run moments give (central limit), which keeps a long backtest
// fast.
func demoDay(rng *rand.Rand, runs float64) float64 {
	var total, shares float64
	for _, a := range demoFleet {
		shares += a.share
	}
	for _, a := range demoFleet {
		n := float64(poisson(rng, runs*a.share/shares))
		m, v := demoMoments(a)
		total += n*m + math.Sqrt(n*v)*rng.NormFloat64()
	}
	return math.Max(0, total)
}

// DemoConstant generates the demo workload as services/loadgen emits it:
// the fleet's runs at a constant rate (loadgen's default 5 runs a
// second), with no calendar at all. Daily totals vary only by sampling,
// so this is an easy series; it is reported because it is the demo.
func DemoConstant(cfg Config) [][]float64 {
	rng := rand.New(rand.NewPCG(cfg.Seed, 3))
	out := make([][]float64, cfg.Series)
	for i := range out {
		runs := 5 * 86400 * (0.5 + rng.Float64()) // 2.5 to 7.5 runs/s
		y := make([]float64, cfg.Days)
		for t := range y {
			y[t] = demoDay(rng, float64(poisson(rng, runs)))
		}
		out[i] = y
	}
	return out
}

// DemoCalendar generates the demo fleet's runs on a business calendar, which
// loadgen does not have but a real deployment does: weekday-heavy
// traffic (weekends at 25 % to 75 %), growth of 0.2 % to 0.8 % a day, and
// now and then (4 % of days) a busier day at 1.3 to 2 times the usual,
// such as a launch or a batch job.
func DemoCalendar(cfg Config) [][]float64 {
	rng := rand.New(rand.NewPCG(cfg.Seed, 2))
	out := make([][]float64, cfg.Series)
	for i := range out {
		runs := 20_000 + 200_000*rng.Float64()
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
			y[t] = demoDay(rng, float64(poisson(rng, lambda)))
		}
		out[i] = y
	}
	return out
}

// poisson draws a Poisson variate by the normal approximation, which is
// close at the rates used here (thousands and more).
func poisson(rng *rand.Rand, lambda float64) int {
	return max(0, int(math.Round(lambda+math.Sqrt(lambda)*rng.NormFloat64())))
}
