// Package period computes budget periods: UTC calendar spans that recur
// from a start day. Months are counted by calendar, so a monthly budget
// starting on the 31st runs to the last day of shorter months.
package period

import (
	"fmt"
	"time"
)

// Kind is how often a budget renews. The values match the API enum.
type Kind int

// The kinds.
const (
	Daily Kind = iota + 1
	Weekly
	Monthly
	Quarterly
	Yearly
)

// Valid reports whether k is one of the kinds.
func (k Kind) Valid() bool { return k >= Daily && k <= Yearly }

func (k Kind) String() string {
	switch k {
	case Daily:
		return "daily"
	case Weekly:
		return "weekly"
	case Monthly:
		return "monthly"
	case Quarterly:
		return "quarterly"
	case Yearly:
		return "yearly"
	}
	return fmt.Sprintf("period(%d)", int(k))
}

// Day truncates t to its UTC day.
func Day(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// Spec is a budget's recurrence: periods of Kind from Start, a UTC day.
type Spec struct {
	Kind  Kind
	Start time.Time
}

// Span is one period, the half-open [Start, End) of UTC days.
type Span struct {
	Start, End time.Time
}

// Days returns the number of days in s.
func (s Span) Days() int { return int(s.End.Sub(s.Start).Hours()/24 + 0.5) }

// Contains reports whether t falls in s.
func (s Span) Contains(t time.Time) bool { return !t.Before(s.Start) && t.Before(s.End) }

// At returns the period containing t; ok is false before the first one.
func (s Spec) At(t time.Time) (Span, bool) {
	if t.Before(s.Start) {
		return Span{}, false
	}
	switch s.Kind {
	case Daily, Weekly:
		n := 1
		if s.Kind == Weekly {
			n = 7
		}
		days := int(t.Sub(s.Start).Hours() / 24)
		k := days / n
		start := s.Start.AddDate(0, 0, k*n)
		return Span{Start: start, End: start.AddDate(0, 0, n)}, true
	}

	months := s.months()
	y1, m1, _ := s.Start.Date()
	y2, m2, _ := t.UTC().Date()
	k := ((y2-y1)*12 + int(m2-m1)) / months
	start := s.nth(k)
	if start.After(t) {
		k--
		start = s.nth(k)
	}
	return Span{Start: start, End: s.nth(k + 1)}, true
}

func (s Spec) months() int {
	switch s.Kind {
	case Quarterly:
		return 3
	case Yearly:
		return 12
	}
	return 1
}

// nth returns the start of period k (from 0) of a month-based spec: the
// start's day of month, or the month's last day when it is shorter.
func (s Spec) nth(k int) time.Time {
	y, m, d := s.Start.Date()
	first := time.Date(y, m+time.Month(k*s.months()), 1, 0, 0, 0, 0, time.UTC)
	last := first.AddDate(0, 1, -1).Day()
	return first.AddDate(0, 0, min(d, last)-1)
}
