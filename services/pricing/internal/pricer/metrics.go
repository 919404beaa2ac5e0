package pricer

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/pricing/catalog"
	"github.com/costplane/costplane/services/pricing/resolve"
)

// Metrics are the pricing consumer's Prometheus series.
type Metrics struct {
	events   *prometheus.CounterVec
	coverage *prometheus.CounterVec
	batch    prometheus.Histogram
	delay    prometheus.Histogram
}

// Label values of the status label.
const (
	statusPriced   = "priced"
	statusUnpriced = "unpriced"
	statusReported = "reported"
	statusRejected = "rejected"
)

// Reasons of the coverage metric's reason label.
const (
	reasonUnknownModel = "unknown_model"
	reasonNoPrice      = "no_price"
)

// NewMetrics registers the metrics with reg, or reuses those already
// registered there, so several pricers of one process share series.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "costplane_pricing_events_total",
			Help: "Usage events handled by the pricing consumer, by status: priced, " +
				"unpriced, reported (only the source's cost) or rejected (to the DLQ).",
		}, []string{"status"}),
		coverage: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "costplane_pricing_coverage_events_total",
			Help: "Priced coverage: events by catalog provider and model, status, and for " +
				"events without a computed price the reason (unknown_model or no_price). " +
				"Unknown ids are labelled as sent until a bound, then \"other\".",
		}, []string{"provider", "model", "status", "reason"}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "costplane_pricing_batch_seconds",
			Help:    "Time to price one consumed batch, decoding and encoding included.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 3, 12),
		}),
		delay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "costplane_pricing_delay_seconds",
			Help:    "Time from a usage record's timestamp to its pricing.",
			Buckets: prometheus.ExponentialBuckets(0.005, 3, 12),
		}),
	}

	var err error
	if m.events, err = register(reg, m.events); err != nil {
		return nil, err
	}
	if m.coverage, err = register(reg, m.coverage); err != nil {
		return nil, err
	}
	if m.batch, err = register(reg, m.batch); err != nil {
		return nil, err
	}
	if m.delay, err = register(reg, m.delay); err != nil {
		return nil, err
	}
	return m, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	if err != nil {
		return c, fmt.Errorf("registering pricing metrics: %w", err)
	}
	return c, nil
}

// tally adds up one batch, so that each series is touched once per batch
// rather than once per event.
type tally struct {
	m        *Metrics
	rejected int
	coverage map[coverageKey]int
	delays   []time.Duration
}

func (m *Metrics) newTally() *tally {
	return &tally{m: m, coverage: make(map[coverageKey]int, 16)}
}

func (t *tally) add(k coverageKey, delay time.Duration) {
	t.coverage[k]++
	t.delays = append(t.delays, delay)
}

func (t *tally) flush(took time.Duration) {
	byStatus := map[string]int{statusRejected: t.rejected}
	for k, n := range t.coverage {
		t.m.coverage.WithLabelValues(k.provider, k.model, k.status, k.reason).Add(float64(n))
		byStatus[k.status] += n
	}
	for status, n := range byStatus {
		if n > 0 {
			t.m.events.WithLabelValues(status).Add(float64(n))
		}
	}
	for _, d := range t.delays {
		t.m.delay.Observe(d.Seconds())
	}
	t.m.batch.Observe(took.Seconds())
}

// coverageKey is one series of the coverage metric.
type coverageKey struct {
	provider, model, status, reason string
}

// Bounds on label values, so that a source sending random model ids
// cannot blow up the series count.
const (
	maxMemo       = 10_000
	maxRawLabels  = 200
	labelOther    = "other"
	labelNoneSent = "none"
)

// modelLabel is how an event's provider and model are labelled.
type modelLabel struct {
	provider, model string
	// resolved says the catalog knows the model.
	resolved bool
}

// labeler maps the provider and model an event sends to label values,
// memoizing the resolution per spelling.
type labeler struct {
	resolver *resolve.Resolver
	memo     sync.Map // spelling -> modelLabel
	memoLen  atomic.Int64
	raw      sync.Map // raw label value -> struct{}
	rawLen   atomic.Int64
}

func newLabeler(r *resolve.Resolver) *labeler {
	return &labeler{resolver: r}
}

func (l *labeler) coverage(ev *eventv1.UsageEvent, pu *eventv1.PricedUsage) coverageKey {
	ml := l.model(ev)
	k := coverageKey{provider: ml.provider, model: ml.model}
	switch pu.GetPricingStatus() {
	case eventv1.PricingStatus_PRICING_STATUS_PRICED:
		k.status = statusPriced
		return k
	case eventv1.PricingStatus_PRICING_STATUS_REPORTED:
		k.status = statusReported
	default:
		k.status = statusUnpriced
	}
	k.reason = reasonNoPrice
	if !ml.resolved {
		k.reason = reasonUnknownModel
	}
	return k
}

func (l *labeler) model(ev *eventv1.UsageEvent) modelLabel {
	key := ev.GetProvider() + "\x00" + ev.GetModel() + "\x00" + ev.GetModelVersion()
	if v, ok := l.memo.Load(key); ok {
		return v.(modelLabel)
	}

	ml := l.resolve(ev)
	if l.memoLen.Load() < maxMemo {
		if _, loaded := l.memo.LoadOrStore(key, ml); !loaded {
			l.memoLen.Add(1)
		}
	}
	return ml
}

func (l *labeler) resolve(ev *eventv1.UsageEvent) modelLabel {
	res, err := l.resolver.Resolve(ev.GetProvider(), ev.GetModel(), nil)
	if err != nil && ev.GetModelVersion() != "" {
		res, err = l.resolver.Resolve(ev.GetProvider(), ev.GetModelVersion(), nil)
	}
	if err == nil {
		return modelLabel{provider: res.Provider, model: res.Model, resolved: true}
	}

	provider := l.resolver.CanonicalProvider(ev.GetProvider())
	if provider == "" {
		provider = l.bounded(ev.GetProvider())
	}
	return modelLabel{provider: provider, model: l.bounded(ev.GetModel())}
}

// bounded returns a raw id as a label value while fewer than maxRawLabels
// distinct ones have been used, and "other" after that.
func (l *labeler) bounded(id string) string {
	id = catalog.NormalizeID(id)
	if id == "" {
		return labelNoneSent
	}
	if _, ok := l.raw.Load(id); ok {
		return id
	}
	if l.rawLen.Load() >= maxRawLabels {
		return labelOther
	}
	if _, loaded := l.raw.LoadOrStore(id, struct{}{}); !loaded {
		l.rawLen.Add(1)
	}
	return id
}
