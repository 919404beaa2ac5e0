package main

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/timestamppb"

	budgetv1 "github.com/costplane/costplane/proto/gen/go/costplane/budget/v1"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"

	"github.com/costplane/costplane/services/budget/internal/loadtest"
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

func report(res *loadtest.Result) {
	fmt.Printf("sent %d in %s (%.0f/s), errors %d, answers %v\n", len(res.Latency),
		res.Elapsed.Round(time.Millisecond), res.Rate(), res.Errors, res.Answers)
	fmt.Println(loadtest.Summary("latency from schedule", res.Latency))
	fmt.Println(loadtest.Summary("latency from send    ", res.Call))
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

// load runs the calls through loadtest, spreading workers over conns.
func load(ctx context.Context, conns []*grpc.ClientConn, rate int, d time.Duration,
	workers int, call func(c *grpc.ClientConn, i int) (string, error)) (*loadtest.Result, error) {

	n := int(float64(rate) * d.Seconds())
	res := loadtest.Run(ctx, rate, n, workers, func(_ context.Context, w, i int) (string, error) {
		return call(conns[w%len(conns)], i)
	})
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
