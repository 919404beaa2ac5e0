package ingestotlp

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/usage"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/ingest-otlp/internal/genai"
)

// Producer writes records and returns only once Kafka acknowledged every
// one of them; *kafka.Producer is the implementation.
type Producer interface {
	Produce(ctx context.Context, recs ...*kgo.Record) error
}

// errPublish means the events of a request could not be written. The
// request is answered with a retryable error: event ids are deterministic,
// so records that did reach Kafka before the failure are deduplicated when
// the client retries.
var errPublish = errors.New("publishing usage events")

// publisher turns events into records and writes them in one batch.
type publisher struct {
	producer Producer
	topic    string
	headers  []kgo.RecordHeader
	bufs     sync.Pool
}

func newPublisher(p Producer, topic string) *publisher {
	return &publisher{
		producer: p,
		topic:    topic,
		// Every record shares one header slice; franz-go only reads it.
		headers: []kgo.RecordHeader{{
			Key: kafka.HeaderContentType, Value: []byte(usage.ContentType),
		}},
	}
}

// recordBatch holds the memory of one request's records, reused across
// requests: the records, and one buffer for every key and value.
type recordBatch struct {
	recs  []kgo.Record
	ptrs  []*kgo.Record
	bytes []byte
}

func (p *publisher) publish(ctx context.Context, events []*eventv1.UsageEvent) error {
	if len(events) == 0 {
		return nil
	}
	b, _ := p.bufs.Get().(*recordBatch)
	if b == nil {
		b = &recordBatch{}
	}
	if err := p.fill(b, events); err != nil {
		return fmt.Errorf("%w: %w", errPublish, err)
	}
	if err := p.producer.Produce(ctx, b.ptrs...); err != nil {
		// The client may still hold records it gave up waiting for, so
		// this batch's memory is left to the garbage collector.
		return fmt.Errorf("%w: %w", errPublish, err)
	}

	p.bufs.Put(b)
	return nil
}

// fill encodes events into b. Keys and values are slices of one buffer;
// when the buffer grows, earlier slices keep the old array, which nothing
// writes to again.
func (p *publisher) fill(b *recordBatch, events []*eventv1.UsageEvent) error {
	if cap(b.recs) < len(events) {
		b.recs = make([]kgo.Record, len(events))
	} else {
		b.recs = b.recs[:len(events)]
		clear(b.recs)
	}
	b.ptrs = b.ptrs[:0]
	buf := b.bytes[:0]
	for i, ev := range events {
		start := len(buf)
		buf = usage.AppendRecordKey(buf, ev)
		mid := len(buf)
		var err error
		if buf, err = usage.AppendMarshal(buf, ev); err != nil {
			return err
		}
		b.recs[i] = kgo.Record{
			Topic:   p.topic,
			Key:     buf[start:mid:mid],
			Value:   buf[mid:len(buf):len(buf)],
			Headers: p.headers,
		}
		b.ptrs = append(b.ptrs, &b.recs[i])
	}
	b.bytes = buf
	return nil
}

// traceCache stamps the events of a request with the agent and session of
// ancestors seen in this or earlier requests (see README, "Out-of-order
// traces"). It only ever improves attribution: the downstream join decides.
type traceCache struct {
	mu   sync.Mutex
	join *usage.TraceJoin
}

func newTraceCache(cfg Config) *traceCache {
	if cfg.TraceCacheTraces == 0 {
		return nil
	}
	return &traceCache{join: usage.NewTraceJoin(usage.JoinConfig{
		MaxTraces:        cfg.TraceCacheTraces,
		MaxSteps:         cfg.TraceCacheSpans,
		MaxStepsPerTrace: cfg.TraceCacheSpansPer,
	})}
}

// stamp adds the request's spans to the cache, then resolves every event
// against all that is known, so that order within a request does not
// matter.
func (c *traceCache) stamp(tenant string, res *genai.Result) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range res.Links {
		c.join.AddLink(tenant, l.TraceID, l.SpanID, l.ParentSpanID)
	}
	for _, ev := range res.Events {
		c.join.Add(ev)
	}
	for _, ev := range res.Events {
		c.join.Apply(ev)
	}
}
