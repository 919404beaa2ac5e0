package loadgen_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"

	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/config"
	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/log"
	"github.com/costplane/costplane/libs/server"
	ingestapi "github.com/costplane/costplane/services/ingest-api"
	ingestotlp "github.com/costplane/costplane/services/ingest-otlp"
)

const testKey = "cp_test_key"

// staticKeys verifies one key, of tenant demo with the ingest scope; the
// key store itself is tested in libs/auth.
type staticKeys struct{}

func (staticKeys) Verify(_ context.Context, token string) (auth.Principal, error) {
	if token != testKey {
		return auth.Principal{}, auth.ErrInvalidKey
	}
	return auth.Principal{TenantID: "demo", KeyID: "k1", Scopes: []auth.Scope{auth.ScopeIngest}},
		nil
}

// stack is costplane's ingestion on loopback: the real OTLP receiver and
// the ingest API, both writing to a kfake broker.
type stack struct {
	brokers            []string
	otlpGRPC, otlpHTTP string
	api                string
}

func startStack(t *testing.T) stack {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1),
		kfake.SeedTopics(3, kafka.TopicUsage, kafka.TopicOutcomes))
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	t.Cleanup(cluster.Close)
	s := stack{brokers: cluster.ListenAddrs()}
	producer, err := kafka.NewProducer(kafkaConfig(s.brokers))
	if err != nil {
		t.Fatalf("NewProducer: %v", err)
	}
	t.Cleanup(producer.Close)

	s.otlpGRPC, s.otlpHTTP = startReceiver(t, producer)
	s.api = startAPI(t, producer)
	return s
}

func kafkaConfig(brokers []string) kafka.Config {
	cfg := kafka.DefaultConfig()
	cfg.Brokers = brokers
	return cfg
}

func startReceiver(t *testing.T, producer *kafka.Producer) (grpcAddr, httpAddr string) {
	t.Helper()
	var cfg ingestotlp.Config
	noEnv := func(string) (string, bool) { return "", false }
	if err := config.Load("ingest-otlp", &cfg, nil, noEnv); err != nil {
		t.Fatalf("default receiver config: %v", err)
	}
	cfg.MetricsAddr = ""
	svc, err := ingestotlp.New(cfg, ingestotlp.Deps{
		Logger: log.Discard(), Verifier: staticKeys{}, Producer: producer,
	})
	if err != nil {
		t.Fatalf("ingestotlp.New: %v", err)
	}
	grpcLis, httpLis := listen(t), listen(t)
	run(t, func(ctx context.Context) error { return svc.Serve(ctx, grpcLis, httpLis) })
	return grpcLis.Addr().String(), httpLis.Addr().String()
}

func startAPI(t *testing.T, producer *kafka.Producer) string {
	t.Helper()
	logger := log.Discard()
	svc, err := ingestapi.New(ingestapi.Config{
		MaxBatch: 1000, MaxRequestBytes: 1 << 20, MaxFuture: time.Hour, RetryAfter: time.Second,
	}, ingestapi.Deps{Logger: logger, Producer: producer})
	if err != nil {
		t.Fatalf("ingestapi.New: %v", err)
	}
	authn := auth.NewAuthenticator(staticKeys{}, ingestapi.Scopes(), "x-costplane-key", logger)
	srv, err := server.New(server.Config{
		GRPCAddr: "127.0.0.1:0", ShutdownTimeout: time.Second, MaxRecvBytes: 1 << 20,
	}, logger, server.WithUnaryInterceptors(authn.Unary()))
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	srv.Register(svc)
	lis := listen(t)
	run(t, func(ctx context.Context) error { return srv.Serve(ctx, lis) })
	return lis.Addr().String()
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	return lis
}

// run runs fn until the test ends.
func run(t *testing.T, fn func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serving: %v", err)
		}
	})
}

// readTopic reads every record of topic, up to its end offsets.
func readTopic(t *testing.T, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kafka.NewClient(kafkaConfig(brokers), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	defer cl.Close()
	offsets, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("listing end offsets: %v", err)
	}
	var total int64
	offsets.Each(func(o kadm.ListedOffset) { total += o.Offset })

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

func usageEvents(t *testing.T, recs []*kgo.Record) []*eventv1.UsageEvent {
	t.Helper()
	out := make([]*eventv1.UsageEvent, len(recs))
	for i, r := range recs {
		out[i] = &eventv1.UsageEvent{}
		if err := kafka.UnmarshalProto(r, out[i]); err != nil {
			t.Fatalf("usage record %d: %v", i, err)
		}
	}
	return out
}

func outcomes(t *testing.T, recs []*kgo.Record) []*eventv1.Outcome {
	t.Helper()
	out := make([]*eventv1.Outcome, len(recs))
	for i, r := range recs {
		out[i] = &eventv1.Outcome{}
		if err := kafka.UnmarshalProto(r, out[i]); err != nil {
			t.Fatalf("outcome record %d: %v", i, err)
		}
	}
	return out
}
