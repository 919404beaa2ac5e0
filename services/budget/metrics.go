package budget

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costplane/costplane/services/budget/internal/alerts"
	"github.com/costplane/costplane/services/budget/internal/live"
)

type metrics struct {
	raised    prometheus.Counter
	published *prometheus.CounterVec
	checks    *prometheus.CounterVec
	webhooks  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{
		raised: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "costplane_budget_alerts_raised_total",
			Help: "Budget alerts raised (one per budget, period and threshold).",
		}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "costplane_budget_alerts_published_total",
			Help: "Budget alert records sent to the alert topic, by result.",
		}, []string{"result"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "costplane_budget_checks_total",
			Help: "Budget checks answered, by decision.",
		}, []string{"decision"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "costplane_budget_webhook_attempts_total",
			Help: "Webhook delivery attempts, by result (delivered, retry, failed).",
		}, []string{"result"}),
	}
	for _, c := range []prometheus.Collector{m.raised, m.published, m.checks, m.webhooks} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering budget metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) check(d live.Decision) {
	switch d {
	case live.Deny:
		m.checks.WithLabelValues("deny").Inc()
	case live.Warn:
		m.checks.WithLabelValues("warn").Inc()
	default:
		m.checks.WithLabelValues("allow").Inc()
	}
}

func (m *metrics) webhook(result string) { m.webhooks.WithLabelValues(result).Inc() }

// countingProducer counts what the publisher sends.
type countingProducer struct {
	alerts.Producer
	m *metrics
}

func (s *Service) countingProducer(p alerts.Producer) alerts.Producer {
	return countingProducer{Producer: p, m: s.metrics}
}

func (c countingProducer) Produce(ctx context.Context, recs ...*kgo.Record) error {
	err := c.Producer.Produce(ctx, recs...)
	result := "ok"
	if err != nil {
		result = "error"
	}
	c.m.published.WithLabelValues(result).Add(float64(len(recs)))
	return err
}
