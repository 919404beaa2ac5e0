package detect

import (
	"fmt"
	"math"
	"strconv"
	"time"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/anomaly/internal/event"
	"github.com/costplane/costplane/services/anomaly/internal/finding"
	"github.com/costplane/costplane/services/anomaly/internal/policy"
)

// baseQuantile is the quantile runaway thresholds multiply.
const baseQuantile = 0.95

// toolQuantile is the quantile of a tool's calls per run that tool-loop
// thresholds double. Counts are small integers, so a P95 of 4 would make
// 8 calls a loop although one ordinary run in a few hundred gets there;
// twice the P99 stays clear of ordinary runs.
const toolQuantile = 0.99

// base is the baseline a run or session is judged against.
type base struct {
	// kind is "agent", "app" or "tenant".
	kind  string
	scope map[string]string
	value int64
	n     int
}

// baselineFor picks the most specific trusted baseline of subject: the
// agent's, else the app's, else the tenant's. ok is false when none has
// enough history.
func (d *Detector) baselineFor(
	tenant string, s Subject, agent, app string, today int32, q float64,
) (base, bool) {
	type cand struct {
		kind, dim, value string
	}
	cands := [3]cand{
		{"agent", policy.DimAgent, agent},
		{"app", policy.DimApp, app},
		{"tenant", "", ""},
	}
	for _, c := range cands {
		if c.dim != "" && c.value == "" {
			continue
		}
		scope := ""
		if c.dim != "" {
			scope = d.keys.single(c.dim, c.value)
		}
		v, n := d.baselines.Quantile(Key{Tenant: tenant, Subject: s, Scope: scope}, q, today)
		if n >= d.cfg.MinBaseline {
			b := base{kind: c.kind, value: v, n: n, scope: map[string]string{}}
			if c.dim != "" {
				b.scope[c.dim] = c.value
			}
			return b, true
		}
	}
	return base{}, false
}

// BaselineScopes returns the baseline scopes of a run or session of agent
// in app, most specific first, as Key.Scope values.
func (d *Detector) BaselineScopes(agent, app string) []string {
	out := make([]string, 0, 3)
	if agent != "" {
		out = append(out, d.keys.single(policy.DimAgent, agent))
	}
	if app != "" {
		out = append(out, d.keys.single(policy.DimApp, app))
	}
	return append(out, "")
}

// times returns v times f in nanos, saturating. Floats only scale a
// statistic; the threshold itself is an integer.
func times(v int64, f float64) int64 {
	x := math.Round(float64(v) * f)
	if x >= math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(x)
}

// material reports whether a finding differs enough from the last one
// reported for the same condition to report again.
func material(sev, lastSev eventv1.Severity, v, last int64) bool {
	return lastSev == 0 || sev > lastSev || v*2 >= last*3
}

func (b *Batch) checkRunaway(r *Run, pol *policy.Effective) {
	if r.Cost <= 0 {
		return
	}
	agent := b.agentOf(r)
	today := Day(time.Unix(0, r.Last))
	bl, ok := b.d.baselineFor(r.Tenant, SubjectRunCost, agent, r.App, today, baseQuantile)

	threshold := int64(0)
	if ok {
		threshold = max(pol.RunFloor, times(bl.value, pol.RunawayMultiplier))
	}
	byBaseline := ok && r.Cost >= threshold
	byCeiling := pol.RunCeiling > 0 && r.Cost >= pol.RunCeiling
	if !byBaseline && !byCeiling {
		return
	}
	if !byBaseline {
		bl = base{kind: "ceiling", scope: map[string]string{}}
		threshold = pol.RunCeiling
	}

	sev := severityOf(r.Cost, threshold)
	if !material(sev, r.RunawaySeverity, r.Cost, r.RunawayActual) {
		return
	}
	r.RunawaySeverity, r.RunawayActual = finding.Severe(sev, r.RunawaySeverity), r.Cost
	r.Alerted = true

	f := b.runFinding(r, agent, eventv1.AnomalyKind_ANOMALY_KIND_RUNAWAY_RUN, "run="+r.Key)
	f.Scope["baseline"] = bl.kind
	f.Expected = bl.value
	f.Severity = sev
	f.Suppression = finding.SuppressionKey{Scope: bl.scope, Measure: finding.MeasureCost}
	f.Measure = r.Cost
	f.Summary = fmt.Sprintf("run %s has cost %s while running, above its threshold of %s (%s)",
		r.Key, finding.FormatMoney(r.Cost, r.Currency),
		finding.FormatMoney(threshold, r.Currency), describeBase(bl, pol))
	b.Findings = append(b.Findings, f)
}

