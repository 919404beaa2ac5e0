package budget_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	budgetv1 "github.com/costplane/costplane/proto/gen/go/costplane/budget/v1"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"

	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/services/budget/internal/loadtest"
)

// checkRate is the load: CheckBudget p99 <= 2 ms at 5,000 calls/s.
const checkRate = 5000

var benchProjects = []string{"search", "ads", "support", "billing", "growth", "infra", "ml"}

// BenchmarkCheckBudget calls CheckBudget over gRPC on loopback, with
// API-key authentication, at a fixed 5,000 calls/s, against 50 budgets of
// the caller's tenant; one op is one call (run with -benchtime 25000x
// for five seconds). The baseline is the gRPC health check at the same
// rate over the same server, interceptors and connections: the two loads
// alternate second by second, so that both meet the same noise of a
// shared machine, and the difference is what CheckBudget itself costs.
// Latency runs from each call's scheduled time (open loop); ns/op is
// dropped, as the schedule fixes it.
func BenchmarkCheckBudget(b *testing.B) {
	e := newEnv(b, brokers(b, "kfake"))
	served := &serverTimes{}
	e.intercept = served.intercept
	e.start(testSettings(), true)
	key := e.tenantKey("bench")
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization",
		"Bearer "+key)
	for i := range 50 {
		bud := &budgetv1.Budget{
			BudgetId: fmt.Sprintf("b-%d", i),
			Scope: &budgetv1.Scope{Filters: []*budgetv1.ScopeFilter{
				{Dimension: "project", Include: []string{benchProjects[i%len(benchProjects)]}},
				{Dimension: "provider", Exclude: []string{fmt.Sprintf("x-%d", i)}},
			}},
			Amount:    &eventv1.Money{CurrencyCode: "USD", Nanos: int64(100+i) * 1e9},
			Period:    budgetv1.Period(1 + i%5),
			StartTime: timestamppb.New(today().AddDate(0, 0, -2)),
			Thresholds: []*budgetv1.Threshold{
				{Kind: actual, BasisPoints: 8000}, {Kind: actual, BasisPoints: 10000},
			},
		}
		if _, err := e.client.CreateBudget(ctx, &budgetv1.CreateBudgetRequest{Budget: bud}); err != nil {
			b.Fatal(err)
		}
	}

	conns := make([]*grpc.ClientConn, 4)
	for i := range conns {
		c, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	check := func(ctx context.Context, w, i int) (string, error) {
		resp, err := budgetv1.NewBudgetServiceClient(conns[w%len(conns)]).CheckBudget(ctx,
			checkRequest(i))
		return resp.GetDecision().String(), err
	}
	health := func(ctx context.Context, w, _ int) (string, error) {
		resp, err := healthpb.NewHealthClient(conns[w%len(conns)]).Check(ctx,
			&healthpb.HealthCheckRequest{})
		return resp.GetStatus().String(), err
	}
	// Warm connections, caches and the scheduler.
	loadtest.Run(ctx, checkRate, checkRate, 64, check)
	loadtest.Run(ctx, checkRate, checkRate/2, 64, health)

	var checks, bases []time.Duration
	var errs int64
	var elapsed time.Duration
	// Calls' own round trips, from sending to the answer, without the
	// time a worker woke late for its due time: what a gateway waits.
	var checkCalls, baseCalls []time.Duration
	served.reset()
	b.ResetTimer()
	for done, k := 0, 0; done < b.N; done, k = done+checkRate, k+1 {
		n := min(checkRate, b.N-done)
		// Which load goes first alternates too, so that neither always
		// follows the other's backlog.
		for j := range 2 {
			if (j+k)%2 == 0 {
				res := loadtest.Run(ctx, checkRate, n, 64, check)
				checks, errs, elapsed = append(checks, res.Latency...), errs+res.Errors,
					elapsed+res.Elapsed
				checkCalls = append(checkCalls, res.Call...)
				continue
			}
			res := loadtest.Run(ctx, checkRate, n, 64, health)
			bases, errs = append(bases, res.Latency...), errs+res.Errors
			baseCalls = append(baseCalls, res.Call...)
		}
	}
	b.StopTimer()
	if errs > 0 {
		b.Errorf("%d calls failed", errs)
	}
	ms := func(ds []time.Duration, q float64) float64 {
		return float64(loadtest.Quantile(ds, q).Microseconds()) / 1000
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(len(checks))/elapsed.Seconds(), "calls/s")
	b.ReportMetric(ms(checks, 0.5), "check_p50_ms")
	b.ReportMetric(ms(checks, 0.99), "check_p99_ms")
	b.ReportMetric(ms(bases, 0.5), "base_p50_ms")
	b.ReportMetric(ms(bases, 0.99), "base_p99_ms")
	b.ReportMetric(ms(checkCalls, 0.99), "check_call_p99_ms")
	b.ReportMetric(ms(baseCalls, 0.99), "base_call_p99_ms")
	b.ReportMetric(ms(served.times(), 0.99), "check_server_p99_ms")
}

