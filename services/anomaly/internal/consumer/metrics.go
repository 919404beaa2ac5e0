package consumer

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/costplane/costplane/services/anomaly/internal/finding"
)

// Metrics are the detector's Prometheus series.
type Metrics struct {
	events     prometheus.Counter
	duplicates prometheus.Counter
	findings   *prometheus.CounterVec
	published  prometheus.Counter
	// Dropped counts findings the gate dropped, by kind and reason.
	Dropped  *prometheus.CounterVec
	openRuns prometheus.Gauge
	duration prometheus.Histogram
}

// NewMetrics registers the detector's metrics with reg; nil keeps them
// unregistered.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "costplane_anomaly_events_total",
			Help: "Priced usage events judged by the detectors.",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "costplane_anomaly_duplicate_events_total",
			Help: "Events dropped because their run had counted them already.",
		}),
		findings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "costplane_anomaly_findings_total",
			Help: "Conditions found, by anomaly kind, before muting and suppression.",
		}, []string{"kind"}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "costplane_anomaly_revisions_queued_total",
			Help: "Anomaly revisions written to the outbox by the detectors.",
		}),
		Dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "costplane_anomaly_findings_dropped_total",
			Help: "Findings not reported, by kind and reason (muted, suppressed).",
		}, []string{"kind", "reason"}),
		openRuns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "costplane_anomaly_open_runs",
			Help: "Runs held open in memory by this process.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "costplane_anomaly_batch_detect_seconds",
			Help:    "Time to judge one batch and stage its writes, commit excluded.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{
		m.events, m.duplicates, m.findings, m.published, m.Dropped, m.openRuns, m.duration,
	} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *Metrics) observeBatch(n int, _ *staged, took time.Duration) {
	m.duration.Observe(took.Seconds())
}

// committed counts what a committed batch did.
func (m *Metrics) committed(st *staged) {
	if st.batch != nil {
		m.duplicates.Add(float64(st.batch.Duplicates))
	}
	for _, f := range st.findings {
		m.findings.WithLabelValues(finding.KindLabel(f.Kind)).Inc()
	}
	m.published.Add(float64(st.published))
	m.events.Add(float64(st.events))
}