func describeBase(bl base, pol *policy.Effective) string {
	if bl.kind == "ceiling" {
		return "the tenant's run ceiling"
	}
	return fmt.Sprintf("%g x the P95 of %d runs of the %s", pol.RunawayMultiplier, bl.n, bl.kind)
}

// runFinding starts a finding about run r.
func (b *Batch) runFinding(
	r *Run, agent string, kind eventv1.AnomalyKind, pattern string,
) finding.Finding {
	scope := map[string]string{"run_id": r.Key}
	if r.App != "" {
		scope[policy.DimApp] = r.App
	}
	if agent != "" {
		scope[policy.DimAgent] = agent
	}
	f := finding.Finding{
		Tenant:      r.Tenant,
		Kind:        kind,
		Pattern:     pattern,
		Scope:       scope,
		WindowStart: time.Unix(0, r.First).UTC(),
		WindowEnd:   time.Unix(0, r.Last).UTC(),
		Actual:      r.Cost,
		Currency:    r.Currency,
		Runs:        []string{r.Key},
	}
	if r.Session != "" {
		scope["session_id"] = r.Session
		f.Sessions = []string{r.Session}
	}
	return f
}

func (b *Batch) checkLoops(r *Run, ev *event.Event, pol *policy.Effective) {
	switch {
	case ev.StepKind == eventv1.StepKind_STEP_KIND_TOOL && ev.Tool != "":
		if r.Tools == nil {
			r.Tools = make(map[string]int64)
		}
		r.Tools[ev.Tool]++
		b.checkToolLoop(r, ev.Tool, pol)

	case isModelCall(ev):
		fp := requestPrint(ev)
		if r.Requests == nil {
			r.Requests = make(map[uint64]int64)
		}
		r.Requests[fp]++
		b.checkRetryLoop(r, ev, fp, pol)
	}
}

func isModelCall(ev *event.Event) bool {
	switch ev.StepKind {
	case eventv1.StepKind_STEP_KIND_LLM, eventv1.StepKind_STEP_KIND_EMBEDDING:
		return ev.Failed || ev.Prompt > 0
	case eventv1.StepKind_STEP_KIND_UNSPECIFIED:
		return ev.Provider != "" && (ev.Failed || ev.Prompt > 0)
	}
	return false
}

// requestPrint identifies "the same request": the same model with the
// same prompt size, or the same model failing. A growing conversation
// changes the prompt size with every call, so a repeat means a retry.
func requestPrint(ev *event.Event) uint64 {
	prompt := ev.Prompt
	status := "ok"
	if ev.Failed {
		status = "error"
		prompt = 0
	}
	return event.Hash(ev.Provider + "\x00" + ev.Model + "\x00" + status + "\x00" +
		strconv.FormatInt(prompt, 10))
}

func (b *Batch) checkToolLoop(r *Run, tool string, pol *policy.Effective) {
	count := r.Tools[tool]
	if count < pol.ToolLoop {
		return // the cheap exit for nearly every tool call
	}
	agent := b.agentOf(r)
	threshold := pol.ToolLoop
	today := Day(time.Unix(0, r.Last))
	if bl, ok := b.d.baselineFor(r.Tenant, SubjectToolRepeats, agent, r.App, today,
		toolQuantile); ok {
		threshold = max(threshold, 2*bl.value)
	}
	if count < threshold {
		return
	}

	pattern := "run=" + r.Key + "&tool_name=" + tool
	if !b.loopMaterial(r, pattern, count, threshold) {
		return
	}
	f := b.runFinding(r, agent, eventv1.AnomalyKind_ANOMALY_KIND_TOOL_LOOP, pattern)
	f.Scope["tool_name"] = tool
	f.Count = count
	f.Severity = severityOf(count, threshold)
	f.Expected = b.runP95(r, agent, today)
	f.Suppression = finding.SuppressionKey{
		Scope:   withDim(ownerScope(agent, r.App), "tool_name", tool),
		Measure: finding.MeasureCount,
	}
	f.Measure = count
	f.Summary = fmt.Sprintf("tool %s called %d times in run %s (threshold %d); run cost %s",
		tool, count, r.Key, threshold, finding.FormatMoney(r.Cost, r.Currency))
	b.Findings = append(b.Findings, f)
}

