// Package backtest measures the forecaster on generated daily cost series
// by rolling-origin evaluation: fit on the history up to an origin,
// forecast the next days, compare with what the series did, move the
// origin a week on, repeat.
package backtest

import (
	"math"

	"github.com/costplane/costplane/services/budget/internal/forecast"
)

// Config sizes a backtest.
type Config struct {
	Series  int // series per workload
	Days    int // length of each series
	Horizon int // days forecast from each origin
	Origins int // origins per series, a week apart, ending at the series' end
	Seed    uint64
}

// Score is the accuracy of a backtest.
type Score struct {
	Points int
	// MAPE is the mean absolute percentage error of the point forecasts,
	// over days with non-zero actuals.
	MAPE float64
	// Coverage is the share of actuals inside the 80 % intervals.
	Coverage float64
	// ByHorizon holds the MAPE of each day ahead, 1 first.
	ByHorizon []float64
	// Methods counts the forecasts each method made.
	Methods map[string]int
}

// Run evaluates the forecaster on series.
func Run(series [][]float64, cfg Config) Score {
	var (
		apeSum, n, covered float64
		hSum               = make([]float64, cfg.Horizon)
		hN                 = make([]float64, cfg.Horizon)
		methods            = make(map[string]int)
	)
	for _, y := range series {
		for o := range cfg.Origins {
			origin := len(y) - cfg.Horizon - o*7
			if origin < 1 {
				break
			}
			m := forecast.Fit(y[:origin])
			methods[m.Method()]++
			for h, p := range m.Forecast(cfg.Horizon) {
				actual := y[origin+h]
				if actual == 0 {
					continue
				}
				ape := math.Abs(p.Mean-actual) / math.Abs(actual)
				apeSum += ape
				hSum[h] += ape
				hN[h]++
				n++
				if actual >= p.Lower && actual <= p.Upper {
					covered++
				}
			}
		}
	}

	s := Score{Points: int(n), Methods: methods, ByHorizon: make([]float64, cfg.Horizon)}
	if n > 0 {
		s.MAPE = apeSum / n
		s.Coverage = covered / n
	}
	for h := range hSum {
		if hN[h] > 0 {
			s.ByHorizon[h] = hSum[h] / hN[h]
		}
	}
	return s
}
