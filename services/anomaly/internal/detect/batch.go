package detect

import (
	"strings"
	"time"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/anomaly/internal/event"
	"github.com/costplane/costplane/services/anomaly/internal/finding"
	"github.com/costplane/costplane/services/anomaly/internal/policy"
)

// SeriesPoint is one 5-minute bucket of one spend series.
type SeriesPoint struct {
	Tenant   string
	Key      string
	Currency string
	Bucket   int64 // Unix seconds, a multiple of 300
}

// SeriesStep is the width of the finest series bucket.
const SeriesStep = 5 * time.Minute

// SessionDelta is what a batch adds to a session.
type SessionDelta struct {
	Currency    string
	Cost        int64
	Agent       string
	App         string
	First, Last time.Time
}

// SpendKey names spend on one item (a provider or a model) in one scope
// (the tenant, a project or an app). Item "" stands for the scope itself.
type SpendKey struct {
	Tenant string
	Scope  string
	Item   string
}

// SpendDelta is what a batch adds to a SpendKey.
type SpendDelta struct {
	Cost     int64
	Currency string
	First    time.Time
}

// Batch stages the effects of one batch of events. Nothing of it reaches
// the detector until Commit.
type Batch struct {
	d        *Detector
	policies Policies
	now      time.Time

	runs       map[RunKey]*Run
	closed     map[RunKey]bool
	closedPart map[RunKey]int32
	marks      map[int32]time.Time
	sweeps     map[int32]time.Time
	adds       map[Add]uint32
	hints      map[SessionKey]string

	// Findings are the conditions found, in the order found.
	Findings []finding.Finding
	// Series is the spend per series point.
	Series map[SeriesPoint]Amount
	// Sessions is the spend per session.
	Sessions map[SessionKey]*SessionDelta
	// Spend is the spend per scope and item, for new-spend detection.
	Spend map[SpendKey]*SpendDelta
	// Duplicates counts events dropped as already counted.
	Duplicates int
	// SkipSpend, when set, names spend keys not worth recording: items
	// long past being new, scopes long old enough.
	SkipSpend func(SpendKey) bool
}

// Begin starts a batch at wall time now.
func (d *Detector) Begin(policies Policies, now time.Time) *Batch {
	return &Batch{
		d:          d,
		policies:   policies,
		now:        now,
		runs:       make(map[RunKey]*Run),
		closed:     make(map[RunKey]bool),
		closedPart: make(map[RunKey]int32),
		marks:      make(map[int32]time.Time),
		sweeps:     make(map[int32]time.Time),
		adds:       make(map[Add]uint32),
		hints:      make(map[SessionKey]string),
		Series:     make(map[SeriesPoint]Amount),
		Sessions:   make(map[SessionKey]*SessionDelta),
		Spend:      make(map[SpendKey]*SpendDelta),
	}
}

// Changed returns the runs the batch changed that stay open.
func (b *Batch) Changed() []*Run {
	out := make([]*Run, 0, len(b.runs))
	for k, r := range b.runs {
		if !b.closed[k] {
			out = append(out, r)
		}
	}
	return out
}

// ClosedRuns returns the runs the batch closed that storage holds.
func (b *Batch) ClosedRuns() []*Run {
	out := make([]*Run, 0, len(b.closed))
	for k := range b.closed {
		if r := b.runs[k]; r != nil && r.persisted {
			out = append(out, r)
		}
	}
	return out
}

// PartitionRuns returns the open runs of partition p as they stand once
// the batch is committed.
func (b *Batch) PartitionRuns(p int32) []*Run {
	var out []*Run
	if part := b.d.parts[p]; part != nil {
		out = make([]*Run, 0, len(part.runs))
		for k, r := range part.runs {
			if b.runs[k] == nil && !b.closed[k] {
				out = append(out, r)
			}
		}
	}
	for k, r := range b.runs {
		if r.Partition == p && !b.closed[k] {
			out = append(out, r)
		}
	}
	return out
}

// BaselineAdds returns the observations the batch adds to baselines.
func (b *Batch) BaselineAdds() map[Add]uint32 { return b.adds }

// Marks returns the event-time watermark of each partition the batch
// touched.
func (b *Batch) Marks() map[int32]time.Time { return b.marks }

// Apply feeds one event to the detectors.
func (b *Batch) Apply(ev *event.Event) {
	pol := b.policies.For(ev.Tenant)
	ev.Time = b.clamp(ev.Time)
	if wm := b.watermark(ev.Partition); ev.Time.After(wm) {
		b.marks[ev.Partition] = ev.Time
	}

	var r *Run
	if ev.Run != "" {
		r = b.run(ev)
		if !b.count(r, ev) {
			b.Duplicates++
			return
		}
	}

	agent := b.addSeries(ev, r, pol)
	b.addSession(ev, agent)
	b.addSpend(ev)
	if r == nil {
		return
	}

	if ev.Cost != 0 {
		b.checkRunaway(r, pol)
	}
	if !ev.Correction {
		b.checkLoops(r, ev, pol)
	}
}

