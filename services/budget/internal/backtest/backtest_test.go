package backtest

import "testing"

// The targets, on a sample small enough for every test run: MAPE
// at most 10 % seven days ahead, and 80 % intervals covering 75-85 %.
func TestSeasonalTargets(t *testing.T) {
	cfg := Config{Series: 40, Days: 140, Horizon: 7, Origins: 6, Seed: 11}
	s := Run(Seasonal(cfg), cfg)
	t.Logf("seasonal: %d points, MAPE %.2f%%, coverage %.1f%%", s.Points, 100*s.MAPE,
		100*s.Coverage)
	if s.MAPE > 0.10 {
		t.Errorf("MAPE = %.2f%%, want <= 10%%", 100*s.MAPE)
	}
	if s.Coverage < 0.75 || s.Coverage > 0.85 {
		t.Errorf("coverage = %.1f%%, want 75-85%%", 100*s.Coverage)
	}
}

// The demo workload, as loadgen emits it and on a business calendar, is
// forecast about as well as the seasonal series or better.
func TestDemoWorkloads(t *testing.T) {
	cfg := Config{Series: 20, Days: 120, Horizon: 7, Origins: 4, Seed: 5}
	for name, gen := range map[string]func(Config) [][]float64{
		"constant": DemoConstant, "calendar": DemoCalendar,
	} {
		s := Run(gen(cfg), cfg)
		t.Logf("demo-%s: MAPE %.2f%%, coverage %.1f%%", name, 100*s.MAPE, 100*s.Coverage)
		if s.MAPE > 0.10 || s.Coverage < 0.75 {
			t.Errorf("demo-%s: MAPE %.2f%%, coverage %.1f%%; want <= 10%% and >= 75%%", name,
				100*s.MAPE, 100*s.Coverage)
		}
	}
}
