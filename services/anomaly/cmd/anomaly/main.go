// Command anomaly runs costplane's anomaly detection service: the
// detectors on priced usage, the alert publisher and AnomalyService over
// gRPC. Settings come from the environment and flags; run with -h to list
// them.
package main

import (
	"context"

	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/server"
	"github.com/costplane/costplane/libs/service"
	"github.com/costplane/costplane/services/anomaly"
)

func main() {
	var cfg anomaly.Config
	service.Main("anomaly", &cfg, &cfg.Base, func(ctx context.Context, p *service.Process) error {
		return run(ctx, cfg, p)
	})
}

func run(ctx context.Context, cfg anomaly.Config, p *service.Process) error {
	if err := anomaly.Migrate(ctx, p.Pool); err != nil {
		return err
	}
	// The topics the service reads, writes and dead-letters to.
	t := cfg.Kafka.Topics
	if err := kafka.CreateTopics(ctx, cfg.Kafka, t.UsagePriced, t.Anomalies, t.UsageDLQ); err != nil {
		return err
	}

	svc, err := anomaly.New(cfg.Anomaly, anomaly.Deps{
		Pool: p.Pool, Kafka: cfg.Kafka, Logger: p.Logger, Registerer: p.Registry,
	})
	if err != nil {
		return err
	}
	srv, err := p.GRPC(cfg.Server, cfg.Auth, anomaly.Scopes(), svc)
	if err != nil {
		return err
	}

	group := server.NewGroup(p.Logger, cfg.Server.ShutdownTimeout)
	group.Add("grpc", srv)
	group.Add("anomaly", svc)
	return group.Run(ctx)
}
