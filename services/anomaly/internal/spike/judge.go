package spike

import (
	"math"
	"time"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

// Thresholds are a tenant's spike thresholds.
type Thresholds struct {
	// Floor is the least excess over expected, in nanos.
	Floor int64
	// Relative is the least excess as a fraction of expected.
	Relative float64
	// Z is the least robust z-score.
	Z float64
}

// Verdict is the judgement of one window of one series.
type Verdict struct {
	Actual    int64
	Expected  int64
	Z         float64
	Anomalous bool
	Severity  eventv1.Severity
	// Judged is false when the series lacks the history to judge.
	Judged bool
}

// Series is one spend series as the evaluator holds it.
type Series struct {
	Hist History
	// fits and noise are cached per history end.
	fitEnd   int
	fit      fit
	noiseEnd int
	noise    noise
	buf      []float64
}

// NewSeries returns a series whose history starts at start with n empty
// hours.
func NewSeries(start time.Time, n int) *Series {
	return &Series{
		Hist:     History{Start: start, Vals: make([]int64, n), First: n},
		fitEnd:   -1,
		noiseEnd: -1,
	}
}

// Spend records the spend of hour index i.
func (s *Series) Spend(i int, v int64) {
	s.Hist.Vals[i] = v
	if v != 0 && i < s.Hist.First {
		s.Hist.First = i
	}
	s.Hist.sums = nil
	s.fitEnd, s.noiseEnd = -1, -1
}

// Grow extends the history by n empty hours.
func (s *Series) Grow(n int) {
	s.Hist.Vals = append(s.Hist.Vals, make([]int64, n)...)
	if s.Hist.First >= len(s.Hist.Vals)-n {
		s.Hist.First = len(s.Hist.Vals)
	}
	s.Hist.sums = nil
	s.fitEnd, s.noiseEnd = -1, -1
}

// Trim drops the first n hours.
func (s *Series) Trim(n int) {
	n = min(n, len(s.Hist.Vals))
	s.Hist.Vals = append(s.Hist.Vals[:0], s.Hist.Vals[n:]...)
	s.Hist.Start = s.Hist.Start.Add(time.Duration(n) * time.Hour)
	s.Hist.First = max(0, s.Hist.First-n)
	s.Hist.sums = nil
	s.fitEnd, s.noiseEnd = -1, -1
}

// Bucket is one 5-minute bucket of spend.
type Bucket struct {
	Start time.Time
	Cost  int64
}

// bucketsPerHour is how many 5-minute buckets an hour holds.
const bucketsPerHour = 12

// Judge judges the spend of window (5-minute buckets) against the history
// before hour index end. minHistory is how many hours of history the
// series must have.
func (m Model) Judge(s *Series, end, minHistory int, window []Bucket, th Thresholds) Verdict {
	v := Verdict{}
	for _, b := range window {
		v.Actual += b.Cost
	}
	if end > len(s.Hist.Vals) || s.Hist.First > end-minHistory {
		return v
	}
	if s.fitEnd != end {
		s.fit, s.fitEnd = m.fit(&s.Hist, end), end
	}

	var expected float64
	perHour := map[int]float64{}
	for _, b := range window {
		i := int(b.Start.Sub(s.Hist.Start) / time.Hour)
		e, ok := perHour[i]
		if !ok {
			if e, ok = m.expect(&s.Hist, &s.fit, i, s.buf); !ok {
				return v
			}
			perHour[i] = e
		}
		expected += e / bucketsPerHour
	}
	v.Judged = true
	v.Expected = int64(math.Round(expected))

	excess := float64(v.Actual) - expected
	if excess < float64(th.Floor) || excess < th.Relative*expected || expected <= 0 {
		return v
	}
	// Only a candidate pays for calibration.
	if s.noiseEnd != end {
		s.noise, s.noiseEnd = m.calibrate(&s.Hist, end), end
	}
	if !s.noise.ok {
		return v
	}
	norm := noiseNorm(expected, s.fit.typical*float64(len(window))/bucketsPerHour)
	r := excess / norm
	scale := math.Max(s.noise.scale, minScale(expected, norm))
	v.Z = (r - s.noise.center) / scale
	if v.Z < th.Z {
		return v
	}
	v.Anomalous = true
	v.Severity = eventv1.Severity_SEVERITY_WARNING
	if v.Z >= 2*th.Z && excess >= expected {
		v.Severity = eventv1.Severity_SEVERITY_CRITICAL
	}
	return v
}

// minScale keeps a series that has been eerily steady from alerting on a
// few percent: its residuals count at least 2 % of the expectation.
func minScale(expected, norm float64) float64 {
	return 0.02 * expected / norm
}
