package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrUnavailable means Kafka did not acknowledge records in time: brokers
// are unreachable, the cluster cannot take writes, or the produce timed
// out. The records may or may not have been written, so callers answer
// with a retryable error (HTTP 503, gRPC UNAVAILABLE) and rely on event
// ids to make the client's retry harmless.
var ErrUnavailable = errors.New("kafka unavailable")

// Producer writes records with acks=all and idempotence, and reports
// success only once Kafka has acknowledged every record (DESIGN §5).
type Producer struct {
	cl      *kgo.Client
	metrics *metrics
	cfg     Config
}

// NewProducer builds a producer on cfg's brokers. It does not connect
// until the first Produce.
func NewProducer(cfg Config, opts ...Option) (*Producer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("creating producer: %w", err)
	}
	o := buildOptions(opts)
	m, err := newMetrics(o.registerer)
	if err != nil {
		return nil, fmt.Errorf("creating producer: %w", err)
	}

	kopts := append(producerOpts(o.log), o.kgoOpts...)
	cl, err := NewClient(cfg, kopts...)
	if err != nil {
		return nil, err
	}

	return &Producer{cl: cl, metrics: m, cfg: cfg}, nil
}

// producerOpts pin the settings DESIGN §5 requires. franz-go defaults to
// them already; stating them keeps a future default change from
// weakening the guarantee.
func producerOpts(log *slog.Logger) []kgo.Opt {
	// No RecordDeliveryTimeout: franz-go counts it from the record's
	// timestamp, which a connector may set to an event time hours ago.
	// Each Produce's deadline fails its unsent records instead.
	return []kgo.Opt{
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.WithLogger(kgoLogger{log: log}),
	}
}

// Client returns the underlying client, for topic administration.
func (p *Producer) Client() *kgo.Client { return p.cl }

// Close flushes nothing: every Produce already waited for its records.
func (p *Producer) Close() { p.cl.Close() }

// Produce writes recs and returns once Kafka acknowledged all of them, or
// with the first failure. A failure wraps ErrUnavailable when retrying
// later may succeed; other failures (a record too large, a missing
// permission) are returned without it. The wait is bounded by ctx and by
// Config.ProduceTimeout.
func (p *Producer) Produce(ctx context.Context, recs ...*kgo.Record) error {
	if len(recs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.ProduceTimeout)
	defer cancel()

	err := produceAll(ctx, p.cl, recs)
	p.count(recs, err)
	if err != nil {
		return fmt.Errorf("producing %d records: %w", len(recs), classify(err))
	}

	return nil
}

func (p *Producer) count(recs []*kgo.Record, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	// Counted per topic, not per record: resolving a labelled series is
	// what costs, and a call usually writes one topic.
	perTopic := make(map[string]int, 1)
	for _, r := range recs {
		perTopic[r.Topic]++
	}
	for topic, n := range perTopic {
		p.metrics.produced.WithLabelValues(topic, result).Add(float64(n))
	}
}

// produceAll produces recs and waits for every acknowledgement, or for
// ctx. ProduceSync alone is not enough: an idempotent client keeps an
// in-flight record until the broker answers, and an ingestor must answer
// its own caller in time even when the broker never does. ProduceSync is
// still the one to call, since it sends at once instead of lingering.
func produceAll(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) error {
	done := make(chan error, 1)
	go func() { done <- cl.ProduceSync(ctx, recs...).FirstErr() }()

	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// classify adds ErrUnavailable to errors that mean "not now".
func classify(err error) error {
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, context.Canceled),
		errors.Is(err, kgo.ErrRecordTimeout),
		errors.Is(err, kgo.ErrRecordRetries),
		errors.Is(err, kgo.ErrMaxBuffered),
		errors.Is(err, kgo.ErrClientClosed),
		errors.As(err, &netErr),
		kerr.IsRetriable(err):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}
