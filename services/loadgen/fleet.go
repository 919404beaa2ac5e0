package loadgen

import "time"

// model is one model as an instrumented client reports it.
type model struct {
	provider string // gen_ai.provider.name
	request  string // gen_ai.request.model
	response string // gen_ai.response.model, often a dated snapshot
	server   string // server.address
	// respID prefixes gen_ai.response.id, as each provider spells them.
	respID string
	// caching: "" none, "implicit" (reads only, as OpenAI and Gemini
	// cache long prefixes by themselves) or "explicit" (Anthropic-style
	// cache writes on the first call, reads after).
	caching string
	// reasoning models think before answering; the thoughts are counted
	// inside the output tokens, as the GenAI conventions require.
	reasoning bool
	// firstToken and perToken shape the call's latency.
	firstToken time.Duration
	perToken   time.Duration
}

const (
	cacheNone     = ""
	cacheImplicit = "implicit"
	cacheExplicit = "explicit"
)

var (
	gpt4o = model{
		provider: "openai", request: "gpt-4o", response: "gpt-4o-2024-08-06",
		server: "api.openai.com", respID: "chatcmpl-", caching: cacheImplicit,
		firstToken: 450 * time.Millisecond, perToken: 12 * time.Millisecond,
	}
	gpt41 = model{
		provider: "openai", request: "gpt-4.1", response: "gpt-4.1-2025-04-14",
		server: "api.openai.com", respID: "chatcmpl-", caching: cacheImplicit,
		firstToken: 500 * time.Millisecond, perToken: 14 * time.Millisecond,
	}
	o3 = model{
		provider: "openai", request: "o3", response: "o3-2025-04-16",
		server: "api.openai.com", respID: "resp_", caching: cacheImplicit, reasoning: true,
		firstToken: 2 * time.Second, perToken: 9 * time.Millisecond,
	}
	o4mini = model{
		provider: "openai", request: "o4-mini", response: "o4-mini-2025-04-16",
		server: "api.openai.com", respID: "resp_", caching: cacheImplicit, reasoning: true,
		firstToken: 900 * time.Millisecond, perToken: 5 * time.Millisecond,
	}
	claudeSonnet = model{
		provider: "anthropic", request: "claude-sonnet-4-5",
		response: "claude-sonnet-4-5-20250929", server: "api.anthropic.com",
		respID: "msg_", caching: cacheExplicit,
		firstToken: 700 * time.Millisecond, perToken: 15 * time.Millisecond,
	}
	claudeHaiku = model{
		provider: "anthropic", request: "claude-haiku-4-5",
		response: "claude-haiku-4-5-20251001", server: "api.anthropic.com",
		respID: "msg_", caching: cacheExplicit,
		firstToken: 350 * time.Millisecond, perToken: 6 * time.Millisecond,
	}
	// Bedrock ids name a cross-region inference profile ("us.") and carry
	// the vendor prefix and version suffix of Bedrock model ids.
	bedrockSonnet = model{
		provider: "aws.bedrock", request: "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
		response: "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
		server:   "bedrock-runtime.us-east-1.amazonaws.com", respID: "", caching: cacheExplicit,
		firstToken: 800 * time.Millisecond, perToken: 16 * time.Millisecond,
	}
	bedrockNova = model{
		provider: "aws.bedrock", request: "amazon.nova-pro-v1:0",
		response: "amazon.nova-pro-v1:0", server: "bedrock-runtime.us-east-1.amazonaws.com",
		firstToken: 400 * time.Millisecond, perToken: 8 * time.Millisecond,
	}
	geminiPro = model{
		provider: "gcp.gemini", request: "gemini-2.5-pro", response: "gemini-2.5-pro",
		server: "generativelanguage.googleapis.com", caching: cacheImplicit, reasoning: true,
		firstToken: 1500 * time.Millisecond, perToken: 7 * time.Millisecond,
	}
	geminiFlash = model{
		provider: "gcp.gemini", request: "gemini-2.5-flash", response: "gemini-2.5-flash",
		server: "generativelanguage.googleapis.com", caching: cacheImplicit, reasoning: true,
		firstToken: 400 * time.Millisecond, perToken: 3 * time.Millisecond,
	}
)

