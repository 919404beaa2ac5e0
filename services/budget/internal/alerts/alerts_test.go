package alerts

import (
	"testing"
	"time"

	"github.com/costplane/costplane/services/budget/internal/budgets"
)

func TestAlertIDIsStableAndDistinct(t *testing.T) {
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	a := AlertID("acme", "u1", day, budgets.Actual, 8000)
	if a != AlertID("acme", "u1", day, budgets.Actual, 8000) {
		t.Error("the same threshold got two ids")
	}
	others := []string{
		AlertID("acme", "u1", day, budgets.Forecast, 8000),
		AlertID("acme", "u1", day, budgets.Actual, 8001),
		AlertID("acme", "u1", day.AddDate(0, 1, 0), budgets.Actual, 8000),
		AlertID("acme", "u2", day, budgets.Actual, 8000),
		AlertID("acm", "eu1", day, budgets.Actual, 8000),
	}
	for _, o := range others {
		if o == a {
			t.Errorf("distinct thresholds share id %s", a)
		}
	}
}

func TestBackoffStaysInItsBounds(t *testing.T) {
	lo, hi := time.Second, time.Minute
	for n := 1; n <= 12; n++ {
		full := min(lo<<(n-1), hi)
		for range 50 {
			if d := Backoff(n, lo, hi); d < full/2 || d > full {
				t.Fatalf("attempt %d: backoff %s outside [%s, %s]", n, d, full/2, full)
			}
		}
	}
}
