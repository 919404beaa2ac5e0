package pricer_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/log"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/pricing/internal/pricer"
	"github.com/costplane/costplane/services/pricing/internal/testenv"
	"github.com/costplane/costplane/services/pricing/pricebook"
)

// Run the benchmarks with a fixed count, which is the number of usage
// records, for example:
//
//	go test -run '^$' -bench 'Consumer|Handle' -benchtime 200000x ./internal/pricer/
//
// It measures, on the same broker in the same run, the plain franz-go
// transactional consume-and-produce of the records (copied unchanged) and
// the pricing consumer (kafka.TxnRunner with Pricer.Handle, as
// pricing.Service runs it), each from the start of the same prefilled
// topic with the same batch size, and reports both rates and their ratio.

const (
	benchPoll       = 1000 // records per batch: KAFKA_MAX_POLL_RECORDS' default
	benchPartitions = 6
)

// benchRates gives half the tenants negotiated rates.
type benchRates struct{ rates *pricebook.TenantRates }

func (b benchRates) Get(tenant string) *pricebook.TenantRates {
	if tenant[len(tenant)-1]%2 == 0 {
		return b.rates
	}
	return nil
}

func (benchRates) Check() error { return nil }

func newBenchRates() benchRates {
	return benchRates{rates: &pricebook.TenantRates{
		Discounts: []pricebook.Discount{{
			ID: "d-anthropic", Scope: pricebook.Scope{Provider: "anthropic"}, PercentOffBP: 1200,
		}},
		FixedRates: []pricebook.FixedRate{{
			ID: "f-gpt41-in", Scope: pricebook.Scope{Model: "gpt-4.1"},
			Kind: kIn, PerMillionNanos: 1_700_000_000,
		}},
		Deployments: map[string]string{"prod-chat": "gpt-4o"},
	}}
}

// benchEvent is the i-th event of a mix of traffic: canonical ids and raw
// platform ids, cache and reasoning buckets, a batch job, an Azure
// deployment, an unknown model, and ten tenants.
func benchEvent(i int) *eventv1.UsageEvent {
	type tmpl struct {
		provider, model string
		qs              []testenv.Q
		tier, region    string
	}
	mix := []tmpl{
		{"anthropic", "claude-sonnet-4-5", []testenv.Q{q(kIn, 1500), q(kCR, 20_000), q(kCW, 1800), q(kOut, 600)}, "", ""},
		{"openai", "gpt-4.1", []testenv.Q{q(kIn, 900), q(kCR, 4000), q(kOut, 300)}, "", ""},
		{"openai", "o3", []testenv.Q{q(kIn, 3000), q(kOut, 700), q(eventv1.QuantityKind_QUANTITY_KIND_REASONING, 2400)}, "", ""},
		{"aws.bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", []testenv.Q{q(kIn, 5000), q(kCR, 20_000), q(kOut, 800)}, "", "us-east-1"},
		{"gcp.gemini", "gemini-2.5-flash", []testenv.Q{q(kIn, 4000), q(eventv1.QuantityKind_QUANTITY_KIND_INPUT_AUDIO, 9000), q(kOut, 600)}, "", ""},
		{"azure.ai.openai", "prod-chat", []testenv.Q{q(kIn, 700), q(kOut, 200)}, "", ""},
		{"openai", "gpt-5-mini", []testenv.Q{q(kIn, 50_000), q(kOut, 4000)}, "batch", ""},
		{"anthropic", "claude-haiku-4-5", []testenv.Q{q(kIn, 400), q(kOut, 120)}, "", ""},
		{"openai", "gpt-4o-mini-2024-07-18", []testenv.Q{q(kIn, 2000), q(kOut, 500)}, "", ""},
		{"acme", "acme-llm-9", []testenv.Q{q(kIn, 1000), q(kOut, 100)}, "", ""},
	}
	m := mix[i%len(mix)]
	ev := testenv.Event(fmt.Sprintf("tenant-%d", i%10), fmt.Sprintf("ev-%08d", i), m.provider, m.model,
		"2026-11-01T10:00:00Z", m.qs...)
	ev.ServiceTier, ev.Region = m.tier, m.region
	ev.RunId = fmt.Sprintf("run-%d", i/4)
	ev.SessionId = fmt.Sprintf("session-%d", i/16)
	ev.Agent = &eventv1.Agent{Id: "agent-" + fmt.Sprint(i%7), Name: "support bot", Version: "1.4.2"}
	ev.App, ev.Environment = "helpdesk", "production"
	ev.Labels = map[string]string{"team": "cx", "feature": "triage"}
	return ev
}

