package budget_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	budgetv1 "github.com/costplane/costplane/proto/gen/go/costplane/budget/v1"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"

	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/auth/authtest"
	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/log"
	"github.com/costplane/costplane/libs/server"
	"github.com/costplane/costplane/services/budget"
)

// env is one test's world: a database, a broker with topics of its own,
// and a budget service serving gRPC on loopback.
type env struct {
	t      testing.TB
	ctx    context.Context
	pool   *pgxpool.Pool
	kcfg   kafka.Config
	store  *auth.Store
	now    *clock
	client budgetv1.BudgetServiceClient
	addr   string

	// intercept, when set before start, runs around every call, before
	// authentication.
	intercept grpc.UnaryServerInterceptor

	mu       sync.Mutex
	services []context.CancelFunc
	done     []chan error
}

// clock is a settable test clock; the zero offset follows real time.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// newDB returns a fresh database with the auth and budget schemas.
func newDB(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool := authtest.NewDatabase(t)
	if err := budget.Migrate(context.Background(), pool); err != nil {
		t.Fatalf("migrating: %v", err)
	}
	return pool
}

// brokers returns kfake's address, or the real broker's for name "kafka".
func brokers(t testing.TB, name string) []string {
	t.Helper()
	if name == "kafka" {
		b := os.Getenv("KAFKA_BROKERS")
		if b == "" {
			t.Skip("KAFKA_BROKERS is not set")
		}
		return strings.Split(b, ",")
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// forEachBroker runs fn on kfake and, when KAFKA_BROKERS is set, on the
// real broker.
func forEachBroker(t *testing.T, fn func(t *testing.T, brokers []string)) {
	for _, name := range []string{"kfake", "kafka"} {
		t.Run(name, func(t *testing.T) { fn(t, brokers(t, name)) })
	}
}

func randomSuffix(t testing.TB) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// kafkaConfig names topics of the test's own, so tests on a shared real
// broker never see each other's records.
func kafkaConfig(t testing.TB, brokers []string) kafka.Config {
	cfg := kafka.DefaultConfig()
	cfg.Brokers = brokers
	cfg.TopicPartitions = 3
	cfg.SessionTimeout = 6 * time.Second
	cfg.MaxPollRecords = 200
	s := randomSuffix(t)
	cfg.Topics.UsagePriced = "test.budget.priced." + s
	cfg.Topics.BudgetAlerts = "test.budget.alerts." + s
	cfg.Topics.UsageDLQ = "test.budget.dlq." + s

	cl, err := kafka.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = kafka.EnsureTopics(ctx, cl, cfg.TopicSpec(cfg.Topics.UsagePriced),
		cfg.TopicSpec(cfg.Topics.BudgetAlerts), cfg.TopicSpec(cfg.Topics.UsageDLQ))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func testSettings() budget.Settings {
	s := budget.DefaultSettings()
	s.StateRefresh = 200 * time.Millisecond
	s.PublishInterval = 200 * time.Millisecond
	s.WebhookBackoffMin = 50 * time.Millisecond
	s.WebhookBackoffMax = 200 * time.Millisecond
	s.WebhookMaxAttempts = 4
	s.WebhookTimeout = 2 * time.Second
	// The webhook receivers of these tests listen on loopback.
	s.WebhookAllowPrivate = true
	return s
}

// newEnv starts an env; brokers nil means no Kafka (the service is not
// run, only served).
func newEnv(t testing.TB, brokers []string) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), pool: newDB(t), now: &clock{}}
	e.store = auth.NewStore(e.pool)
	if brokers != nil {
		e.kcfg = kafkaConfig(t, brokers)
	} else {
		e.kcfg = kafka.DefaultConfig()
	}
	t.Cleanup(e.stopAll)
	return e
}

// start builds a service on the env and serves it; run also starts its
// pipeline. e.client talks to the latest one.
func (e *env) start(s budget.Settings, run bool, mutate ...func(*budget.Deps)) *budget.Service {
	e.t.Helper()
	deps := budget.Deps{Pool: e.pool, Kafka: e.kcfg, Now: e.now.Now,
		Logger: log.New(testWriter{e.t}, slog.LevelWarn, "budget")}
	for _, m := range mutate {
		m(&deps)
	}
	svc, err := budget.New(s, deps)
	if err != nil {
		e.t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 2)
	e.mu.Lock()
	e.services = append(e.services, cancel)
	e.done = append(e.done, done)
	e.mu.Unlock()

	authn := auth.NewAuthenticator(auth.NewVerifier(e.store, time.Minute), budget.Scopes(),
		"x-costplane-key", deps.Logger)
	srv, err := server.New(server.Config{GRPCAddr: "127.0.0.1:0", ShutdownTimeout: time.Second,
		MaxRecvBytes: 1 << 20}, deps.Logger, server.WithUnaryInterceptors(e.interceptors(authn)...))
	if err != nil {
		e.t.Fatal(err)
	}
	srv.Register(svc)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	go func() { done <- srv.Serve(ctx, lis) }()
	if run {
		go func() { done <- svc.Run(ctx) }()
	} else {
		done <- nil
	}

	{ // the client follows the latest service
		e.addr = lis.Addr().String()
		conn, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			e.t.Fatal(err)
		}
		e.t.Cleanup(func() { conn.Close() })
		e.client = budgetv1.NewBudgetServiceClient(conn)
	}
	return svc
}

