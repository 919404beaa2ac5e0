package period

import (
	"testing"
	"time"
)

func day(s string) time.Time {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestAt(t *testing.T) {
	tests := []struct {
		name       string
		spec       Spec
		at         time.Time
		start, end string
	}{
		{"daily", Spec{Daily, day("2026-03-01")}, day("2026-03-05").Add(13 * time.Hour),
			"2026-03-05", "2026-03-06"},
		{"weekly from a thursday", Spec{Weekly, day("2026-01-01")}, day("2026-01-20"),
			"2026-01-15", "2026-01-22"},
		{"monthly mid month", Spec{Monthly, day("2026-01-15")}, day("2026-03-14"),
			"2026-02-15", "2026-03-15"},
		{"monthly on the start day", Spec{Monthly, day("2026-01-15")}, day("2026-03-15"),
			"2026-03-15", "2026-04-15"},
		{"monthly from the 31st clamps", Spec{Monthly, day("2026-01-31")}, day("2026-02-28"),
			"2026-02-28", "2026-03-31"},
		{"monthly from the 31st in february", Spec{Monthly, day("2026-01-31")},
			day("2026-02-27"), "2026-01-31", "2026-02-28"},
		{"quarterly", Spec{Quarterly, day("2026-01-01")}, day("2026-08-09"),
			"2026-07-01", "2026-10-01"},
		{"yearly leap day", Spec{Yearly, day("2024-02-29")}, day("2025-03-01"),
			"2025-02-28", "2026-02-28"},
		{"yearly before anniversary", Spec{Yearly, day("2025-06-01")}, day("2026-05-31"),
			"2025-06-01", "2026-06-01"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.spec.At(tc.at)
			if !ok {
				t.Fatal("At reported no period")
			}
			if !got.Start.Equal(day(tc.start)) || !got.End.Equal(day(tc.end)) {
				t.Errorf("At(%s) = [%s, %s), want [%s, %s)", tc.at.Format(time.DateOnly),
					got.Start.Format(time.DateOnly), got.End.Format(time.DateOnly), tc.start, tc.end)
			}
			if !got.Contains(tc.at) {
				t.Errorf("period does not contain %s", tc.at)
			}
		})
	}
}

func TestAtBeforeStart(t *testing.T) {
	if _, ok := (Spec{Monthly, day("2026-05-01")}).At(day("2026-04-30")); ok {
		t.Error("At before the start reported a period")
	}
}

// Every day belongs to exactly one period and periods tile time.
func TestPeriodsTile(t *testing.T) {
	for k := Daily; k <= Yearly; k++ {
		spec := Spec{k, day("2024-01-31")}
		prev, _ := spec.At(spec.Start)
		for d := spec.Start; d.Before(day("2028-01-01")); d = d.AddDate(0, 0, 1) {
			got, ok := spec.At(d)
			if !ok || !got.Contains(d) {
				t.Fatalf("%s: day %s not in its period %v", k, d, got)
			}
			if got != prev && !got.Start.Equal(prev.End) {
				t.Fatalf("%s: period %v does not follow %v", k, got, prev)
			}
			prev = got
		}
	}
}
