package usage

import (
	"container/list"
	"slices"
	"strings"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

// TraceJoin resolves the agent and session of every step of a trace when
// the steps arrive in any order and across batches.
//
// The spans of a trace arrive out of order: a parent span ends after its
// children, so an invoke_agent span usually reaches the receiver after the
// LLM and tool spans it contains, often in a later export batch. Each event
// names its parent (parent_step_id); TraceJoin keeps the steps of recent
// traces and gives each step:
//
//   - agent: that of the nearest AGENT step among its ancestors, or its own
//     when it is itself an AGENT step;
//   - session: its own session id, else the nearest ancestor's;
//   - parent_step_id: the nearest ancestor that is a step, skipping spans
//     added with AddLink (spans that are not steps of their own).
//
// A step whose chain of parents is broken (an ancestor has not arrived yet)
// is provisionally given the agent and session of the trace's top-level
// agent, taken to be its earliest-starting AGENT step. When the missing
// ancestors arrive, Add reports the steps whose attribution changed, so a
// consumer that already stored them can correct them.
//
// TraceJoin is not safe for concurrent use.
type TraceJoin struct {
	cfg    JoinConfig
	traces map[traceKey]*list.Element
	lru    list.List
	steps  int
}

// JoinConfig bounds the memory of a TraceJoin. A consumer sizes it for the
// number of traces that can be in flight at once: steps of a trace that was
// evicted are resolved again from scratch when more of it arrives.
type JoinConfig struct {
	// MaxTraces is how many traces are kept; the least recently added to
	// is dropped first.
	MaxTraces int
	// MaxStepsPerTrace bounds one trace. Steps past it are still resolved
	// against the kept ones but are not kept themselves.
	MaxStepsPerTrace int
	// MaxSteps bounds the steps of all traces together; the least
	// recently added to traces are dropped to stay under it.
	MaxSteps int
}

// Change is a step whose resolved attribution changed after it was added,
// because an ancestor arrived later.
type Change struct {
	TenantID     string
	TraceID      string
	EventID      string
	StepID       string
	Agent        *eventv1.Agent
	SessionID    string
	ParentStepID string
}

type traceKey struct {
	tenant, trace string
}

type joinTrace struct {
	key      traceKey
	steps    map[string]*joinStep
	children map[string][]*joinStep
	// root is the earliest-starting AGENT step: the run's top-level agent
	// for steps whose ancestry is still incomplete.
	root  *joinStep
	epoch uint64
}

type joinStep struct {
	id, parent, eventID string
	kind                eventv1.StepKind
	// opaque marks a span that is not a step: it only links its children
	// to its parent.
	opaque     bool
	cyclic     bool
	start      instant
	ownAgent   *eventv1.Agent
	ownSession string
	res        resolution
	shown      resolution
	mark       uint64
}

type resolution struct {
	agent   *eventv1.Agent
	session string
	parent  string
}

// NewTraceJoin returns an empty join bounded by cfg; zero or negative
// bounds take defaults of 10,000 traces, 10,000 steps per trace and
// 1,000,000 steps in all (a few hundred megabytes at most).
func NewTraceJoin(cfg JoinConfig) *TraceJoin {
	if cfg.MaxTraces <= 0 {
		cfg.MaxTraces = 10_000
	}
	if cfg.MaxStepsPerTrace <= 0 {
		cfg.MaxStepsPerTrace = 10_000
	}
	if cfg.MaxSteps <= 0 {
		cfg.MaxSteps = 1_000_000
	}
	return &TraceJoin{cfg: cfg, traces: make(map[traceKey]*list.Element)}
}

// Len returns the number of traces kept.
func (j *TraceJoin) Len() int {
	return len(j.traces)
}

// Steps returns the number of steps kept, links included.
func (j *TraceJoin) Steps() int {
	return j.steps
}

// Add records ev as a step of its trace, sets ev's agent, session and
// parent step to their resolution from the steps seen so far, and returns
// the previously added steps whose resolution changed because of ev.
// Events without a trace id or step id are not steps of a trace and are
// left alone.
func (j *TraceJoin) Add(ev *eventv1.UsageEvent) []Change {
	if ev.GetTraceId() == "" || ev.GetStepId() == "" {
		return nil
	}
	s := &joinStep{
		id:         ev.GetStepId(),
		parent:     ev.GetParentStepId(),
		eventID:    ev.GetEventId(),
		kind:       ev.GetStepKind(),
		start:      startOf(ev),
		ownAgent:   ev.GetAgent(),
		ownSession: ev.GetSessionId(),
	}
	s.shown = resolution{agent: s.ownAgent, session: s.ownSession, parent: s.parent}

	t := j.trace(traceKey{tenant: ev.GetTenantId(), trace: ev.GetTraceId()})
	changes := j.insert(t, s)
	applyTo(s, ev)
	j.evict()
	return changes
}

// AddLink records a span of a trace that is not a step itself, such as a
// framework span between an agent and its LLM calls, so that the steps
// below it are linked to the steps above it. It returns the steps whose
// resolution changed.
func (j *TraceJoin) AddLink(tenantID, traceID, spanID, parentSpanID string) []Change {
	if traceID == "" || spanID == "" {
		return nil
	}
	s := &joinStep{id: spanID, parent: parentSpanID, opaque: true}
	t := j.trace(traceKey{tenant: tenantID, trace: traceID})
	changes := j.insert(t, s)
	j.evict()
	return changes
}

// Apply sets ev's agent, session and parent step to their current
// resolution, as Add did when ev was added, and reports whether anything
// changed. A caller that adds a batch of steps and then applies each one
// gets every step resolved against the whole batch.
func (j *TraceJoin) Apply(ev *eventv1.UsageEvent) bool {
	el, ok := j.traces[traceKey{tenant: ev.GetTenantId(), trace: ev.GetTraceId()}]
	if !ok {
		return false
	}
	return j.apply(el.Value.(*joinTrace), ev)
}

func (j *TraceJoin) apply(t *joinTrace, ev *eventv1.UsageEvent) bool {
	s, ok := t.steps[ev.GetStepId()]
	if !ok || s.opaque {
		return false
	}
	return applyTo(s, ev)
}

func applyTo(s *joinStep, ev *eventv1.UsageEvent) bool {
	r := s.res
	changed := !sameAgent(ev.GetAgent(), r.agent) || ev.GetSessionId() != r.session ||
		ev.GetParentStepId() != r.parent
	ev.Agent, ev.SessionId, ev.ParentStepId = r.agent, r.session, r.parent
	s.shown = r
	return changed
}

// trace returns the trace for k, creating it when it is new, and marks it
// the most recently used.
func (j *TraceJoin) trace(k traceKey) *joinTrace {
	if el, ok := j.traces[k]; ok {
		j.lru.MoveToFront(el)
		return el.Value.(*joinTrace)
	}
	t := &joinTrace{
		key:      k,
		steps:    make(map[string]*joinStep),
		children: make(map[string][]*joinStep),
	}
	j.traces[k] = j.lru.PushFront(t)
	return t
}

// evict drops the least recently used traces until the join is within its
// bounds, keeping the trace just added to.
func (j *TraceJoin) evict() {
	for len(j.traces) > 1 && (len(j.traces) > j.cfg.MaxTraces || j.steps > j.cfg.MaxSteps) {
		old := j.lru.Back()
		t := old.Value.(*joinTrace)
		j.lru.Remove(old)
		delete(j.traces, t.key)
		j.steps -= len(t.steps)
	}
}

// insert adds or replaces s in t and re-resolves what s can affect.
func (j *TraceJoin) insert(t *joinTrace, s *joinStep) []Change {
	prevRoot := t.root
	if old, ok := t.steps[s.id]; ok {
		t.unlink(old)
		s.shown = old.shown
	} else if len(t.steps) >= j.cfg.MaxStepsPerTrace {
		// Full: resolve s against what is kept, but keep nothing.
		s.res = resolve(s, t.base(s))
		return nil
	}
	if _, replaced := t.steps[s.id]; !replaced {
		j.steps++
	}
	t.steps[s.id] = s
	t.children[s.parent] = append(t.children[s.parent], s)
	s.cyclic = t.isOwnAncestor(s)

	if !s.opaque && s.kind == eventv1.StepKind_STEP_KIND_AGENT && t.earlierThanRoot(s) {
		t.root = s
	}
	if t.root != prevRoot {
		// Every step with a broken chain falls back to the root agent.
		return t.resolveFrom(s, t.tops())
	}
	return t.resolveFrom(s, []*joinStep{s})
}

func (t *joinTrace) unlink(old *joinStep) {
	siblings := t.children[old.parent]
	for i, c := range siblings {
		if c == old {
			siblings = append(siblings[:i], siblings[i+1:]...)
			break
		}
	}
	if len(siblings) == 0 {
		delete(t.children, old.parent)
	} else {
		t.children[old.parent] = siblings
	}
	if t.root == old {
		// The earliest agent is unique (ties go to the smaller id), so
		// the map's order does not matter.
		t.root = nil
		for _, s := range t.steps {
			if s != old && !s.opaque && s.kind == eventv1.StepKind_STEP_KIND_AGENT &&
				t.earlierThanRoot(s) {
				t.root = s
			}
		}
	}
}

func (t *joinTrace) earlierThanRoot(s *joinStep) bool {
	r := t.root
	if r == nil {
		return true
	}
	if s.start != r.start {
		return s.start.before(r.start)
	}
	return s.id < r.id
}

// isOwnAncestor reports whether following parents from s leads back to s,
// which only broken or hostile input does; s's parent link is then ignored.
func (t *joinTrace) isOwnAncestor(s *joinStep) bool {
	p := s.parent
	for range len(t.steps) {
		n, ok := t.steps[p]
		if !ok {
			return false
		}
		if n == s {
			return true
		}
		p = n.parent
	}
	return false
}

// tops returns the steps whose resolution does not depend on another kept
// step: trace roots, steps whose parent has not arrived, and cycle breakers.
// They are sorted so that changes are reported in the same order for the
// same input.
func (t *joinTrace) tops() []*joinStep {
	var out []*joinStep
	for _, s := range t.steps {
		if _, ok := t.steps[s.parent]; !ok || s.cyclic || s.parent == "" {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b *joinStep) int { return strings.Compare(b.id, a.id) })
	return out
}

// resolveFrom re-resolves the subtrees under starts, parents before
// children, and returns the changes of steps other than added.
func (t *joinTrace) resolveFrom(added *joinStep, starts []*joinStep) []Change {
	t.epoch++
	var changes []Change
	stack := append([]*joinStep(nil), starts...)
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if n.mark == t.epoch {
			continue
		}
		n.mark = t.epoch
		n.res = resolve(n, t.base(n))
		if n != added && !n.opaque && !sameResolution(n.res, n.shown) {
			n.shown = n.res
			changes = append(changes, t.change(n))
		}
		stack = append(stack, t.children[n.id]...)
	}
	return changes
}