// clamp keeps a clock running ahead from moving the watermark far.
func (b *Batch) clamp(t time.Time) time.Time {
	if limit := b.now.Add(b.d.cfg.MaxSkew); t.After(limit) {
		return limit
	}
	return t
}

func (b *Batch) watermark(p int32) time.Time {
	if wm, ok := b.marks[p]; ok {
		return wm
	}
	if part := b.d.parts[p]; part != nil {
		return part.watermark
	}
	return time.Time{}
}

// run returns the staged state of ev's run, creating it.
func (b *Batch) run(ev *event.Event) *Run {
	k := RunKey{Tenant: ev.Tenant, Run: ev.Run}
	if r := b.runs[k]; r != nil {
		if b.closed[k] {
			// A straggler after the run closed in this batch: it
			// starts the run again, as it would in a later batch.
			delete(b.closed, k)
			fresh := &Run{Tenant: ev.Tenant, Key: ev.Run, Partition: ev.Partition,
				persisted: r.persisted}
			b.runs[k] = fresh
			return fresh
		}
		return r
	}
	var r *Run
	if part := b.d.parts[ev.Partition]; part != nil && part.runs[k] != nil {
		r = part.runs[k].clone()
	} else {
		r = &Run{Tenant: ev.Tenant, Key: ev.Run, Partition: ev.Partition}
	}
	b.runs[k] = r
	return r
}

// count adds ev to its run and reports false for a duplicate.
func (b *Batch) count(r *Run, ev *event.Event) bool {
	h := event.Hash(ev.ID)
	if _, dup := r.Seen[h]; dup {
		return false
	}
	if len(r.Seen) < b.d.cfg.MaxSeen {
		if r.Seen == nil {
			r.Seen = make(map[uint64]struct{})
		}
		r.Seen[h] = struct{}{}
	}

	t := ev.Time.UnixNano()
	if r.First == 0 || t < r.First {
		r.First = t
	}
	r.Last = max(r.Last, t)
	if ev.Cost != 0 && (r.Currency == "" || r.Currency == ev.Currency) {
		r.Currency = ev.Currency
		r.Cost += ev.Cost
	}
	if r.Session == "" {
		r.Session = ev.Session
	}
	if r.App == "" {
		r.App = ev.App
	}
	if ev.Agent != "" && (ev.Root || r.Agent == "") {
		r.Agent = ev.Agent
	}
	if ev.Root {
		r.Done = true
	}
	if !ev.Correction {
		r.Steps++
	}
	return true
}

// agentOf returns the agent of r: its own, else the one its session ran
// before.
func (b *Batch) agentOf(r *Run) string {
	if r.Agent != "" {
		return r.Agent
	}
	if r.Session == "" {
		return ""
	}
	k := SessionKey{Tenant: r.Tenant, Session: r.Session}
	if a := b.hints[k]; a != "" {
		return a
	}
	return b.d.sessionAgents[k]
}

func (b *Batch) addSession(ev *event.Event, agent string) {
	if ev.Session == "" {
		return
	}
	k := SessionKey{Tenant: ev.Tenant, Session: ev.Session}
	s := b.Sessions[k]
	if s == nil {
		s = &SessionDelta{First: ev.Time, Last: ev.Time, App: ev.App}
		b.Sessions[k] = s
	}
	if ev.Cost != 0 && (s.Currency == "" || s.Currency == ev.Currency) {
		s.Currency = ev.Currency
		s.Cost += ev.Cost
	}
	if agent != "" {
		s.Agent = agent
		b.hints[k] = agent
	}
	if s.App == "" {
		s.App = ev.App
	}
	if ev.Time.Before(s.First) {
		s.First = ev.Time
	}
	if ev.Time.After(s.Last) {
		s.Last = ev.Time
	}
}

// addSpend records spend per scope and item for the new-spend detector.
func (b *Batch) addSpend(ev *event.Event) {
	if ev.Cost == 0 || ev.Provider == "" {
		return
	}
	scopes := [3]string{""}
	n := 1
	if ev.Project != "" {
		scopes[n] = b.d.keys.single(policy.DimProject, ev.Project)
		n++
	}
	if ev.App != "" {
		scopes[n] = b.d.keys.single(policy.DimApp, ev.App)
		n++
	}
	provider := b.d.keys.single(policy.DimProvider, ev.Provider)
	var model string
	if ev.Model != "" {
		model = policy.SeriesKey([]string{policy.DimModel, policy.DimProvider},
			[]string{ev.Model, ev.Provider})
	}
	items := [3]string{"", provider, model}
	m := 3
	if model == "" {
		m = 2
	}
	for _, scope := range scopes[:n] {
		for _, item := range items[:m] {
			k := SpendKey{Tenant: ev.Tenant, Scope: scope, Item: item}
			if b.SkipSpend != nil && b.SkipSpend(k) {
				continue
			}
			s := b.Spend[k]
			if s == nil {
				s = &SpendDelta{Currency: ev.Currency, First: ev.Time}
				b.Spend[k] = s
			}
			if ev.Currency == s.Currency {
				s.Cost += ev.Cost
			}
			if ev.Time.Before(s.First) {
				s.First = ev.Time
			}
		}
	}
}