// BenchmarkHandle measures Pricer.Handle in process: decoding, pricing and
// encoding b.N records in batches of benchPoll, with the default workers.
func BenchmarkHandle(b *testing.B) {
	p := benchPricer(b, "out")
	recs := make([]*kgo.Record, benchPoll)
	for i := range recs {
		recs[i] = testenv.UsageRecord(b, "usage", benchEvent(i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += benchPoll {
		batch := recs[:min(benchPoll, b.N-done)]
		if _, _, err := p.Handle(context.Background(), batch); err != nil {
			b.Fatalf("Handle: %v", err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkConsumer compares the pricing consumer with raw transactional
// consume-and-produce of the same b.N records (see the top of the file).
func BenchmarkConsumer(b *testing.B) {
	run := func(b *testing.B, brokers []string) {
		kcfg := testenv.KafkaConfig(brokers)
		kcfg.TopicPartitions = benchPartitions
		kcfg.MaxPollRecords = benchPoll
		testenv.EnsureTopics(b, kcfg)
		rawOut := createTopic(b, kcfg, testenv.Unique("bench.raw-out"))
		prefill(b, kcfg, b.N)

		b.ResetTimer()
		rawRate := rate(b.N, rawConsumeProduce(b, kcfg, rawOut, b.N))
		priceRate := rate(b.N, pricingConsumer(b, kcfg, b.N))
		b.StopTimer()

		b.ReportMetric(rawRate, "raw-events/s")
		b.ReportMetric(priceRate, "pricing-events/s")
		b.ReportMetric(100*priceRate/rawRate, "pricing-pct-of-raw")
	}
	b.Run("kfake", func(b *testing.B) { run(b, testenv.Fake(b)) })
	if brokers := testenv.RealBrokers(); brokers != nil {
		b.Run("kafka", func(b *testing.B) { run(b, brokers) })
	}
}

func q(k eventv1.QuantityKind, n int64) testenv.Q { return testenv.Q{Kind: k, Amount: n} }

func rate(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }

func benchPricer(b *testing.B, topic string) *pricer.Pricer {
	b.Helper()
	m, err := pricer.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatalf("NewMetrics: %v", err)
	}
	p, err := pricer.New(pricer.Config{
		Book: testenv.Book(b, nil), Rates: newBenchRates(), Topic: topic,
		Log: log.Discard(), Metrics: m,
	})
	if err != nil {
		b.Fatalf("pricer.New: %v", err)
	}
	return p
}

func createTopic(b *testing.B, kcfg kafka.Config, name string) string {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, testenv.Client(b, kcfg.Brokers), kcfg.TopicSpec(name)); err != nil {
		b.Fatalf("EnsureTopics: %v", err)
	}
	return name
}

// prefill writes n usage records to the usage topic, untimed.
func prefill(b *testing.B, kcfg kafka.Config, n int) {
	b.Helper()
	cl := testenv.Client(b, kcfg.Brokers, kgo.ProducerLinger(5*time.Millisecond))
	var failed atomic.Int64
	for i := range n {
		cl.Produce(context.Background(), testenv.UsageRecord(b, kcfg.Topics.Usage, benchEvent(i)),
			func(_ *kgo.Record, err error) {
				if err != nil {
					failed.Add(1)
				}
			})
	}
	if err := cl.Flush(context.Background()); err != nil || failed.Load() > 0 {
		b.Fatalf("prefilling: flush %v, %d records failed", err, failed.Load())
	}
}

// rawConsumeProduce copies n records of the usage topic to out, batch by
// batch, each batch in one Kafka transaction with its consumed offsets:
// what the TxnRunner does, without a library or any work per record.
func rawConsumeProduce(b *testing.B, kcfg kafka.Config, out string, n int) time.Duration {
	b.Helper()
	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(kcfg.Brokers...),
		kgo.ConsumerGroup(testenv.Unique("bench-raw")),
		kgo.ConsumeTopics(kcfg.Topics.Usage),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(kcfg.SessionTimeout),
		kgo.TransactionalID(testenv.Unique("bench-raw-txn")),
		kgo.TransactionTimeout(kcfg.TransactionTimeout),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	)
	if err != nil {
		b.Fatalf("NewGroupTransactSession: %v", err)
	}
	defer sess.Close()

	ctx := context.Background()
	start := time.Now()
	for done := 0; done < n; {
		recs := sess.PollRecords(ctx, benchPoll).Records()
		if len(recs) == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			b.Fatalf("Begin: %v", err)
		}
		var wg sync.WaitGroup
		var failed atomic.Int64
		wg.Add(len(recs))
		for _, r := range recs {
			copied := &kgo.Record{Topic: out, Key: r.Key, Value: r.Value, Headers: r.Headers}
			sess.Produce(ctx, copied, func(_ *kgo.Record, err error) {
				if err != nil {
					failed.Add(1)
				}
				wg.Done()
			})
		}
		wg.Wait()
		committed, err := sess.End(ctx, kgo.TryCommit)
		if err != nil || failed.Load() > 0 {
			b.Fatalf("End: %v, %d records failed", err, failed.Load())
		}
		if committed {
			done += len(recs)
		}
	}
	return time.Since(start)
}

// pricingConsumer runs the pricing consumer over the usage topic until it
// has committed n records.
func pricingConsumer(b *testing.B, kcfg kafka.Config, n int) time.Duration {
	b.Helper()
	var committed atomic.Int64
	finished := make(chan struct{})
	onCommit := kafka.WithOnCommit(func(c kafka.Commit) {
		if before := committed.Add(int64(c.Records)) - int64(c.Records); before < int64(n) &&
			before+int64(c.Records) >= int64(n) {
			close(finished)
		}
	})
	rc := kafka.TxnRunnerConfig{
		Group: testenv.Unique("bench-pricing"), Topics: []string{kcfg.Topics.Usage},
		TransactionalID: testenv.Unique("bench-pricing-txn"), DLQTopic: kcfg.Topics.UsageDLQ,
	}
	r, err := kafka.NewTxnRunner(kcfg, rc, benchPricer(b, kcfg.Topics.UsagePriced).Handle, onCommit)
	if err != nil {
		b.Fatalf("NewTxnRunner: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	start := time.Now()
	go func() { errc <- r.Run(ctx) }()
	select {
	case <-finished:
	case err := <-errc:
		b.Fatalf("pricing consumer stopped early: %v", err)
	case <-time.After(10 * time.Minute):
		b.Fatalf("priced %d of %d records in 10 minutes", committed.Load(), n)
	}
	elapsed := time.Since(start)
	cancel()
	if err := <-errc; err != nil {
		b.Errorf("Run: %v", err)
	}
	return elapsed
}
