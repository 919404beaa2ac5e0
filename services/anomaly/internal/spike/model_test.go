package spike

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

const usd = 1_000_000_000

// monday is a Monday at midnight UTC: the series below start there.
var monday = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

// shape is the true mean of a synthetic series at an hour: base spend
// per hour, busy in working hours, half as busy on Saturdays and a third
// on Sundays.
func shape(base float64, t time.Time) float64 {
	hod := 0.3 + 1.4*math.Exp(-math.Pow((float64(t.Hour())-14)/4, 2))
	switch t.Weekday() {
	case time.Saturday:
		hod *= 0.5
	case time.Sunday:
		hod *= 0.35
	}
	return base * hod
}

// synthetic returns weeks+1 weeks of hourly spend of a series whose mean
// is shape(base), with 5 % multiplicative noise. Hours are judged in the
// last week, against the history before them only.
func synthetic(base float64, weeks int, seed uint64) *Series {
	rng := rand.New(rand.NewPCG(seed, 1))
	n := (weeks + 1) * hoursPerWeek
	s := NewSeries(monday, n)
	for i := range n {
		t := monday.Add(time.Duration(i) * time.Hour)
		s.Spend(i, int64(shape(base, t)*math.Exp(0.05*rng.NormFloat64())))
	}
	return s
}

// window spreads an hour's spend over its twelve 5-minute buckets.
func window(at time.Time, cost float64) []Bucket {
	out := make([]Bucket, bucketsPerHour)
	for k := range out {
		out[k] = Bucket{Start: at.Add(time.Duration(k) * step5m), Cost: int64(cost) / bucketsPerHour}
	}
	return out
}

// medium is the medium sensitivity preset with the default floor.
var medium = Thresholds{Floor: 5 * usd, Relative: 0.5, Z: 5.5}

// judge judges hour i of s with the given spend against the history
// before it.
func judge(s *Series, i int, cost float64, th Thresholds) Verdict {
	at := monday.Add(time.Duration(i) * time.Hour)
	return Model{Weeks: 4}.Judge(s, i, hoursPerWeek, window(at, cost), th)
}

func TestExpectationFollowsHourOfDayAndDayOfWeek(t *testing.T) {
	const base = 20 * usd
	s := synthetic(base, 4, 1)
	week5 := 4 * hoursPerWeek
	tests := []struct {
		name string
		hour int // hours into the fifth week, which starts on a Monday
	}{
		{"tuesday afternoon peak", 24 + 14},
		{"wednesday night", 2*24 + 3},
		{"friday morning", 4*24 + 9},
		{"saturday afternoon", 5*24 + 14},
		{"sunday afternoon", 6*24 + 14},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i := week5 + tt.hour
			truth := shape(base, monday.Add(time.Duration(i)*time.Hour))
			v := judge(s, i, truth, medium)
			if !v.Judged {
				t.Fatalf("not judged with four weeks of history")
			}
			if v.Anomalous {
				t.Errorf("spend at its mean judged anomalous: %+v", v)
			}
			if rel := float64(v.Expected)/truth - 1; math.Abs(rel) > 0.1 {
				t.Errorf("expected %.2f USD, true mean %.2f USD (%+.0f %%)",
					float64(v.Expected)/usd, truth/usd, 100*rel)
			}
		})
	}

	// The weekday peak as spend on a Sunday afternoon is a spike: the
	// baseline knows the day of the week, not just the hour.
	sunday := week5 + 6*24 + 14
	weekdayPeak := shape(base, monday.Add(14*time.Hour))
	if v := judge(s, sunday, weekdayPeak, medium); !v.Anomalous {
		t.Errorf("weekday spend on a Sunday was not anomalous: %+v", v)
	}
}

func TestSpikeSeverity(t *testing.T) {
	s := synthetic(20*usd, 4, 2)
	i := 4*hoursPerWeek + 2*24 + 13 // Wednesday 13:00
	truth := shape(20*usd, monday.Add(time.Duration(i)*time.Hour))
	tests := []struct {
		factor float64
		want   eventv1.Severity
	}{
		{1.0, eventv1.Severity_SEVERITY_UNSPECIFIED},
		{1.7, eventv1.Severity_SEVERITY_WARNING},
		{3.0, eventv1.Severity_SEVERITY_CRITICAL},
	}
	for _, tt := range tests {
		v := judge(s, i, truth*tt.factor, medium)
		if v.Severity != tt.want || v.Anomalous != (tt.want != 0) {
			t.Errorf("x%.1f: anomalous %v severity %s (z %.1f), want %s", tt.factor, v.Anomalous,
				v.Severity, v.Z, tt.want)
		}
	}
}

