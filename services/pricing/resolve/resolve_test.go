package resolve

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/costplane/costplane/services/pricing/catalog"
)

func newResolver(t *testing.T) *Resolver {
	t.Helper()
	cat, err := catalog.Load()
	if err != nil {
		t.Fatalf("catalog.Load: %v", err)
	}
	return New(cat)
}

func TestResolveRealWorldSpellings(t *testing.T) {
	r := newResolver(t)
	deployments := Deployments{"Prod-Chat": "gpt-4o", "summarizer-eu": "gpt-4.1-mini"}
	tests := []struct {
		provider, model string
		want            Result
	}{
		// Canonical ids and noise.
		{"openai", "gpt-4o", Result{Provider: "openai", Model: "gpt-4o"}},
		{"OpenAI", "  GPT-4o \n", Result{Provider: "openai", Model: "gpt-4o"}},
		{"anthropic", "claude-sonnet-4-5",
			Result{Provider: "anthropic", Model: "claude-sonnet-4-5"}},
		{"", "claude-haiku-4-5", Result{Provider: "anthropic", Model: "claude-haiku-4-5"}},
		// Dated snapshots: same price resolves to the family, a different
		// price keeps its own entry.
		{"openai", "gpt-4o-2024-08-06", Result{Provider: "openai", Model: "gpt-4o"}},
		{"openai", "gpt-4o-2024-05-13", Result{Provider: "openai", Model: "gpt-4o-2024-05-13"}},
		{"openai", "gpt-4o-mini-2024-07-18", Result{Provider: "openai", Model: "gpt-4o-mini"}},
		{"openai", "gpt-4.1-2025-04-14", Result{Provider: "openai", Model: "gpt-4.1"}},
		{"openai", "gpt-5-2025-08-07", Result{Provider: "openai", Model: "gpt-5"}},
		{"openai", "gpt-5.1-2099-01-01", Result{Provider: "openai", Model: "gpt-5.1"}},
		{"openai", "o3-2025-04-16", Result{Provider: "openai", Model: "o3"}},
		{"anthropic", "claude-sonnet-4-20250514",
			Result{Provider: "anthropic", Model: "claude-sonnet-4"}},
		{"anthropic", "claude-opus-4-5-20251101",
			Result{Provider: "anthropic", Model: "claude-opus-4-5"}},
		{"anthropic", "claude-3-5-haiku-latest",
			Result{Provider: "anthropic", Model: "claude-3-5-haiku"}},
		{"anthropic", "claude-opus-4-5", Result{Provider: "anthropic", Model: "claude-opus-4-5"}},
		// provider/model.
		{"", "openai/gpt-4o", Result{Provider: "openai", Model: "gpt-4o"}},
		{"", "anthropic/claude-sonnet-4-5-20250929",
			Result{Provider: "anthropic", Model: "claude-sonnet-4-5"}},
		{"litellm", "gemini/gemini-2.5-pro",
			Result{Provider: "gcp.gemini", Model: "gemini-2.5-pro"}},
		{"", "mistral/mistral-large-latest",
			Result{Provider: "mistral_ai", Model: "mistral-large-3"}},
		{"", "xai/grok-4.7", Result{Provider: "x_ai", Model: "grok-4.7"}},
		{"", "deepseek/deepseek-v4-pro", Result{Provider: "deepseek", Model: "deepseek-v4-pro"}},
		{"groq", "openai/gpt-oss-120b", Result{Provider: "groq", Model: "openai/gpt-oss-120b"}},
		{"", "meta-llama/llama-4-scout-17b-16e-instruct",
			Result{Provider: "groq", Model: "meta-llama/llama-4-scout-17b-16e-instruct"}},
		// Bedrock model ids, inference profiles and ARNs.
		{"aws.bedrock", "anthropic.claude-sonnet-4-20250514-v1:0",
			Result{Provider: Bedrock, Model: "claude-sonnet-4", Profile: ProfileInRegion}},
		{"bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
			Result{Provider: Bedrock, Model: "claude-sonnet-4-5", Profile: ProfileCrossRegion}},
		{"", "eu.anthropic.claude-haiku-4-5-20251001-v1:0",
			Result{Provider: Bedrock, Model: "claude-haiku-4-5", Profile: ProfileCrossRegion}},
		{"", "apac.anthropic.claude-3-5-haiku-20241022-v1:0",
			Result{Provider: Bedrock, Model: "claude-3-5-haiku", Profile: ProfileCrossRegion}},
		{"aws.bedrock", "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
			Result{Provider: Bedrock, Model: "claude-sonnet-4-5", Profile: ProfileGlobal}},
		{"aws.bedrock", "global.anthropic.claude-sonnet-5-5",
			Result{Provider: Bedrock, Model: "claude-sonnet-5-5", Profile: ProfileGlobal}},
		{"", "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-20250514-v1:0",
			Result{Provider: Bedrock, Model: "claude-sonnet-4", Profile: ProfileCrossRegion, Region: "us-east-1"}},
		{"", "arn:aws:bedrock:eu-west-1:123:inference-profile/global.anthropic.claude-opus-4-5-20251101-v1:0",
			Result{Provider: Bedrock, Model: "claude-opus-4-5", Profile: ProfileGlobal, Region: "eu-west-1"}},
		{"", "arn:aws:bedrock:us-west-2::foundation-model/meta.llama3-3-70b-instruct-v1:0",
			Result{Provider: Bedrock, Model: "llama3-3-70b-instruct", Profile: ProfileInRegion, Region: "us-west-2"}},
		{"aws.bedrock", "amazon.nova-pro-v1:0",
			Result{Provider: Bedrock, Model: "nova-pro", Profile: ProfileInRegion}},
		{"aws.bedrock", "us.amazon.nova-lite-v1:0",
			Result{Provider: Bedrock, Model: "nova-lite", Profile: ProfileCrossRegion}},
		{"aws.bedrock", "openai.gpt-oss-120b-1:0",
			Result{Provider: Bedrock, Model: "gpt-oss-120b", Profile: ProfileInRegion}},
		{"", "bedrock/us.meta.llama4-maverick-17b-instruct-v1:0",
			Result{Provider: Bedrock, Model: "llama4-maverick-17b-instruct", Profile: ProfileCrossRegion}},
		{"aws.bedrock", "anthropic.claude-opus-4-6-v1",
			Result{Provider: Bedrock, Model: "claude-opus-4-6", Profile: ProfileInRegion}},
		// Vertex model@version and resource paths.
		{"gcp.vertex_ai", "claude-sonnet-4@20250514",
			Result{Provider: Vertex, Model: "claude-sonnet-4"}},
		{"vertex_ai", "claude-opus-4-1@20250805",
			Result{Provider: Vertex, Model: "claude-opus-4-1"}},
		{"", "publishers/google/models/gemini-2.5-pro",
			Result{Provider: Vertex, Model: "gemini-2.5-pro"}},
		{"", "projects/acme/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929",
			Result{Provider: Vertex, Model: "claude-sonnet-4-5", Profile: ProfileRegional, Region: "us-east5"}},
		{"", "projects/acme/locations/global/publishers/anthropic/models/claude-haiku-4-5@20251001",
			Result{Provider: Vertex, Model: "claude-haiku-4-5", Profile: ProfileGlobal}},
		{"gcp.vertex_ai", "gemini-2.0-flash-001",
			Result{Provider: Vertex, Model: "gemini-2.0-flash"}},
		// Gemini API spellings.
		{"gcp.gemini", "models/gemini-2.5-flash",
			Result{Provider: "gcp.gemini", Model: "gemini-2.5-flash"}},
		{"google", "gemini-2.5-flash-lite",
			Result{Provider: "gcp.gemini", Model: "gemini-2.5-flash-lite"}},
		// Azure deployment names, per tenant.
		{"azure.ai.openai", "prod-chat", Result{Provider: Azure, Model: "gpt-4o"}},
		{"azure", "SUMMARIZER-EU", Result{Provider: Azure, Model: "gpt-4.1-mini"}},
		{"", "azure/prod-chat", Result{Provider: Azure, Model: "gpt-4o"}},
		{"azure.ai.openai", "gpt-4o-2024-11-20", Result{Provider: Azure, Model: "gpt-4o"}},
		{"azure_openai", "gpt-35-turbo", Result{Provider: Azure, Model: "gpt-35-turbo"}},
		// Other first parties.
		{"mistral_ai", "codestral-latest", Result{Provider: "mistral_ai", Model: "codestral"}},
		{"cohere", "command-r-08-2024", Result{Provider: "cohere", Model: "command-r"}},
		{"x_ai", "grok-4-0709", Result{Provider: "x_ai", Model: "grok-4"}},
		{"deepseek", "deepseek-v4-flash", Result{Provider: "deepseek", Model: "deepseek-v4-flash"}},
	}
	if len(tests) < 40 {
		t.Fatalf("only %d spellings; the table must hold at least 40", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.provider+"|"+tt.model, func(t *testing.T) {
			got, err := r.Resolve(tt.provider, tt.model, deployments)
			if err != nil {
				t.Fatalf("Resolve(%q, %q): %v", tt.provider, tt.model, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Resolve(%q, %q) (-want +got):\n%s", tt.provider, tt.model, diff)
			}
		})
	}
}

func TestResolveUnknown(t *testing.T) {
	r := newResolver(t)
	tests := []struct{ provider, model string }{
		{"openai", "gpt-9-ultra"},
		{"", ""},
		{"anthropic", "gpt-4o"},              // real model, wrong provider
		{"azure.ai.openai", "my-deployment"}, // deployment not in the tenant table
		{"", "claude-opus-4-5-v9:9"},         // not a Bedrock id without a vendor
	}
	for _, tt := range tests {
		_, err := r.Resolve(tt.provider, tt.model, nil)
		if !errors.Is(err, ErrUnknownModel) {
			t.Errorf("Resolve(%q, %q) err = %v, want ErrUnknownModel", tt.provider, tt.model, err)
		}
	}
}
