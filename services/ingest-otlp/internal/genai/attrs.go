package genai

// Attribute names of the OpenTelemetry GenAI semantic conventions.
const (
	AttrOperationName = "gen_ai.operation.name"
	AttrProviderName  = "gen_ai.provider.name"
	// AttrSystem is the deprecated name of gen_ai.provider.name; its old
	// values (az.ai.openai, vertex_ai, gemini, xai, ...) are canonicalized.
	AttrSystem        = "gen_ai.system"
	AttrRequestModel  = "gen_ai.request.model"
	AttrResponseModel = "gen_ai.response.model"
	AttrResponseID    = "gen_ai.response.id"
	AttrConversation  = "gen_ai.conversation.id"

	AttrInputTokens         = "gen_ai.usage.input_tokens"
	AttrOutputTokens        = "gen_ai.usage.output_tokens"
	AttrCacheReadTokens     = "gen_ai.usage.cache_read.input_tokens"
	AttrCacheCreationTokens = "gen_ai.usage.cache_creation.input_tokens"
	AttrReasoningTokens     = "gen_ai.usage.reasoning.output_tokens"
	// Deprecated names of the input and output token counts.
	AttrPromptTokens     = "gen_ai.usage.prompt_tokens"
	AttrCompletionTokens = "gen_ai.usage.completion_tokens"
	// AttrTotalTokens is not in the conventions, but many SDKs send it; it
	// tells which convention the other counts follow.
	AttrTotalTokens = "gen_ai.usage.total_tokens"

	AttrAgentID      = "gen_ai.agent.id"
	AttrAgentName    = "gen_ai.agent.name"
	AttrAgentVersion = "gen_ai.agent.version"
	AttrToolName     = "gen_ai.tool.name"

	AttrOpenAIResponseTier    = "openai.response.service_tier"
	AttrOpenAIRequestTier     = "openai.request.service_tier"
	AttrOldOpenAIResponseTier = "gen_ai.openai.response.service_tier"
	AttrOldOpenAIRequestTier  = "gen_ai.openai.request.service_tier"
	AttrErrorType             = "error.type"

	// Resource attributes.
	AttrServiceName           = "service.name"
	AttrDeploymentEnvironment = "deployment.environment.name"
	// AttrDeploymentEnvOld is the deprecated name of the environment.
	AttrDeploymentEnvOld = "deployment.environment"
)

// Attribute names of the OpenInference conventions.
const (
	AttrOISpanKind = "openinference.span.kind"
	AttrOIModel    = "llm.model_name"
	AttrOIProvider = "llm.provider"
	AttrOISystem   = "llm.system"
	AttrOIAgent    = "agent.name"
	AttrOIToolName = "tool.name"

	AttrOIPromptTokens     = "llm.token_count.prompt"
	AttrOICompletionTokens = "llm.token_count.completion"
	AttrOITotalTokens      = "llm.token_count.total"
	AttrOICacheRead        = "llm.token_count.prompt_details.cache_read"
	AttrOICacheWrite       = "llm.token_count.prompt_details.cache_write"
	AttrOIPromptAudio      = "llm.token_count.prompt_details.audio"
	AttrOIReasoning        = "llm.token_count.completion_details.reasoning"
	AttrOICompletionAudio  = "llm.token_count.completion_details.audio"
)

// Values of gen_ai.operation.name and openinference.span.kind.
const (
	opInvokeAgent     = "invoke_agent"
	opExecuteTool     = "execute_tool"
	opChat            = "chat"
	opTextCompletion  = "text_completion"
	opGenerateContent = "generate_content"
	opEmbeddings      = "embeddings"
	opRetrieval       = "retrieval"

	oiKindLLM       = "LLM"
	oiKindEmbedding = "EMBEDDING"
	oiKindRetriever = "RETRIEVER"
	oiKindTool      = "TOOL"
	oiKindAgent     = "AGENT"
)
