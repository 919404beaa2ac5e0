package detect

import (
	"math"
	"time"
)

// Subject is what a baseline describes.
type Subject uint8

// Subjects of baselines.
const (
	// SubjectRunCost is the cost of completed runs, in nanos.
	SubjectRunCost Subject = 1
	// SubjectSessionCost is the cost of completed sessions, in nanos.
	SubjectSessionCost Subject = 2
	// SubjectToolRepeats is, per completed run, the calls of its most
	// called tool.
	SubjectToolRepeats Subject = 3
)

// NumBuckets is the size of every baseline histogram.
const NumBuckets = 256

// money buckets are logarithmic, six per doubling (12 % wide): bucket i
// holds [2^(i/6), 2^((i+1)/6)) nanos, up to about 7,000 currency units.
const moneyPerDoubling = 6

// Bucket returns the histogram bucket of v for subject s.
func (s Subject) Bucket(v int64) uint8 {
	if s == SubjectToolRepeats {
		return uint8(min(max(v, 0), NumBuckets-1))
	}
	if v <= 1 {
		return 0
	}
	i := int(math.Floor(moneyPerDoubling * math.Log2(float64(v))))
	return uint8(min(max(i, 0), NumBuckets-1))
}

// Upper returns the largest value bucket b holds, so that quantiles err
// on the high side and never alert early.
func (s Subject) Upper(b int) int64 {
	if s == SubjectToolRepeats {
		return int64(b)
	}
	return int64(math.Ceil(math.Exp2(float64(b+1) / moneyPerDoubling)))
}

// Key names one baseline: a subject in a scope of a tenant. Scope is
// "agent=<name>", "app=<name>" or "" for the whole tenant.
type Key struct {
	Tenant  string
	Subject Subject
	Scope   string
}

// Add is one observation for a baseline, on an event-time day.
type Add struct {
	Key    Key
	Day    int32
	Bucket uint8
}

// Baselines holds, per key, one histogram per event-time day, and answers
// quantiles over the last Days days. It is not safe for concurrent use.
type Baselines struct {
	Days int
	m    map[Key]*baseline
}

type baseline struct {
	perDay map[int32]*[NumBuckets]uint32
	// loadedAt is when the histograms were read from storage, in wall
	// time, for refreshing; zero means never.
	loadedAt time.Time
	// memo caches the last quantile asked for.
	memo struct {
		valid bool
		today int32
		q     float64
		value int64
		n     int
	}
}

// NewBaselines returns empty baselines over a window of days.
func NewBaselines(days int) *Baselines {
	return &Baselines{Days: days, m: make(map[Key]*baseline)}
}

func (bs *Baselines) get(k Key) *baseline {
	b := bs.m[k]
	if b == nil {
		b = &baseline{perDay: make(map[int32]*[NumBuckets]uint32)}
		bs.m[k] = b
	}
	return b
}

// Quantile returns the q-quantile of key over the days up to today, and
// how many observations it rests on.
func (bs *Baselines) Quantile(k Key, q float64, today int32) (value int64, n int) {
	b := bs.m[k]
	if b == nil {
		return 0, 0
	}
	if m := &b.memo; m.valid && m.today == today && m.q == q {
		return m.value, m.n
	}

	var sum [NumBuckets]uint32
	for day, h := range b.perDay {
		if day > today || day <= today-int32(bs.Days) {
			continue
		}
		for i, c := range h {
			sum[i] += c
		}
	}
	for _, c := range sum {
		n += int(c)
	}
	if n > 0 {
		rank := uint32(math.Ceil(q * float64(n)))
		var cum uint32
		for i, c := range sum {
			cum += c
			if cum >= rank {
				value = k.Subject.Upper(i)
				break
			}
		}
	}

	b.memo.valid, b.memo.today, b.memo.q, b.memo.value, b.memo.n = true, today, q, value, n
	return value, n
}

// Apply counts observations.
func (bs *Baselines) Apply(adds map[Add]uint32) {
	for a, n := range adds {
		b := bs.get(a.Key)
		h := b.perDay[a.Day]
		if h == nil {
			h = new([NumBuckets]uint32)
			b.perDay[a.Day] = h
		}
		h[a.Bucket] += n
		b.memo.valid = false
	}
}

// Loaded reports whether key was read from storage since since.
func (bs *Baselines) Loaded(k Key, since time.Time) bool {
	b := bs.m[k]
	return b != nil && !b.loadedAt.IsZero() && !b.loadedAt.Before(since)
}

// Replace sets key's histograms to the stored ones, read at loadedAt.
func (bs *Baselines) Replace(k Key, perDay map[int32]*[NumBuckets]uint32, loadedAt time.Time) {
	b := bs.get(k)
	b.perDay = perDay
	b.loadedAt = loadedAt
	b.memo.valid = false
}

// Prune drops days that can no longer be in the window of today.
func (bs *Baselines) Prune(today int32) {
	for _, b := range bs.m {
		for day := range b.perDay {
			if day <= today-int32(bs.Days) {
				delete(b.perDay, day)
				b.memo.valid = false
			}
		}
	}
}

// Day returns the event-time day of t.
func Day(t time.Time) int32 { return int32(t.Unix() / 86400) }
