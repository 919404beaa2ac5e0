// Package testenv gives the pricing tests what they run on: a PostgreSQL
// database of their own with the auth and pricing schemas, Kafka brokers
// (kfake always, the real broker of KAFKA_BROKERS when set), unique
// topic names and usage events.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/costplane/costplane/libs/auth/authtest"
	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/usage"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/pricing"
	"github.com/costplane/costplane/services/pricing/catalog"
	"github.com/costplane/costplane/services/pricing/pricebook"
)

// DB returns a new database with the auth and pricing schemas, dropped
// when the test ends. The test is skipped when DATABASE_URL is unset.
func DB(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool := authtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := pricing.Migrate(ctx, pool); err != nil {
		t.Fatalf("migrating pricing: %v", err)
	}
	return pool
}

// Unique returns prefix and a random suffix, valid as a topic, group or
// transactional id, so that tests sharing a broker never collide.
func Unique(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// Fake starts a kfake broker that dies with the test.
func Fake(t testing.TB) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// RealBrokers returns KAFKA_BROKERS, or nil when it is unset.
func RealBrokers() []string {
	if v := os.Getenv("KAFKA_BROKERS"); v != "" {
		return strings.Split(v, ",")
	}
	return nil
}

// KafkaConfig is a config on brokers with topics of their own, small
// timeouts and 3 partitions per topic.
func KafkaConfig(brokers []string) kafka.Config {
	cfg := kafka.DefaultConfig()
	cfg.Brokers = brokers
	cfg.TopicPartitions = 3
	cfg.SessionTimeout = 6 * time.Second
	cfg.TransactionTimeout = 10 * time.Second
	cfg.Topics.Usage = Unique("test.usage")
	cfg.Topics.UsagePriced = Unique("test.priced")
	cfg.Topics.UsageDLQ = Unique("test.dlq")
	return cfg
}

// EnsureTopics creates the usage, priced and DLQ topics of cfg.
func EnsureTopics(t testing.TB, cfg kafka.Config) {
	t.Helper()
	cl := Client(t, cfg.Brokers)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	specs := []kafka.TopicSpec{
		cfg.TopicSpec(cfg.Topics.Usage), cfg.TopicSpec(cfg.Topics.UsagePriced),
		cfg.TopicSpec(cfg.Topics.UsageDLQ),
	}
	if err := kafka.EnsureTopics(ctx, cl, specs...); err != nil {
		t.Fatalf("EnsureTopics: %v", err)
	}
}

// Client returns a plain client closed with the test.
func Client(t testing.TB, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// UsageRecord encodes ev as the ingestors do.
func UsageRecord(t testing.TB, topic string, ev *eventv1.UsageEvent) *kgo.Record {
	t.Helper()
	value, err := usage.Marshal(ev)
	if err != nil {
		t.Fatalf("encoding event %s: %v", ev.GetEventId(), err)
	}
	return &kgo.Record{
		Topic: topic, Key: usage.RecordKey(ev), Value: value,
		Headers: []kgo.RecordHeader{
			{Key: kafka.HeaderContentType, Value: []byte(usage.ContentType)},
		},
	}
}

// Produce writes recs and waits for the acknowledgements.
func Produce(t testing.TB, brokers []string, recs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := Client(t, brokers).ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("producing: %v", err)
	}
}

// ReadAtLeast reads topic from the start with read_committed until it has
// n records, then keeps reading for settle so that extra records show.
func ReadAtLeast(t testing.TB, brokers []string, topic string, n int,
	settle time.Duration) []*kgo.Record {
	t.Helper()
	cl := Client(t, brokers,
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(100*time.Millisecond))
	var got []*kgo.Record
	poll := func(until time.Time) {
		ctx, cancel := context.WithDeadline(context.Background(), until)
		defer cancel()
		got = append(got, cl.PollFetches(ctx).Records()...)
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		poll(deadline)
	}
	if len(got) < n {
		t.Fatalf("read %d of %d records of %s before timing out", len(got), n, topic)
	}
	for end := time.Now().Add(settle); time.Now().Before(end); {
		poll(end)
	}
	return got
}

// Q is a quantity for Event.
type Q struct {
	Kind   eventv1.QuantityKind
	Amount int64
}

// Event returns a valid usage event of tenant for provider and model at
// start (RFC 3339), with the quantities given. A malformed start leaves
// the zero time, which no expected cost matches.
func Event(tenant, id, provider, model, start string, qs ...Q) *eventv1.UsageEvent {
	at, _ := time.Parse(time.RFC3339, start)
	ev := &eventv1.UsageEvent{
		EventId: id, TenantId: tenant, Provider: provider, Model: model,
		Source:    &eventv1.Source{Kind: eventv1.SourceKind_SOURCE_KIND_API, Name: "test"},
		StartTime: timestamppb.New(at), EndTime: timestamppb.New(at.Add(time.Second)),
		Granularity: eventv1.Granularity_GRANULARITY_REQUEST, RequestCount: 1,
	}
	for _, q := range qs {
		ev.Quantities = append(ev.Quantities, &eventv1.Quantity{
			Kind: q.Kind, Unit: catalog.KindUnit(q.Kind), Amount: q.Amount,
		})
	}
	return ev
}

// Clusters runs fn on kfake and, when KAFKA_BROKERS is set, on the real
// broker, each as a subtest.
func Clusters(t *testing.T, fn func(t *testing.T, brokers []string)) {
	t.Helper()
	t.Run("kfake", func(t *testing.T) { fn(t, Fake(t)) })
	t.Run("kafka", func(t *testing.T) {
		b := RealBrokers()
		if b == nil {
			t.Skip("KAFKA_BROKERS is not set")
		}
		fn(t, b)
	})
}

// Eventually polls cond until it holds, failing at timeout with the last
// error it returned.
func Eventually(t testing.TB, timeout time.Duration, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("condition not met within %v (last error: %v)", timeout, last)
}

// SortedKeys returns a map's keys, sorted.
func SortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Book returns a price book of the shipped catalog plus the extra data
// files given (name to YAML), to play a catalog change.
func Book(t testing.TB, extra map[string]string) *pricebook.Book {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(here), "..", "..", "catalog", "data")
	names, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(names) == 0 {
		t.Fatalf("finding the catalog data in %s: %v", dir, err)
	}
	fsys := fstest.MapFS{}
	for _, n := range names {
		raw, err := os.ReadFile(n)
		if err != nil {
			t.Fatalf("reading %s: %v", n, err)
		}
		fsys[filepath.Base(n)] = &fstest.MapFile{Data: raw}
	}
	for name, body := range extra {
		fsys[name] = &fstest.MapFile{Data: []byte(body)}
	}
	cat, err := catalog.Parse(fsys)
	if err != nil {
		t.Fatalf("parsing the catalog: %v", err)
	}
	return pricebook.New(cat)
}

// AcmeCatalog is a data file that prices the model "acme-llm-9" of the
// provider "acme", unknown to the shipped catalog: $1 input and $2 output
// per million tokens.
const AcmeCatalog = `provider: acme
display_name: Acme (test data)
first_party: true
currency: USD
models:
  - model: acme-llm-9
    name: Acme LLM 9
    source: https://example.com/acme/pricing
    as_of: 2026-12-01
    prices:
      - per_million: {input: "1.00", output: "2.00"}
`
