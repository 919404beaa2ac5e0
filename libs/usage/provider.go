package usage

import "strings"

// Canonical provider names: the OpenTelemetry gen_ai.provider.name values.
const (
	ProviderOpenAI           = "openai"
	ProviderAnthropic        = "anthropic"
	ProviderAWSBedrock       = "aws.bedrock"
	ProviderGCPVertexAI      = "gcp.vertex_ai"
	ProviderGCPGemini        = "gcp.gemini"
	ProviderGCPGenAI         = "gcp.gen_ai"
	ProviderAzureOpenAI      = "azure.ai.openai"
	ProviderAzureAIInference = "azure.ai.inference"
	ProviderMistralAI        = "mistral_ai"
	ProviderCohere           = "cohere"
	ProviderDeepSeek         = "deepseek"
	ProviderXAI              = "x_ai"
	ProviderGroq             = "groq"
	ProviderPerplexity       = "perplexity"
	ProviderIBMWatsonxAI     = "ibm.watsonx.ai"
)

// providerAliases maps the spellings sources use to the canonical names:
// the values gen_ai.system had before it was renamed gen_ai.provider.name,
// OpenInference's llm.provider and llm.system values, and common gateway
// spellings. Keys are lower case.
var providerAliases = map[string]string{
	// gen_ai.system values renamed when gen_ai.provider.name replaced it.
	"az.ai.openai":    ProviderAzureOpenAI,
	"az.ai.inference": ProviderAzureAIInference,
	"vertex_ai":       ProviderGCPVertexAI,
	"gemini":          ProviderGCPGemini,
	"xai":             ProviderXAI,
	// OpenInference llm.provider and llm.system values.
	"azure":     ProviderAzureOpenAI,
	"aws":       ProviderAWSBedrock,
	"google":    ProviderGCPGenAI,
	"mistralai": ProviderMistralAI,
	"vertexai":  ProviderGCPVertexAI,
	// Spellings seen in gateways and SDK integrations.
	"azure_openai":   ProviderAzureOpenAI,
	"azure-openai":   ProviderAzureOpenAI,
	"azure.openai":   ProviderAzureOpenAI,
	"bedrock":        ProviderAWSBedrock,
	"aws_bedrock":    ProviderAWSBedrock,
	"amazon_bedrock": ProviderAWSBedrock,
	"amazon-bedrock": ProviderAWSBedrock,
	"vertex":         ProviderGCPVertexAI,
	"google_vertex":  ProviderGCPVertexAI,
	"google-vertex":  ProviderGCPVertexAI,
	"google_genai":   ProviderGCPGenAI,
	"google_gemini":  ProviderGCPGemini,
	"google-gemini":  ProviderGCPGemini,
	"mistral":        ProviderMistralAI,
	"x.ai":           ProviderXAI,
	"x-ai":           ProviderXAI,
	"watsonx":        ProviderIBMWatsonxAI,
}

// CanonicalProvider returns the gen_ai.provider.name value for a provider
// name in any known spelling. Unknown names are returned trimmed and in
// lower case, so that they still group consistently.
func CanonicalProvider(name string) string {
	n := strings.ToLower(strings.TrimSpace(name))
	if c, ok := providerAliases[n]; ok {
		return c
	}
	return n
}

// bedrockGeoPrefixes are the region-group prefixes of Bedrock
// cross-region inference profile ids, such as "us.anthropic.claude-...".
var bedrockGeoPrefixes = []string{"us.", "eu.", "apac.", "us-gov.", "ca.", "jp.", "au."}

// Inference profiles that CanonicalModel recognises in a model id.
const (
	InferenceProfileCrossRegion = "cross-region"
	InferenceProfileGlobal      = "global"
)

// CanonicalModel returns the model id to price by for a model as reported
// by the canonical provider, and the inference profile the id names, if
// any. It trims decoration that does not change the model: Gemini's
// "models/" prefix and Bedrock's cross-region prefixes.
func CanonicalModel(provider, model string) (canonical, profile string) {
	m := strings.TrimSpace(model)
	m = strings.TrimPrefix(m, "models/")
	if provider != ProviderAWSBedrock {
		return m, ""
	}
	if rest, ok := strings.CutPrefix(m, "global."); ok {
		return rest, InferenceProfileGlobal
	}
	for _, p := range bedrockGeoPrefixes {
		if rest, ok := strings.CutPrefix(m, p); ok {
			return rest, InferenceProfileCrossRegion
		}
	}
	return m, ""
}
