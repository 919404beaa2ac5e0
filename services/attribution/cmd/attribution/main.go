// Command attribution runs costplane's attribution service: the consumers
// that write the cost store from priced usage and outcomes, and the gRPC
// services that read it. Settings come from the environment and flags;
// run with -h to list them.
package main

import (
	"context"

	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/server"
	"github.com/costplane/costplane/libs/service"
	"github.com/costplane/costplane/services/attribution"
)

func main() {
	var cfg attribution.Config
	service.Main("attribution", &cfg, &cfg.Base, func(ctx context.Context, p *service.Process) error {
		return run(ctx, cfg, p)
	})
}

func run(ctx context.Context, cfg attribution.Config, p *service.Process) error {
	if err := attribution.Migrate(ctx, p.Pool); err != nil {
		return err
	}
	// The topics the service reads, writes and dead-letters to.
	t := cfg.Kafka.Topics
	if err := kafka.CreateTopics(ctx, cfg.Kafka, t.UsagePriced, t.Outcomes, t.UsageDLQ); err != nil {
		return err
	}

	svc, err := attribution.New(cfg.Attribution, attribution.Deps{
		Pool: p.Pool, Kafka: cfg.Kafka, Logger: p.Logger, Registerer: p.Registry,
	})
	if err != nil {
		return err
	}
	srv, err := p.GRPC(cfg.Server, cfg.Auth, attribution.Scopes(), svc)
	if err != nil {
		return err
	}

	group := server.NewGroup(p.Logger, cfg.Server.ShutdownTimeout)
	group.Add("grpc", srv)
	group.Add("attribution", svc)
	return group.Run(ctx)
}
