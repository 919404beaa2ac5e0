// Package fake generates priced usage for tests and benchmarks: agent
// traces with nested agents, LLM and tool steps, sessions spanning runs,
// plain gateway calls, unpriced calls and repricing corrections. Money is
// integer nanos and every total can be recomputed from the events.
package fake

import (
	"fmt"
	"math/rand/v2"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

// Options shape the generated traffic.
type Options struct {
	Tenant string
	Seed   uint64
	// Start and Span bound the events' start times.
	Start time.Time
	Span  time.Duration
	// Agents, Models, Customers and Sessions are pool sizes.
	Agents, Models, Customers, Sessions int
	// UnpricedPercent of LLM calls come out unpriced.
	UnpricedPercent int
	// ModelsPerAgent, when positive, keeps each agent's calls on that many
	// models of the pool, as real agents are built on one or two; zero
	// draws every call from the whole pool.
	ModelsPerAgent int
	// SkewCustomers draws the first customers far more often, as
	// services/loadgen does, since real spend concentrates on a few.
	SkewCustomers bool
}

// Generator draws traces and calls.
type Generator struct {
	o   Options
	rnd *rand.Rand
	n   int
}

// New returns a generator; zero pool sizes take small defaults.
func New(o Options) *Generator {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.Agents, 4)
	def(&o.Models, 3)
	def(&o.Customers, 5)
	def(&o.Sessions, 10)
	if o.Span <= 0 {
		o.Span = time.Hour
	}
	if o.Start.IsZero() {
		o.Start = time.Now().UTC().Add(-o.Span)
	}
	return &Generator{o: o, rnd: rand.New(rand.NewPCG(o.Seed, 0x5eed))}
}

// Agent returns the agent of pool index i.
func Agent(i int) *eventv1.Agent {
	return &eventv1.Agent{Id: fmt.Sprintf("agent-%d", i), Name: fmt.Sprintf("Agent %d", i)}
}

// Model returns the provider and model of pool index i.
func Model(i int) (provider, model string) {
	providers := []string{"openai", "anthropic", "aws.bedrock", "gcp.gemini"}
	return providers[i%len(providers)], fmt.Sprintf("model-%d", i)
}

// Trace returns the events of one agent run, in start order: a top-level
// AGENT step carrying the agent and session, sometimes a nested agent,
// LLM calls and tool calls under them. Only AGENT steps carry an agent
// and only the top-level one a session, as OTLP spans do.
func (g *Generator) Trace() []*eventv1.PricedUsage {
	g.n++
	r := g.rnd
	trace := fmt.Sprintf("%032x", r.Uint64()<<1|uint64(g.n))
	start := g.o.Start.Add(time.Duration(r.Int64N(int64(g.o.Span))))
	agentIdx := r.IntN(g.o.Agents)
	base := &eventv1.UsageEvent{
		TenantId:    g.o.Tenant,
		Source:      &eventv1.Source{Kind: eventv1.SourceKind_SOURCE_KIND_OTLP, Name: "otlp"},
		Granularity: eventv1.Granularity_GRANULARITY_REQUEST,
		App:         fmt.Sprintf("app-%d", agentIdx%2),
		CustomerId:  g.customer(),
		Environment: "prod",
		RunId:       trace,
		TraceId:     trace,
		Labels:      map[string]string{"team": fmt.Sprintf("team-%d", agentIdx%3)},
	}

	root := g.step(base, "root", "", eventv1.StepKind_STEP_KIND_AGENT, start, 0)
	root.Usage.Agent = Agent(agentIdx)
	root.Usage.SessionId = fmt.Sprintf("sess-%d", r.IntN(g.o.Sessions))
	out := []*eventv1.PricedUsage{root}
	parents := []string{"root"}
	if r.IntN(3) == 0 {
		sub := g.step(base, "sub", "root", eventv1.StepKind_STEP_KIND_AGENT, start, 1)
		sub.Usage.Agent = Agent((agentIdx + 1) % g.o.Agents)
		out = append(out, sub)
		parents = append(parents, "sub")
	}
	for i := range 2 + r.IntN(5) {
		parent := parents[r.IntN(len(parents))]
		if r.IntN(4) == 0 {
			out = append(out, g.step(base, fmt.Sprintf("tool-%d", i), parent,
				eventv1.StepKind_STEP_KIND_TOOL, start, 2+i))
			continue
		}
		out = append(out, g.call(base, fmt.Sprintf("llm-%d", i), parent, start, 2+i,
			agentIdx))
	}
	return out
}