// addSeries adds ev's cost to the tenant's spend series and returns the
// agent it attributed the cost to, which may be "".
func (b *Batch) addSeries(ev *event.Event, r *Run, pol *policy.Effective) string {
	agent := ev.Agent
	if r != nil {
		agent = b.agentOf(r)
		if agent != "" && len(r.Pending) > 0 {
			b.flushPending(r, agent)
		}
	}
	if ev.Cost == 0 || ev.Currency == "" {
		return agent
	}

	bucket := ev.Time.Truncate(SeriesStep).Unix()
	for _, set := range pol.DimensionSets {
		if set.HasAgent && agent == "" && r != nil && ev.Currency == r.Currency {
			b.pend(r, set, ev, bucket, pol)
			continue
		}
		key := b.seriesKey(set, ev, agent, pol)
		p := SeriesPoint{Tenant: ev.Tenant, Key: key, Currency: ev.Currency, Bucket: bucket}
		a := b.Series[p]
		a.Cost += ev.Cost
		a.Events++
		b.Series[p] = a
	}
	return agent
}

func (b *Batch) seriesKey(
	set policy.DimensionSet, ev *event.Event, agent string, pol *policy.Effective,
) string {
	switch len(set.Dims) {
	case 0:
		return ""
	case 1:
		return b.d.keys.single(set.Dims[0], dimValue(ev, agent, set.Dims[0], pol))
	}
	values := make([]string, len(set.Dims))
	for i, d := range set.Dims {
		values[i] = dimValue(ev, agent, d, pol)
	}
	return policy.SeriesKey(set.Dims, values)
}

// pend keeps spend of a series that includes the agent until the run's
// agent is known, so that it is not booked to "no agent" meanwhile.
func (b *Batch) pend(
	r *Run, set policy.DimensionSet, ev *event.Event, bucket int64, pol *policy.Effective,
) {
	values := make([]string, len(set.Dims))
	for i, d := range set.Dims {
		if d != policy.DimAgent {
			values[i] = dimValue(ev, "", d, pol)
		}
	}
	p := PendingSeries{
		Set:    strings.Join(set.Dims, ","),
		Values: strings.Join(values, unitSep),
		Bucket: bucket,
	}
	if r.Pending == nil {
		r.Pending = make(map[PendingSeries]Amount)
	}
	a := r.Pending[p]
	a.Cost += ev.Cost
	a.Events++
	r.Pending[p] = a
}

// flushPending books a run's waiting spend to agent.
func (b *Batch) flushPending(r *Run, agent string) {
	for p, a := range r.Pending {
		dims := strings.Split(p.Set, ",")
		values := strings.Split(p.Values, unitSep)
		for i, d := range dims {
			if d == policy.DimAgent && i < len(values) {
				values[i] = agent
			}
		}
		key := policy.SeriesKey(dims, values)
		sp := SeriesPoint{Tenant: r.Tenant, Key: key, Currency: r.Currency, Bucket: p.Bucket}
		cur := b.Series[sp]
		cur.Cost += a.Cost
		cur.Events += a.Events
		b.Series[sp] = cur
	}
	r.Pending = nil
}

// dimValue returns ev's value of dimension d.
func dimValue(ev *event.Event, agent, d string, pol *policy.Effective) string {
	switch d {
	case policy.DimProvider:
		return ev.Provider
	case policy.DimModel:
		return ev.Model
	case policy.DimProject:
		return ev.Project
	case policy.DimApp:
		return ev.App
	case policy.DimAgent:
		return agent
	case policy.DimAccount:
		return ev.Account
	case policy.DimEnvironment:
		return ev.Environment
	case policy.DimCustomer:
		return ev.Customer
	case policy.DimRegion:
		return ev.Region
	case policy.DimServiceTier:
		return ev.ServiceTier
	}
	if key, ok := strings.CutPrefix(d, policy.LabelPrefix); ok {
		return ev.Labels[key]
	}
	if name, ok := strings.CutPrefix(d, policy.CategoryPrefix); ok {
		c := pol.Categories[name]
		return c.Bucket(func(dim string) string { return dimValue(ev, agent, dim, pol) })
	}
	return ""
}

// severityOf grades a value against its threshold: critical at three
// times the threshold.
func severityOf(v, threshold int64) eventv1.Severity {
	if threshold > 0 && v/3 >= threshold {
		return eventv1.Severity_SEVERITY_CRITICAL
	}
	return eventv1.Severity_SEVERITY_WARNING
}
