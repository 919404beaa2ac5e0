// Package spike judges spend series for spikes against a seasonal
// baseline, and runs the evaluator that does so as buckets close.
//
// The expected spend of an hour is the median of candidates drawn from
// history: the same hour of the week in each of the last weeks, scaled by
// how the level has moved since (the median, over the last three days,
// of each day's spend against the same day of that week: the ratio
// carries no weekly pattern, and one day's spike does not move it), and
// the same hour on
// recent days of the same type (weekday or weekend), scaled by the
// day-of-week factor. The median keeps a past spike from moving the
// expectation, and the two kinds of candidate together follow both the
// hour-of-day and the day-of-week pattern.
//
// How far spend may stray is calibrated per series on its own recent
// hours: residuals are divided by the square root of the expectation
// (spend that arrives as many independent calls varies that way), and
// their median and median absolute deviation give a robust z-score.
package spike

import (
	"math"
	"slices"
	"time"
)

const (
	hoursPerDay  = 24
	hoursPerWeek = 7 * hoursPerDay
	// calibrationHours is how many recent hours calibrate the noise.
	calibrationHours = 96
	// levelDays are the trailing days whose level scales past weeks. A
	// week would take most of a week to learn a level shift; the median
	// of three days learns it in two.
	levelDays = 3
	// minCandidates an expectation needs.
	minCandidates = 3
	// madToSigma turns a median absolute deviation into a standard
	// deviation for normal noise.
	madToSigma = 1.4826
)

// History is one series' hourly spend, oldest first: Vals[i] is the hour
// starting at Start + i hours.
type History struct {
	Start time.Time
	Vals  []int64
	// First is the index of the first hour with spend.
	First int
	// sums are prefix sums of Vals, rebuilt lazily.
	sums []int64
}

// Model holds the baseline's settings.
type Model struct {
	Weeks int
}

// hour returns the weekday and hour of day of index i.
func (h *History) weekday(i int) time.Weekday {
	return h.Start.Add(time.Duration(i) * time.Hour).Weekday()
}

func weekend(d time.Weekday) bool { return d == time.Saturday || d == time.Sunday }

func (h *History) prefix() []int64 {
	if len(h.sums) != len(h.Vals)+1 {
		h.sums = make([]int64, len(h.Vals)+1)
		for i, v := range h.Vals {
			h.sums[i+1] = h.sums[i] + v
		}
	}
	return h.sums
}

// fit is what a history tells about its series, up to an end index.
type fit struct {
	end int
	day [7]float64 // day-of-week factors
	lvl []float64  // level now against k+1 weeks before
	// typical is the mean hourly spend of the last week, the least
	// spend whose square root scales residuals (see noiseNorm).
	typical float64
}

func (m Model) fit(h *History, end int) fit {
	f := fit{end: end}
	f.lvl = h.levels(end, m.Weeks)
	f.day = h.dayFactors(end)
	if from := max(end-hoursPerWeek, h.First); from < end {
		s := h.prefix()
		f.typical = float64(s[end]-s[from]) / float64(end-from)
	}
	return f
}

// noiseNorm is what a residual of spend expected to be e is divided by:
// the square root of e, as for spend made of many independent calls, but
// never less than that of the typical hour. In quiet hours spend comes
// from a few sessions of several calls each, so it strays from a small
// expectation far more than the square root says; without the floor, an
// ordinary busy night would look like a spike.
func noiseNorm(e, typical float64) float64 {
	return math.Sqrt(math.Max(e, typical))
}

// levels returns, for k = 1..weeks, how the spend of the last levelDays
// days before end compares with the same days k weeks earlier: the
// median of the day-by-day ratios, or 1 when a day lacks history.
func (h *History) levels(end, weeks int) []float64 {
	s := h.prefix()
	out := make([]float64, weeks)
	var rs [levelDays]float64
	for k := 1; k <= weeks; k++ {
		out[k-1] = 1
		n := 0
		for d := range levelDays {
			hi := end - d*hoursPerDay
			lo, back := hi-hoursPerDay, k*hoursPerWeek
			if lo-back < h.First || hi > len(h.Vals) {
				break
			}
			then := s[hi-back] - s[lo-back]
			if then <= 0 {
				break
			}
			rs[n] = float64(s[hi]-s[lo]) / float64(then)
			n++
		}
		if n == levelDays {
			out[k-1] = median(rs[:n])
		}
	}
	return out
}