// base is what n inherits from above: its parent's resolution, or the
// top-level agent's when the parent has not arrived.
func (t *joinTrace) base(n *joinStep) resolution {
	if n.parent == "" {
		return resolution{}
	}
	if p, ok := t.steps[n.parent]; ok && !n.cyclic {
		b := p.res
		if !p.opaque {
			b.parent = p.id
		}
		return b
	}
	b := resolution{parent: n.parent}
	if r := t.root; r != nil && r != n {
		b.agent, b.session = r.ownAgent, r.ownSession
	}
	return b
}

func resolve(n *joinStep, b resolution) resolution {
	if n.opaque {
		return b
	}
	switch {
	case n.kind == eventv1.StepKind_STEP_KIND_AGENT && n.ownAgent != nil:
		b.agent = n.ownAgent
	case b.agent == nil:
		b.agent = n.ownAgent
	}
	if n.ownSession != "" {
		b.session = n.ownSession
	}
	return b
}

func (t *joinTrace) change(n *joinStep) Change {
	return Change{
		TenantID:     t.key.tenant,
		TraceID:      t.key.trace,
		EventID:      n.eventID,
		StepID:       n.id,
		Agent:        n.res.agent,
		SessionID:    n.res.session,
		ParentStepID: n.res.parent,
	}
}

func sameResolution(a, b resolution) bool {
	return a.session == b.session && a.parent == b.parent && sameAgent(a.agent, b.agent)
}

func sameAgent(a, b *eventv1.Agent) bool {
	return a.GetId() == b.GetId() && a.GetName() == b.GetName() &&
		a.GetVersion() == b.GetVersion()
}

// instant is a point in time comparable without the overflow that
// nanoseconds since 1970 would risk for far-off timestamps.
type instant struct {
	sec  int64
	nsec int32
}

func (a instant) before(b instant) bool {
	return a.sec < b.sec || (a.sec == b.sec && a.nsec < b.nsec)
}

func startOf(ev *eventv1.UsageEvent) instant {
	ts := ev.GetStartTime()
	if ts == nil {
		ts = ev.GetEndTime()
	}
	if ts == nil {
		// Unknown start sorts last, so a timed agent wins the root.
		return instant{sec: 1<<63 - 1}
	}
	return instant{sec: ts.GetSeconds(), nsec: ts.GetNanos()}
}
