// Command eval-forecast backtests the budget forecaster on generated
// seasonal series with trend and noise, and on the demo workload's daily
// cost (services/loadgen's fleet, as loadgen emits it and on a business
// calendar), and prints the forecast error (MAPE) and the coverage of
// the 80 % prediction intervals. Run with -h for the sizes.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/costplane/costplane/services/budget/internal/backtest"
)

func main() {
	cfg := backtest.Config{}
	flag.IntVar(&cfg.Series, "series", 200, "series per workload")
	flag.IntVar(&cfg.Days, "days", 140, "days per series")
	flag.IntVar(&cfg.Horizon, "horizon", 7, "days forecast from each origin")
	flag.IntVar(&cfg.Origins, "origins", 8, "origins per series, a week apart")
	seed := flag.Uint64("seed", 7, "generator seed")
	flag.Parse()
	cfg.Seed = *seed

	if cfg.Series < 1 || cfg.Horizon < 1 || cfg.Origins < 1 || cfg.Days < cfg.Horizon+14 {
		fmt.Fprintln(os.Stderr, "eval-forecast: need series, horizon, origins >= 1 "+
			"and days >= horizon + 14")
		os.Exit(2)
	}
	run(os.Stdout, cfg)
}

func run(w io.Writer, cfg backtest.Config) {
	fmt.Fprintf(w, "forecast backtest: %d series x %d days per workload, %d-day horizon, "+
		"%d weekly origins, seed %d\n\n", cfg.Series, cfg.Days, cfg.Horizon, cfg.Origins, cfg.Seed)
	fmt.Fprintf(w, "%-18s %8s %8s %10s %8s  %s\n", "workload", "points", "MAPE", "80% cover",
		"time", "MAPE by day ahead / methods")

	workloads := []struct {
		name string
		gen  func(backtest.Config) [][]float64
	}{
		{"seasonal+trend", backtest.Seasonal},
		{"demo-constant", backtest.DemoConstant},
		{"demo-calendar", backtest.DemoCalendar},
	}
	for _, wl := range workloads {
		start := time.Now()
		s := backtest.Run(wl.gen(cfg), cfg)
		fmt.Fprintf(w, "%-18s %8d %7.2f%% %9.1f%% %8s  %s / %s\n", wl.name, s.Points,
			100*s.MAPE, 100*s.Coverage, time.Since(start).Round(time.Millisecond),
			horizons(s.ByHorizon), methods(s.Methods))
	}
	fmt.Fprintln(w, "\ntargets (seasonal+trend, 7 days ahead): MAPE <= 10%, 80% intervals "+
		"covering 75-85% of actuals")
}

func horizons(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%.1f", 100*x)
	}
	return strings.Join(parts, " ")
}

func methods(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}
