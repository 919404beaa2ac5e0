package genai

import (
	"fmt"
	"strings"

	"github.com/costplane/costplane/libs/usage"
)

// Config says how spans map to events where the conventions leave a
// choice to the deployment.
type Config struct {
	// SessionAttrs, CustomerAttrs and UserAttrs name the span attributes
	// that carry the session, customer and user ids, first match wins.
	// Customer and user fall back to resource attributes of the same
	// names.
	SessionAttrs  []string
	CustomerAttrs []string
	UserAttrs     []string
	// Labels copies attributes (span first, then resource) into labels.
	Labels []LabelRule
	// Conventions overrides, per canonical provider, how the token counts
	// of that provider's spans are read. The default is the OpenTelemetry
	// convention (cache inside input, reasoning inside output), refined by
	// a reported total token count when there is one.
	Conventions map[string]usage.Convention
}

// LabelRule copies the attribute Attr into the label Label.
type LabelRule struct {
	Label string
	Attr  string
}

// MaxLabelRules bounds Config.Labels; it leaves room under usage.MaxLabels
// for the labels costplane adds itself.
const MaxLabelRules = 32

// ParseLabelRules reads rules written "label=attribute", or "attribute"
// for a label named like the attribute.
func ParseLabelRules(specs []string) ([]LabelRule, error) {
	if len(specs) > MaxLabelRules {
		return nil, fmt.Errorf("at most %d label attributes, got %d", MaxLabelRules, len(specs))
	}
	rules := make([]LabelRule, 0, len(specs))
	for _, spec := range specs {
		label, attr, ok := strings.Cut(spec, "=")
		if !ok {
			attr = label
		}
		label, attr = strings.TrimSpace(label), strings.TrimSpace(attr)
		if label == "" || attr == "" {
			return nil, fmt.Errorf("label attribute %q: want label=attribute or attribute", spec)
		}
		rules = append(rules, LabelRule{Label: label, Attr: attr})
	}
	return rules, nil
}

// conventionNames are the conventions a deployment can name.
var conventionNames = map[string]usage.Convention{
	"otel":      usage.ConventionOTel,
	"openai":    usage.ConventionOpenAI,
	"anthropic": usage.ConventionAnthropic,
	"bedrock":   usage.ConventionBedrock,
	"gemini":    usage.ConventionGemini,
}

// ParseConventions reads overrides written "provider=convention", where
// convention is otel, openai, anthropic, bedrock or gemini, for example
// "anthropic=anthropic" when an instrumentation copies Anthropic's raw
// counts (cache beside input) into gen_ai.usage.input_tokens.
func ParseConventions(specs []string) (map[string]usage.Convention, error) {
	out := make(map[string]usage.Convention, len(specs))
	for _, spec := range specs {
		provider, name, ok := strings.Cut(spec, "=")
		c, known := conventionNames[strings.ToLower(strings.TrimSpace(name))]
		if !ok || !known || strings.TrimSpace(provider) == "" {
			return nil, fmt.Errorf(
				"token convention %q: want provider=otel|openai|anthropic|bedrock|gemini", spec)
		}
		out[usage.CanonicalProvider(provider)] = c
	}
	return out, nil
}
