package fake

import (
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

// Totals are what a set of priced records adds up to.
type Totals struct {
	Events, Requests, Unpriced, Runs int64
	List, Effective                  int64
	Tokens                           map[eventv1.QuantityKind]int64
}

// Expected computes, without the store's machinery, the totals per agent
// id that the records must produce once all have arrived: each step
// belongs to the agent of its nearest AGENT ancestor (itself included),
// found by walking parent links over the whole trace. Corrections add
// money only, at the agent of the step they correct; a correction that
// prices an unpriced record takes it out of Unpriced. Records with the
// same priced id count once.
func Expected(recs []*eventv1.PricedUsage) map[string]*Totals {
	agents := resolveAgents(recs)
	out := make(map[string]*Totals)
	seen := make(map[string]bool)
	status := make(map[string]eventv1.PricingStatus)
	for _, p := range recs {
		if seen[p.GetPricedId()] {
			continue
		}
		seen[p.GetPricedId()] = true
		ev := p.GetUsage()
		t := totalsOf(out, agents[stepRef{ev.GetTraceId(), ev.GetStepId(), ev.GetEventId()}])
		t.List += p.GetListCost().GetNanos()
		t.Effective += p.GetEffectiveCost().GetNanos()
		unpriced := p.GetPricingStatus() == eventv1.PricingStatus_PRICING_STATUS_UNPRICED
		if p.GetCorrectsEventId() != "" {
			was := status[p.GetCorrectsEventId()] == eventv1.PricingStatus_PRICING_STATUS_UNPRICED
			if _, ok := status[p.GetCorrectsEventId()]; ok && was != unpriced {
				t.Unpriced += map[bool]int64{true: 1, false: -1}[unpriced]
			}
			status[p.GetCorrectsEventId()] = p.GetPricingStatus()
			continue
		}
		status[ev.GetEventId()] = p.GetPricingStatus()
		t.Events++
		t.Requests += ev.GetRequestCount()
		if unpriced {
			t.Unpriced++
		}
		if ev.GetStepId() == "root" {
			t.Runs++
		}
		for _, q := range ev.GetQuantities() {
			t.Tokens[q.GetKind()] += q.GetAmount()
		}
	}
	return out
}

func totalsOf(m map[string]*Totals, agent string) *Totals {
	t, ok := m[agent]
	if !ok {
		t = &Totals{Tokens: make(map[eventv1.QuantityKind]int64)}
		m[agent] = t
	}
	return t
}

type stepRef struct{ trace, step, event string }

// resolveAgents walks parent links within each trace.
func resolveAgents(recs []*eventv1.PricedUsage) map[stepRef]string {
	type node struct {
		parent string
		agent  string
	}
	traces := make(map[string]map[string]node)
	for _, p := range recs {
		ev := p.GetUsage()
		if ev.GetTraceId() == "" {
			continue
		}
		if traces[ev.GetTraceId()] == nil {
			traces[ev.GetTraceId()] = make(map[string]node)
		}
		n := node{parent: ev.GetParentStepId()}
		if ev.GetStepKind() == eventv1.StepKind_STEP_KIND_AGENT {
			n.agent = ev.GetAgent().GetId()
		}
		traces[ev.GetTraceId()][ev.GetStepId()] = n
	}

	out := make(map[stepRef]string)
	for _, p := range recs {
		ev := p.GetUsage()
		ref := stepRef{ev.GetTraceId(), ev.GetStepId(), ev.GetEventId()}
		if ev.GetTraceId() == "" {
			out[ref] = ev.GetAgent().GetId()
			continue
		}
		steps := traces[ev.GetTraceId()]
		for id := ev.GetStepId(); id != ""; id = steps[id].parent {
			if a := steps[id].agent; a != "" {
				out[ref] = a
				break
			}
		}
	}
	return out
}
