// Package eval measures the detectors on a labeled workload: weeks of
// seasonal agent traffic with injected anomalies (runaway runs and
// sessions, tool and retry loops, spend spikes, level shifts, new models
// and providers) and benign look-alikes (a nightly batch job, small and
// mild bursts, the launch of a new app), sent through Kafka to the real
// service on PostgreSQL. It scores the anomalies published against the
// labels: precision, recall and detection latency per kind.
package eval

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

// WorkloadConfig sizes the workload.
type WorkloadConfig struct {
	Seed    uint64
	Tenants int
	Weeks   int
	// Rate is the mean runs per hour of one tenant's steady traffic.
	Rate float64
	// End is the event time the workload ends at.
	End time.Time
	// Per tenant: how many of each injection.
	Runaways, ToolLoops, RetryLoops, Sessions, Spikes, Shifts, NewSpend int
	// Per tenant: benign bursts; every tenant also gets a nightly job and
	// one launch.
	Bursts int
}

// DefaultWorkload returns the workload `make eval-anomaly` runs.
func DefaultWorkload() WorkloadConfig {
	return WorkloadConfig{
		Seed: 7, Tenants: 3, Weeks: 4, Rate: 60,
		End:      time.Now().UTC().Truncate(5 * time.Minute),
		Runaways: 6, ToolLoops: 6, RetryLoops: 5, Sessions: 4, Spikes: 4, Shifts: 1,
		NewSpend: 2, Bursts: 6,
	}
}

// Label is one injected anomaly.
type Label struct {
	ID   int
	Kind eventv1.AnomalyKind
	// Name is runaway, tool_loop, retry_loop, session, spike,
	// level_shift, new_model or new_provider.
	Name   string
	Tenant string
	// Attrs are the dimensions of the injected traffic: provider, model,
	// project, app, agent. A spike alert on any series they are
	// consistent with is explained by the label.
	Attrs   map[string][]string
	Run     string
	Session string
	// Start and End bound, in event time, when a detection counts.
	Start, End time.Time
}

// Benign is one injected look-alike that must not alert.
type Benign struct {
	Name       string
	Tenant     string
	Start, End time.Time
}

// Event is one priced usage event of the workload.
type Event struct {
	At      int64 // Unix nanoseconds, event time
	Tenant  string
	Run     string
	Session string
	Agent   *agent
	Model   model
	Kind    eventv1.StepKind
	Tool    string
	Cost    int64
	Prompt  int64
	Failed  bool
	Root    bool
	Seq     int32 // step number in the run
	Label   int32 // label id + 1, 0 for steady traffic
	// agentName is set on the root step.
	agentName string
}

// Workload is the generated traffic and its labels.
type Workload struct {
	Start, End time.Time
	Events     []Event
	Labels     []Label
	Benign     []Benign
}

type generator struct {
	cfg    WorkloadConfig
	rng    *rand.Rand
	w      *Workload
	tenant string
	nextID int
	// busy holds the spike-like windows of the tenant, kept apart so that
	// each alert has one explanation.
	busy [][2]time.Time
	// scale multiplies the cost of an agent's calls from a time on.
	shifts map[string]shift
	// extra routes a share of an agent's calls to another model.
	extra map[string]route
}

type shift struct {
	from   time.Time
	factor float64
}

type route struct {
	from  time.Time
	m     model
	share float64
}

// Generate builds the workload.
func Generate(cfg WorkloadConfig) *Workload {
	end := cfg.End.Truncate(time.Hour)
	w := &Workload{Start: end.Add(-time.Duration(cfg.Weeks) * 7 * 24 * time.Hour), End: end}
	for t := range cfg.Tenants {
		g := &generator{
			cfg: cfg, w: w, tenant: fmt.Sprintf("eval-tenant-%d", t+1),
			rng:    rand.New(rand.NewPCG(cfg.Seed, uint64(t)+1)),
			shifts: map[string]shift{}, extra: map[string]route{},
		}
		g.tenantTraffic()
	}
	slices.SortStableFunc(w.Events, func(a, b Event) int {
		switch {
		case a.At < b.At:
			return -1
		case a.At > b.At:
			return 1
		}
		return 0
	})
	return w
}

func (g *generator) tenantTraffic() {
	// Injections that change the steady traffic are decided first, new
	// models before level shifts: a shifted agent's calls to its new
	// model shift too, so the shift's label must name that model.
	for i := range g.cfg.NewSpend {
		g.newSpend(i%2 == 1)
	}
	for range g.cfg.Shifts {
		g.levelShift()
	}
	g.launch()
	g.steady()
	g.nightlyJob()
	for range g.cfg.Runaways {
		g.runaway()
	}
	for range g.cfg.ToolLoops {
		g.toolLoop()
	}
	for range g.cfg.RetryLoops {
		g.retryLoop()
	}
	for range g.cfg.Sessions {
		g.runawaySession()
	}
	for range g.cfg.Spikes {
		g.spike()
	}
	for i := range g.cfg.Bursts {
		g.burst(i%2 == 0)
	}
}

// intensity is the steady traffic's relative rate at t: busy in working
// hours, quiet at night and on weekends.
func intensity(t time.Time) float64 {
	h := float64(t.Hour()) + float64(t.Minute())/60
	hod := 0.35 + 1.25*math.Exp(-math.Pow((h-13.5)/3.8, 2))
	switch t.Weekday() {
	case time.Saturday:
		hod *= 0.5
	case time.Sunday:
		hod *= 0.4
	}
	return hod
}

