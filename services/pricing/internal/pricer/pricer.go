// Package pricer is the pricing consumer's transform: usage records in,
// PricedUsage records out, for a kafka.TxnRunner that commits both in one
// Kafka transaction (DESIGN §5).
package pricer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/usage"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/pricing/pricebook"
)

// FirstVersion is the price_version of an event's first pricing.
const FirstVersion = 1

// Rates gives the pricing consumer each tenant's rates.
type Rates interface {
	// Get returns a tenant's rates, nil when it has none.
	Get(tenantID string) *pricebook.TenantRates
	// Check fails when the rates may miss a recent change; the batch is
	// then retried rather than priced at outdated rates.
	Check() error
}

// Config sets up a Pricer.
type Config struct {
	Book  *pricebook.Book
	Rates Rates
	// Topic receives the PricedUsage records.
	Topic string
	// Workers price one batch in parallel; 0 means GOMAXPROCS.
	Workers int
	Log     *slog.Logger
	// Metrics may be shared by several pricers; see NewMetrics.
	Metrics *Metrics
	// Now is the clock of priced_time; nil means time.Now.
	Now func() time.Time
}

// Pricer prices batches of usage records.
type Pricer struct {
	cfg    Config
	labels *labeler
}

// New checks cfg and returns a Pricer.
func New(cfg Config) (*Pricer, error) {
	if cfg.Book == nil || cfg.Rates == nil || cfg.Metrics == nil || cfg.Log == nil {
		return nil, errors.New("creating pricer: book, rates, metrics and logger are required")
	}
	if cfg.Topic == "" {
		return nil, errors.New("creating pricer: output topic is empty")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Pricer{cfg: cfg, labels: newLabeler(cfg.Book.Resolver())}, nil
}

// pricedHeader is the content-type header of every output record; records
// share it, and franz-go never writes to headers.
var pricedHeader = kgo.RecordHeader{
	Key:   kafka.HeaderContentType,
	Value: []byte(kafka.ContentTypeProto + "; messageType=costplane.event.v1.PricedUsage"),
}

var usageContentType = []byte(usage.ContentType)

// result is what pricing one record gave: an output record, or the
// reason it was rejected.
type result struct {
	out    *kgo.Record
	reject string
	cov    coverageKey
	delay  time.Duration
}

// Handle is a kafka.TxnHandler. Records it cannot decode or that break the
// UsageEvent invariants are rejected with the reason; every other record
// yields one PricedUsage with the same key, priced_id = event_id and
// price_version 1. It fails only when the tenant rates are stale.
func (p *Pricer) Handle(_ context.Context, recs []*kgo.Record) (
	[]*kgo.Record, []kafka.Reject, error) {
	if err := p.cfg.Rates.Check(); err != nil {
		return nil, nil, fmt.Errorf("pricing %d records: %w", len(recs), err)
	}
	start := p.cfg.Now()
	results := make([]result, len(recs))
	p.parallel(recs, results, start)

	out := make([]*kgo.Record, 0, len(recs))
	var rejects []kafka.Reject
	tally := p.cfg.Metrics.newTally()
	for i := range results {
		r := &results[i]
		if r.out == nil {
			rejects = append(rejects, kafka.Reject{Record: recs[i], Reason: r.reject})
			tally.rejected++
			continue
		}
		out = append(out, r.out)
		tally.add(r.cov, r.delay)
	}

	tally.flush(p.cfg.Now().Sub(start))
	if len(rejects) > 0 {
		p.cfg.Log.Warn("usage records rejected to the dead-letter topic",
			"count", len(rejects), "first_reason", rejects[0].Reason)
	}
	return out, rejects, nil
}

// minPerWorker keeps small batches on one goroutine, where starting more
// costs more than it saves.
const minPerWorker = 64

// parallel prices recs into results, in contiguous slices per worker.
func (p *Pricer) parallel(recs []*kgo.Record, results []result, now time.Time) {
	workers := min(p.cfg.Workers, (len(recs)+minPerWorker-1)/minPerWorker)
	if workers <= 1 {
		p.priceRange(recs, results, now)
		return
	}
	per := (len(recs) + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := 0; lo < len(recs); lo += per {
		hi := min(lo+per, len(recs))
		wg.Go(func() { p.priceRange(recs[lo:hi], results[lo:hi], now) })
	}
	wg.Wait()
}

func (p *Pricer) priceRange(recs []*kgo.Record, results []result, now time.Time) {
	pricedAt := timestamppb.New(now)
	for i, rec := range recs {
		p.priceOne(rec, &results[i], now, pricedAt)
	}
}

func (p *Pricer) priceOne(rec *kgo.Record, res *result, now time.Time,
	pricedAt *timestamppb.Timestamp) {
	ev, err := decode(rec)
	if err != nil {
		res.reject = "value: " + err.Error()
		return
	}
	if errs := usage.Validate(ev); len(errs) > 0 {
		res.reject = errs.Error()
		return
	}

	pu := p.cfg.Book.Price(ev, p.cfg.Rates.Get(ev.GetTenantId()))
	pu.PriceVersion = FirstVersion
	pu.PricedTime = pricedAt
	value, err := encode(pu, rec.Value)
	if err != nil {
		// A message built in memory always encodes; treat it as bad
		// input rather than wedging the partition.
		res.reject = "encoding priced usage: " + err.Error()
		return
	}

	res.out = &kgo.Record{
		Topic:   p.cfg.Topic,
		Key:     rec.Key,
		Value:   value,
		Headers: []kgo.RecordHeader{pricedHeader},
	}
	res.cov = p.labels.coverage(ev, pu)
	res.delay = now.Sub(rec.Timestamp)
}

// usageField is the field number of PricedUsage.usage.
var usageField = (&eventv1.PricedUsage{}).ProtoReflect().Descriptor().Fields().
	ByName("usage").Number()

// encode marshals pu with the usage bytes as received instead of encoding
// the decoded event again, which would cost more than pricing it. The
// wire format allows fields in any order, so readers see the same
// message, unknown fields of the usage included.
func encode(pu *eventv1.PricedUsage, usageBytes []byte) ([]byte, error) {
	pu.Usage = nil
	buf := make([]byte, 0, len(usageBytes)+512)
	buf, err := proto.MarshalOptions{}.MarshalAppend(buf, pu)
	if err != nil {
		return nil, err
	}
	buf = protowire.AppendTag(buf, usageField, protowire.BytesType)
	return protowire.AppendBytes(buf, usageBytes), nil
}

// decode reads a UsageEvent, taking a short cut when the content type is
// exactly what the ingestors write.
func decode(rec *kgo.Record) (*eventv1.UsageEvent, error) {
	for i := len(rec.Headers) - 1; i >= 0; i-- {
		h := rec.Headers[i]
		if h.Key != kafka.HeaderContentType {
			continue
		}
		if bytes.Equal(h.Value, usageContentType) {
			return usage.Unmarshal(rec.Value)
		}
		break
	}
	ev := &eventv1.UsageEvent{}
	if err := kafka.UnmarshalProto(rec, ev); err != nil {
		return nil, err
	}
	return ev, nil
}
