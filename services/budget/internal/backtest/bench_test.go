package backtest

import "testing"

// BenchmarkBacktest runs the eval-forecast backtest (200 series of 140
// days per workload, 7-day horizon, 8 weekly origins, seed 7) and reports
// its accuracy: MAPE over days 1-7 ahead, MAPE of day 7 alone, and the
// share of actuals inside the 80 % intervals. One op is one whole
// backtest; run with -benchtime 1x.
func BenchmarkBacktest(b *testing.B) {
	cfg := Config{Series: 200, Days: 140, Horizon: 7, Origins: 8, Seed: 7}
	workloads := []struct {
		name string
		gen  func(Config) [][]float64
	}{
		{"seasonal", Seasonal},
		{"demo-constant", DemoConstant},
		{"demo-calendar", DemoCalendar},
	}
	for _, wl := range workloads {
		b.Run(wl.name, func(b *testing.B) {
			series := wl.gen(cfg)
			b.ResetTimer()
			var s Score
			for range b.N {
				s = Run(series, cfg)
			}
			b.ReportMetric(100*s.MAPE, "mape_pct")
			b.ReportMetric(100*s.ByHorizon[cfg.Horizon-1], "mape_day7_pct")
			b.ReportMetric(100*s.Coverage, "cover80_pct")
		})
	}
}
