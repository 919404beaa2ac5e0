package loadgen

import (
	"fmt"
	"time"
)

// Chances that shape the traffic.
const (
	// failChance is the share of model calls that fail and are retried.
	failChance = 0.03
	// loopChance is the share of a loop-prone agent's runs that end in a
	// runaway tool loop.
	loopChance = 0.05
	// secondaryChance is the share of calls that go to an agent's other
	// models.
	secondaryChance = 0.2
	maxAttempts     = 2
	// minCacheable is the shortest prompt prefix providers cache.
	minCacheable = 1024
)

// errorTypes are error.type values of failed calls, as SDKs name them.
var errorTypes = []string{"RateLimitError", "APITimeoutError", "InternalServerError"}

// callState is the conversation as a run goes along.
type callState struct {
	at time.Duration
	// prompt is the size of the next call's prompt; fresh is its part
	// added since the previous call, which no cache can hold yet.
	prompt, fresh int
	// answer is the visible output of the last call.
	answer int
}

// planCalls lays out a run: model calls, the tool calls each asks for and,
// now and then, a runaway loop of one tool, each after the one before.
func (p *planner) planCalls(r *runPlan) {
	ag := r.agent
	question := 30 + p.rng.IntN(400)
	c := &callState{
		at:     p.between(5*time.Millisecond, 40*time.Millisecond),
		prompt: ag.systemTokens + r.session.history + question,
		fresh:  question,
	}

	calls := 1 + p.rng.IntN(ag.maxCalls)
	for i := range calls {
		if !p.chat(r, c) {
			r.failed = true
			break
		}
		if i < calls-1 && len(ag.tools) > 0 {
			for range 1 + p.rng.IntN(2) {
				p.tool(r, c, ag.tools[p.rng.IntN(len(ag.tools))])
			}
		}
	}
	if !r.failed && ag.loopProne && p.rng.Float64() < loopChance {
		p.toolLoop(r, c)
	}

	r.total = c.at + p.between(2*time.Millisecond, 30*time.Millisecond)
	r.session.history += question + c.answer
}

// toolLoop has the model call the same tool over and over, the pattern
// of an agent that never gets the answer it waits for.
func (p *planner) toolLoop(r *runPlan, c *callState) {
	r.loop = true
	name := r.agent.tools[p.rng.IntN(len(r.agent.tools))]
	for range 8 + p.rng.IntN(7) {
		p.tool(r, c, name)
		if !p.chat(r, c) {
			r.failed = true
			return
		}
	}
}

// chat plans one model call and its retries; false means every attempt
// failed.
func (p *planner) chat(r *runPlan, c *callState) bool {
	m := r.agent.models[0]
	if len(r.agent.models) > 1 && p.rng.Float64() < secondaryChance {
		m = r.agent.models[1+p.rng.IntN(len(r.agent.models)-1)]
	}
	for range maxAttempts {
		if p.rng.Float64() >= failChance {
			p.answer(r, c, m)
			return true
		}
		st := step{kind: stepChat, model: m, start: c.at,
			errType: errorTypes[p.rng.IntN(len(errorTypes))]}
		st.end = st.start + p.between(80*time.Millisecond, 1500*time.Millisecond)
		r.steps = append(r.steps, st)
		c.at = st.end + p.between(300*time.Millisecond, 2*time.Second) // back-off
	}
	return false
}

// answer plans a successful model call.
func (p *planner) answer(r *runPlan, c *callState, m model) {
	st := step{kind: stepChat, model: m, start: c.at, respID: p.responseID(m)}
	st.tokens = p.tokens(r, c, m)
	jitter := 0.7 + 0.8*p.rng.Float64()
	st.end = st.start + time.Duration(float64(m.firstToken)*jitter) +
		m.perToken*time.Duration(st.tokens.output)
	r.steps = append(r.steps, st)

	// The answer joins the prompt of the next call.
	c.at = st.end + p.between(time.Millisecond, 15*time.Millisecond)
	c.answer = st.tokens.output - st.tokens.reasoning
	c.prompt += c.answer
	c.fresh = c.answer
}

// tool plans one tool call; its result joins the prompt.
func (p *planner) tool(r *runPlan, c *callState, name string) {
	st := step{kind: stepTool, tool: name, callID: "call_" + p.token(24), start: c.at}
	st.end = st.start + p.between(30*time.Millisecond, 1800*time.Millisecond)
	r.steps = append(r.steps, st)

	c.at = st.end + p.between(time.Millisecond, 10*time.Millisecond)
	result := 80 + p.rng.IntN(1400)
	c.prompt += result
	c.fresh += result
}

// tokens counts a call's usage. What the provider cached of earlier calls
// of the conversation (or of the agent's fixed prompt) is read back;
// Anthropic-style caching also writes what is new.
func (p *planner) tokens(r *runPlan, c *callState, m model) tokenCounts {
	t := tokenCounts{input: c.prompt}
	known := p.cachedPrefix(r, m)
	stable := c.prompt - c.fresh
	switch {
	case m.caching == cacheImplicit && c.prompt >= minCacheable:
		// Implicit caches hit in blocks of 128 tokens.
		t.cacheRead = min(known, stable) &^ 127
	case m.caching == cacheExplicit && stable >= minCacheable:
		t.cacheRead = min(known, stable)
		// The breakpoint sits near the end: all but a short tail is written.
		tail := min(c.prompt-t.cacheRead, 3+p.rng.IntN(40))
		t.cacheWrite = c.prompt - t.cacheRead - tail
	}
	if m.caching != cacheNone {
		p.remember(r, m, c.prompt)
	}

	t.output = 60 + p.rng.IntN(700)
	if m.reasoning {
		t.reasoning = 150 + p.rng.IntN(3500)
		t.output += t.reasoning
	}
	return t
}

func sessionKey(r *runPlan, m model) string { return r.session.id + "|" + m.request }
func agentKey(r *runPlan, m model) string   { return r.agent.id + "|" + m.request }

// cachedPrefix is how much of the prompt the provider holds: the
// conversation's last prompt, else the agent's fixed prompt.
func (p *planner) cachedPrefix(r *runPlan, m model) int {
	if n, ok := p.cached[sessionKey(r, m)]; ok {
		return n
	}
	return p.cached[agentKey(r, m)]
}

func (p *planner) remember(r *runPlan, m model, prompt int) {
	key := sessionKey(r, m)
	p.cached[key] = prompt
	r.session.cacheKeys[key] = true
	p.cached[agentKey(r, m)] = r.agent.systemTokens
}

// responseID spells a response id as the model's provider does.
func (p *planner) responseID(m model) string {
	switch m.provider {
	case "aws.bedrock":
		t := p.token(32)
		return fmt.Sprintf("%s-%s-%s-%s-%s", t[:8], t[8:12], t[12:16], t[16:20], t[20:])
	case "anthropic":
		return m.respID + "01" + p.token(22)
	default:
		return m.respID + p.token(28)
	}
}
