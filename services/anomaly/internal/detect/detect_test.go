package detect

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/anomaly/internal/event"
	"github.com/costplane/costplane/services/anomaly/internal/finding"
	"github.com/costplane/costplane/services/anomaly/internal/policy"
)

const (
	usd    = 1_000_000_000
	tenant = "t1"
)

var t0 = time.Date(2026, 6, 3, 10, 0, 0, 0, time.UTC)

// fixed gives every tenant one policy.
type fixed struct{ p *policy.Effective }

func (f fixed) For(string) *policy.Effective { return f.p }

// pol returns the default policy with a run floor of 0.10 USD, low enough
// that the baseline decides.
func pol() *policy.Effective {
	p := policy.Default()
	p.RunFloor = usd / 10
	return p
}

func newDetector() *Detector {
	d := New(DefaultConfig())
	d.Load(0, nil)
	return d
}

// observe gives the detector n completed observations of v for subject s
// in scope, on the day of t0.
func observe(d *Detector, s Subject, scope string, v int64, n uint32) {
	k := Key{Tenant: tenant, Subject: s, Scope: scope}
	d.Baselines().Apply(map[Add]uint32{{Key: k, Day: Day(t0), Bucket: s.Bucket(v)}: n})
}

// stream feeds events of one run to the detector, one batch each, and
// returns the findings of every batch.
type stream struct {
	d    *Detector
	p    Policies
	run  string
	seq  int
	at   time.Time
	base event.Event
}

func newStream(d *Detector, p *policy.Effective, run string) *stream {
	return &stream{d: d, p: fixed{p}, run: run, at: t0, base: event.Event{
		Tenant: tenant, Run: run, Session: "s-" + run, App: "support", Agent: "resolver",
		Currency: "USD", Provider: "openai", Model: "gpt-4o",
	}}
}

func (s *stream) send(ev event.Event) []finding.Finding {
	s.seq++
	s.at = s.at.Add(time.Second)
	if ev.ID == "" {
		ev.ID = fmt.Sprintf("%s-%d", s.run, s.seq)
	}
	ev.Time = s.at
	// As the consumer does: apply, sweep, commit.
	b := s.d.Begin(s.p, t0.Add(time.Hour))
	b.Apply(&ev)
	b.Sweep()
	s.d.Commit(b)
	return b.Findings
}

func (s *stream) llm(cost, prompt int64) []finding.Finding {
	ev := s.base
	ev.StepKind, ev.Cost, ev.Prompt = eventv1.StepKind_STEP_KIND_LLM, cost, prompt
	return s.send(ev)
}

func (s *stream) tool(name string) []finding.Finding {
	ev := s.base
	ev.StepKind, ev.Tool = eventv1.StepKind_STEP_KIND_TOOL, name
	return s.send(ev)
}

func TestRunawayRunAgainstItsAgentsP95(t *testing.T) {
	d := newDetector()
	agentScope := policy.SeriesKey([]string{policy.DimAgent}, []string{"resolver"})
	observe(d, SubjectRunCost, agentScope, usd/10, 40)
	p95, _ := d.Baselines().Quantile(Key{Tenant: tenant, Subject: SubjectRunCost,
		Scope: agentScope}, baseQuantile, Day(t0))
	threshold := times(p95, pol().RunawayMultiplier)

	s := newStream(d, pol(), "r1")
	var got []finding.Finding
	var costs []int64
	for i := range 20 {
		fs := s.llm(usd/10, int64(1000+100*i))
		for _, f := range fs {
			if f.Kind == eventv1.AnomalyKind_ANOMALY_KIND_RUNAWAY_RUN {
				got = append(got, f)
				costs = append(costs, int64(i+1)*usd/10)
			}
		}
	}
	if len(got) == 0 {
		t.Fatalf("no runaway finding for a run of 2 USD against a P95 of %d", p95)
	}
	first := got[0]
	if costs[0] < threshold || costs[0]-usd/10 >= threshold {
		t.Errorf("first finding at %d nanos, want at the first event reaching %d", costs[0],
			threshold)
	}
	want := finding.Finding{
		Tenant: tenant, Kind: eventv1.AnomalyKind_ANOMALY_KIND_RUNAWAY_RUN, Pattern: "run=r1",
		Expected: p95, Currency: "USD", Severity: eventv1.Severity_SEVERITY_WARNING,
		Scope: map[string]string{"run_id": "r1", "session_id": "s-r1", "app": "support",
			"agent": "resolver", "baseline": "agent"},
		Runs: []string{"r1"}, Sessions: []string{"s-r1"},
	}
	opts := cmp.FilterPath(func(p cmp.Path) bool {
		switch p.Last().String() {
		case ".Kind", ".Pattern", ".Expected", ".Currency", ".Severity", ".Scope", ".Runs",
			".Sessions", ".Tenant":
			return false
		}
		return len(p) > 1
	}, cmp.Ignore())
	if diff := cmp.Diff(want, first, opts); diff != "" {
		t.Errorf("first finding (-want +got):\n%s", diff)
	}
	if first.ID() != finding.ID(tenant, first.Kind, "run=r1") {
		t.Errorf("finding id %s is not the stable id of its run", first.ID())
	}

	// Later findings are material changes only, and the last is
	// critical: three times the threshold.
	last := got[len(got)-1]
	if last.Severity != eventv1.Severity_SEVERITY_CRITICAL || last.ID() != first.ID() {
		t.Errorf("last finding: severity %s id %s, want critical with the same id",
			last.Severity, last.ID())
	}
	for i := 1; i < len(got); i++ {
		escalated := got[i].Severity > got[i-1].Severity
		if !escalated && 2*costs[i] < 3*costs[i-1] {
			t.Errorf("finding at %d nanos after one at %d: neither more severe nor half as much "+
				"again", costs[i], costs[i-1])
		}
	}
}

