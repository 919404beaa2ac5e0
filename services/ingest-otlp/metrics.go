package ingestotlp

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/costplane/costplane/services/ingest-otlp/internal/genai"
)

// Outcomes of an export request, the outcome label of requests_total.
const (
	outcomeOK          = "ok"
	outcomePartial     = "partial"
	outcomeBadRequest  = "bad_request"
	outcomeTooLarge    = "too_large"
	outcomeUnsupported = "unsupported_media"
	outcomeUnavailable = "unavailable"
)

type metrics struct {
	requests  *prometheus.CounterVec
	spans     *prometheus.CounterVec
	rejected  *prometheus.CounterVec
	flags     *prometheus.CounterVec
	published prometheus.Counter
	duration  *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "costplane_ingest_otlp_requests_total",
			Help: "OTLP export requests by transport (grpc, http) and outcome.",
		}, []string{"transport", "outcome"}),
		spans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "costplane_ingest_otlp_spans_total",
			Help: "Spans of answered requests: accepted as events, skipped (no GenAI " +
				"meaning) or rejected (malformed).",
		}, []string{"result"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "costplane_ingest_otlp_rejected_spans_total",
			Help: "Malformed GenAI spans reported in partial_success, by reason.",
		}, []string{"reason"}),
		flags: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "costplane_ingest_otlp_normalization_flags_total",
			Help: "Events whose token counts could not be taken at face value, by flag.",
		}, []string{"flag"}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "costplane_ingest_otlp_events_published_total",
			Help: "Usage events acknowledged by Kafka.",
		}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "costplane_ingest_otlp_request_duration_seconds",
			Help:    "Time to answer an export request, Kafka acknowledgement included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"transport"}),
	}
	for _, c := range []prometheus.Collector{
		m.requests, m.spans, m.rejected, m.flags, m.published, m.duration,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering ingest-otlp metrics: %w", err)
		}
	}
	return m, nil
}

// answered counts the spans of a request whose events Kafka acknowledged.
// Requests that failed are counted only by outcome: their spans come back
// with the client's retry.
func (m *metrics) answered(res *genai.Result) {
	m.spans.WithLabelValues("accepted").Add(float64(len(res.Events)))
	m.spans.WithLabelValues("skipped").Add(float64(res.Skipped))
	m.spans.WithLabelValues("rejected").Add(float64(len(res.Rejected)))
	m.published.Add(float64(len(res.Events)))
	for _, r := range res.Rejected {
		m.rejected.WithLabelValues(r.Reason).Inc()
	}
	for f, n := range res.Flags {
		m.flags.WithLabelValues(string(f)).Add(float64(n))
	}
}