func (b *Batch) checkRetryLoop(r *Run, ev *event.Event, fp uint64, pol *policy.Effective) {
	count := r.Requests[fp]
	if count < pol.RetryLoop {
		return
	}
	pattern := "run=" + r.Key + "&request=" + strconv.FormatUint(fp, 16)
	if !b.loopMaterial(r, pattern, count, pol.RetryLoop) {
		return
	}
	agent := b.agentOf(r)
	f := b.runFinding(r, agent, eventv1.AnomalyKind_ANOMALY_KIND_RETRY_LOOP, pattern)
	f.Scope[policy.DimProvider] = ev.Provider
	f.Scope[policy.DimModel] = ev.Model
	f.Count = count
	f.Severity = severityOf(count, pol.RetryLoop)
	f.Expected = b.runP95(r, agent, Day(time.Unix(0, r.Last)))
	f.Suppression = finding.SuppressionKey{
		Scope:   withDim(ownerScope(agent, r.App), policy.DimModel, ev.Model),
		Measure: finding.MeasureCount,
	}
	f.Measure = count
	what := "the same request"
	if ev.Failed {
		what = "a failing request"
	}
	f.Summary = fmt.Sprintf("%s to %s sent %d times in run %s (threshold %d)",
		what, ev.Model, count, r.Key, pol.RetryLoop)
	b.Findings = append(b.Findings, f)
}

// loopMaterial decides whether a loop count is worth reporting again, and
// remembers it when it is.
func (b *Batch) loopMaterial(r *Run, pattern string, count, threshold int64) bool {
	last := r.LoopCounts[pattern]
	sev, lastSev := severityOf(count, threshold), eventv1.Severity(0)
	if last > 0 {
		lastSev = severityOf(last, threshold)
	}
	if !material(sev, lastSev, count, last) {
		return false
	}
	if r.LoopCounts == nil {
		r.LoopCounts = make(map[string]int64)
	}
	r.LoopCounts[pattern] = count
	r.Alerted = true
	return true
}

func (b *Batch) runP95(r *Run, agent string, today int32) int64 {
	bl, _ := b.d.baselineFor(r.Tenant, SubjectRunCost, agent, r.App, today, baseQuantile)
	return bl.value
}

// ownerScope is the scope a suppression of a run's pattern covers: its
// agent, else its app.
func ownerScope(agent, app string) map[string]string {
	switch {
	case agent != "":
		return map[string]string{policy.DimAgent: agent}
	case app != "":
		return map[string]string{policy.DimApp: app}
	}
	return map[string]string{}
}

func withDim(m map[string]string, k, v string) map[string]string {
	m[k] = v
	return m
}

// Sweep closes the runs that ended in the partitions the batch moved
// forward: a run whose top-level agent step came more than DoneGrace ago,
// or that has been idle for RunIdle. Closed runs feed the baselines.
func (b *Batch) Sweep() {
	for p, wm := range b.marks {
		last := b.lastSweep(p)
		if wm.Sub(last) < b.d.cfg.SweepEvery {
			continue
		}
		b.sweeps[p] = wm
		b.sweepPartition(p, wm)
	}
}

func (b *Batch) lastSweep(p int32) time.Time {
	if t, ok := b.sweeps[p]; ok {
		return t
	}
	if part := b.d.parts[p]; part != nil {
		return part.lastSweep
	}
	return time.Time{}
}

func (b *Batch) sweepPartition(p int32, wm time.Time) {
	idle := wm.Add(-b.d.cfg.RunIdle).UnixNano()
	grace := wm.Add(-b.d.cfg.DoneGrace).UnixNano()
	expired := func(r *Run) bool {
		return r.Last < idle || r.Done && r.Last < grace
	}

	for k, r := range b.runs {
		if r.Partition == p && !b.closed[k] && expired(r) {
			b.closeRun(k, r)
		}
	}
	if part := b.d.parts[p]; part != nil {
		for k, r := range part.runs {
			if b.runs[k] == nil && expired(r) {
				c := r.clone()
				b.runs[k] = c
				b.closeRun(k, c)
			}
		}
	}
}

