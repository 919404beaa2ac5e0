// Command budget serves costplane's BudgetService over gRPC and runs the
// budget pipeline: spend tracking from costplane.usage.priced.v1,
// forecasts, alerts on costplane.budget.alerts.v1 and webhooks. Settings
// come from the environment and flags; run with -h to list them.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/config"
	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/log"
	"github.com/costplane/costplane/libs/pg"
	"github.com/costplane/costplane/libs/server"
	"github.com/costplane/costplane/services/budget"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var cfg budget.Config
	if err := config.Load("budget", &cfg, os.Args[1:], os.LookupEnv); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	level, _ := log.ParseLevel(cfg.LogLevel) // Validate has checked it.
	logger := log.New(os.Stderr, level, "budget")

	if err := run(ctx, cfg, logger); err != nil {
		logger.Error("budget failed", slog.Any("error", err))
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg budget.Config, logger *slog.Logger) error {
	pool, err := pg.Connect(ctx, cfg.DatabaseURL, cfg.DatabaseMaxConns)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := auth.Migrate(ctx, pool); err != nil {
		return err
	}
	if err := budget.Migrate(ctx, pool); err != nil {
		return err
	}
	if err := ensureTopics(ctx, cfg.Kafka); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	deps := budget.Deps{Pool: pool, Kafka: cfg.Kafka, Logger: logger, Registerer: reg}
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

	store := auth.NewStore(pool)
	authn := auth.NewAuthenticator(auth.NewVerifier(store, cfg.Auth.CacheTTL), budget.Scopes(),
		cfg.Auth.KeyHeader, logger)
	srv, err := server.New(cfg.Server, logger, server.WithRegistry(reg),
		server.WithUnaryInterceptors(authn.Unary()), server.WithStreamInterceptors(authn.Stream()))
	if err != nil {
		return err
	}
	srv.Register(svc)

	group := server.NewGroup(logger, cfg.Server.ShutdownTimeout)
	group.Add("grpc", srv)
	group.Add("budget", svc)
	return group.Run(ctx)
}

func ensureTopics(ctx context.Context, kcfg kafka.Config) error {
	cl, err := kafka.NewClient(kcfg)
	if err != nil {
		return err
	}
	defer cl.Close()
	tctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return kafka.EnsureTopics(tctx, cl, kcfg.TopicSpec(kcfg.Topics.UsagePriced),
		kcfg.TopicSpec(kcfg.Topics.BudgetAlerts), kcfg.TopicSpec(kcfg.Topics.UsageDLQ))
}
