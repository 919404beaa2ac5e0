package ingestapi

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	accepted *prometheus.CounterVec
	rejected *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "costplane_ingest_api_accepted_total",
			Help: "Usage events and outcomes acknowledged by Kafka, by kind.",
		}, []string{"kind"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "costplane_ingest_api_rejected_total",
			Help: "Usage events and outcomes not accepted, by kind and reason. A valid " +
				"item of a batch rejected for others' problems counts as batch_rejected.",
		}, []string{"kind", "reason"}),
	}
	for _, c := range []prometheus.Collector{m.accepted, m.rejected} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering ingest-api metrics: %w", err)
		}
	}
	return m, nil
}

// reject counts n items of kind rejected for reason.
func (m *metrics) reject(kind, reason string, n int) {
	if n > 0 {
		m.rejected.WithLabelValues(kind, reason).Add(float64(n))
	}
}