// closeRun ends r: its waiting agent spend is booked, and unless it
// alerted it joins the baselines of its agent, app and tenant.
func (b *Batch) closeRun(k RunKey, r *Run) {
	agent := b.agentOf(r)
	if len(r.Pending) > 0 {
		b.flushPending(r, agent)
	}
	b.closed[k] = true
	b.closedPart[k] = r.Partition
	if r.Alerted || r.Steps == 0 {
		return
	}

	day := Day(time.Unix(0, r.Last))
	for _, scope := range b.d.BaselineScopes(agent, r.App) {
		if r.Cost > 0 {
			b.observe(Key{Tenant: r.Tenant, Subject: SubjectRunCost, Scope: scope}, day, r.Cost)
		}
		b.observe(Key{Tenant: r.Tenant, Subject: SubjectToolRepeats, Scope: scope}, day, r.MaxTool())
	}
}

// Observe stages one observation for a baseline, such as a closed
// session's cost.
func (b *Batch) Observe(k Key, day int32, v int64) { b.observe(k, day, v) }

func (b *Batch) observe(k Key, day int32, v int64) {
	b.adds[Add{Key: k, Day: day, Bucket: k.Subject.Bucket(v)}]++
}

// Session is a session as stored, after the batch's spend.
type Session struct {
	Tenant   string
	ID       string
	Currency string
	Cost     int64
	Agent    string
	App      string
	First    time.Time
	Last     time.Time
	// AlertSeverity and AlertActual describe the last runaway finding.
	AlertSeverity eventv1.Severity
	AlertActual   int64
}

// CheckSession judges a session's cost against the P95 session cost of
// its agent (or app), and returns a finding when it runs away.
func (b *Batch) CheckSession(s Session) (finding.Finding, bool) {
	if s.Cost <= 0 {
		return finding.Finding{}, false
	}
	pol := b.policies.For(s.Tenant)
	bl, ok := b.d.baselineFor(s.Tenant, SubjectSessionCost, s.Agent, s.App, Day(s.Last),
		baseQuantile)
	if !ok {
		return finding.Finding{}, false
	}
	threshold := max(pol.SessionFloor, times(bl.value, pol.RunawayMultiplier))
	if s.Cost < threshold {
		return finding.Finding{}, false
	}
	sev := severityOf(s.Cost, threshold)
	if !material(sev, s.AlertSeverity, s.Cost, s.AlertActual) {
		return finding.Finding{}, false
	}

	scope := map[string]string{"session_id": s.ID, "baseline": bl.kind}
	if s.App != "" {
		scope[policy.DimApp] = s.App
	}
	if s.Agent != "" {
		scope[policy.DimAgent] = s.Agent
	}
	return finding.Finding{
		Tenant:      s.Tenant,
		Kind:        eventv1.AnomalyKind_ANOMALY_KIND_RUNAWAY_SESSION,
		Pattern:     "session=" + s.ID,
		Scope:       scope,
		WindowStart: s.First.UTC(),
		WindowEnd:   s.Last.UTC(),
		Actual:      s.Cost,
		Expected:    bl.value,
		Currency:    s.Currency,
		Severity:    sev,
		Sessions:    []string{s.ID},
		Summary: fmt.Sprintf("session %s has cost %s so far, above its threshold of %s (%s)",
			s.ID, finding.FormatMoney(s.Cost, s.Currency),
			finding.FormatMoney(threshold, s.Currency),
			describeSessionBase(bl, pol)),
		Suppression: finding.SuppressionKey{Scope: bl.scope, Measure: finding.MeasureCost},
		Measure:     s.Cost,
	}, true
}

func describeSessionBase(bl base, pol *policy.Effective) string {
	return fmt.Sprintf("%g x the P95 of %d sessions of the %s",
		pol.RunawayMultiplier, bl.n, bl.kind)
}

// CloseSession feeds a closed session to the baselines of its agent, app
// and tenant, unless it alerted.
func (b *Batch) CloseSession(s Session, alerted bool) {
	if alerted || s.Cost <= 0 {
		return
	}
	day := Day(s.Last)
	for _, scope := range b.d.BaselineScopes(s.Agent, s.App) {
		b.observe(Key{Tenant: s.Tenant, Subject: SubjectSessionCost, Scope: scope}, day, s.Cost)
	}
}

// Policies returns the batch's policy source.
func (b *Batch) Policies() Policies { return b.policies }

// Now returns the batch's wall time.
func (b *Batch) Now() time.Time { return b.now }
