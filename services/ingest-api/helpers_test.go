package ingestapi_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	ingestv1 "github.com/costplane/costplane/proto/gen/go/costplane/ingest/v1"

	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/auth/authtest"
	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/log"
	"github.com/costplane/costplane/libs/server"
	ingestapi "github.com/costplane/costplane/services/ingest-api"
)

// fixture is the service on a loopback gRPC server, with real key checks
// on PostgreSQL and a kfake broker behind it.
type fixture struct {
	addr    string
	client  ingestv1.IngestServiceClient
	cluster *kfake.Cluster
	brokers []string
	reg     *prometheus.Registry
	// ingestKey belongs to tenant acme and holds the ingest scope;
	// readKey belongs to acme and holds only read.
	ingestKey, readKey string
}

// testConfig is the default config with small limits the tests reach.
func testConfig() ingestapi.Config {
	return ingestapi.Config{
		MaxBatch:        50,
		MaxRequestBytes: 64 << 10,
		MaxFuture:       time.Hour,
		RetryAfter:      3 * time.Second,
	}
}

func start(t *testing.T) *fixture {
	t.Helper()
	store, _ := authtest.NewStore(t)
	f := &fixture{reg: prometheus.NewRegistry()}
	f.ingestKey, f.readKey = tenantKeys(t, store)
	f.cluster, f.brokers = startKafka(t)

	svc, err := ingestapi.New(testConfig(), ingestapi.Deps{
		Logger: log.Discard(), Producer: newProducer(t, f.brokers), Registry: f.reg,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.addr = serve(t, store, svc)
	f.client = ingestv1.NewIngestServiceClient(dial(t, f.addr))
	return f
}

// tenantKeys creates tenant acme with an ingest key and a read key.
func tenantKeys(t *testing.T, store *auth.Store) (ingestKey, readKey string) {
	t.Helper()
	ctx := context.Background()
	if _, err := store.CreateTenant(ctx, auth.Tenant{ID: "acme", Name: "Acme"}); err != nil {
		t.Fatalf("CreateTenant: %v", err)
	}
	_, ingestKey, err := store.CreateKey(ctx, "acme", "ingest", []auth.Scope{auth.ScopeIngest})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	_, readKey, err = store.CreateKey(ctx, "acme", "read", []auth.Scope{auth.ScopeRead})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	return ingestKey, readKey
}

func startKafka(t *testing.T) (*kfake.Cluster, []string) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1),
		kfake.SeedTopics(3, kafka.TopicUsage, kafka.TopicOutcomes))
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c, c.ListenAddrs()
}

func kafkaConfig(brokers []string) kafka.Config {
	cfg := kafka.DefaultConfig()
	cfg.Brokers = brokers
	cfg.ProduceTimeout = 2 * time.Second
	cfg.DialTimeout = 500 * time.Millisecond
	return cfg
}

func newProducer(t *testing.T, brokers []string) *kafka.Producer {
	t.Helper()
	p, err := kafka.NewProducer(kafkaConfig(brokers))
	if err != nil {
		t.Fatalf("NewProducer: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// serve runs svc behind the authenticator on a loopback port.
func serve(t *testing.T, store *auth.Store, svc *ingestapi.Service) string {
	t.Helper()
	logger := log.Discard()
	authn := auth.NewAuthenticator(auth.NewVerifier(store, time.Second), ingestapi.Scopes(),
		"x-costplane-key", logger)
	cfg := server.Config{GRPCAddr: "127.0.0.1:0", ShutdownTimeout: time.Second, MaxRecvBytes: 1 << 20}
	srv, err := server.New(cfg, logger, server.WithUnaryInterceptors(authn.Unary()))
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	srv.Register(svc)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return lis.Addr().String()
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dialling %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// withKey returns a context whose calls present key; noKey presents none.
func withKey(key string) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	if key == noKey {
		return ctx, cancel
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key), cancel
}

// readTopic reads the whole topic: it waits until the end offsets are
// consumed, so that records beyond those expected are seen too.
func readTopic(t *testing.T, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	total := endOffsetSum(ctx, t, brokers, topic)
	cl, err := kafka.NewClient(kafkaConfig(brokers), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	defer cl.Close()

	var recs []*kgo.Record
	for int64(len(recs)) < total {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records of %s before timing out", len(recs), total, topic)
		}
		fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
	}
	return recs
}

func endOffsetSum(ctx context.Context, t *testing.T, brokers []string, topic string) int64 {
	t.Helper()
	cl, err := kafka.NewClient(kafkaConfig(brokers))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	defer cl.Close()
	offsets, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("listing end offsets of %s: %v", topic, err)
	}
	var sum int64
	offsets.Each(func(o kadm.ListedOffset) { sum += o.Offset })
	return sum
}

func ts(t time.Time) *timestamppb.Timestamp {
	return timestamppb.New(t)
}

func tokens(kind eventv1.QuantityKind, n int64) *eventv1.Quantity {
	return &eventv1.Quantity{Kind: kind, Unit: eventv1.Unit_UNIT_TOKENS, Amount: n}
}

// usageEvent is an event as a client sends it: no tenant and no source.
func usageEvent(id, run, session string) *eventv1.UsageEvent {
	end := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	return &eventv1.UsageEvent{
		EventId:      id,
		StartTime:    ts(end.Add(-1500 * time.Millisecond)),
		EndTime:      ts(end),
		Granularity:  eventv1.Granularity_GRANULARITY_REQUEST,
		RequestCount: 1,
		Provider:     "anthropic",
		Model:        "claude-sonnet-4-5",
		Operation:    "chat",
		Quantities: []*eventv1.Quantity{
			tokens(eventv1.QuantityKind_QUANTITY_KIND_INPUT, 900),
			tokens(eventv1.QuantityKind_QUANTITY_KIND_CACHE_READ, 4000),
			tokens(eventv1.QuantityKind_QUANTITY_KIND_OUTPUT, 250),
		},
		App:        "support-bot",
		Agent:      &eventv1.Agent{Id: "agent-7", Name: "triage"},
		RunId:      run,
		SessionId:  session,
		CustomerId: "cust-42",
		Labels:     map[string]string{"team": "support", "tier": "gold"},
	}
}

func outcome(id, run, session string) *eventv1.Outcome {
	return &eventv1.Outcome{
		OutcomeId:  id,
		Time:       ts(time.Now().Add(-time.Minute).Truncate(time.Millisecond)),
		Type:       "ticket_resolved",
		Value:      &eventv1.Money{CurrencyCode: "USD", Nanos: 25_000_000_000},
		RunId:      run,
		SessionId:  session,
		AgentId:    "agent-7",
		CustomerId: "cust-42",
		Labels:     map[string]string{"queue": "billing"},
	}
}
