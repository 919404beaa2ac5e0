package ingestotlp

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/log"
	"github.com/costplane/costplane/libs/usage"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

const (
	testTopic  = "costplane.usage.v1"
	testTenant = "acme"
	testKey    = "cp_testkey_secret"
)

// staticKeys is a key verifier over a fixed set of keys, all with the
// ingest scope.
type staticKeys map[string]string

func (k staticKeys) Verify(_ context.Context, token string) (auth.Principal, error) {
	tenant, ok := k[token]
	if !ok {
		return auth.Principal{}, auth.ErrInvalidKey
	}
	return auth.Principal{TenantID: tenant, KeyID: "k1", Scopes: []auth.Scope{auth.ScopeIngest}}, nil
}

// stack is a receiver serving on loopback in front of a kfake broker.
type stack struct {
	svc      *Service
	cluster  *kfake.Cluster
	grpcAddr string
	httpAddr string
}

type stackOpts struct {
	produceTimeout time.Duration
	partitions     int32
	registry       *prometheus.Registry
	brokerConfigs  map[string]string
	mutate         func(*Config)
}

func startStack(t testing.TB, o stackOpts) *stack {
	t.Helper()
	if o.produceTimeout == 0 {
		o.produceTimeout = 10 * time.Second
	}
	if o.partitions == 0 {
		o.partitions = 3
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(o.partitions, testTopic),
		kfake.BrokerConfigs(o.brokerConfigs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)

	kcfg := kafka.DefaultConfig()
	kcfg.Brokers = cluster.ListenAddrs()
	kcfg.ProduceTimeout = o.produceTimeout
	producer, err := kafka.NewProducer(kcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(producer.Close)

	cfg := testConfig()
	if o.mutate != nil {
		o.mutate(&cfg)
	}
	svc, err := New(cfg, Deps{
		Logger: log.Discard(), Verifier: staticKeys{testKey: testTenant}, Producer: producer,
		Registry: o.registry,
	})
	if err != nil {
		t.Fatal(err)
	}
	st := &stack{svc: svc, cluster: cluster}
	st.serve(t)
	return st
}

func testConfig() Config {
	return Config{
		GRPCAddr:           "127.0.0.1:0",
		HTTPAddr:           "127.0.0.1:0",
		MaxBodyBytes:       4 << 20,
		RetryAfter:         2 * time.Second,
		ShutdownTimeout:    5 * time.Second,
		SessionAttributes:  []string{"gen_ai.conversation.id", "session.id"},
		CustomerAttributes: []string{"customer.id"},
		UserAttributes:     []string{"user.id", "enduser.id"},
		TraceCacheTraces:   1000,
		TraceCacheSpans:    100000,
		TraceCacheSpansPer: 1000,
	}
}

func (st *stack) serve(t testing.TB) {
	t.Helper()
	grpcLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	st.grpcAddr, st.httpAddr = grpcLis.Addr().String(), httpLis.Addr().String()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	svc := st.svc
	go func() { done <- svc.Serve(ctx, grpcLis, httpLis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Serve: %v", err)
		}
	})
}

// readEvents consumes the usage topic from the start until it has n
// events or the wait runs out, and returns the events with their keys.
func (st *stack) readEvents(t testing.TB, n int, wait time.Duration) []keyedEvent {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(st.cluster.ListenAddrs()...),
		kgo.ConsumeTopics(testTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var out []keyedEvent
	for len(out) < n {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		fetches.EachRecord(func(r *kgo.Record) {
			out = append(out, decodeRecord(t, r))
		})
	}
	return out
}

type keyedEvent struct {
	key       string
	partition int32
	ev        *eventv1.UsageEvent
}

func decodeRecord(t testing.TB, r *kgo.Record) keyedEvent {
	t.Helper()
	ev := &eventv1.UsageEvent{}
	if err := kafka.UnmarshalProto(r, ev); err != nil {
		t.Fatalf("record on the usage topic: %v", err)
	}
	if errs := usage.Validate(ev); len(errs) > 0 {
		t.Errorf("invalid event on the topic: %v", errs)
	}
	return keyedEvent{key: string(r.Key), partition: r.Partition, ev: ev}
}

func byStep(evs []keyedEvent) map[string]keyedEvent {
	out := map[string]keyedEvent{}
	for _, e := range evs {
		out[e.ev.GetStepId()] = e
	}
	return out
}
