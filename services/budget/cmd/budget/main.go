// Command budget serves costplane's BudgetService over gRPC and runs the
// budget pipeline: spend tracking from costplane.usage.priced.v1,
// forecasts, alerts on costplane.budget.alerts.v1 and webhooks. Settings
// come from the environment and flags; run with -h to list them.
package main

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/server"
	"github.com/costplane/costplane/libs/service"
	"github.com/costplane/costplane/services/budget"
)

func main() {
	var cfg budget.Config
	service.Main("budget", &cfg, &cfg.Base, func(ctx context.Context, p *service.Process) error {
		return run(ctx, cfg, p)
	})
}

func run(ctx context.Context, cfg budget.Config, p *service.Process) error {
	if err := budget.Migrate(ctx, p.Pool); err != nil {
		return err
	}
	t := cfg.Kafka.Topics
	if err := kafka.CreateTopics(ctx, cfg.Kafka, t.UsagePriced, t.BudgetAlerts,
		t.UsageDLQ); err != nil {
		return err
	}

	deps := budget.Deps{Pool: p.Pool, Kafka: cfg.Kafka, Logger: p.Logger, Registerer: p.Registry}
	if ep := cfg.Budget.AttributionEndpoint; ep != "" {
		// TODO: TLS to attribution; plaintext is safe only on a private
		// network, as for the gateway.
		conn, err := grpc.NewClient(ep, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return fmt.Errorf("connecting to attribution at %s: %w", ep, err)
		}
		defer conn.Close()
		deps.Perspectives = budget.NewPerspectives(conn, cfg.Auth.KeyHeader)
	}
	svc, err := budget.New(cfg.Budget, deps)
	if err != nil {
		return err
	}
	srv, err := p.GRPC(cfg.Server, cfg.Auth, budget.Scopes(), svc)
	if err != nil {
		return err
	}

	group := server.NewGroup(p.Logger, cfg.Server.ShutdownTimeout)
	group.Add("grpc", srv)
	group.Add("budget", svc)
	return group.Run(ctx)
}
