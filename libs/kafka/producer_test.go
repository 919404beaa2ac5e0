package kafka_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costplane/costplane/libs/kafka"
)

func TestProducerAcknowledged(t *testing.T) {
	forEachCluster(t, func(t *testing.T, brokers []string) {
		topic := createTopic(t, brokers, 3)
		reg := prometheus.NewRegistry()
		p, err := kafka.NewProducer(testConfig(brokers), kafka.WithRegisterer(reg))
		if err != nil {
			t.Fatalf("NewProducer: %v", err)
		}
		defer p.Close()

		want := values("v", 200)
		recs := make([]*kgo.Record, len(want))
		for i, v := range want {
			recs[i] = &kgo.Record{Topic: topic, Key: []byte(v), Value: []byte(v)}
		}
		if err := p.Produce(context.Background(), recs...); err != nil {
			t.Fatalf("Produce: %v", err)
		}

		// Produce returned, so every record must already be readable.
		got := readAll(t, brokers, topic, len(want))
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("records on the topic (-want +got):\n%s", diff)
		}
		ok := metricSum(t, reg, "costplane_kafka_produced_records_total",
			map[string]string{"topic": topic, "result": "ok"})
		if ok != float64(len(want)) {
			t.Errorf("produced ok metric = %v, want %d", ok, len(want))
		}
	})
}

// TestProducerOldTimestamps produces records stamped with an event time
// long past, as a connector replaying a billing file does.
func TestProducerOldTimestamps(t *testing.T) {
	brokers := fakeCluster(t)
	topic := createTopic(t, brokers, 1)
	p, err := kafka.NewProducer(testConfig(brokers))
	if err != nil {
		t.Fatalf("NewProducer: %v", err)
	}
	defer p.Close()

	twoDaysAgo := time.Now().Add(-48 * time.Hour)
	rec := &kgo.Record{Topic: topic, Value: []byte("x"), Timestamp: twoDaysAgo}
	if err := p.Produce(context.Background(), rec); err != nil {
		t.Errorf("Produce of a record stamped two days ago: %v", err)
	}
}

func TestProducerUnavailable(t *testing.T) {
	// A port that was just free: nothing answers there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := l.Addr().String()
	l.Close()

	cfg := testConfig([]string{addr})
	cfg.ProduceTimeout = 500 * time.Millisecond
	cfg.DialTimeout = 200 * time.Millisecond
	p, err := kafka.NewProducer(cfg)
	if err != nil {
		t.Fatalf("NewProducer: %v", err)
	}
	defer p.Close()

	start := time.Now()
	err = p.Produce(context.Background(), &kgo.Record{Topic: kafka.TopicUsage, Value: []byte("x")})
	if !errors.Is(err, kafka.ErrUnavailable) {
		t.Fatalf("Produce with no broker = %v, want ErrUnavailable", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Produce took %v with a 500ms produce timeout", took)
	}
}

func TestProducerUnavailableAfterBrokerDies(t *testing.T) {
	cluster := fakeClusterHandle(t)
	brokers := cluster.ListenAddrs()
	topic := createTopic(t, brokers, 1)
	cfg := testConfig(brokers)
	cfg.ProduceTimeout = time.Second
	p, err := kafka.NewProducer(cfg)
	if err != nil {
		t.Fatalf("NewProducer: %v", err)
	}
	defer p.Close()

	rec := func() *kgo.Record { return &kgo.Record{Topic: topic, Value: []byte("x")} }
	if err := p.Produce(context.Background(), rec()); err != nil {
		t.Fatalf("Produce while the broker is up: %v", err)
	}

	cluster.Close()
	err = p.Produce(context.Background(), rec())
	if !errors.Is(err, kafka.ErrUnavailable) {
		t.Errorf("Produce after the broker closed = %v, want ErrUnavailable", err)
	}
}

func TestProducerTooLargeIsNotUnavailable(t *testing.T) {
	brokers := fakeCluster(t)
	topic := createTopic(t, brokers, 1)
	p, err := kafka.NewProducer(testConfig(brokers))
	if err != nil {
		t.Fatalf("NewProducer: %v", err)
	}
	defer p.Close()

	big := make([]byte, 2<<20)
	err = p.Produce(context.Background(), &kgo.Record{Topic: topic, Value: big})
	if err == nil || errors.Is(err, kafka.ErrUnavailable) {
		t.Errorf("Produce of a 2 MiB record = %v, want a non-retryable error", err)
	}
}

// readAll consumes n records of topic from the start with read_committed
// and returns their values sorted.
func readAll(t testing.TB, brokers []string, topic string, n int) []string {
	t.Helper()
	cl := newClient(t, brokers,
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var got []string
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d records of %s before timing out", len(got), n, topic)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	slices.Sort(got)
	return got
}
