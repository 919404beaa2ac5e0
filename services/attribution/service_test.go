package attribution_test

import (
	"context"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/log"
	"github.com/costplane/costplane/libs/server"
	"github.com/costplane/costplane/libs/usage"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/attribution"
	"github.com/costplane/costplane/services/attribution/internal/testdb"
)

// stack is the service on a database of its own and a Kafka broker
// (kfake, or KAFKA_BROKERS when set), serving gRPC on a loopback port.
type stack struct {
	pool      *pgxpool.Pool
	kcfg      kafka.Config
	producer  *kafka.Producer
	conn      *grpc.ClientConn
	tokens    map[string]string
	committed atomic.Int64
	stop      func()
	mu        sync.Mutex
	settings  attribution.Settings
	// onCommit, when set, also sees every commit of the consumers.
	onCommit func(kafka.Commit)
}

func newStack(t testing.TB, brokers []string) *stack {
	t.Helper()
	st := &stack{pool: testdb.New(t), tokens: map[string]string{}}
	st.kcfg = kafka.DefaultConfig()
	st.kcfg.Brokers = brokers
	st.kcfg.TopicPartitions = 3
	st.kcfg.SessionTimeout = 6 * time.Second
	suffix := "." + strings.ReplaceAll(t.Name(), "/", ".") + "." +
		time.Now().Format("150405.000000")
	st.kcfg.Topics.UsagePriced += suffix
	st.kcfg.Topics.Outcomes += suffix
	st.kcfg.Topics.UsageDLQ += suffix
	st.settings = attribution.DefaultSettings()
	st.settings.PricedGroup += suffix
	st.settings.OutcomesGroup += suffix
	st.settings.RawRetention = 0

	cl, err := kafka.NewClient(st.kcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = kafka.EnsureTopics(ctx, cl, st.kcfg.TopicSpec(st.kcfg.Topics.UsagePriced),
		st.kcfg.TopicSpec(st.kcfg.Topics.Outcomes), st.kcfg.TopicSpec(st.kcfg.Topics.UsageDLQ))
	if err != nil {
		t.Fatal(err)
	}
	if st.producer, err = kafka.NewProducer(st.kcfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.producer.Close)
	st.addKeys(t)
	st.conn = st.serve(t)
	return st
}

func fakeBrokers(t *testing.T) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// forEachBroker runs fn on kfake, and on the real broker of KAFKA_BROKERS
// when it is set.
func forEachBroker(t *testing.T, fn func(t *testing.T, brokers []string)) {
	t.Run("kfake", func(t *testing.T) { fn(t, fakeBrokers(t)) })
	t.Run("kafka", func(t *testing.T) {
		b := os.Getenv("KAFKA_BROKERS")
		if b == "" {
			t.Skip("KAFKA_BROKERS is not set")
		}
		fn(t, strings.Split(b, ","))
	})
}

func (st *stack) addKeys(t testing.TB) {
	t.Helper()
	store := auth.NewStore(st.pool)
	ctx := context.Background()
	for _, tn := range []string{"acme", "globex"} {
		if _, err := store.CreateTenant(ctx, auth.Tenant{ID: tn, Name: tn}); err != nil {
			t.Fatal(err)
		}
		for name, scopes := range map[string][]auth.Scope{
			tn + "-read":  {auth.ScopeRead},
			tn + "-admin": {auth.ScopeRead, auth.ScopeAdmin},
		} {
			_, token, err := store.CreateKey(ctx, tn, name, scopes)
			if err != nil {
				t.Fatal(err)
			}
			st.tokens[name] = token
		}
	}
}

// as returns a context whose calls carry the named key.
func (st *stack) as(name string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(),
		"authorization", "Bearer "+st.tokens[name])
}

func (st *stack) newService(t testing.TB) *attribution.Service {
	t.Helper()
	svc, err := attribution.New(st.settings, attribution.Deps{
		Pool: st.pool, Kafka: st.kcfg, Logger: log.Discard(),
		RunnerOptions: []kafka.Option{kafka.WithOnCommit(func(c kafka.Commit) {
			st.committed.Add(int64(c.Records))
			if st.onCommit != nil {
				st.onCommit(c)
			}
		})},
	})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func (st *stack) serve(t testing.TB) *grpc.ClientConn {
	t.Helper()
	logger := log.Discard()
	authn := auth.NewAuthenticator(auth.NewVerifier(auth.NewStore(st.pool), time.Second),
		attribution.Scopes(), "x-costplane-key", logger)
	srv, err := server.New(server.Config{GRPCAddr: "127.0.0.1:0", ShutdownTimeout: time.Second,
		MaxRecvBytes: 1 << 22}, logger,
		server.WithUnaryInterceptors(authn.Unary()), server.WithStreamInterceptors(authn.Stream()))
	if err != nil {
		t.Fatal(err)
	}
	srv.Register(st.newService(t))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() { cancel(); <-done })

	conn, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// start runs the consumers until stop is called.
func (st *stack) start(t testing.TB) {
	t.Helper()
	svc := st.newService(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	st.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(func() {
		if st.stop != nil {
			st.halt()
		}
	})
}

func (st *stack) halt() {
	st.stop()
	st.stop = nil
}

// produce writes priced usage keyed as pricing keys it.
func (st *stack) produce(t testing.TB, recs []*eventv1.PricedUsage) {
	t.Helper()
	out := make([]*kgo.Record, 0, len(recs))
	for _, p := range recs {
		r, err := kafka.ProtoRecord(st.kcfg.Topics.UsagePriced, usage.RecordKey(p.GetUsage()), p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := st.producer.Produce(context.Background(), out...); err != nil {
		t.Fatal(err)
	}
}

func (st *stack) produceOutcomes(t testing.TB, os []*eventv1.Outcome) {
	t.Helper()
	var out []*kgo.Record
	for _, o := range os {
		r, err := kafka.ProtoRecord(st.kcfg.Topics.Outcomes, []byte(o.GetTenantId()), o)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := st.producer.Produce(context.Background(), out...); err != nil {
		t.Fatal(err)
	}
}

// waitCommitted waits until n records were committed in total.
func (st *stack) waitCommitted(t testing.TB, n int64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for st.committed.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("committed %d records, want %d", st.committed.Load(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Errorf("%s: code %s (%v), want %s", what, got, err, want)
	}
}