func (g *Generator) step(base *eventv1.UsageEvent, id, parent string, kind eventv1.StepKind,
	start time.Time, offset int,
) *eventv1.PricedUsage {
	ev := proto.Clone(base).(*eventv1.UsageEvent)
	ev.EventId = ev.GetTraceId() + "/" + id
	ev.StepId, ev.ParentStepId, ev.StepKind = id, parent, kind
	at := start.Add(time.Duration(offset) * 100 * time.Millisecond)
	ev.StartTime = timestamppb.New(at)
	ev.EndTime = timestamppb.New(at.Add(80 * time.Millisecond))
	ev.Latency = durationpb.New(80 * time.Millisecond)
	ev.Status = eventv1.CallStatus_CALL_STATUS_OK
	if kind == eventv1.StepKind_STEP_KIND_TOOL {
		ev.ToolName = "search"
	}
	return &eventv1.PricedUsage{
		PricedId: ev.GetEventId(), Usage: ev,
		ListCost:      money(0),
		EffectiveCost: money(0),
		PricingStatus: eventv1.PricingStatus_PRICING_STATUS_PRICED,
		PriceVersion:  1,
	}
}

func (g *Generator) call(base *eventv1.UsageEvent, id, parent string, start time.Time,
	offset, agent int,
) *eventv1.PricedUsage {
	p := g.step(base, id, parent, eventv1.StepKind_STEP_KIND_LLM, start, offset)
	g.price(p, agent)
	return p
}

// customer draws a customer of the pool.
func (g *Generator) customer() string {
	if !g.o.SkewCustomers {
		return fmt.Sprintf("cust-%d", g.rnd.IntN(g.o.Customers))
	}
	u := g.rnd.Float64()
	return fmt.Sprintf("cust-%d", int(u*u*float64(g.o.Customers)))
}

// Call returns one plain request outside any run, as a gateway reports it.
func (g *Generator) Call() *eventv1.PricedUsage {
	g.n++
	r := g.rnd
	at := g.o.Start.Add(time.Duration(r.Int64N(int64(g.o.Span))))
	ev := &eventv1.UsageEvent{
		EventId:     fmt.Sprintf("gw-%d-%x", g.n, r.Uint64()),
		TenantId:    g.o.Tenant,
		Source:      &eventv1.Source{Kind: eventv1.SourceKind_SOURCE_KIND_GATEWAY, Name: "litellm"},
		Granularity: eventv1.Granularity_GRANULARITY_REQUEST,
		StartTime:   timestamppb.New(at),
		EndTime:     timestamppb.New(at.Add(time.Second)),
		App:         "gateway-app",
		CustomerId:  g.customer(),
		Environment: "prod",
		Status:      eventv1.CallStatus_CALL_STATUS_OK,
	}
	if g.n%4 == 0 { // a staging environment beside production
		ev.Environment = "staging"
	}
	p := &eventv1.PricedUsage{PricedId: ev.GetEventId(), Usage: ev, PriceVersion: 1}
	g.price(p, -1)
	return p
}

