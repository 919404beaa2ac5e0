package eval

import "github.com/costplane/costplane/libs/money"

// model is one model the fleet calls, with the mean cost of a call.
type model struct {
	provider string
	name     string
	meanCost int64 // nanos
}

var (
	gpt4o       = model{"openai", "gpt-4o", 30 * money.NanosPerUnit / 1000}
	gpt4oMini   = model{"openai", "gpt-4o-mini", 4 * money.NanosPerUnit / 1000}
	sonnet      = model{"anthropic", "claude-sonnet-4-5", 45 * money.NanosPerUnit / 1000}
	haiku       = model{"anthropic", "claude-haiku-4-5", 10 * money.NanosPerUnit / 1000}
	geminiPro   = model{"gcp.gemini", "gemini-2.5-pro", 35 * money.NanosPerUnit / 1000}
	geminiFlash = model{"gcp.gemini", "gemini-2.5-flash", 6 * money.NanosPerUnit / 1000}
	novaPro     = model{"aws.bedrock", "amazon.nova-pro-v1:0", 12 * money.NanosPerUnit / 1000}

	// Never used before their injection. Their price is near that of the
	// models they join: a much dearer model would make every run that
	// uses it a runaway against the agent's history, which is a change of
	// level the new-spend alert already reports, not a labeled runaway.
	o3           = model{"openai", "o3", 60 * money.NanosPerUnit / 1000}
	mistralLarge = model{"mistral_ai", "mistral-large-2411", 60 * money.NanosPerUnit / 1000}
)

// weighted is a model with its share of an agent's calls.
type weighted struct {
	m     model
	share float64
}

// agent is one agent of the fleet.
type agent struct {
	name, app, project string
	models             []weighted
	tools              []string
	minCalls, maxCalls int
	maxTurns           int
	weight             int
}

var (
	triage = agent{
		name: "triage", app: "support", project: "cx",
		models: []weighted{{gpt4oMini, 0.8}, {gpt4o, 0.2}},
		tools:  []string{"lookup_customer", "search_kb"}, minCalls: 1, maxCalls: 3, maxTurns: 3,
		weight: 5,
	}
	resolver = agent{
		name: "resolver", app: "support", project: "cx",
		models:   []weighted{{sonnet, 0.8}, {haiku, 0.2}},
		tools:    []string{"search_kb", "get_order", "issue_refund", "update_ticket"},
		minCalls: 2, maxCalls: 6, maxTurns: 5, weight: 4,
	}
	researcher = agent{
		name: "researcher", app: "research", project: "rd",
		models: []weighted{{geminiPro, 0.7}, {geminiFlash, 0.3}},
		tools:  []string{"web_search", "fetch_url"}, minCalls: 2, maxCalls: 7, maxTurns: 3,
		weight: 3,
	}
	summarizer = agent{
		name: "summarizer", app: "research", project: "rd",
		models: []weighted{{geminiFlash, 1}}, minCalls: 1, maxCalls: 1, maxTurns: 2, weight: 2,
	}
	reviewer = agent{
		name: "reviewer", app: "codereview", project: "eng",
		models: []weighted{{gpt4o, 0.7}, {gpt4oMini, 0.3}},
		tools:  []string{"read_file", "run_tests", "post_comment"}, minCalls: 2, maxCalls: 5,
		maxTurns: 1, weight: 2,
	}
	claims = agent{
		name: "claims-processor", app: "claims", project: "ops",
		models:   []weighted{{novaPro, 0.6}, {sonnet, 0.4}},
		tools:    []string{"fetch_policy", "score_fraud", "extract_document"},
		minCalls: 2, maxCalls: 5, maxTurns: 1, weight: 2,
	}
	// nightly runs only as the recurring batch job.
	nightly = agent{
		name: "nightly-eval", app: "research", project: "rd",
		models: []weighted{{geminiFlash, 1}}, minCalls: 2, maxCalls: 3, maxTurns: 1,
	}
	// welcomer arrives with the launch of a new app.
	welcomer = agent{
		name: "welcomer", app: "onboarding", project: "growth",
		models: []weighted{{gpt4oMini, 0.7}, {haiku, 0.3}},
		tools:  []string{"send_email"}, minCalls: 1, maxCalls: 3, maxTurns: 2,
	}
)

// fleet is the steady traffic of every tenant.
var fleet = []*agent{&triage, &resolver, &researcher, &summarizer, &reviewer, &claims}

func totalWeight() int {
	n := 0
	for _, a := range fleet {
		n += a.weight
	}
	return n
}