// dayFactors returns each weekday's typical daily spend relative to the
// mean day of the week around it, from the complete days before end; 1
// where unknown. Dividing by the surrounding week keeps a level shift
// out of the factors: against a typical day of the whole history, the
// days after a shift would all look like busy weekdays.
func (h *History) dayFactors(end int) [7]float64 {
	out := [7]float64{1, 1, 1, 1, 1, 1, 1}
	// Days start at midnight UTC: find the first index that starts a day.
	first := h.First
	for first < end && h.Start.Add(time.Duration(first)*time.Hour).Hour() != 0 {
		first++
	}
	days := (end - first) / hoursPerDay
	if days < 7 {
		return out
	}
	s := h.prefix()
	at := func(day int) int64 { return s[first+day*hoursPerDay] }
	var per [7][]float64
	for k := range days {
		// The week around day k, moved inside the history at its ends.
		lo := min(max(k-3, 0), days-7)
		week := at(lo+7) - at(lo)
		if week <= 0 {
			continue
		}
		ratio := float64(at(k+1)-at(k)) * 7 / float64(week)
		wd := h.weekday(first + k*hoursPerDay)
		per[wd] = append(per[wd], ratio)
	}
	for wd := range per {
		if len(per[wd]) > 0 {
			out[wd] = median(per[wd])
		}
	}
	return out
}

// expect returns the expected spend of hour i from the history before
// f.end. ok is false when too few candidates exist.
func (m Model) expect(h *History, f *fit, i int, buf []float64) (float64, bool) {
	cands := buf[:0]
	for k := 1; k <= m.Weeks; k++ {
		lvl := f.lvl[k-1]
		for _, d := range [3]int{0, -1, 1} {
			j := i - hoursPerWeek*k + d
			if j >= h.First && j < f.end {
				cands = append(cands, float64(h.Vals[j])*lvl)
			}
		}
	}
	wd := h.weekday(i)
	for d := 1; d <= 6; d++ {
		j := i - hoursPerDay*d
		if j < h.First || j >= f.end {
			continue
		}
		jd := h.weekday(j)
		if weekend(jd) != weekend(wd) || f.day[jd] <= 0 {
			continue
		}
		cands = append(cands, float64(h.Vals[j])*f.day[wd]/f.day[jd])
	}
	if len(cands) < minCandidates {
		return 0, false
	}
	return median(cands), true
}

// noise is a series' calibrated residual distribution.
type noise struct {
	center, scale float64
	ok            bool
}

// calibrate measures how the history's recent hours strayed from their
// expectation. The day-of-week factors are those at end throughout,
// which spares recomputing them per hour at the cost of a little
// hindsight.
func (m Model) calibrate(h *History, end int) noise {
	var rs []float64
	buf := make([]float64, 0, 3*m.Weeks+6)
	base := m.fit(h, end)
	from := max(h.First+hoursPerWeek, end-calibrationHours)
	for i := from; i < end; i++ {
		f := base
		f.end = i
		f.lvl = h.levels(i, m.Weeks)
		e, ok := m.expect(h, &f, i, buf)
		if !ok || e <= 0 {
			continue
		}
		rs = append(rs, (float64(h.Vals[i])-e)/noiseNorm(e, base.typical))
	}
	if len(rs) < hoursPerDay {
		return noise{}
	}
	c := median(rs)
	dev := make([]float64, len(rs))
	for i, r := range rs {
		dev[i] = math.Abs(r - c)
	}
	return noise{center: c, scale: madToSigma * median(dev), ok: true}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
