package ingest

import (
	"time"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/attribution/internal/dims"
)

// plan computes every delta the batch writes: lines into rollups, steps,
// runs and sessions, and moved steps out of their old rollup rows and
// sessions into their new ones.
func (b *batch) plan() {
	for _, l := range b.lines {
		b.planLine(l)
	}
	for _, st := range b.steps {
		if st.moved {
			b.planMove(st)
		}
	}
	b.planRunCounts()
	b.planRunSessions()
}

func (b *batch) planLine(l *line) {
	res := b.resolution(l)
	set := l.base
	set.Agent, set.AgentName, set.AgentVersion = res.agentKey(), res.agentName, res.agentVersion
	id := b.addDims(l.tenant, &set)

	a := l.amount
	if l.isCorrection() {
		a.unpriced = b.correctStatus(l)
	}

	var st *step
	if l.runID != "" {
		st = b.steps[stepKey{l.tenant, l.runID, l.stepID}]
		st.dims, st.bucket = id, l.bucket
		b.planLineRun(l, &a, st, id)
	}
	if res.session != "" {
		b.planLineSession(l, &a, res.session, id)
	}

	if st != nil {
		st.delta.add(&a)
	}
	b.rollup(l.tenant, l.bucket, id).add(&a)
}

// planLineRun adds l to its run; the first line of a run new to the store
// counts the run.
func (b *batch) planLineRun(l *line, a *agg, st *step, id dims.ID) {
	r := b.runs[runKey{l.tenant, l.runID}]
	if r.first == nil {
		r.first, r.dims, r.start, r.end = l, id, l.start, l.end
	}
	r.start, r.end = minTime(r.start, l.start), maxTime(r.end, l.end)
	if !st.stored && st.first == l {
		r.newSteps++
	}
	if !l.isCorrection() && l.ev.GetStatus() == eventv1.CallStatus_CALL_STATUS_ERROR {
		r.errors++
	}
	r.delta.add(a)
}

// planLineSession adds l to its session; the first line of a session new
// to the store counts the session. a must not hold the session yet.
func (b *batch) planLineSession(l *line, a *agg, id string, dimsID dims.ID) {
	s := b.session(l.tenant, id)
	if !s.stored && !s.touched {
		a.sessions = 1
	}
	s.noteContribution(l.start, l.end, dimsID, &l.base)
	if s.first == nil {
		s.first = l
		s.agent = b.resolution(l).agentKey()
	}
	s.delta.add(a)
}

// noteContribution widens the session's span to a line or step.
func (s *session) noteContribution(start, end time.Time, id dims.ID, set *dims.Set) {
	if !s.touched {
		s.dims = id
		s.app, s.customer, s.env, s.currency = set.App, set.Customer, set.Environment,
			set.Currency
	}
	s.touched = true
	s.start, s.end = minTime(s.start, start), maxTime(s.end, end)
}

func minTime(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// correctStatus applies a correction to its original's pricing status and
// returns the change in the unpriced count.
func (b *batch) correctStatus(l *line) int64 {
	sc := b.status[lineKey{l.tenant, l.corrects}]
	if sc == nil || sc.old < 0 {
		return 0 // the original is not stored: nothing was counted
	}
	before := sc.now == int32(eventv1.PricingStatus_PRICING_STATUS_UNPRICED)
	sc.now = int32(l.msg.GetPricingStatus())
	after := sc.now == int32(eventv1.PricingStatus_PRICING_STATUS_UNPRICED)
	switch {
	case before && !after:
		return -1
	case !before && after:
		return 1
	}
	return 0
}

// planMove moves a step's stored totals from its old dimension set and
// session to its new ones.
func (b *batch) planMove(st *step) {
	set := st.movedBase
	set.Agent, set.AgentName, set.AgentVersion =
		st.res.agentKey(), st.res.agentName, st.res.agentVersion
	id := b.addDims(st.key.tenant, &set)
	if st.first == nil {
		st.dims = id
	}

	total := st.movedTotal
	if st.res.session != st.storedRes.session {
		if st.storedRes.session != "" {
			out := total.negated()
			b.session(st.key.tenant, st.storedRes.session).delta.add(&out)
		}
		if st.res.session != "" {
			s := b.session(st.key.tenant, st.res.session)
			if !s.stored && !s.touched {
				// The step brings a new session: it counts it.
				total.sessions++
				st.delta.sessions++
			}
			s.noteContribution(st.start, st.end, id, &set)
			if s.agent == "" {
				s.agent = st.res.agentKey()
			}
			s.delta.add(&total)
		}
	}

	out := st.movedTotal.negated()
	b.rollup(st.key.tenant, st.bucket, st.storedDims).add(&out)
	b.rollup(st.key.tenant, st.bucket, id).add(&total)
}

// planRunCounts keeps each run counted once in the rollups, on its
// anchor: the top-level AGENT step, so that runs by agent follow the
// run's agent, or else the step that counted it first. A run new to the
// store is counted on its anchor; a stored run whose top-level agent
// arrives moves its count there.
func (b *batch) planRunCounts() {
	byRun := make(map[runKey][]*step)
	for _, st := range b.steps {
		rk := runKey{st.key.tenant, st.key.run}
		byRun[rk] = append(byRun[rk], st)
	}
	for rk, r := range b.runs {
		first := b.steps[stepKey{rk.tenant, rk.run, r.first.stepID}]
		sortSteps(byRun[rk])
		holder, anchor := runAnchor(byRun[rk], first)
		switch {
		case holder == anchor:
			continue
		case holder == nil && r.stored:
			continue // counted on a step this batch did not load
		case holder != nil:
			holder.delta.runs--
			holder.touched = true
			b.rollup(rk.tenant, holder.bucket, holder.dims).runs--
		}
		anchor.delta.runs++
		anchor.touched = true
		b.rollup(rk.tenant, anchor.bucket, anchor.dims).runs++
	}
}

// runAnchor returns the step holding the run's count, if loaded, and the
// one that should: the earliest AGENT step of a trace, else the holder,
// else the run's first new step. steps are in start order.
func runAnchor(steps []*step, first *step) (holder, anchor *step) {
	for _, st := range steps {
		if st.storedRuns > 0 {
			holder = st
		}
		if anchor == nil && st.kind == eventv1.StepKind_STEP_KIND_AGENT && st.traceID != "" {
			anchor = st
		}
	}
	switch {
	case anchor != nil:
	case holder != nil:
		anchor = holder
	default:
		anchor = first
	}
	return holder, anchor
}

// planRunSessions counts runs in sessions: a run joining a session adds
// one to it, a run leaving one takes one away.
func (b *batch) planRunSessions() {
	for _, r := range b.runs {
		if r.res.session == r.storedRes.session && r.stored {
			continue
		}
		if r.stored && r.storedRes.session != "" {
			b.session(r.key.tenant, r.storedRes.session).runs--
		}
		if r.res.session != "" {
			s := b.session(r.key.tenant, r.res.session)
			s.runs++
			if s.agent == "" {
				s.agent = r.res.agentKey()
			}
		}
	}
}

func (b *batch) addDims(tenant string, s *dims.Set) dims.ID {
	id := s.ID()
	k := dimsKey{tenant, id}
	if _, ok := b.dimsets[k]; !ok {
		b.dimsets[k] = s
	}
	return id
}

// rollup returns the batch's delta of one hourly rollup row.
func (b *batch) rollup(tenant string, bucket time.Time, id dims.ID) *agg {
	k := rollupKey{tenant, bucket.Unix(), id}
	a, ok := b.rollups[k]
	if !ok {
		a = &agg{}
		b.rollups[k] = a
	}
	return a
}
