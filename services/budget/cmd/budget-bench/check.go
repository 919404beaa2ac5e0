package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/timestamppb"

	budgetv1 "github.com/costplane/costplane/proto/gen/go/costplane/budget/v1"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

var projects = []string{"search", "ads", "support", "billing", "growth", "infra", "ml", "data"}

// benchCheck creates the tenant's budgets, then calls CheckBudget at a
// fixed rate: open loop, so a slow answer does not slow the schedule, and
// latency counted from the scheduled start, so queueing shows.
func benchCheck(ctx context.Context, r *rig, o options) error {
	if err := createBudgets(ctx, r, o.budgets); err != nil {
		return err
	}
	conns := make([]*grpc.ClientConn, o.conns)
	for i := range conns {
		c, err := grpc.NewClient(r.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		defer c.Close()
		conns[i] = c
	}

	fmt.Printf("CheckBudget: %d budgets, %d calls/s for %s over %d connections, %d callers\n",
		o.budgets, o.rate, o.duration, o.conns, o.workers)
	actx := r.authed(ctx)
	check := func(c *grpc.ClientConn, i int) (string, error) {
		resp, err := budgetv1.NewBudgetServiceClient(c).CheckBudget(actx, request(i))
		return resp.GetDecision().String(), err
	}
	warm := min(o.duration/5, 2*time.Second)
	if _, err := load(ctx, conns, o.rate, warm, o.workers, check); err != nil {
		return err
	}
	res, err := load(ctx, conns, o.rate, o.duration, o.workers, check)
	if err != nil {
		return err
	}
	report(res)

	if !o.baseline {
		return nil
	}
	// The same load on the gRPC health check, which crosses the same
	// server, interceptors and connections but none of the service's
	// code: the difference is what CheckBudget itself costs.
	fmt.Println("\nbaseline: grpc.health.v1.Health/Check at the same rate")
	health := func(c *grpc.ClientConn, _ int) (string, error) {
		resp, err := healthpb.NewHealthClient(c).Check(ctx, &healthpb.HealthCheckRequest{})
		return resp.GetStatus().String(), err
	}
	res, err = load(ctx, conns, o.rate, o.duration, o.workers, health)
	if err != nil {
		return err
	}
	report(res)
	return nil
}

func report(res *loadResult) {
	fmt.Printf("sent %d in %s (%.0f/s), errors %d, answers %v\n", len(res.lat),
		res.elapsed.Round(time.Millisecond), float64(len(res.lat))/res.elapsed.Seconds(),
		res.errors, res.decisions)
	fmt.Println(quantiles("latency from schedule", res.lat))
	fmt.Println(quantiles("latency from send    ", res.call))
}

func createBudgets(ctx context.Context, r *rig, n int) error {
	start := time.Now().UTC().AddDate(0, 0, -2)
	for i := range n {
		b := &budgetv1.Budget{
			BudgetId: fmt.Sprintf("b-%d", i),
			Scope: &budgetv1.Scope{Filters: []*budgetv1.ScopeFilter{
				{Dimension: "project", Include: []string{projects[i%len(projects)]}},
				{Dimension: "provider", Exclude: []string{fmt.Sprintf("x-%d", i)}},
			}},
			Amount:    &eventv1.Money{CurrencyCode: "USD", Nanos: int64(100+i) * 1e9},
			Period:    budgetv1.Period(1 + i%5),
			StartTime: timestamppb.New(start),
			Thresholds: []*budgetv1.Threshold{
				{Kind: eventv1.BudgetThresholdKind_BUDGET_THRESHOLD_KIND_ACTUAL, BasisPoints: 8000},
				{Kind: eventv1.BudgetThresholdKind_BUDGET_THRESHOLD_KIND_ACTUAL, BasisPoints: 10000},
			},
		}
		_, err := r.client.CreateBudget(r.authed(ctx), &budgetv1.CreateBudgetRequest{Budget: b})
		if err != nil {
			return fmt.Errorf("creating budget %d: %w", i, err)
		}
	}
	return nil
}

type loadResult struct {
	// lat runs from each call's scheduled time, so that it includes the
	// wait of calls queued behind slow ones; call from its actual start.
	lat       []time.Duration
	call      []time.Duration
	errors    int64
	decisions map[string]int
	elapsed   time.Duration
}

func load(ctx context.Context, conns []*grpc.ClientConn, rate int, d time.Duration,
	workers int, call func(c *grpc.ClientConn, i int) (string, error)) (*loadResult, error) {

	total := int(float64(rate) * d.Seconds())
	type job struct {
		i   int
		due time.Time
	}
	jobs := make(chan job, total)
	lat := make([]time.Duration, total)
	took := make([]time.Duration, total)
	dec := make([]string, total)
	var errs atomic.Int64

	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := conns[w%len(conns)]
			for j := range jobs {
				if wait := time.Until(j.due); wait > 0 {
					time.Sleep(wait)
				}
				sent := time.Now()
				answer, err := call(cl, j.i)
				lat[j.i] = time.Since(j.due)
				took[j.i] = time.Since(sent)
				if err != nil {
					errs.Add(1)
					continue
				}
				dec[j.i] = answer
			}
		}()
	}

	start := time.Now()
	interval := time.Second / time.Duration(rate)
	for i := range total {
		jobs <- job{i: i, due: start.Add(time.Duration(i) * interval)}
	}
	close(jobs)
	wg.Wait()

	res := &loadResult{lat: lat, call: took, errors: errs.Load(), decisions: map[string]int{},
		elapsed: time.Since(start)}
	for _, d := range dec {
		res.decisions[d]++
	}
	return res, ctx.Err()
}

func request(i int) *budgetv1.CheckBudgetRequest {
	return &budgetv1.CheckBudgetRequest{
		Attributes: map[string]string{
			"project":  projects[i%len(projects)],
			"provider": "openai",
			"model":    "gpt-4o",
			"app":      "bench",
		},
		EstimatedCost: &eventv1.Money{CurrencyCode: "USD", Nanos: int64(i%50) * 1e7},
	}
}
