package live

import (
	"math"
	"time"

	"github.com/costplane/costplane/services/budget/internal/period"
)

// Outlook is a budget's daily forecast for the rest of one period, as the
// projector last computed it. Amounts are nanos; they are floats only
// until a projection rounds them.
type Outlook struct {
	Span     period.Span
	Method   string
	Computed time.Time
	// First is the day Mean[0] forecasts; the days run to Span.End.
	First time.Time
	Mean  []float64
	// SumLow and SumHigh bound the 80 % interval of the spend from
	// First to Span.End, as offsets below and above the sum of Mean.
	SumLow, SumHigh float64

	// suffix[i] is the sum of Mean[i:], so that remaining is O(1) on the
	// check path; SetOutlook fills it.
	suffix []float64
}

func (o *Outlook) prepare() {
	o.suffix = make([]float64, len(o.Mean)+1)
	for i := len(o.Mean) - 1; i >= 0; i-- {
		o.suffix[i] = o.suffix[i+1] + o.Mean[i]
	}
}

// Projection is where a budget's spend is heading.
type Projection struct {
	EndOfPeriod  int64
	Lower, Upper int64
	// Exceed is the day spend is projected to pass the amount; zero when
	// it stays within.
	Exceed   time.Time
	Method   string
	Computed time.Time
}

// remaining returns the forecast spend from now to the end of the span:
// the rest of today, pro rata, and the days after.
func (o *Outlook) remaining(now time.Time) float64 {
	today := period.Day(now)
	i := int(today.Sub(o.First).Hours()/24 + 0.5)
	switch {
	case i < 0:
		return o.suffix[0]
	case i >= len(o.Mean):
		return 0
	}
	left := 1 - now.Sub(today).Hours()/24
	return o.Mean[i]*left + o.suffix[i+1]
}

// walk calls fn with each day from now's on and its forecast, today's
// scaled to the part of the day left, until fn returns false.
func (o *Outlook) walk(now time.Time, fn func(day time.Time, v float64) bool) {
	today := period.Day(now)
	i := int(today.Sub(o.First).Hours()/24 + 0.5)
	left := 1 - now.Sub(today).Hours()/24
	if i < 0 {
		i, left = 0, 1
	}
	for ; i < len(o.Mean); i++ {
		v := o.Mean[i]
		if day := o.First.AddDate(0, 0, i); day.Equal(today) {
			v *= left
		}
		if !fn(o.First.AddDate(0, 0, i), v) {
			return
		}
	}
}

// project turns the outlook into a projection for spent so far of
// amount.
func (o *Outlook) project(spent, amount int64, now time.Time) Projection {
	rem := o.remaining(now)
	p := Projection{
		EndOfPeriod: spent + round(rem),
		Lower:       spent + round(math.Max(0, rem-o.SumLow)),
		Upper:       spent + round(rem+o.SumHigh),
		Method:      o.Method,
		Computed:    o.Computed,
	}
	if spent > amount {
		return p // exceeded already; the caller knows when
	}
	cum := float64(spent)
	o.walk(now, func(day time.Time, v float64) bool {
		cum += v
		if cum > float64(amount) {
			p.Exceed = day
			return false
		}
		return true
	})
	return p
}

func round(v float64) int64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return int64(math.Round(v))
}

// SetOutlook records the outlook of budget uid; one computed for a budget
// revision the state no longer holds is dropped by the next SetBudgets.
func (s *State) SetOutlook(uid string, o *Outlook) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.idx.Load().byUID[uid]; e != nil {
		o.prepare()
		e.outlook.Store(o)
	}
}

// Remaining implements alerts.Projections: the forecast spend of uid from
// now to the end of span, in nanos.
func (s *State) Remaining(uid string, span period.Span, now time.Time) (int64, bool) {
	e := s.idx.Load().byUID[uid]
	if e == nil {
		return 0, false
	}
	o := e.outlook.Load()
	if o == nil || !o.Span.Start.Equal(span.Start) {
		return 0, false
	}
	return round(o.remaining(now)), true
}

// Project returns the projection of budget uid's current period at now,
// or false when it has no outlook for it.
func (s *State) Project(uid string, now time.Time) (Projection, bool) {
	e := s.idx.Load().byUID[uid]
	if e == nil {
		return Projection{}, false
	}
	span, ok := e.b.Period.At(now)
	o := e.outlook.Load()
	if !ok || o == nil || !o.Span.Start.Equal(span.Start) {
		return Projection{}, false
	}
	return o.project(spentIn(e, span), e.b.Amount, now), true
}