func TestRunawayNeedsHistoryFloorOrCeiling(t *testing.T) {
	agentScope := policy.SeriesKey([]string{policy.DimAgent}, []string{"resolver"})
	appScope := policy.SeriesKey([]string{policy.DimApp}, []string{"support"})
	tests := []struct {
		name     string
		setup    func(d *Detector, p *policy.Effective)
		baseline string // "" when no finding is wanted
	}{
		{
			name: "too little history",
			setup: func(d *Detector, _ *policy.Effective) {
				observe(d, SubjectRunCost, agentScope, usd/100, 29)
			},
		},
		{
			name: "under the floor",
			setup: func(d *Detector, p *policy.Effective) {
				observe(d, SubjectRunCost, agentScope, usd/1000, 100)
				p.RunFloor = 5 * usd
			},
		},
		{
			name: "the app's baseline when the agent has none",
			setup: func(d *Detector, _ *policy.Effective) {
				observe(d, SubjectRunCost, appScope, usd/100, 50)
			},
			baseline: "app",
		},
		{
			name: "a ceiling without history",
			setup: func(_ *Detector, p *policy.Effective) {
				p.RunCeiling = usd
			},
			baseline: "ceiling",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, p := newDetector(), pol()
			tt.setup(d, p)
			s := newStream(d, p, "r1")
			var got []string
			for i := range 30 {
				for _, f := range s.llm(usd/10, int64(1000+10*i)) {
					got = append(got, f.Scope["baseline"])
				}
			}
			switch {
			case tt.baseline == "" && len(got) > 0:
				t.Errorf("3 USD run alerted against baselines %v, want no alert", got)
			case tt.baseline != "" && (len(got) == 0 || got[0] != tt.baseline):
				t.Errorf("findings against baselines %v, want %s", got, tt.baseline)
			}
		})
	}
}

func TestToolLoop(t *testing.T) {
	agentScope := policy.SeriesKey([]string{policy.DimAgent}, []string{"resolver"})
	tests := []struct {
		name    string
		repeats uint32 // P99 of the agent's tool repeats per run; 0: no baseline
		want    int64  // the call that alerts
	}{
		{"default threshold", 0, 8},
		{"twice the agent's P99", 9, 18},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDetector()
			if tt.repeats > 0 {
				observe(d, SubjectToolRepeats, agentScope, 2, 95)
				observe(d, SubjectToolRepeats, agentScope, int64(tt.repeats), 5)
			}
			s := newStream(d, pol(), "loop")
			s.tool("other")
			var at int64
			for i := range 40 {
				for _, f := range s.tool("search_kb") {
					if at == 0 && f.Kind == eventv1.AnomalyKind_ANOMALY_KIND_TOOL_LOOP {
						at = int64(i + 1)
						if f.Count != at || f.Scope["tool_name"] != "search_kb" {
							t.Errorf("finding count %d scope %v", f.Count, f.Scope)
						}
						if f.Pattern != "run=loop&tool_name=search_kb" {
							t.Errorf("pattern %q", f.Pattern)
						}
					}
				}
			}
			if at != tt.want {
				t.Errorf("tool loop found at call %d, want %d", at, tt.want)
			}
		})
	}
}

