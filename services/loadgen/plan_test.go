package loadgen

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// describe renders what a run would send, to compare generations.
func describe(r *runPlan) []string {
	out := []string{fmt.Sprintf("%s/%s session=%s turn=%d customer=%s user=%s total=%v",
		r.app.name, r.agent.name, r.session.id, r.turn, r.session.customer, r.session.user,
		r.total)}
	for _, st := range r.steps {
		out = append(out, fmt.Sprintf("%d %s %s %s %s %v-%v %+v %s", st.kind, st.model.request,
			st.tool, st.callID, st.respID, st.start, st.end, st.tokens, st.errType))
	}
	if r.outcome != nil {
		out = append(out, fmt.Sprintf("outcome %s %d", r.outcome.kind, r.outcome.cents))
	}
	return out
}

func generate(seed int64, n int) [][]string {
	p := newPlanner(seed)
	runs := make([][]string, n)
	for i := range runs {
		runs[i] = describe(p.next())
	}
	return runs
}

func TestPlannerIsDeterministic(t *testing.T) {
	if diff := cmp.Diff(generate(42, 300), generate(42, 300)); diff != "" {
		t.Errorf("two generations with seed 42 differ (-first +second):\n%s", diff)
	}
	if cmp.Equal(generate(42, 50), generate(43, 50)) {
		t.Error("seeds 42 and 43 generated the same runs")
	}
}

// mix tallies what a generation contains.
type mix struct {
	models, providers, outcomes map[string]int
	cacheRead, cacheWrite       map[string]int
	reasoning, loops, failed    int
	multiTurn, errSteps         int
}

func tally(t *testing.T, p *planner, n int) mix {
	t.Helper()
	m := mix{
		models: map[string]int{}, providers: map[string]int{}, outcomes: map[string]int{},
		cacheRead: map[string]int{}, cacheWrite: map[string]int{},
	}
	for range n {
		r := p.next()
		checkRun(t, r)
		if r.loop {
			m.loops++
		}
		if r.failed {
			m.failed++
		}
		if r.turn > 0 {
			m.multiTurn++
		}
		if r.outcome != nil {
			m.outcomes[r.outcome.kind]++
		}
		for _, st := range r.steps {
			m.addStep(st)
		}
	}
	return m
}

func (m *mix) addStep(st step) {
	if st.kind != stepChat {
		return
	}
	if st.errType != "" {
		m.errSteps++
		return
	}
	m.models[st.model.request]++
	m.providers[st.model.provider]++
	if st.tokens.cacheRead > 0 {
		m.cacheRead[st.model.provider]++
	}
	if st.tokens.cacheWrite > 0 {
		m.cacheWrite[st.model.provider]++
	}
	if st.tokens.reasoning > 0 {
		m.reasoning++
	}
}

// checkRun checks the invariants of one run: steps in order inside the
// run, and token counts a provider could report.
func checkRun(t *testing.T, r *runPlan) {
	t.Helper()
	var prev step
	for i, st := range r.steps {
		if st.start < prev.end || st.end <= st.start || st.end > r.total {
			t.Fatalf("%s step %d at %v-%v after %v, run of %v",
				r.agent.name, i, st.start, st.end, prev.end, r.total)
		}
		prev = st
		tk := st.tokens
		if tk.cacheRead+tk.cacheWrite > tk.input || tk.reasoning > tk.output {
			t.Fatalf("%s step %d has impossible tokens %+v", r.agent.name, i, tk)
		}
		if tk.reasoning > 0 && !st.model.reasoning {
			t.Fatalf("%s reports reasoning tokens", st.model.request)
		}
	}
}

func TestPlannerCoversTheFleet(t *testing.T) {
	m := tally(t, newPlanner(7), 3000)

	for _, a := range fleet {
		for _, ag := range a.agents {
			for _, md := range ag.models {
				if m.models[md.request] == 0 {
					t.Errorf("no call to %s", md.request)
				}
			}
		}
	}
	for _, p := range []string{"openai", "anthropic", "gcp.gemini", "aws.bedrock"} {
		if m.cacheRead[p] == 0 {
			t.Errorf("no cache reads on %s", p)
		}
	}
	for _, p := range []string{"anthropic", "aws.bedrock"} {
		if m.cacheWrite[p] == 0 {
			t.Errorf("no cache writes on %s", p)
		}
	}
	kinds := []string{outcomeTicketResolved, outcomeWorkflowCompleted, outcomeMeetingBooked}
	for _, o := range kinds {
		if m.outcomes[o] == 0 {
			t.Errorf("no %s outcome", o)
		}
	}
	counts := map[string]int{
		"reasoning calls": m.reasoning, "tool loops": m.loops, "failed runs": m.failed,
		"later turns of a session": m.multiTurn, "failed calls": m.errSteps,
	}
	for what, n := range counts {
		if n == 0 {
			t.Errorf("no %s in 3000 runs", what)
		}
	}
}

func TestSessionsEnd(t *testing.T) {
	p := newPlanner(11)
	for range 5000 {
		p.next()
	}
	for id, open := range p.sessions {
		if len(open) > maxOpenSessions {
			t.Errorf("agent %s has %d open sessions, limit %d", id, len(open), maxOpenSessions)
		}
	}
	// Each open session holds at most one entry per model of its agent,
	// plus one per agent and model for the fixed prompt.
	if len(p.cached) > 5*maxOpenSessions*2+20 {
		t.Errorf("%d cache entries kept after 5000 runs: sessions leak", len(p.cached))
	}
}