// steady generates the tenant's ordinary sessions, hour by hour.
func (g *generator) steady() {
	w := g.w
	weights := totalWeight()
	for h := w.Start; h.Before(w.End); h = h.Add(time.Hour) {
		noise := math.Exp(g.rng.NormFloat64() * 0.08)
		runs := g.poisson(g.cfg.Rate * intensity(h) * noise)
		for range runs {
			at := h.Add(time.Duration(g.rng.Int64N(int64(time.Hour))))
			a := g.pick(weights)
			g.session(a, at, 0, 0)
		}
		g.launchTraffic(h)
	}
}

func (g *generator) pick(weights int) *agent {
	n := g.rng.IntN(weights)
	for _, a := range fleet {
		if n < a.weight {
			return a
		}
		n -= a.weight
	}
	return fleet[len(fleet)-1]
}

// session generates one session of a; turns 0 draws a number. Its runs
// count as one run of the steady rate, so that a session's later turns
// come on top.
func (g *generator) session(a *agent, at time.Time, turns int, label int32) string {
	if turns == 0 {
		turns = 1 + g.rng.IntN(a.maxTurns)
	}
	id := g.id("sess")
	for range turns {
		g.run(a, at, id, label, nil)
		at = at.Add(time.Minute + time.Duration(g.rng.Int64N(int64(9*time.Minute))))
	}
	return id
}

// plan shapes one run's steps; nil means an ordinary run.
type plan func(g *generator, r *runState)

type runState struct {
	a       *agent
	at      time.Time
	id      string
	session string
	label   int32
	prompt  int64
	seq     int32
}

// run generates one run of a starting at at and returns its id.
func (g *generator) run(a *agent, at time.Time, session string, label int32, p plan) string {
	r := &runState{a: a, at: at, id: g.id("run"), session: session, label: label,
		prompt: 1500 + g.rng.Int64N(3000)}
	if p == nil {
		p = ordinary
	}
	p(g, r)
	r.at = r.at.Add(time.Duration(50+g.rng.IntN(500)) * time.Millisecond)
	g.emit(r, Event{Kind: eventv1.StepKind_STEP_KIND_AGENT, Root: true, agentName: a.name})
	return r.id
}

func ordinary(g *generator, r *runState) {
	calls := r.a.minCalls + g.rng.IntN(r.a.maxCalls-r.a.minCalls+1)
	for i := range calls {
		g.call(r, 1)
		if i < calls-1 {
			g.tools(r)
		}
	}
}

// call emits one model call, retried once when it fails.
func (g *generator) call(r *runState, costFactor float64) {
	m := g.modelFor(r.a, r.at)
	if g.rng.Float64() < 0.02 {
		r.at = r.at.Add(time.Duration(200+g.rng.IntN(1500)) * time.Millisecond)
		g.emit(r, Event{Kind: eventv1.StepKind_STEP_KIND_LLM, Model: m, Prompt: r.prompt, Failed: true})
	}
	r.at = r.at.Add(time.Duration(400+g.rng.IntN(4000)) * time.Millisecond)
	cost := float64(m.meanCost) * costFactor * math.Exp(g.rng.NormFloat64()*0.45-0.1)
	if s, ok := g.shifts[r.a.name]; ok && !r.at.Before(s.from) {
		cost *= s.factor
	}
	g.emit(r, Event{Kind: eventv1.StepKind_STEP_KIND_LLM, Model: m, Prompt: r.prompt,
		Cost: int64(cost)})
	r.prompt += 150 + g.rng.Int64N(700)
}

func (g *generator) modelFor(a *agent, at time.Time) model {
	if rt, ok := g.extra[a.name]; ok && !at.Before(rt.from) && g.rng.Float64() < rt.share {
		return rt.m
	}
	u := g.rng.Float64()
	for _, wm := range a.models {
		if u < wm.share {
			return wm.m
		}
		u -= wm.share
	}
	return a.models[0].m
}

// tools emits the tool calls between two model calls: none, one or two.
func (g *generator) tools(r *runState) {
	if len(r.a.tools) == 0 {
		return
	}
	n := 0
	switch u := g.rng.Float64(); {
	case u < 0.30:
	case u < 0.85:
		n = 1
	default:
		n = 2
	}
	for range n {
		g.tool(r, r.a.tools[g.rng.IntN(len(r.a.tools))])
	}
}

func (g *generator) tool(r *runState, name string) {
	r.at = r.at.Add(time.Duration(100+g.rng.IntN(2000)) * time.Millisecond)
	g.emit(r, Event{Kind: eventv1.StepKind_STEP_KIND_TOOL, Tool: name})
	r.prompt += 100 + g.rng.Int64N(400)
}

func (g *generator) emit(r *runState, e Event) {
	e.At = r.at.UnixNano()
	e.Tenant, e.Run, e.Session, e.Agent = g.tenant, r.id, r.session, r.a
	e.Label, e.Seq = r.label, r.seq
	r.seq++
	g.w.Events = append(g.w.Events, e)
}

func (g *generator) id(prefix string) string {
	g.nextID++
	return fmt.Sprintf("%s-%s-%07d", prefix, g.tenant[len(g.tenant)-1:], g.nextID)
}

// poisson draws from a Poisson distribution of mean m.
func (g *generator) poisson(m float64) int {
	if m > 30 {
		return max(0, int(math.Round(m+math.Sqrt(m)*g.rng.NormFloat64())))
	}
	l, k, p := math.Exp(-m), 0, 1.0
	for {
		p *= g.rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}