func TestRetryLoop(t *testing.T) {
	t.Run("the same prompt again and again", func(t *testing.T) {
		s := newStream(newDetector(), pol(), "retry")
		var at int
		for i := range 8 {
			for _, f := range s.llm(usd/1000, 4242) {
				if at == 0 && f.Kind == eventv1.AnomalyKind_ANOMALY_KIND_RETRY_LOOP {
					at = i + 1
				}
			}
		}
		if at != policy.DefaultRetryLoop {
			t.Errorf("retry loop found at call %d, want %d", at, policy.DefaultRetryLoop)
		}
	})
	t.Run("a failing request", func(t *testing.T) {
		s := newStream(newDetector(), pol(), "fail")
		var n int
		for i := range 8 {
			ev := s.base
			ev.StepKind, ev.Failed, ev.Prompt = eventv1.StepKind_STEP_KIND_LLM, true, int64(i)
			for _, f := range s.send(ev) {
				if f.Kind == eventv1.AnomalyKind_ANOMALY_KIND_RETRY_LOOP {
					n++
				}
			}
		}
		if n == 0 {
			t.Error("eight failures of one model in a run did not make a retry loop")
		}
	})
	t.Run("a growing conversation", func(t *testing.T) {
		s := newStream(newDetector(), pol(), "chat")
		for i := range 30 {
			if fs := s.llm(usd/1000, int64(1000+200*i)); len(fs) > 0 {
				t.Fatalf("call %d of a growing conversation alerted: %v", i, fs[0].Summary)
			}
		}
	})
}

func TestDuplicateEventsCountOnce(t *testing.T) {
	d := newDetector()
	s := newStream(d, pol(), "dup")
	ev := s.base
	ev.StepKind, ev.Cost, ev.Prompt, ev.ID = eventv1.StepKind_STEP_KIND_LLM, usd, 10, "same"
	s.send(ev)
	b := d.Begin(fixed{pol()}, t0)
	again := ev
	b.Apply(&again)
	d.Commit(b)
	if b.Duplicates != 1 {
		t.Errorf("Duplicates = %d, want 1", b.Duplicates)
	}
	r := d.parts[0].runs[RunKey{Tenant: tenant, Run: "dup"}]
	if r == nil || r.Cost != usd || r.Steps != 1 {
		t.Errorf("run after a duplicate = %+v, want one step of 1 USD", r)
	}
}

func TestClosedRunsFeedBaselinesUnlessAlerted(t *testing.T) {
	d := newDetector()
	p := pol()
	p.RunCeiling = usd // the second run alerts without history

	for _, run := range []struct {
		id   string
		cost int64
	}{{"ok", usd / 10}, {"big", 2 * usd}} {
		s := newStream(d, p, run.id)
		s.llm(run.cost, 1)
		root := s.base
		root.StepKind, root.Root = eventv1.StepKind_STEP_KIND_AGENT, true
		s.send(root)
	}
	if d.OpenRuns() != 2 {
		t.Fatalf("open runs = %d, want 2", d.OpenRuns())
	}

	// An event of another run, past the grace after both runs ended,
	// sweeps them.
	later := newStream(d, p, "later")
	later.at = t0.Add(2 * time.Minute)
	later.tool("noop")

	if d.OpenRuns() != 1 {
		t.Errorf("open runs after the sweep = %d, want only the later one", d.OpenRuns())
	}
	for _, scope := range d.BaselineScopes("resolver", "support") {
		_, n := d.Baselines().Quantile(Key{Tenant: tenant, Subject: SubjectRunCost, Scope: scope},
			0.5, Day(t0))
		if n != 1 {
			t.Errorf("baseline %q has %d runs, want only the one that did not alert", scope, n)
		}
	}
}

func TestCheckSession(t *testing.T) {
	d := newDetector()
	agentScope := policy.SeriesKey([]string{policy.DimAgent}, []string{"resolver"})
	observe(d, SubjectSessionCost, agentScope, usd/2, 40)
	b := d.Begin(fixed{pol()}, t0)
	s := Session{Tenant: tenant, ID: "s1", Currency: "USD", Agent: "resolver", App: "support",
		First: t0, Last: t0.Add(time.Hour)}

	s.Cost = usd
	if f, ok := b.CheckSession(s); ok {
		t.Errorf("a session of twice the P95 alerted: %s", f.Summary)
	}
	s.Cost = 3 * usd
	f, ok := b.CheckSession(s)
	if !ok || f.Kind != eventv1.AnomalyKind_ANOMALY_KIND_RUNAWAY_SESSION || f.Pattern != "session=s1" {
		t.Fatalf("a session of 6x the P95: %v %+v", ok, f)
	}
	// The same session, reported, alerts again only once it grows by half.
	s.AlertSeverity, s.AlertActual = f.Severity, f.Actual
	s.Cost = 4 * usd
	if _, ok := b.CheckSession(s); ok {
		t.Error("a third more cost reported again")
	}
	s.Cost = 9 * usd
	if _, ok := b.CheckSession(s); !ok {
		t.Error("three times the reported cost did not report again")
	}
}