// price gives an LLM call a model (one of agent's when ModelsPerAgent is
// set and the call has an agent, agent >= 0), token buckets and, unless
// it comes out unpriced, cost lines; effective cost is 90% of list,
// rounded down.
func (g *Generator) price(p *eventv1.PricedUsage, agent int) {
	r, ev := g.rnd, p.GetUsage()
	m := r.IntN(g.o.Models)
	if k := g.o.ModelsPerAgent; k > 0 && agent >= 0 {
		m = (agent*k + m%k) % g.o.Models
	}
	ev.Provider, ev.Model = Model(m)
	ev.ModelVersion = ev.GetModel() + "-2025"
	// Where the call ran and under which account follow from the model, so
	// that every explorer dimension has values without more random draws.
	ev.Account, ev.Project = fmt.Sprintf("acct-%d", m%2), fmt.Sprintf("proj-%d", m%3)
	ev.Region = []string{"us-east-1", "eu-west-1"}[m%2]
	ev.ServiceTier = []string{"standard", "batch", "flex"}[m%3]
	ev.InferenceProfile = []string{"", "global"}[m%2]
	ev.Operation = "chat"
	ev.RequestCount = 1
	ev.Quantities = []*eventv1.Quantity{
		{Kind: eventv1.QuantityKind_QUANTITY_KIND_INPUT, Unit: eventv1.Unit_UNIT_TOKENS,
			Amount: 100 + r.Int64N(5000)},
		{Kind: eventv1.QuantityKind_QUANTITY_KIND_CACHE_READ, Unit: eventv1.Unit_UNIT_TOKENS,
			Amount: r.Int64N(3000)},
		{Kind: eventv1.QuantityKind_QUANTITY_KIND_OUTPUT, Unit: eventv1.Unit_UNIT_TOKENS,
			Amount: 10 + r.Int64N(2000)},
	}
	p.CostLines, p.ListCost, p.EffectiveCost = nil, nil, nil
	if r.IntN(100) < g.o.UnpricedPercent {
		p.PricingStatus = eventv1.PricingStatus_PRICING_STATUS_UNPRICED
		p.UnpricedReason = "no price for " + ev.GetModel()
		return
	}
	p.PricingStatus = eventv1.PricingStatus_PRICING_STATUS_PRICED
	perToken := []int64{2500, 250, 10000} // nanos per token
	var list, eff int64
	for i, q := range ev.GetQuantities() {
		l := q.GetAmount() * perToken[i] * int64(1+r.IntN(3))
		e := l * 9 / 10
		p.CostLines = append(p.CostLines, &eventv1.CostLine{
			Kind: q.GetKind(), Unit: q.GetUnit(), Amount: q.GetAmount(),
			ListCost: money(l), EffectiveCost: money(e),
		})
		list, eff = list+l, eff+e
	}
	p.ListCost, p.EffectiveCost = money(list), money(eff)
}

// Correction reprices p: a record naming p's event, carrying the
// difference of each cost line, with status as the new pricing status.
// listDelta is spread over the lines; effective moves by 90% of it.
func Correction(p *eventv1.PricedUsage, version int64, delta int64,
	status eventv1.PricingStatus,
) *eventv1.PricedUsage {
	ev := p.GetUsage()
	c := &eventv1.PricedUsage{
		PricedId:        fmt.Sprintf("%s@v%d", ev.GetEventId(), version),
		Usage:           ev,
		CorrectsEventId: ev.GetEventId(),
		PriceVersion:    version,
		PricingStatus:   status,
	}
	var list, eff int64
	for i, q := range ev.GetQuantities() {
		l := delta / int64(len(ev.GetQuantities()))
		if i == 0 {
			l += delta % int64(len(ev.GetQuantities()))
		}
		e := l * 9 / 10
		c.CostLines = append(c.CostLines, &eventv1.CostLine{
			Kind: q.GetKind(), Unit: q.GetUnit(), Amount: q.GetAmount(),
			ListCost: money(l), EffectiveCost: money(e),
		})
		list, eff = list+l, eff+e
	}
	c.ListCost, c.EffectiveCost = money(list), money(eff)
	return c
}

func money(n int64) *eventv1.Money {
	return &eventv1.Money{CurrencyCode: "USD", Nanos: n}
}
