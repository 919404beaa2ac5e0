package usage

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type stepSpec struct {
	id, parent string
	kind       eventv1.StepKind
	agent      string
	session    string
	startSec   int
}

func (s stepSpec) event() *eventv1.UsageEvent {
	ev := &eventv1.UsageEvent{
		EventId:      "span:trace-1:" + s.id,
		TenantId:     "acme",
		TraceId:      "trace-1",
		RunId:        "trace-1",
		StepId:       s.id,
		ParentStepId: s.parent,
		StepKind:     s.kind,
		SessionId:    s.session,
		StartTime:    timestamppb.New(t0.Add(time.Duration(s.startSec) * time.Second)),
	}
	if s.agent != "" {
		ev.Agent = &eventv1.Agent{Name: s.agent}
	}
	return ev
}

const (
	llm   = eventv1.StepKind_STEP_KIND_LLM
	tool  = eventv1.StepKind_STEP_KIND_TOOL
	agent = eventv1.StepKind_STEP_KIND_AGENT
)

// attribution is what a test checks per step: agent name, session, parent.
type attribution struct {
	Agent, Session, Parent string
}

func attributionOf(ev *eventv1.UsageEvent) attribution {
	return attribution{ev.GetAgent().GetName(), ev.GetSessionId(), ev.GetParentStepId()}
}

func changedSteps(cs []Change) []string {
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.StepID)
	}
	slices.Sort(ids)
	return ids
}

func TestTraceJoinReverseOrder(t *testing.T) {
	// planner (agent) -> chat-1, search (tool) -> chat-2, added children first
	// as a BatchSpanProcessor exports them.
	steps := []stepSpec{
		{id: "chat-2", parent: "search", kind: llm, startSec: 3},
		{id: "search", parent: "planner", kind: tool, startSec: 2},
		{id: "chat-1", parent: "planner", kind: llm, startSec: 1},
		{id: "planner", kind: agent, agent: "planner", session: "conv-9"},
	}
	j := NewTraceJoin(JoinConfig{})
	events := map[string]*eventv1.UsageEvent{}
	var last []Change
	for _, s := range steps {
		ev := s.event()
		events[s.id] = ev
		last = j.Add(ev)
		if s.id != "planner" && len(last) > 0 {
			t.Errorf("adding %s changed %v before the agent arrived", s.id, changedSteps(last))
		}
	}

	if diff := cmp.Diff([]string{"chat-1", "chat-2", "search"}, changedSteps(last)); diff != "" {
		t.Errorf("steps changed by the agent (-want +got):\n%s", diff)
	}
	for _, c := range last {
		ev := events[c.StepID]
		ev.Agent, ev.SessionId, ev.ParentStepId = c.Agent, c.SessionID, c.ParentStepID
	}
	want := map[string]attribution{
		"planner": {"planner", "conv-9", ""},
		"chat-1":  {"planner", "conv-9", "planner"},
		"search":  {"planner", "conv-9", "planner"},
		"chat-2":  {"planner", "conv-9", "search"},
	}
	got := map[string]attribution{}
	for id, ev := range events {
		got[id] = attributionOf(ev)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("attribution after the join (-want +got):\n%s", diff)
	}
}

