// Package loadgen imitates a fleet of instrumented AI agents. It plans
// agent runs — several apps and agents, multi-turn conversations, model
// calls across OpenAI, Anthropic, Bedrock and Gemini with prompt caching
// and reasoning tokens, tool calls and the odd runaway tool loop — and
// records them through the real OpenTelemetry Go SDK, whose OTLP exporter
// sends them to costplane's receiver (or any OTLP endpoint) with the
// tenant's API key. Runs that succeed report business outcomes
// (ticket_resolved, workflow_completed, meeting_booked) through
// IngestService.ReportOutcomes.
//
// The spans follow the GenAI semantic conventions as services/ingest-otlp
// reads them: invoke_agent, chat (generate_content for Gemini) and
// execute_tool spans; token counts with cached tokens inside the input and
// reasoning inside the output. Nothing names a tenant: the key decides.
//
// With a seed the traffic is the same every time: the runs, their token
// counts and their trace and span ids. Timestamps follow the wall clock,
// each run ending when it is emitted.
//
//	err := loadgen.Run(ctx, cfg, logger)
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"
)

// OTLP protocols.
const (
	ProtocolGRPC = "grpc"
	ProtocolHTTP = "http"
)

// Config says where the traffic goes and how much of it there is. Flags
// have short names (-key, -rate, ...) for use on the command line.
type Config struct {
	// OTLPEndpoint is host:port, or a URL (http://host:4318/v1/traces).
	// Empty means 127.0.0.1:4317 for grpc and 127.0.0.1:4318 for http.
	OTLPEndpoint string `env:"LOADGEN_OTLP_ENDPOINT" flag:"endpoint" help:"OTLP receiver"`
	Protocol     string `env:"LOADGEN_PROTOCOL" flag:"protocol" default:"grpc" help:"grpc or http"`
	// APIEndpoint serves IngestService, which takes the outcomes.
	APIEndpoint string `env:"LOADGEN_API_ENDPOINT" flag:"api-endpoint" default:"127.0.0.1:9090"`
	Outcomes    bool   `env:"LOADGEN_OUTCOMES" flag:"outcomes" default:"true" help:"send outcomes"`
	// APIKey is a tenant key with the ingest scope; it decides the tenant.
	APIKey string `env:"LOADGEN_API_KEY" flag:"key" help:"tenant API key"`
	// KeyHeader carries the key: "Bearer <key>" in authorization, the
	// bare key in any other header (such as x-costplane-key).
	KeyHeader string `env:"LOADGEN_KEY_HEADER" flag:"key-header" default:"authorization"`
	Insecure  bool   `env:"LOADGEN_INSECURE" flag:"insecure" default:"true" help:"no TLS"`

	Rate float64 `env:"LOADGEN_RATE" flag:"rate" default:"5" help:"agent runs per second"`
	// Duration and Count both zero run until the context ends.
	Duration time.Duration `env:"LOADGEN_DURATION" flag:"duration" default:"0s" help:"0: no limit"`
	Count    int           `env:"LOADGEN_COUNT" flag:"count" default:"0" help:"runs; 0: no limit"`
	// Seed zero draws a seed, which the logs name so that it can be reused.
	Seed int64 `env:"LOADGEN_SEED" flag:"seed" default:"0" help:"random seed; 0 picks one"`
}

// DefaultConfig returns the settings the struct tags default to, for hosts
// that build the config in code; only the key is missing.
func DefaultConfig() Config {
	return Config{
		Protocol:    ProtocolGRPC,
		APIEndpoint: "127.0.0.1:9090",
		Outcomes:    true,
		KeyHeader:   "authorization",
		Insecure:    true,
		Rate:        5,
	}
}

// maxRate bounds Rate: beyond it one goroutine cannot plan runs in time.
const maxRate = 10_000

// Validate checks that the settings can work.
func (c Config) Validate() error {
	var errs []error
	if c.Protocol != ProtocolGRPC && c.Protocol != ProtocolHTTP {
		errs = append(errs, errors.New("LOADGEN_PROTOCOL must be grpc or http"))
	}
	if c.APIKey == "" {
		errs = append(errs, errors.New("LOADGEN_API_KEY must be set: the key decides the tenant"))
	}
	if c.KeyHeader == "" {
		errs = append(errs, errors.New("LOADGEN_KEY_HEADER must not be empty"))
	}
	if c.Outcomes && c.APIEndpoint == "" {
		errs = append(errs, errors.New("LOADGEN_API_ENDPOINT must be set to report outcomes"))
	}
	if c.Rate <= 0 || c.Rate > maxRate {
		errs = append(errs, fmt.Errorf("LOADGEN_RATE must be above 0 and at most %d", maxRate))
	}
	if c.Duration < 0 || c.Count < 0 {
		errs = append(errs, errors.New("LOADGEN_DURATION and LOADGEN_COUNT must not be negative"))
	}
	return errors.Join(errs...)
}

func (c Config) otlpEndpoint() string {
	switch {
	case c.OTLPEndpoint != "":
		return c.OTLPEndpoint
	case c.Protocol == ProtocolHTTP:
		return "127.0.0.1:4318"
	default:
		return "127.0.0.1:4317"
	}
}

// Stats is what a generation did.
type Stats struct {
	Seed  int64
	Runs  int
	Spans int
	// SpansExported were acknowledged by the receiver; SpansFailed were
	// not, after the exporter's own retries.
	SpansExported, SpansFailed int
	// Outcomes were planned; OutcomesReported were accepted by the API.
	Outcomes, OutcomesReported, OutcomesFailed int
	ToolLoops, FailedRuns                      int
}

// ErrIncomplete means some spans or outcomes did not reach costplane.
var ErrIncomplete = errors.New("load generation incomplete")

// Run generates load until the count or duration is reached, or ctx ends,
// then flushes what is buffered and logs a summary.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	_, err := Generate(ctx, cfg, logger)
	return err
}

// Generate is Run that also returns what it did. The error wraps
// ErrIncomplete when some spans or outcomes were not delivered.
func Generate(ctx context.Context, cfg Config, logger *slog.Logger) (Stats, error) {
	if err := cfg.Validate(); err != nil {
		return Stats{}, fmt.Errorf("checking loadgen config: %w", err)
	}
	if cfg.Seed == 0 {
		cfg.Seed = rand.Int64N(1<<62) + 1
	}

	g, err := newGenerator(ctx, cfg, logger)
	if err != nil {
		return Stats{}, err
	}
	g.loop(ctx)
	return g.finish(ctx)
}