func TestBaselineWindowAndQuantile(t *testing.T) {
	bs := NewBaselines(7)
	k := Key{Tenant: tenant, Subject: SubjectRunCost, Scope: ""}
	today := Day(t0)
	adds := map[Add]uint32{}
	for v := int64(1); v <= 100; v++ {
		adds[Add{Key: k, Day: today - 1, Bucket: k.Subject.Bucket(v * usd / 100)}]++
	}
	// Observations older than the window or from the future do not count.
	adds[Add{Key: k, Day: today - 7, Bucket: k.Subject.Bucket(1000 * usd)}] = 50
	adds[Add{Key: k, Day: today + 1, Bucket: k.Subject.Bucket(1000 * usd)}] = 50
	bs.Apply(adds)

	v, n := bs.Quantile(k, 0.95, today)
	if n != 100 {
		t.Errorf("n = %d, want the 100 observations of the window", n)
	}
	// Buckets are 12 % wide, and the quantile is a bucket's upper end.
	if v < 95*usd/100 || v > 95*usd/100*113/100 {
		t.Errorf("P95 = %d, want 0.95 USD rounded up by at most a bucket", v)
	}
}

func TestRunEncodingRoundTrip(t *testing.T) {
	r := &Run{
		Tenant: tenant, Key: "r", Partition: 3, Session: "s", App: "a", Agent: "g",
		Currency: "USD", Cost: 123, Steps: 4, First: 10, Last: 20, Done: true,
		Tools:           map[string]int64{"x": 2, "y": 1},
		Requests:        map[uint64]int64{7: 3},
		Seen:            map[uint64]struct{}{1: {}, 2: {}},
		RunawaySeverity: eventv1.Severity_SEVERITY_WARNING, RunawayActual: 100, Alerted: true,
		LoopCounts: map[string]int64{"p": 8},
		Pending: map[PendingSeries]Amount{
			{Set: "agent,model", Values: "\x1fgpt", Bucket: 300}: {Cost: 5, Events: 1},
		},
	}
	got, err := DecodeRun(tenant, "r", 3, r.Encode(nil))
	if err != nil {
		t.Fatalf("DecodeRun: %v", err)
	}
	r.MarkPersisted()
	if diff := cmp.Diff(r, got, cmp.AllowUnexported(Run{})); diff != "" {
		t.Errorf("decoded run (-want +got):\n%s", diff)
	}
	enc := r.Encode(nil)
	if _, err := DecodeRun(tenant, "r", 3, enc[:len(enc)/2]); err == nil {
		t.Error("a truncated run decoded without error")
	}
}

func TestSpendSeriesPerDimensionSetAndCategory(t *testing.T) {
	p := policy.Settings{
		DimensionSets: [][]string{{}, {"model", "app"}, {"category:team"}},
		Categories: []policy.Category{{Name: "team", Rules: []policy.CategoryRule{
			{Bucket: "cx", Dimension: "app", Values: []string{"support*"}}}}},
	}.Effective()
	d := newDetector()
	b := d.Begin(fixed{p}, t0)
	for i, app := range []string{"support", "support-eu", "research"} {
		ev := event.Event{Tenant: tenant, ID: fmt.Sprint(i), App: app, Model: "gpt-4o",
			Provider: "openai", Cost: usd, Currency: "USD",
			Time: t0.Add(time.Duration(i) * time.Minute), StepKind: eventv1.StepKind_STEP_KIND_LLM}
		b.Apply(&ev)
	}
	got := map[string]int64{}
	for pt, a := range b.Series {
		if pt.Bucket != t0.Unix() || pt.Currency != "USD" {
			t.Errorf("point %+v: want the 5-minute bucket of t0 in USD", pt)
		}
		got[pt.Key] += a.Cost
	}
	want := map[string]int64{
		"":                                    3 * usd,
		"app=support&model=gpt-4o":            usd,
		"app=support-eu&model=gpt-4o":         usd,
		"app=research&model=gpt-4o":           usd,
		"category:team=cx":                    2 * usd,
		"category:team=" + policy.OtherBucket: usd,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("series (-want +got):\n%s", diff)
	}
}
