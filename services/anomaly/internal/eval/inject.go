package eval

import (
	"math"
	"time"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

// separation keeps windowed injections of one tenant apart.
const separation = 4 * time.Hour

// when draws an injection time in the judged part of the workload (after
// a week and a day of history), optionally in working hours, and for a
// windowed injection of length d away from the others.
func (g *generator) when(daytime bool, d time.Duration) time.Time {
	lo := g.w.Start.Add(8 * 24 * time.Hour)
	span := g.w.End.Add(-d - 4*time.Hour).Sub(lo)
	for try := 0; ; try++ {
		t := lo.Add(time.Duration(g.rng.Int64N(int64(span)))).Truncate(time.Minute)
		// Daytime injections stay in working hours: at night a spike of
		// an app is worth less than the spike floor, so it is not an
		// anomaly by the settings' own definition.
		if daytime {
			wd := t.Weekday()
			if wd == time.Saturday || wd == time.Sunday || t.Hour() < 10 || t.Hour() > 14 {
				continue
			}
		}
		if d == 0 {
			return t
		}
		// Two injections in one series make one episode, which can be
		// credited to one of them only: keep them apart while room is
		// left.
		if try < 4000 && g.overlaps(t, t.Add(d)) {
			continue
		}
		g.busy = append(g.busy, [2]time.Time{t, t.Add(d)})
		return t
	}
}

func (g *generator) overlaps(from, to time.Time) bool {
	for _, b := range g.busy {
		if from.Before(b[1].Add(separation)) && b[0].Before(to.Add(separation)) {
			return true
		}
	}
	return false
}

func (g *generator) label(l Label) int32 {
	l.ID = len(g.w.Labels)
	l.Tenant = g.tenant
	g.w.Labels = append(g.w.Labels, l)
	return int32(l.ID + 1)
}

// attrs are the dimensions of agents' traffic, with the models the
// tenant's injections routed some of their calls to: extra traffic of
// such an agent spends on those models too.
func (g *generator) attrs(agents ...*agent) map[string][]string {
	out := attrs(agents...)
	for _, a := range agents {
		if rt, ok := g.extra[a.name]; ok {
			out["model"] = append(out["model"], rt.m.name)
			out["provider"] = append(out["provider"], rt.m.provider)
		}
	}
	return out
}

// attrs are the dimensions of an agent's traffic.
func attrs(agents ...*agent) map[string][]string {
	out := map[string][]string{}
	add := func(k, v string) {
		for _, have := range out[k] {
			if have == v {
				return
			}
		}
		out[k] = append(out[k], v)
	}
	for _, a := range agents {
		add("agent", a.name)
		add("app", a.app)
		add("project", a.project)
		for _, m := range a.models {
			add("model", m.m.name)
			add("provider", m.m.provider)
		}
	}
	return out
}

// runWindow is how long after a run a spend alert it caused counts.
const runWindow = 3 * time.Hour

func (g *generator) runaway() {
	a := []*agent{&resolver, &researcher, &reviewer, &claims}[g.rng.IntN(4)]
	at := g.when(false, 0)
	l := g.label(Label{Kind: eventv1.AnomalyKind_ANOMALY_KIND_RUNAWAY_RUN, Name: "runaway",
		Attrs: g.attrs(a), Start: at, End: at.Add(runWindow)})
	sess := g.id("sess")
	calls := 40 + g.rng.IntN(21)
	id := g.run(a, at, sess, l, func(g *generator, r *runState) {
		for range calls {
			g.call(r, 1.5)
		}
	})
	g.w.Labels[l-1].Run, g.w.Labels[l-1].Session = id, sess
}

func (g *generator) toolLoop() {
	a := []*agent{&resolver, &researcher}[g.rng.IntN(2)]
	at := g.when(false, 0)
	l := g.label(Label{Kind: eventv1.AnomalyKind_ANOMALY_KIND_TOOL_LOOP, Name: "tool_loop",
		Attrs: g.attrs(a), Start: at, End: at.Add(runWindow)})
	sess := g.id("sess")
	name := a.tools[g.rng.IntN(len(a.tools))]
	repeats := 15 + g.rng.IntN(16)
	id := g.run(a, at, sess, l, func(g *generator, r *runState) {
		g.call(r, 1)
		for range repeats {
			g.tool(r, name)
			g.call(r, 0.3)
		}
	})
	g.w.Labels[l-1].Run, g.w.Labels[l-1].Session = id, sess
}

func (g *generator) retryLoop() {
	a := fleet[g.rng.IntN(len(fleet))]
	at := g.when(false, 0)
	l := g.label(Label{Kind: eventv1.AnomalyKind_ANOMALY_KIND_RETRY_LOOP, Name: "retry_loop",
		Attrs: g.attrs(a), Start: at, End: at.Add(runWindow)})
	sess := g.id("sess")
	failing := g.rng.IntN(2) == 0
	repeats := 8 + g.rng.IntN(8)
	id := g.run(a, at, sess, l, func(g *generator, r *runState) {
		g.call(r, 1)
		m := a.models[0].m
		for range repeats {
			r.at = r.at.Add(time.Duration(300+g.rng.IntN(3000)) * time.Millisecond)
			e := Event{Kind: eventv1.StepKind_STEP_KIND_LLM, Model: m, Prompt: r.prompt}
			if failing {
				e.Failed = true
			} else {
				e.Cost = m.meanCost
			}
			g.emit(r, e)
		}
		g.call(r, 1)
	})
	g.w.Labels[l-1].Run, g.w.Labels[l-1].Session = id, sess
}

func (g *generator) runawaySession() {
	// Triage sessions cost cents even when they run away: below any
	// sensible session floor, so they are not injected.
	a := []*agent{&claims, &resolver, &researcher}[g.rng.IntN(3)]
	runs := 40 + g.rng.IntN(21)
	at := g.when(false, time.Duration(runs)*3*time.Minute)
	l := g.label(Label{Kind: eventv1.AnomalyKind_ANOMALY_KIND_RUNAWAY_SESSION, Name: "session",
		Attrs: g.attrs(a), Start: at, End: at.Add(time.Duration(runs)*3*time.Minute + runWindow)})
	sess := g.id("sess")
	g.w.Labels[l-1].Session = sess
	for range runs {
		g.run(a, at, sess, l, nil)
		at = at.Add(time.Minute + time.Duration(g.rng.Int64N(int64(2*time.Minute))))
	}
}

// appAgents are the steady agents of an app.
func appAgents(app string) []*agent {
	var out []*agent
	for _, a := range fleet {
		if a.app == app {
			out = append(out, a)
		}
	}
	return out
}

func (g *generator) spike() {
	app := []string{"support", "research"}[g.rng.IntN(2)]
	agents := appAgents(app)
	d := time.Duration(60+g.rng.IntN(91)) * time.Minute
	at := g.when(true, d)
	mult := 3.5 + 2.5*g.rng.Float64()
	l := g.label(Label{Kind: eventv1.AnomalyKind_ANOMALY_KIND_SPEND_SPIKE, Name: "spike",
		Attrs: g.attrs(agents...), Start: at, End: at.Add(d + 90*time.Minute)})
	g.extraRuns(agents, at, d, mult-1, l)
}

// extraRuns adds factor times the steady rate of agents over [at, at+d),
// as one-run sessions.
func (g *generator) extraRuns(
	agents []*agent, at time.Time, d time.Duration, factor float64, l int32,
) {
	weight := 0
	turns := 0.0 // steady runs per session, weighted like the agents
	for _, a := range agents {
		weight += a.weight
		turns += float64(a.weight) * float64(1+a.maxTurns) / 2
	}
	share := float64(weight) / float64(totalWeight())
	turns /= float64(max(weight, 1))
	for t := at; t.Before(at.Add(d)); t = t.Add(5 * time.Minute) {
		// Steady traffic starts sessions of several runs; the extra runs
		// are sessions of one, so they are as many as the steady runs.
		mean := g.cfg.Rate * intensity(t) * share * turns * factor / 12
		for range g.poisson(mean) {
			a := agents[0]
			if n := g.rng.IntN(weight); len(agents) > 1 {
				for _, c := range agents {
					if n < c.weight {
						a = c
						break
					}
					n -= c.weight
				}
			}
			start := t.Add(time.Duration(g.rng.Int64N(int64(5 * time.Minute))))
			g.run(a, start, g.id("sess"), l, nil)
		}
	}
}

func (g *generator) levelShift() {
	a := []*agent{&resolver, &researcher}[g.rng.IntN(2)]
	at := g.when(true, 48*time.Hour)
	g.shifts[a.name] = shift{from: at, factor: 2.2 + 0.8*g.rng.Float64()}
	g.label(Label{Kind: eventv1.AnomalyKind_ANOMALY_KIND_SPEND_SPIKE, Name: "level_shift",
		Attrs: g.attrs(a), Start: at, End: at.Add(48 * time.Hour)})
}

func (g *generator) newSpend(provider bool) {
	a, m, share, name := &resolver, o3, 0.15, "new_model"
	if provider {
		a, m, share, name = &researcher, mistralLarge, 0.3, "new_provider"
	}
	at := g.when(true, 24*time.Hour)
	g.extra[a.name] = route{from: at, m: m, share: share}
	multi := attrs(a)
	multi["model"] = append(multi["model"], m.name)
	multi["provider"] = append(multi["provider"], m.provider)

	g.label(Label{Kind: eventv1.AnomalyKind_ANOMALY_KIND_NEW_SPEND, Name: name,
		Attrs: multi, Start: at, End: at.Add(24 * time.Hour)})
}

// launchAt is when the tenant's new app launches, or zero.
func (g *generator) launchAt() time.Time {
	for _, b := range g.w.Benign {
		if b.Tenant == g.tenant && b.Name == "launch" {
			return b.Start
		}
	}
	return time.Time{}
}

// launch opens a new app, with a new agent and project on known models,
// ramping up to 15 % of the tenant's runs over a day.
func (g *generator) launch() {
	at := g.when(true, 48*time.Hour)
	g.w.Benign = append(g.w.Benign, Benign{Name: "launch", Tenant: g.tenant, Start: at,
		End: at.Add(48 * time.Hour)})
}

func (g *generator) launchTraffic(h time.Time) {
	at := g.launchAt()
	if at.IsZero() || h.Before(at.Truncate(time.Hour)) {
		return
	}
	ramp := math.Min(1, h.Sub(at).Hours()/24+0.05)
	for range g.poisson(g.cfg.Rate * intensity(h) * 0.15 * ramp) {
		start := h.Add(time.Duration(g.rng.Int64N(int64(time.Hour))))
		if start.Before(at) {
			continue
		}
		g.session(&welcomer, start, 0, 0)
	}
}

// nightlyJob runs a batch of evaluations every night at 02:00: a burst
// that is part of the seasonal pattern from the first day.
func (g *generator) nightlyJob() {
	for day := g.w.Start.Truncate(24 * time.Hour); day.Before(g.w.End); day = day.Add(24 * time.Hour) {
		at := day.Add(2 * time.Hour)
		for i := range 40 {
			g.run(&nightly, at.Add(time.Duration(i)*30*time.Second), g.id("sess"), 0, nil)
		}
	}
	g.w.Benign = append(g.w.Benign, Benign{Name: "nightly_job", Tenant: g.tenant,
		Start: g.w.Start, End: g.w.End})
}

// burst adds traffic that must not alert: a tripling of a tiny series,
// worth less than the spike floor, or a rise of the whole tenant by a
// third, below the relative threshold.
func (g *generator) burst(small bool) {
	if small {
		d := 30 * time.Minute
		at := g.when(true, d)
		g.extraRuns([]*agent{&summarizer}, at, d, 2, 0)
		g.w.Benign = append(g.w.Benign, Benign{Name: "small_burst", Tenant: g.tenant,
			Start: at, End: at.Add(d + time.Hour)})
		return
	}
	d := 45 * time.Minute
	at := g.when(true, d)
	g.extraRuns(fleet, at, d, 0.3, 0)
	g.w.Benign = append(g.w.Benign, Benign{Name: "mild_burst", Tenant: g.tenant,
		Start: at, End: at.Add(d + time.Hour)})
}
