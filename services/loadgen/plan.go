package loadgen

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// stepKind is what one child span of a run does.
type stepKind int

const (
	stepChat stepKind = iota + 1
	stepTool
)

// tokenCounts are a call's usage as the GenAI conventions report it:
// input includes the cached tokens, output includes the reasoning tokens.
type tokenCounts struct {
	input, cacheRead, cacheWrite, output, reasoning int
}

// step is one model call or tool call, timed from the run's start.
type step struct {
	kind       stepKind
	model      model
	tool       string
	callID     string
	respID     string
	start, end time.Duration
	tokens     tokenCounts
	// errType is set on a call that failed, such as a rate limit.
	errType string
}

// plannedOutcome is the business result a run reports.
type plannedOutcome struct {
	kind  string
	cents int64
}

// runPlan is one agent invocation, decided before any span is made.
type runPlan struct {
	app     *app
	agent   *agent
	session *session
	turn    int
	steps   []step
	total   time.Duration
	failed  bool
	loop    bool
	outcome *plannedOutcome
}

// session is one conversation: several runs of one agent.
type session struct {
	id, customer, user string
	turn, turns        int
	// history is the size of the conversation so far, in tokens.
	history int
	// cacheKeys are the planner cache entries to drop when it ends.
	cacheKeys map[string]bool
}

// planner decides runs. Everything it decides comes from its random
// source, so a seed fixes the whole traffic.
type planner struct {
	rng      *rand.Rand
	sessions map[string][]*session
	// cached remembers, per session (or agent) and model, how many prompt
	// tokens the provider has cached.
	cached map[string]int
	weight int
}

// maxOpenSessions bounds the conversations kept open per agent.
const maxOpenSessions = 24

func newPlanner(seed int64) *planner {
	p := &planner{
		rng:      rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15)),
		sessions: map[string][]*session{},
		cached:   map[string]int{},
	}
	for _, a := range fleet {
		p.weight += a.weight
	}
	return p
}

// next plans the next run.
func (p *planner) next() *runPlan {
	a, ag := p.pickAgent()
	s := p.pickSession(ag)
	r := &runPlan{app: a, agent: ag, session: s, turn: s.turn}

	p.planCalls(r)
	p.planOutcome(r)
	p.endTurn(ag, s)
	return r
}

func (p *planner) pickAgent() (*app, *agent) {
	n := p.rng.IntN(p.weight)
	i := 0
	for ; i < len(fleet)-1 && n >= fleet[i].weight; i++ {
		n -= fleet[i].weight
	}
	a := &fleet[i]
	return a, &a.agents[p.rng.IntN(len(a.agents))]
}

// pickSession continues an open conversation of the agent, or opens one.
func (p *planner) pickSession(ag *agent) *session {
	open := p.sessions[ag.id]
	if len(open) > 0 && p.rng.Float64() < 0.65 {
		return open[p.rng.IntN(len(open))]
	}

	s := &session{
		id:        "conv_" + p.token(16),
		customer:  p.customer(),
		user:      fmt.Sprintf("usr_%05d", p.rng.IntN(5000)),
		turns:     1 + p.rng.IntN(ag.maxTurns),
		cacheKeys: map[string]bool{},
	}
	if len(open) == maxOpenSessions {
		p.closeSession(open[0])
		open = open[1:]
	}
	p.sessions[ag.id] = append(open, s)
	return s
}

// customer picks one of 60 customers, the first ones far more often, as
// real spend concentrates on a few accounts.
func (p *planner) customer() string {
	u := p.rng.Float64()
	return fmt.Sprintf("cust_%03d", int(u*u*60))
}

func (p *planner) endTurn(ag *agent, s *session) {
	s.turn++
	if s.turn < s.turns {
		return
	}
	open := p.sessions[ag.id]
	for i, o := range open {
		if o == s {
			p.sessions[ag.id] = append(open[:i:i], open[i+1:]...)
			break
		}
	}
	p.closeSession(s)
}

func (p *planner) closeSession(s *session) {
	for k := range s.cacheKeys {
		delete(p.cached, k)
	}
}

func (p *planner) planOutcome(r *runPlan) {
	ag := r.agent
	if r.failed || ag.outcome == "" || p.rng.Float64() >= ag.outcomeChance {
		return
	}
	o := &plannedOutcome{kind: ag.outcome}
	if ag.maxCents > 0 {
		o.cents = ag.minCents + p.rng.Int64N(ag.maxCents-ag.minCents+1)
	}
	r.outcome = o
}

// token returns n random characters of the kind providers use in ids.
func (p *planner) token(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[p.rng.IntN(len(alphabet))]
	}
	return string(b)
}

// between returns a duration drawn uniformly from [lo, hi).
func (p *planner) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(p.rng.Int64N(int64(hi-lo)))
}