func (e *env) interceptors(authn *auth.Authenticator) []grpc.UnaryServerInterceptor {
	if e.intercept == nil {
		return []grpc.UnaryServerInterceptor{authn.Unary()}
	}
	return []grpc.UnaryServerInterceptor{e.intercept, authn.Unary()}
}

// stop stops the i-th started service and waits for it.
func (e *env) stop(i int) {
	e.mu.Lock()
	cancel, done := e.services[i], e.done[i]
	e.services[i], e.done[i] = nil, nil
	e.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	for range 2 {
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			e.t.Errorf("service %d stopped with %v", i, err)
		}
	}
}

func (e *env) stopAll() {
	e.mu.Lock()
	n := len(e.services)
	e.mu.Unlock()
	for i := range n {
		e.stop(i)
	}
}

// tenantCtx creates a tenant with an all-scopes key and returns a context
// carrying the key.
func (e *env) tenantCtx(id string) context.Context {
	e.t.Helper()
	return metadata.AppendToOutgoingContext(e.ctx, "authorization", "Bearer "+e.tenantKey(id))
}

// tenantKey creates a tenant and returns an all-scopes key of it.
func (e *env) tenantKey(id string) string {
	e.t.Helper()
	if _, err := e.store.CreateTenant(e.ctx, auth.Tenant{ID: id, Name: id}); err != nil {
		e.t.Fatal(err)
	}
	_, token, err := e.store.CreateKey(e.ctx, id, "test", auth.AllScopes)
	if err != nil {
		e.t.Fatal(err)
	}
	return token
}

// priced builds a priced usage record.
type priced struct {
	tenant, id, corrects string
	day                  time.Time
	nanos                int64
	currency             string
	provider, project    string
	customer             string
	labels               map[string]string
}

func (p priced) record(topic string) *kgo.Record {
	cur := p.currency
	if cur == "" {
		cur = "USD"
	}
	pu := &eventv1.PricedUsage{
		PricedId: p.id,
		Usage: &eventv1.UsageEvent{
			EventId: p.id, TenantId: p.tenant, Provider: p.provider, Project: p.project,
			CustomerId: p.customer, Model: "gpt-4o",
			StartTime: timestamppb.New(p.day.Add(time.Hour)),
			Labels:    p.labels,
		},
		EffectiveCost:   &eventv1.Money{CurrencyCode: cur, Nanos: p.nanos},
		PricingStatus:   eventv1.PricingStatus_PRICING_STATUS_PRICED,
		CorrectsEventId: p.corrects,
	}
	if p.corrects != "" {
		pu.Usage.EventId = p.corrects
	}
	rec, err := kafka.ProtoRecord(topic, []byte(p.tenant+"/"+p.id), pu)
	if err != nil {
		panic(err) // a PricedUsage always encodes
	}
	return rec
}

// produce writes records to the priced topic and waits for the acks.
func (e *env) produce(ps ...priced) {
	e.t.Helper()
	p, err := kafka.NewProducer(e.kcfg)
	if err != nil {
		e.t.Fatal(err)
	}
	defer p.Close()
	recs := make([]*kgo.Record, len(ps))
	for i, x := range ps {
		recs[i] = x.record(e.kcfg.Topics.UsagePriced)
	}
	if err := p.Produce(e.ctx, recs...); err != nil {
		e.t.Fatal(err)
	}
}

// alertReader reads the alert topic from the start.
type alertReader struct {
	cl *kgo.Client
}

func (e *env) alertReader() *alertReader {
	e.t.Helper()
	cl, err := kafka.NewClient(e.kcfg, kgo.ConsumeTopics(e.kcfg.Topics.BudgetAlerts),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(cl.Close)
	return &alertReader{cl: cl}
}

// read returns the alerts that arrive within d.
func (r *alertReader) read(t testing.TB, d time.Duration) []*eventv1.BudgetAlert {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var out []*eventv1.BudgetAlert
	for ctx.Err() == nil {
		fs := r.cl.PollFetches(ctx)
		fs.EachRecord(func(rec *kgo.Record) {
			var a eventv1.BudgetAlert
			if err := protojson.Unmarshal(rec.Value, &a); err != nil {
				t.Errorf("alert record is not canonical JSON of BudgetAlert: %v", err)
				return
			}
			if ct, _ := kafka.Header(rec, kafka.HeaderContentType); ct != kafka.ContentTypeJSON {
				t.Errorf("alert content type = %q", ct)
			}
			out = append(out, &a)
		})
	}
	return out
}

// eventually retries fn until it returns nil or the deadline passes.
func eventually(t testing.TB, d time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %v", d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func usd(units float64) int64 { return int64(units * 1e9) }

func today() time.Time {
	y, m, d := time.Now().UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}
