package loadgen

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// newExporter builds the SDK's OTLP exporter for the configured protocol.
// It sends the key as an OTel exporter does: in a header on every export.
func newExporter(ctx context.Context, cfg Config) (sdktrace.SpanExporter, error) {
	headers := map[string]string{cfg.KeyHeader: keyValue(cfg)}
	endpoint := cfg.otlpEndpoint()
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch cfg.Protocol {
	case ProtocolHTTP:
		exp, err = otlptracehttp.New(ctx, httpOptions(cfg, endpoint, headers)...)
	default:
		exp, err = otlptracegrpc.New(ctx, grpcOptions(cfg, endpoint, headers)...)
	}
	if err != nil {
		return nil, fmt.Errorf("creating the otlp/%s exporter for %s: %w", cfg.Protocol, endpoint, err)
	}
	return exp, nil
}

func grpcOptions(cfg Config, endpoint string, headers map[string]string) []otlptracegrpc.Option {
	opts := []otlptracegrpc.Option{
		otlptracegrpc.WithHeaders(headers),
		otlptracegrpc.WithCompressor("gzip"),
	}
	if strings.Contains(endpoint, "://") {
		opts = append(opts, otlptracegrpc.WithEndpointURL(endpoint))
	} else {
		opts = append(opts, otlptracegrpc.WithEndpoint(endpoint))
	}
	if cfg.Insecure {
		opts = append(opts, otlptracegrpc.WithInsecure())
	}
	return opts
}

func httpOptions(cfg Config, endpoint string, headers map[string]string) []otlptracehttp.Option {
	opts := []otlptracehttp.Option{
		otlptracehttp.WithHeaders(headers),
		otlptracehttp.WithCompression(otlptracehttp.GzipCompression),
	}
	if strings.Contains(endpoint, "://") {
		opts = append(opts, otlptracehttp.WithEndpointURL(endpoint))
	} else {
		opts = append(opts, otlptracehttp.WithEndpoint(endpoint))
	}
	if cfg.Insecure {
		opts = append(opts, otlptracehttp.WithInsecure())
	}
	return opts
}

// keyValue is the key header's value: a bearer credential in
// authorization, the bare key in any other header.
func keyValue(cfg Config) string {
	if strings.EqualFold(cfg.KeyHeader, "authorization") {
		return "Bearer " + cfg.APIKey
	}
	return cfg.APIKey
}

// countingExporter counts what the real exporter delivered and logs what
// it could not, instead of the SDK's global error handler. Every tracer
// provider shares it, so Shutdown leaves the real exporter open: the
// generator closes it once, after the last provider.
type countingExporter struct {
	next     sdktrace.SpanExporter
	log      *slog.Logger
	exported atomic.Int64
	failed   atomic.Int64
}

func (e *countingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if err := e.next.ExportSpans(ctx, spans); err != nil {
		e.failed.Add(int64(len(spans)))
		e.log.WarnContext(ctx, "otlp export failed",
			slog.Int("spans", len(spans)), slog.Any("error", err))
		return err
	}
	e.exported.Add(int64(len(spans)))
	return nil
}

func (e *countingExporter) Shutdown(context.Context) error { return nil }

// idGenerator draws trace and span ids from a seeded source, so that a
// seed fixes the ids too. The SDK may call it from several goroutines.
type idGenerator struct {
	mu  sync.Mutex
	rng *rand.Rand
}

func newIDGenerator(seed int64) *idGenerator {
	return &idGenerator{rng: rand.New(rand.NewPCG(uint64(seed)^0x5851f42d4c957f2d, uint64(seed)))}
}

func (g *idGenerator) NewIDs(context.Context) (trace.TraceID, trace.SpanID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var tid trace.TraceID
	for !tid.IsValid() {
		fill(g.rng, tid[:])
	}
	return tid, g.spanID()
}

func (g *idGenerator) NewSpanID(context.Context, trace.TraceID) trace.SpanID {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.spanID()
}

func (g *idGenerator) spanID() trace.SpanID {
	var sid trace.SpanID
	for !sid.IsValid() {
		fill(g.rng, sid[:])
	}
	return sid
}

func fill(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}