func TestTraceJoinResolution(t *testing.T) {
	tests := []struct {
		name  string
		steps []stepSpec
		links [][2]string
		want  map[string]attribution
	}{{
		name: "nested agent owns the steps below it",
		steps: []stepSpec{
			{id: "chat", parent: "researcher", kind: llm, startSec: 3},
			{id: "researcher", parent: "delegate", kind: agent, agent: "researcher", startSec: 2},
			{id: "delegate", parent: "top", kind: tool, startSec: 1},
			{id: "top", kind: agent, agent: "top", session: "s1"},
		},
		want: map[string]attribution{
			"chat":       {"researcher", "s1", "researcher"},
			"researcher": {"researcher", "s1", "delegate"},
			"delegate":   {"top", "s1", "top"},
			"top":        {"top", "s1", ""},
		},
	}, {
		name: "spans that are not steps are skipped in parent links",
		steps: []stepSpec{
			{id: "chat", parent: "framework", kind: llm, startSec: 2},
			{id: "top", kind: agent, agent: "top", session: "s1"},
		},
		links: [][2]string{{"framework", "http"}, {"http", "top"}},
		want: map[string]attribution{
			"chat": {"top", "s1", "top"},
			"top":  {"top", "s1", ""},
		},
	}, {
		name: "broken chain falls back to the top-level agent",
		steps: []stepSpec{
			{id: "chat", parent: "never-arrives", kind: llm, startSec: 2},
			{id: "top", kind: agent, agent: "top", session: "s1"},
		},
		want: map[string]attribution{
			"chat": {"top", "s1", "never-arrives"},
			"top":  {"top", "s1", ""},
		},
	}, {
		name: "own session wins over the agent's",
		steps: []stepSpec{
			{id: "chat", parent: "top", kind: llm, session: "own", startSec: 1},
			{id: "top", kind: agent, agent: "top", session: "s1"},
		},
		want: map[string]attribution{
			"chat": {"top", "own", "top"},
			"top":  {"top", "s1", ""},
		},
	}, {
		name: "cycle does not hang",
		steps: []stepSpec{
			{id: "a", parent: "b", kind: llm},
			{id: "b", parent: "a", kind: agent, agent: "b"},
		},
		want: map[string]attribution{
			"a": {"b", "", "b"},
			"b": {"b", "", "a"},
		},
	}, {
		name: "no agent at all keeps own fields",
		steps: []stepSpec{
			{id: "chat", parent: "x", kind: llm, agent: "declared", session: "s"},
		},
		want: map[string]attribution{"chat": {"declared", "s", "x"}},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := NewTraceJoin(JoinConfig{})
			var events []*eventv1.UsageEvent
			for _, l := range tc.links {
				j.AddLink("acme", "trace-1", l[0], l[1])
			}
			for _, s := range tc.steps {
				ev := s.event()
				events = append(events, ev)
				j.Add(ev)
			}
			got := map[string]attribution{}
			for _, ev := range events {
				j.Apply(ev)
				got[ev.GetStepId()] = attributionOf(ev)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("attribution (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTraceJoinLateAncestorReportsChange(t *testing.T) {
	j := NewTraceJoin(JoinConfig{})
	j.Add(stepSpec{id: "top", kind: agent, agent: "top", session: "s1"}.event())
	chat := stepSpec{id: "chat", parent: "sub", kind: llm, startSec: 3}.event()
	j.Add(chat)
	if got := attributionOf(chat); got != (attribution{"top", "s1", "sub"}) {
		t.Fatalf("provisional attribution = %+v, want the top-level agent", got)
	}

	sub := stepSpec{id: "sub", parent: "top", kind: agent, agent: "sub", startSec: 2}
	changes := j.Add(sub.event())
	want := []Change{{
		TenantID: "acme", TraceID: "trace-1", EventID: "span:trace-1:chat", StepID: "chat",
		Agent: &eventv1.Agent{Name: "sub"}, SessionID: "s1", ParentStepID: "sub",
	}}
	if diff := cmp.Diff(want, changes, protocmp.Transform()); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
}

func TestTraceJoinBounds(t *testing.T) {
	j := NewTraceJoin(JoinConfig{MaxTraces: 2, MaxStepsPerTrace: 2})
	for _, trace := range []string{"t1", "t2", "t3"} {
		ev := stepSpec{id: "a", kind: agent, agent: "x"}.event()
		ev.TraceId = trace
		j.Add(ev)
	}
	if j.Len() != 2 {
		t.Errorf("Len = %d, want 2 after evicting the oldest trace", j.Len())
	}

	total := NewTraceJoin(JoinConfig{MaxSteps: 3})
	for _, trace := range []string{"t1", "t2"} {
		for _, id := range []string{"a", "b"} {
			ev := stepSpec{id: id, kind: llm}.event()
			ev.TraceId = trace
			total.Add(ev)
		}
	}
	if total.Len() != 1 || total.Steps() != 2 {
		t.Errorf("Len, Steps = %d, %d; want the older trace dropped to stay under 3 steps",
			total.Len(), total.Steps())
	}

	top := stepSpec{id: "top", kind: agent, agent: "top"}.event()
	j.Add(top)
	j.Add(stepSpec{id: "c1", parent: "top", kind: llm}.event())
	over := stepSpec{id: "c2", parent: "top", kind: llm}.event()
	j.Add(over)
	if got := attributionOf(over); got != (attribution{"top", "", "top"}) {
		t.Errorf("step past the bound = %+v, want it still resolved", got)
	}
	under := stepSpec{id: "c3", parent: "c2", kind: llm}.event()
	j.Add(under)
	if got := attributionOf(under).Parent; got != "c2" {
		t.Errorf("child of an unkept step has parent %q, want c2 kept as reported", got)
	}
}

func TestTraceJoinIgnoresEventsOutsideTraces(t *testing.T) {
	j := NewTraceJoin(JoinConfig{})
	ev := &eventv1.UsageEvent{EventId: "e", TenantId: "acme"}
	if cs := j.Add(ev); cs != nil || j.Len() != 0 {
		t.Errorf("Add of an event without a trace = %v, Len %d; want nothing kept", cs, j.Len())
	}
	if j.Apply(ev) {
		t.Error("Apply changed an event without a trace")
	}
}

// FuzzTraceJoin adds steps with arbitrary parent links: the join must never
// panic or loop, and for acyclic links the attribution once every step is in
// must depend neither on the order the steps came in nor on duplicates.
func FuzzTraceJoin(f *testing.F) {
	f.Add("a<;b<a;c<b;d<c", uint8(9))
	f.Add("a<b;b<a;c<a", uint8(3))
	f.Add("x<y;y<z;z<", uint8(1))
	f.Fuzz(func(t *testing.T, spec string, agents uint8) {
		steps := parseSteps(spec, agents)
		if len(steps) > 64 {
			return
		}
		forward := feed(NewTraceJoin(JoinConfig{}), steps)
		reversed := slices.Clone(steps)
		slices.Reverse(reversed)
		backward := feed(NewTraceJoin(JoinConfig{}), reversed)
		// Steps sent twice (an exporter's retry) change nothing.
		j := NewTraceJoin(JoinConfig{})
		feed(j, steps)
		again := feed(j, reversed)
		if hasCycle(steps) {
			return
		}
		if diff := cmp.Diff(forward, backward); diff != "" {
			t.Errorf("order changed the result (-forward +backward):\n%s", diff)
		}
		if diff := cmp.Diff(forward, again); diff != "" {
			t.Errorf("resending changed the result (-once +twice):\n%s", diff)
		}
	})
}

func parseSteps(spec string, agents uint8) []stepSpec {
	var out []stepSpec
	seen := map[string]bool{}
	for i, part := range strings.Split(spec, ";") {
		id, parent, _ := strings.Cut(part, "<")
		if id == "" || id == parent || seen[id] {
			continue
		}
		seen[id] = true
		s := stepSpec{id: id, parent: parent, kind: llm, startSec: i}
		if agents&(1<<(i%8)) != 0 {
			s.kind, s.agent, s.session = agent, "agent-"+id, "session-"+id
		}
		out = append(out, s)
	}
	return out
}

func hasCycle(steps []stepSpec) bool {
	parent := map[string]string{}
	for _, s := range steps {
		parent[s.id] = s.parent
	}
	for _, s := range steps {
		p := s.parent
		for range len(steps) {
			next, ok := parent[p]
			if !ok {
				break
			}
			if p == s.id {
				return true
			}
			p = next
		}
	}
	return false
}

func feed(j *TraceJoin, steps []stepSpec) map[string]attribution {
	var events []*eventv1.UsageEvent
	for _, s := range steps {
		ev := s.event()
		events = append(events, ev)
		j.Add(ev)
	}
	out := map[string]attribution{}
	for _, ev := range events {
		j.Apply(ev)
		out[ev.GetStepId()] = attributionOf(ev)
	}
	return out
}