// serverTimes records how long the server spent in each CheckBudget call,
// authentication included: the service's part of the latency, without
// the network, the client and the wait for a worker.
type serverTimes struct {
	mu sync.Mutex
	ds []time.Duration
}

func (s *serverTimes) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo,
	h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := h(ctx, req)
	if info.FullMethod == budgetv1.BudgetService_CheckBudget_FullMethodName {
		d := time.Since(start)
		s.mu.Lock()
		s.ds = append(s.ds, d)
		s.mu.Unlock()
	}
	return resp, err
}

func (s *serverTimes) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ds = s.ds[:0]
}

func (s *serverTimes) times() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.ds...)
}

func checkRequest(i int) *budgetv1.CheckBudgetRequest {
	return &budgetv1.CheckBudgetRequest{
		Attributes: map[string]string{
			"project":  benchProjects[i%len(benchProjects)],
			"provider": "openai",
			"model":    "gpt-4o",
			"app":      "bench",
		},
		EstimatedCost: &eventv1.Money{CurrencyCode: "USD", Nanos: int64(i%50) * 1e7},
	}
}

// BenchmarkAlertLatency times threshold alerts on the real broker
// (KAFKA_BROKERS; skipped without it) and PostgreSQL: one op is one
// crossing, an event that takes its own budget past 100 %, produced with
// four events that cross nothing, 50 ms after the previous crossing. A
// crossing's latency runs from Kafka's acknowledgement of its event to
// the alert's arrival at a read_committed reader of the alert topic. Run
// with -benchtime 100x.
func BenchmarkAlertLatency(b *testing.B) {
	e := newEnv(b, brokers(b, "kafka"))
	e.start(testSettings(), true)
	ctx := e.tenantCtx("bench")
	for i := range b.N {
		bud := &budgetv1.Budget{
			BudgetId: fmt.Sprintf("a-%d", i),
			Scope: &budgetv1.Scope{Filters: []*budgetv1.ScopeFilter{
				{Dimension: "customer", Include: []string{fmt.Sprintf("c-%d", i)}}}},
			Amount:     &eventv1.Money{CurrencyCode: "USD", Nanos: 1e9},
			Period:     budgetv1.Period_PERIOD_MONTHLY,
			StartTime:  timestamppb.New(today().AddDate(0, 0, -1)),
			Thresholds: []*budgetv1.Threshold{{Kind: actual, BasisPoints: 10000}},
		}
		if _, err := e.client.CreateBudget(ctx, &budgetv1.CreateBudgetRequest{Budget: bud}); err != nil {
			b.Fatal(err)
		}
	}
	reader, err := kafka.NewClient(e.kcfg, kgo.ConsumeTopics(e.kcfg.Topics.BudgetAlerts),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer reader.Close()
	prod, err := kafka.NewProducer(e.kcfg)
	if err != nil {
		b.Fatal(err)
	}
	defer prod.Close()

	var (
		mu    sync.Mutex
		acked = make(map[string]time.Time, b.N)
		lat   []time.Duration
		dups  int
		seen  = make(map[string]bool)
	)
	rctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for rctx.Err() == nil {
			reader.PollFetches(rctx).EachRecord(func(rec *kgo.Record) {
				got := time.Now()
				var a eventv1.BudgetAlert
				if protojson.Unmarshal(rec.Value, &a) != nil {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if seen[a.GetAlertId()] {
					dups++
					return
				}
				seen[a.GetAlertId()] = true
				if t, ok := acked[a.GetBudgetId()]; ok {
					lat = append(lat, got.Sub(t))
				}
			})
		}
	}()

	b.ResetTimer()
	for i := range b.N {
		recs := []*kgo.Record{benchPriced(e.kcfg.Topics.UsagePriced, fmt.Sprintf("x-%d", i),
			fmt.Sprintf("c-%d", i), 1_500_000_000)}
		for j := range 4 {
			recs = append(recs, benchPriced(e.kcfg.Topics.UsagePriced,
				fmt.Sprintf("bg-%d-%d", i, j), "nobody", 10_000_000))
		}
		if err := prod.Produce(context.Background(), recs...); err != nil {
			b.Fatal(err)
		}
		mu.Lock()
		acked[fmt.Sprintf("a-%d", i)] = time.Now()
		mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(lat)
		mu.Unlock()
		if n >= b.N || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.StopTimer()
	time.Sleep(time.Second) // catch duplicates
	stop()
	<-done

	mu.Lock()
	defer mu.Unlock()
	if len(lat) < b.N || dups > 0 {
		b.Errorf("alerts received %d of %d, duplicates %d", len(lat), b.N, dups)
	}
	ms := func(q float64) float64 {
		return float64(loadtest.Quantile(lat, q).Microseconds()) / 1000
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(0.5), "p50_ms")
	b.ReportMetric(ms(0.99), "p99_ms")
	b.ReportMetric(ms(1), "max_ms")
}

func benchPriced(topic, id, customer string, nanos int64) *kgo.Record {
	return priced{tenant: "bench", id: id, day: today(), nanos: nanos,
		provider: "openai", customer: customer}.record(topic)
}
