package ingestotlp

import (
	"errors"
	"fmt"
	"time"

	"github.com/costplane/costplane/services/ingest-otlp/internal/genai"
)

// Config holds the receiver's settings. Read it with libs/config; every
// default works on the embedded stack.
type Config struct {
	GRPCAddr string `env:"OTLP_GRPC_ADDR" default:":4317" help:"OTLP/gRPC address"`
	HTTPAddr string `env:"OTLP_HTTP_ADDR" default:":4318" help:"OTLP/HTTP address"`
	// MetricsAddr empty serves no /metrics, for hosts that serve the
	// registry themselves.
	MetricsAddr string `env:"METRICS_ADDR" default:":9102" help:"/metrics address; empty: none"`
	// KeyHeader is read besides "authorization: Bearer <key>", for
	// exporters configured with a plain header. The host sets it from
	// auth.Config (AUTH_KEY_HEADER); empty means x-costplane-key.
	KeyHeader string

	// MaxBodyBytes bounds a request as sent and once decompressed.
	MaxBodyBytes int `env:"OTLP_MAX_BODY_BYTES" default:"16777216" help:"largest request"`
	// RetryAfter is the delay suggested when Kafka cannot take records.
	RetryAfter      time.Duration `env:"OTLP_RETRY_AFTER" default:"5s" help:"retry delay"`
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" default:"10s" help:"drain time"`

	// SessionAttributes name the span attributes holding the session id;
	// the first present wins. Customer and user attributes are looked up
	// on the span, then on the resource.
	SessionAttributes  []string `env:"OTLP_SESSION_ATTRIBUTES" default:"gen_ai.conversation.id,session.id" help:"session attributes"`
	CustomerAttributes []string `env:"OTLP_CUSTOMER_ATTRIBUTES" default:"customer.id" help:"customer attributes"`
	UserAttributes     []string `env:"OTLP_USER_ATTRIBUTES" default:"user.id,enduser.id" help:"user attributes"`
	// LabelAttributes copies attributes into labels: "label=attribute",
	// or "attribute" for a label of the same name.
	LabelAttributes []string `env:"OTLP_LABEL_ATTRIBUTES" default:"" help:"label attributes"`
	// TokenConventions overrides how a provider's token counts are read:
	// "provider=otel|openai|anthropic|bedrock|gemini".
	TokenConventions []string `env:"OTLP_TOKEN_CONVENTIONS" default:"" help:"token conventions"`

	// The trace cache stamps spans that arrive after their agent span;
	// zero traces turns it off and leaves attribution to the downstream
	// join. It holds at most TraceCacheSpans spans (about 300 bytes each).
	TraceCacheTraces   int `env:"OTLP_TRACE_CACHE_TRACES" default:"10000" help:"traces cached"`
	TraceCacheSpans    int `env:"OTLP_TRACE_CACHE_SPANS" default:"500000" help:"spans cached"`
	TraceCacheSpansPer int `env:"OTLP_TRACE_CACHE_SPANS_PER_TRACE" default:"2000" help:"per trace"`

	// Topic receives the events; the binary sets it from the Kafka
	// settings. Empty means costplane.usage.v1.
	Topic string
}

// Validate checks that the settings can work.
func (c Config) Validate() error {
	var errs []error
	if c.GRPCAddr == "" {
		errs = append(errs, errors.New("OTLP_GRPC_ADDR must not be empty"))
	}
	if c.HTTPAddr == "" {
		errs = append(errs, errors.New("OTLP_HTTP_ADDR must not be empty"))
	}
	if c.MaxBodyBytes < 1024 {
		errs = append(errs, errors.New("OTLP_MAX_BODY_BYTES must be at least 1024"))
	}
	if c.RetryAfter < time.Second {
		errs = append(errs, errors.New("OTLP_RETRY_AFTER must be at least 1s"))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("SHUTDOWN_TIMEOUT must be positive"))
	}
	if c.TraceCacheTraces < 0 || c.TraceCacheSpans < 0 || c.TraceCacheSpansPer < 0 {
		errs = append(errs, errors.New("OTLP_TRACE_CACHE_* settings must not be negative"))
	}
	if _, err := c.mapping(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// mapping returns the GenAI mapping settings.
func (c Config) mapping() (genai.Config, error) {
	labels, err := genai.ParseLabelRules(c.LabelAttributes)
	if err != nil {
		return genai.Config{}, fmt.Errorf("OTLP_LABEL_ATTRIBUTES: %w", err)
	}
	convs, err := genai.ParseConventions(c.TokenConventions)
	if err != nil {
		return genai.Config{}, fmt.Errorf("OTLP_TOKEN_CONVENTIONS: %w", err)
	}
	return genai.Config{
		SessionAttrs:  c.SessionAttributes,
		CustomerAttrs: c.CustomerAttributes,
		UserAttrs:     c.UserAttributes,
		Labels:        labels,
		Conventions:   convs,
	}, nil
}
