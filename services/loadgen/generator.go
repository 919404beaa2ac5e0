package loadgen

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// finishTimeout bounds the final flush, which runs even after the caller's
// context ended so that what was generated is delivered.
const finishTimeout = 30 * time.Second

// generator is one generation: its planner, its SDK pipeline and where
// outcomes go.
type generator struct {
	cfg      Config
	log      *slog.Logger
	planner  *planner
	exporter sdktrace.SpanExporter
	counted  *countingExporter
	emitter  *emitter
	outcomes *outcomeReporter // nil when outcomes are off
	stats    Stats
}

func newGenerator(ctx context.Context, cfg Config, logger *slog.Logger) (*generator, error) {
	exp, err := newExporter(ctx, cfg)
	if err != nil {
		return nil, err
	}
	g := &generator{
		cfg:      cfg,
		log:      logger,
		planner:  newPlanner(cfg.Seed),
		exporter: exp,
		counted:  &countingExporter{next: exp, log: logger},
		stats:    Stats{Seed: cfg.Seed},
	}
	g.emitter = newEmitter(g.counted, newIDGenerator(cfg.Seed))
	if cfg.Outcomes {
		if g.outcomes, err = newOutcomeReporter(cfg, logger); err != nil {
			_ = exp.Shutdown(ctx) // Nothing was exported yet.
			return nil, err
		}
	}

	logger.InfoContext(ctx, "generating agent traffic",
		slog.String("otlp_endpoint", cfg.otlpEndpoint()), slog.String("protocol", cfg.Protocol),
		slog.Float64("runs_per_second", cfg.Rate), slog.Int("count", cfg.Count),
		slog.Duration("duration", cfg.Duration), slog.Int64("seed", cfg.Seed))
	return g, nil
}

// loop emits runs at the configured rate until the count or the duration
// is reached or ctx ends. When it falls behind it catches up without
// sleeping, so the average rate holds.
func (g *generator) loop(ctx context.Context) {
	start := time.Now()
	interval := time.Duration(float64(time.Second) / g.cfg.Rate)
	for i := 0; g.cfg.Count == 0 || i < g.cfg.Count; i++ {
		due := start.Add(time.Duration(i) * interval)
		if g.cfg.Duration > 0 && due.Sub(start) >= g.cfg.Duration {
			return
		}
		if !sleepUntil(ctx, due) {
			return
		}
		g.emitRun(ctx)
	}
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

func (g *generator) emitRun(ctx context.Context) {
	r := g.planner.next()
	end := time.Now()
	traceID, spans := g.emitter.emit(ctx, r, end)

	g.stats.Runs++
	g.stats.Spans += spans
	if r.loop {
		g.stats.ToolLoops++
	}
	if r.failed {
		g.stats.FailedRuns++
	}
	if r.outcome != nil && g.outcomes != nil {
		g.stats.Outcomes++
		g.outcomes.add(ctx, outcomeOf(r, traceID, end))
	}
}

// finish flushes the spans and outcomes, closes the exporter and logs the
// summary.
func (g *generator) finish(ctx context.Context) (Stats, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()

	var flushErr error
	if err := g.emitter.shutdown(ctx); err != nil {
		flushErr = err
	}
	if err := g.exporter.Shutdown(ctx); err != nil {
		g.log.WarnContext(ctx, "closing the otlp exporter", slog.Any("error", err))
	}
	if g.outcomes != nil {
		g.outcomes.close(ctx)
		g.stats.OutcomesReported, g.stats.OutcomesFailed = g.outcomes.reported, g.outcomes.failed
	}
	g.stats.SpansExported = int(g.counted.exported.Load())
	g.stats.SpansFailed = int(g.counted.failed.Load())

	g.logSummary(ctx)
	return g.stats, g.incomplete(flushErr)
}

func (g *generator) incomplete(flushErr error) error {
	s := g.stats
	if s.SpansExported == s.Spans && s.OutcomesFailed == 0 && flushErr == nil {
		return nil
	}
	err := fmt.Errorf("%w: %d of %d spans exported, %d outcomes failed",
		ErrIncomplete, s.SpansExported, s.Spans, s.OutcomesFailed)
	if flushErr != nil {
		err = fmt.Errorf("%w (flushing: %w)", err, flushErr)
	}
	return err
}

func (g *generator) logSummary(ctx context.Context) {
	s := g.stats
	g.log.InfoContext(ctx, "agent traffic generated",
		slog.Int64("seed", s.Seed), slog.Int("runs", s.Runs), slog.Int("spans", s.Spans),
		slog.Int("spans_exported", s.SpansExported), slog.Int("spans_failed", s.SpansFailed),
		slog.Int("outcomes", s.Outcomes), slog.Int("outcomes_reported", s.OutcomesReported),
		slog.Int("outcomes_failed", s.OutcomesFailed), slog.Int("tool_loops", s.ToolLoops),
		slog.Int("failed_runs", s.FailedRuns))
}
