package ingestotlp

import (
	"bytes"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	collectortracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/costplane/costplane/services/ingest-otlp/internal/otlp"
)

var (
	benchDuration = flag.Duration("otlp-bench-duration", 8*time.Second,
		"how long each phase of BenchmarkOTLPHTTP runs")
	benchClients = flag.Int("otlp-bench-clients", 8,
		"concurrent exporters in BenchmarkOTLPHTTP")
)

const (
	benchBatch  = 512
	benchBodies = 128
)

// benchRequests builds n export requests of benchBatch spans each, every one
// with traces of its own: an agent, four LLM calls with cache and
// reasoning tokens, two tool calls and a framework span per trace.
func benchRequests(b *testing.B, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = mustMarshal(b, benchRequest(uint64(i)))
	}
	return out
}

func benchRequest(seed uint64) *collectortracepb.ExportTraceServiceRequest {
	var spans []*tracepb.Span
	for tr := uint64(0); len(spans) < benchBatch; tr++ {
		spans = append(spans, benchTrace(seed<<20|tr)...)
	}
	return &collectortracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
			strAttr("service.name", "support-bot"), strAttr("deployment.environment.name", "prod"),
			strAttr("telemetry.sdk.language", "go"), strAttr("telemetry.sdk.name", "opentelemetry"),
		}},
		ScopeSpans: []*tracepb.ScopeSpans{{
			Scope: &commonpb.InstrumentationScope{Name: "agent-framework", Version: "1.0.0"},
			Spans: spans[:benchBatch],
		}},
	}}}
}

func benchTrace(n uint64) []*tracepb.Span {
	traceID := make([]byte, 16)
	binary.BigEndian.PutUint64(traceID, n+1)
	binary.BigEndian.PutUint64(traceID[8:], 0x9e3779b97f4a7c15*(n+1))
	id := func(i byte) []byte { return []byte{0xa, 0, 0, 0, 0, 0, 0, i} }
	start := uint64(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()) + n*1e6
	span := func(i, parent byte, name string, attrs ...*commonpb.KeyValue) *tracepb.Span {
		s := &tracepb.Span{TraceId: traceID, SpanId: id(i), Name: name, Kind: 3,
			StartTimeUnixNano: start + uint64(i)*1e6, EndTimeUnixNano: start + uint64(i)*1e6 + 8e8,
			Attributes: attrs, Status: &tracepb.Status{Code: tracepb.Status_STATUS_CODE_OK}}
		if parent != 0 {
			s.ParentSpanId = id(parent)
		}
		return s
	}
	llm := func(i, parent byte) *tracepb.Span {
		return span(i, parent, "chat gpt-4o",
			strAttr("gen_ai.operation.name", "chat"), strAttr("gen_ai.provider.name", "openai"),
			strAttr("gen_ai.request.model", "gpt-4o"),
			strAttr("gen_ai.response.model", "gpt-4o-2024-08-06"),
			strAttr("gen_ai.response.id", fmt.Sprintf("chatcmpl-%d-%d", n, i)),
			strAttr("gen_ai.conversation.id", fmt.Sprintf("conv-%d", n%97)),
			intAttr("gen_ai.usage.input_tokens", 2400), intAttr("gen_ai.usage.output_tokens", 310),
			intAttr("gen_ai.usage.cache_read.input_tokens", 1800),
			intAttr("gen_ai.usage.reasoning.output_tokens", 120),
			strAttr("server.address", "api.openai.com"), intAttr("server.port", 443),
			strAttr("gen_ai.response.finish_reasons", "stop"))
	}
	tool := func(i, parent byte) *tracepb.Span {
		return span(i, parent, "execute_tool lookup_order",
			strAttr("gen_ai.operation.name", "execute_tool"),
			strAttr("gen_ai.tool.name", "lookup_order"), strAttr("gen_ai.tool.call.id", "call_1"))
	}
	return []*tracepb.Span{
		llm(2, 1), tool(3, 1), llm(4, 3), span(5, 1, "GET /kb", strAttr("http.method", "GET")),
		llm(6, 5), tool(7, 1), llm(8, 1),
		span(1, 0, "invoke_agent support",
			strAttr("gen_ai.operation.name", "invoke_agent"),
			strAttr("gen_ai.agent.name", "support"), strAttr("gen_ai.agent.id", "asst_1"),
			strAttr("gen_ai.conversation.id", fmt.Sprintf("conv-%d", n%97))),
	}
}

// BenchmarkPipeline measures decoding, mapping, the trace cache and
// record encoding of one 512-span request, without Kafka.
func BenchmarkPipeline(b *testing.B) {
	bodies := benchRequests(b, 16)
	svc := fuzzService(b)
	svc.pub.producer = nopProducer{}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		w := svc.getWork()
		w.body = append(w.body[:0], bodies[i%len(bodies)]...)
		if err := otlp.DecodeProto(w.body, &w.traces); err != nil {
			b.Fatal(err)
		}
		if _, err := svc.export(context.Background(), testTenant, w); err != nil {
			b.Fatal(err)
		}
		svc.putWork(w)
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "spans/s")
}

type nopProducer struct{}

func (nopProducer) Produce(context.Context, ...*kgo.Record) error { return nil }