// Outcome types the fleet reports.
const (
	outcomeTicketResolved    = "ticket_resolved"
	outcomeWorkflowCompleted = "workflow_completed"
	outcomeMeetingBooked     = "meeting_booked"
)

// agent is one agent of an app: what it runs on and what it achieves.
type agent struct {
	name, id, version string
	// models are the agent's models; the first does most of the calls.
	models []model
	tools  []string
	// systemTokens is the size of the agent's fixed prompt prefix.
	systemTokens int
	// maxCalls bounds the model calls of one run.
	maxCalls int
	// loopProne agents sometimes repeat one tool call over and over.
	loopProne bool
	// outcome is what a successful run reports, with its chance and its
	// value range in cents (zero: no value).
	outcome            string
	outcomeChance      float64
	minCents, maxCents int64
	// maxTurns bounds the runs of one conversation.
	maxTurns int
}

// app is one instrumented service, the resource of its spans.
type app struct {
	name, env string
	weight    int
	agents    []agent
}

// fleet is the traffic the generator imitates.
var fleet = []app{{
	name: "support-desk", env: "production", weight: 5,
	agents: []agent{{
		name: "triage", id: "agt_triage", version: "3.2.0",
		models: []model{gpt41, gpt4o}, tools: []string{"lookup_customer", "search_kb"},
		systemTokens: 1800, maxCalls: 2, maxTurns: 2,
	}, {
		name: "resolver", id: "agt_resolver", version: "5.0.1",
		models:       []model{claudeSonnet, claudeHaiku},
		tools:        []string{"search_kb", "get_order", "issue_refund", "update_ticket"},
		systemTokens: 4200, maxCalls: 5, maxTurns: 6, loopProne: true,
		outcome: outcomeTicketResolved, outcomeChance: 0.7, minCents: 800, maxCents: 4500,
	}},
}, {
	name: "research-assistant", env: "production", weight: 3,
	agents: []agent{{
		name: "researcher", id: "agt_researcher", version: "1.4.0",
		models: []model{geminiPro, geminiFlash}, tools: []string{"web_search", "fetch_url"},
		systemTokens: 2600, maxCalls: 6, maxTurns: 4, loopProne: true,
	}, {
		name: "summarizer", id: "agt_summarizer", version: "1.1.0",
		models: []model{geminiFlash}, systemTokens: 900, maxCalls: 1, maxTurns: 3,
	}},
}, {
	name: "code-review-bot", env: "production", weight: 2,
	agents: []agent{{
		name: "reviewer", id: "agt_reviewer", version: "2.0.0",
		models: []model{o3, o4mini}, tools: []string{"read_file", "run_tests", "post_comment"},
		systemTokens: 3000, maxCalls: 4, maxTurns: 1,
		outcome: outcomeWorkflowCompleted, outcomeChance: 0.85,
	}},
}, {
	name: "claims-workflow", env: "production", weight: 2,
	agents: []agent{{
		name: "claims-processor", id: "agt_claims", version: "0.9.3",
		models:       []model{bedrockSonnet, bedrockNova},
		tools:        []string{"fetch_policy", "score_fraud", "extract_document"},
		systemTokens: 3500, maxCalls: 4, maxTurns: 1,
		outcome: outcomeWorkflowCompleted, outcomeChance: 0.8, minCents: 2000, maxCents: 12000,
	}},
}, {
	name: "sales-copilot", env: "staging", weight: 1,
	agents: []agent{{
		name: "prospector", id: "agt_prospector", version: "0.3.0",
		models: []model{claudeHaiku, gpt4o}, tools: []string{"crm_lookup", "draft_email"},
		systemTokens: 1500, maxCalls: 3, maxTurns: 3,
		outcome: outcomeMeetingBooked, outcomeChance: 0.15, minCents: 5000, maxCents: 25000,
	}},
}}
