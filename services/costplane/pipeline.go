package costplane

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/server"
	"github.com/costplane/costplane/services/anomaly"
	"github.com/costplane/costplane/services/attribution"
	"github.com/costplane/costplane/services/budget"
	"github.com/costplane/costplane/services/pricing"
)

// pipeline is the part of the system downstream of ingestion: pricing,
// attribution, anomaly and budget, each a gRPC service and a consumer.
type pipeline struct {
	services []server.Service
	runners  []namedRunner
	scopes   auth.MethodScopes
	// Each service has its own registry: several count consumer batches
	// under the same metric names, which one registry would refuse.
	registries prometheus.Gatherers
}

type namedRunner struct {
	name string
	run  server.Runner
}

// migratePipeline applies every downstream service's migrations.
func migratePipeline(ctx context.Context, pool *pgxpool.Pool) error {
	steps := []struct {
		name    string
		migrate func(context.Context) error
	}{
		{"pricing", func(ctx context.Context) error { return pricing.Migrate(ctx, pool) }},
		{"attribution", func(ctx context.Context) error { return attribution.Migrate(ctx, pool) }},
		{"anomaly", func(ctx context.Context) error { return anomaly.Migrate(ctx, pool) }},
		{"budget", func(ctx context.Context) error { return budget.Migrate(ctx, pool) }},
	}
	for _, s := range steps {
		if err := s.migrate(ctx); err != nil {
			return fmt.Errorf("migrating %s: %w", s.name, err)
		}
	}
	return nil
}

// buildPipeline creates the downstream services on the shared stack. The
// budget service reads perspectives from attribution through the
// process's own gRPC address, as it would across processes.
func buildPipeline(cfg Config, st *stack, kcfg kafka.Config, logger *slog.Logger) (
	*pipeline, error,
) {
	p := &pipeline{}
	newReg := func() *prometheus.Registry {
		r := prometheus.NewRegistry()
		p.registries = append(p.registries, r)
		return r
	}

	pr, err := pricing.New(cfg.Pricing, pricing.Deps{
		Logger: logger.With("service", "pricing"), Pool: st.pool, Kafka: kcfg,
		Registry: newReg(),
	})
	if err != nil {
		return nil, err
	}
	at, err := attribution.New(cfg.Attribution, attribution.Deps{
		Pool: st.pool, Kafka: kcfg, Logger: logger.With("service", "attribution"),
		Registerer: newReg(),
	})
	if err != nil {
		return nil, err
	}
	an, err := anomaly.New(cfg.Anomaly, anomaly.Deps{
		Pool: st.pool, Kafka: kcfg, Logger: logger.With("service", "anomaly"),
		Registerer: newReg(),
	})
	if err != nil {
		return nil, err
	}

	conn, err := grpc.NewClient(localAddr(cfg.Server.GRPCAddr),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("connecting budget to attribution: %w", err)
	}
	st.closers = append(st.closers, func() { _ = conn.Close() })
	bu, err := budget.New(cfg.Budget, budget.Deps{
		Pool: st.pool, Kafka: kcfg, Logger: logger.With("service", "budget"),
		Registerer:   newReg(),
		Perspectives: budget.NewPerspectives(conn, cfg.Auth.KeyHeader),
	})
	if err != nil {
		return nil, err
	}

	p.services = append(p.services, pr, at, an, bu)
	p.runners = []namedRunner{
		{"pricing", pr}, {"attribution", at}, {"anomaly", an}, {"budget", bu},
	}
	p.scopes = auth.MergeScopes(pricing.Scopes(), attribution.Scopes(), anomaly.Scopes(),
		budget.Scopes())
	return p, nil
}