// BenchmarkOTLPHTTP is the receiver's throughput benchmark. Exporters send
// 512-span OTLP/HTTP protobuf requests to a receiver in front of an
// in-process kfake broker, as fast as they can, and the spans accepted per
// second (answered 200, so acknowledged by Kafka) are reported beside the
// rate at which plain franz-go produces the same records to the same
// broker. Then requests are paced at half the peak rate to measure p50 and
// p99 latency. Run it once, it sets its own durations:
//
//	go test -run='^$' -bench=BenchmarkOTLPHTTP -benchtime=1x ./services/ingest-otlp/
func BenchmarkOTLPHTTP(b *testing.B) {
	// The in-process broker keeps records in memory; retention trims its
	// log as a real broker's disk would hold it, so that the broker's heap
	// does not grow through the run and tax every phase after the first.
	st := startStack(b, stackOpts{partitions: 6, brokerConfigs: map[string]string{
		"log.retention.bytes": strconv.Itoa(32 << 20), "log.cleaner.backoff.ms": "500",
	}})
	bodies := benchRequests(b, benchBodies)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4 * *benchClients}}
	url := "http://" + st.httpAddr + "/v1/traces"

	requests, _ := drive(b, client, url, bodies, *benchClients, *benchDuration, 0)
	peak := float64(requests) / benchDuration.Seconds()
	b.ReportMetric(peak*benchBatch, "spans/s")

	raw := rawProduceRate(b, st, bodies)
	b.ReportMetric(raw, "raw_records/s")

	_, lat := drive(b, client, url, bodies, 4*(*benchClients), *benchDuration, peak/2)
	b.ReportMetric(percentile(lat, 0.50).Seconds()*1000, "p50_ms")
	b.ReportMetric(percentile(lat, 0.99).Seconds()*1000, "p99_ms")
	b.ReportMetric(percentile(lat, 0.90).Seconds()*1000, "p90_ms")
	b.ReportMetric(percentile(lat, 0.999).Seconds()*1000, "p999_ms")
	b.ReportMetric(float64(len(lat))/benchDuration.Seconds()*benchBatch, "paced_spans/s")
}

// drive posts bodies from clients goroutines for d. With rate zero they
// send back to back; otherwise requests start on a fixed schedule of rate
// per second, so that a slow answer does not slow the offered load. It
// returns the requests answered 200 and their latencies.
func drive(b *testing.B, client *http.Client, url string, bodies [][]byte, clients int,
	d time.Duration, rate float64,
) (int64, []time.Duration) {
	b.Helper()
	var (
		next, ok atomic.Int64
		mu       sync.Mutex
		lats     []time.Duration
		wg       sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := next.Add(1) - 1
				at := start
				if rate > 0 {
					at = start.Add(time.Duration(float64(n) / rate * float64(time.Second)))
					time.Sleep(time.Until(at))
				} else {
					at = time.Now()
				}
				if at.After(deadline) {
					return
				}
				if postBench(b, client, url, bodies[n%int64(len(bodies))]) {
					ok.Add(1)
				}
				lat := time.Since(at)
				mu.Lock()
				lats = append(lats, lat)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return ok.Load(), lats
}

func postBench(b *testing.B, client *http.Client, url string, body []byte) bool {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", contentTypeProto)
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := client.Do(req)
	if err != nil {
		b.Error(err)
		return false
	}
	var sink [512]byte
	for {
		if _, err := resp.Body.Read(sink[:]); err != nil {
			break
		}
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Errorf("status %d", resp.StatusCode)
	}
	return resp.StatusCode == http.StatusOK
}

// rawProduceRate produces the records the receiver makes of bodies with a
// plain franz-go client (acks=all, idempotent, as the receiver's), in
// batches of one request's records from as many goroutines as exporters,
// and returns records per second.
func rawProduceRate(b *testing.B, st *stack, bodies [][]byte) float64 {
	b.Helper()
	batches := make([][]*kgo.Record, len(bodies))
	svc := fuzzService(b)
	for i, body := range bodies {
		var rec recordingProducer
		svc.pub = newPublisher(&rec, testTopic)
		w := &work{}
		if err := otlp.DecodeProto(body, &w.traces); err != nil {
			b.Fatal(err)
		}
		if _, err := svc.export(context.Background(), testTenant, w); err != nil {
			b.Fatal(err)
		}
		batches[i] = rec.recs
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(st.cluster.ListenAddrs()...),
		kgo.DefaultProduceTopic(testTopic))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()

	var n atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(*benchDuration)
	start := time.Now()
	for c := range *benchClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; time.Now().Before(deadline); i += *benchClients {
				recs := cloneRecords(batches[i%len(batches)])
				if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
					b.Error(err)
					return
				}
				n.Add(int64(len(recs)))
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds()
}

// recordingProducer keeps copies of the records it is given.
type recordingProducer struct {
	recs []*kgo.Record
}

func (p *recordingProducer) Produce(_ context.Context, recs ...*kgo.Record) error {
	p.recs = append(p.recs, cloneRecords(recs)...)
	return nil
}

func cloneRecords(recs []*kgo.Record) []*kgo.Record {
	out := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		out[i] = &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Headers: r.Headers}
	}
	return out
}

func percentile(lats []time.Duration, p float64) time.Duration {
	if len(lats) == 0 {
		return 0
	}
	s := slices.Clone(lats)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}
