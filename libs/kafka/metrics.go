package kafka

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Batch results, the result label of costplane_kafka_batches_total.
const (
	resultCommitted = "committed"
	// resultFailed: the handler, PostgreSQL or Kafka failed; the batch
	// is retried.
	resultFailed = "failed"
	// resultFenced: the stored offsets moved under the batch (another
	// member took the partition); the batch is dropped and re-read.
	resultFenced = "fenced"
	// resultAborted: a rebalance took partitions during a Kafka
	// transaction, which was aborted; the new owner redoes the batch.
	resultAborted = "aborted"
)

type metrics struct {
	produced *prometheus.CounterVec
	consumed *prometheus.CounterVec
	rejected *prometheus.CounterVec
	batches  *prometheus.CounterVec
	duration *prometheus.HistogramVec
	lag      *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	r := registrar{reg: reg}
	m := &metrics{
		produced: register(&r, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "costplane_kafka_produced_records_total",
			Help: "Records produced, by topic and result (ok or error).",
		}, []string{"topic", "result"})),
		consumed: register(&r, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "costplane_kafka_consumed_records_total",
			Help: "Records handled and committed, rejected ones included.",
		}, []string{"group", "topic"})),
		rejected: register(&r, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "costplane_kafka_rejected_records_total",
			Help: "Records a handler rejected and that were sent to the dead-letter topic.",
		}, []string{"group", "topic"})),
		batches: register(&r, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "costplane_kafka_batches_total",
			Help: "Consumed batches by result: committed, failed (retried), fenced or aborted.",
		}, []string{"group", "result"})),
		duration: register(&r, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "costplane_kafka_batch_duration_seconds",
			Help:    "Time from poll to commit of a batch, committed or not.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"group"})),
		lag: register(&r, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "costplane_kafka_consumer_lag",
			Help: "Records behind the last stable offset at the last fetch, per partition.",
		}, []string{"group", "topic", "partition"})),
	}
	if r.err != nil {
		return nil, fmt.Errorf("registering kafka metrics: %w", r.err)
	}

	return m, nil
}

// registrar keeps the first registration error, so that newMetrics reads
// as a list of metrics rather than a list of error checks.
type registrar struct {
	reg prometheus.Registerer
	err error
}

// register returns the collector already registered under c's name when
// there is one, so that several producers and runners in one process (the
// all-in-one binary) share series instead of failing.
func register[C prometheus.Collector](r *registrar, c C) C {
	err := r.reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
		err = fmt.Errorf("a collector of another type holds the name: %w", err)
	}
	if err != nil && r.err == nil {
		r.err = err
	}

	return c
}
