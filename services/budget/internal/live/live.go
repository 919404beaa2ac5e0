// Package live keeps the in-memory state that budget checks are answered
// from: every budget, compiled, with its current period's spend and its
// forecast outlook.
//
// Readers never lock: the budget index is an immutable value swapped
// atomically when the budget set changes, and each budget's spend and
// outlook are atomic pointers to immutable values. Writers (the consumer
// after each commit, the refresh loop, the projector) serialize on a
// mutex. Spend totals carry the version of the row they came from, and an
// older version never replaces a newer one, so the consumer and the
// refresh loop may race freely.
package live

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/costplane/costplane/services/budget/internal/budgets"
	"github.com/costplane/costplane/services/budget/internal/period"
)

// State is the live budget state.
type State struct {
	mu  sync.Mutex // serializes writers
	idx atomic.Pointer[index]
}

type index struct {
	version  int64
	byTenant map[string][]*entry
	byUID    map[string]*entry
}

type entry struct {
	b *budgets.Compiled
	// warnAt is the highest actual threshold below 100 %, in basis
	// points; 0 when there is none.
	warnAt int32
	// within is the reason of an allowing check, built once rather than
	// on every check.
	within  string
	spend   atomic.Pointer[spendCell]
	outlook atomic.Pointer[Outlook]
	// current caches the period last computed, since month arithmetic
	// is the dearest part of a check.
	current atomic.Pointer[period.Span]
}

// span returns the budget's period at now.
func (e *entry) span(now time.Time) (period.Span, bool) {
	if c := e.current.Load(); c != nil && c.Contains(now) {
		return *c, true
	}
	span, ok := e.b.Period.At(now)
	if ok {
		e.current.Store(&span)
	}
	return span, ok
}

// spendCell is one period's spend as a versioned row left it.
type spendCell struct {
	start   time.Time
	spent   int64
	version int64
}

// New returns an empty state: every check answers that no budget
// applies until SetBudgets.
func New() *State {
	s := &State{}
	s.idx.Store(&index{version: -1, byTenant: map[string][]*entry{},
		byUID: map[string]*entry{}})
	return s
}

// Version returns the budget-set version the state holds; -1 before the
// first SetBudgets.
func (s *State) Version() int64 { return s.idx.Load().version }

// SetBudgets replaces the budget set. Budgets that keep their uid keep
// their spend and outlook; the spend of a changed budget arrives with the
// totals of its recomputation.
func (s *State) SetBudgets(set *budgets.Set) {
	s.mu.Lock()
	defer s.mu.Unlock()

	old := s.idx.Load()
	if set.Version < old.version {
		return
	}
	idx := &index{version: set.Version, byTenant: make(map[string][]*entry, len(set.ByTenant)),
		byUID: make(map[string]*entry)}
	for tenant, bs := range set.ByTenant {
		for _, b := range bs {
			e := &entry{b: b, warnAt: warnLevel(b.Thresholds), within: "within budget " + b.ID}
			if prev := old.byUID[b.UID]; prev != nil {
				e.spend.Store(prev.spend.Load())
				if prev.b.Revision == b.Revision {
					e.outlook.Store(prev.outlook.Load())
				}
			}
			idx.byTenant[tenant] = append(idx.byTenant[tenant], e)
			idx.byUID[b.UID] = e
		}
	}
	s.idx.Store(idx)
}

func warnLevel(ths []budgets.Threshold) int32 {
	var w int32
	for _, t := range ths {
		if t.Kind == budgets.Actual && t.BasisPoints < 10_000 && t.BasisPoints > w {
			w = t.BasisPoints
		}
	}
	return w
}

// ApplyTotals records period totals. A total is kept when it is for the
// budget's current period at now and newer than what the state holds.
func (s *State) ApplyTotals(ts []budgets.PeriodTotal, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()

	idx := s.idx.Load()
	for _, t := range ts {
		e := idx.byUID[t.UID]
		if e == nil {
			continue
		}
		cur, ok := e.b.Period.At(now)
		if !ok || !cur.Start.Equal(t.Span.Start) {
			continue
		}
		if c := e.spend.Load(); c != nil && c.start.Equal(t.Span.Start) && c.version >= t.Version {
			continue
		}
		e.spend.Store(&spendCell{start: t.Span.Start, spent: t.Spent, version: t.Version})
	}
}

// Current lists the current period of every budget at now, for the
// refresh loop to read their totals.
func (s *State) Current(now time.Time) []budgets.PeriodTotal {
	idx := s.idx.Load()
	out := make([]budgets.PeriodTotal, 0, len(idx.byUID))
	for uid, e := range idx.byUID {
		if span, ok := e.b.Period.At(now); ok {
			out = append(out, budgets.PeriodTotal{TenantID: e.b.TenantID, UID: uid, Span: span})
		}
	}
	return out
}

// Spent returns a budget's spend in its period at now.
func (s *State) Spent(uid string, now time.Time) (int64, period.Span, bool) {
	e := s.idx.Load().byUID[uid]
	if e == nil {
		return 0, period.Span{}, false
	}
	span, ok := e.b.Period.At(now)
	if !ok {
		return 0, period.Span{}, true
	}
	return spentIn(e, span), span, true
}

func spentIn(e *entry, span period.Span) int64 {
	if c := e.spend.Load(); c != nil && c.start.Equal(span.Start) {
		return c.spent
	}
	return 0
}

// Budgets returns every budget the state holds.
func (s *State) Budgets() []*budgets.Compiled {
	idx := s.idx.Load()
	out := make([]*budgets.Compiled, 0, len(idx.byUID))
	for _, e := range idx.byUID {
		out = append(out, e.b)
	}
	return out
}