func TestBaselineIsRobustToPastSpikes(t *testing.T) {
	clean := synthetic(20*usd, 4, 3)
	spiky := synthetic(20*usd, 4, 3)
	i := 4*hoursPerWeek + 24 + 15 // Tuesday 15:00
	// Past spikes at the very hours the baseline draws on: the same hour
	// a week and two weeks before, and the day before.
	for _, j := range []int{i - hoursPerWeek, i - 2*hoursPerWeek, i - 24} {
		spiky.Spend(j, 20*spiky.Hist.Vals[j])
	}
	truth := shape(20*usd, monday.Add(time.Duration(i)*time.Hour))
	a, b := judge(clean, i, truth, medium), judge(spiky, i, truth, medium)
	if rel := float64(b.Expected)/float64(a.Expected) - 1; math.Abs(rel) > 0.1 {
		t.Errorf("three past 20x spikes moved the expectation by %+.0f %% (%d to %d)",
			100*rel, a.Expected, b.Expected)
	}
	if b.Anomalous {
		t.Errorf("ordinary spend after past spikes judged anomalous: %+v", b)
	}
	if v := judge(spiky, i, 3*truth, medium); !v.Anomalous {
		t.Errorf("past spikes hid a new one: %+v", v)
	}
}

func TestMinimumHistory(t *testing.T) {
	s := synthetic(20*usd, 4, 4)
	// Only the last five days before the judged hour have spend.
	i := 4*hoursPerWeek + 10
	for j := range i - 5*24 {
		s.Spend(j, 0)
	}
	s.Hist.First = i - 5*24
	v := judge(s, i, 10*shape(20*usd, monday.Add(time.Duration(i)*time.Hour)), medium)
	if v.Judged || v.Anomalous {
		t.Errorf("a series with five days of a week's minimum history was judged: %+v", v)
	}
}

func TestFloorAndRelativeThreshold(t *testing.T) {
	at := func(i int) time.Time { return monday.Add(time.Duration(i) * time.Hour) }
	i := 4*hoursPerWeek + 3*24 + 14 // Thursday 14:00

	// A small series triples, but by less money than the floor.
	small := synthetic(0.5*usd, 4, 5)
	truth := shape(0.5*usd, at(i))
	if v := judge(small, i, 3*truth, medium); v.Anomalous {
		t.Errorf("an excess of %.2f USD under the 5 USD floor alerted: %+v",
			2*truth/usd, v)
	}
	lowFloor := Thresholds{Floor: usd / 10, Relative: medium.Relative, Z: medium.Z}
	if v := judge(small, i, 3*truth, lowFloor); !v.Anomalous {
		t.Errorf("the same excess over a 0.10 USD floor did not alert: %+v", v)
	}

	// A large series rises by a third: well over the floor, under the
	// relative threshold.
	large := synthetic(100*usd, 4, 6)
	truth = shape(100*usd, at(i))
	if v := judge(large, i, 1.35*truth, medium); v.Anomalous {
		t.Errorf("a rise of 35 %% under the 50 %% threshold alerted: %+v", v)
	}
	lowRelative := Thresholds{Floor: medium.Floor, Relative: 0.2, Z: medium.Z}
	if v := judge(large, i, 1.35*truth, lowRelative); !v.Anomalous {
		t.Errorf("a rise of 35 %% over a 20 %% threshold did not alert: %+v", v)
	}
}

func TestLevelShiftIsLearntWithinThreeDays(t *testing.T) {
	s := synthetic(20*usd, 4, 7)
	shiftAt := 3*hoursPerWeek + 3*24 // Thursday of the fourth week
	for j := shiftAt; j < len(s.Hist.Vals); j++ {
		s.Spend(j, int64(2.5*float64(s.Hist.Vals[j])))
	}
	// Monday of the fifth week, four days after the shift: spend at the
	// new level is the new normal.
	i := 4*hoursPerWeek + 11
	newLevel := 2.5 * shape(20*usd, monday.Add(time.Duration(i)*time.Hour))
	if v := judge(s, i, newLevel, medium); v.Anomalous {
		t.Errorf("spend at the shifted level four days on judged anomalous: %+v", v)
	}
}
