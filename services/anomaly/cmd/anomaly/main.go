// Command anomaly runs costplane's anomaly detection service: the
// detectors on priced usage, the alert publisher and AnomalyService over
// gRPC. Settings come from the environment and flags; run with -h to list
// them.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/config"
	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/log"
	"github.com/costplane/costplane/libs/pg"
	"github.com/costplane/costplane/libs/server"
	"github.com/costplane/costplane/services/anomaly"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var cfg anomaly.Config
	if err := config.Load("anomaly", &cfg, os.Args[1:], os.LookupEnv); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	level, _ := log.ParseLevel(cfg.LogLevel) // Validate has checked it.
	logger := log.New(os.Stderr, level, "anomaly")

	if err := run(ctx, cfg, logger); err != nil {
		logger.Error("anomaly failed", slog.Any("error", err))
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg anomaly.Config, logger *slog.Logger) error {
	pool, err := pg.Connect(ctx, cfg.DatabaseURL, cfg.DatabaseMaxConns)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := auth.Migrate(ctx, pool); err != nil {
		return err
	}
	if err := anomaly.Migrate(ctx, pool); err != nil {
		return err
	}
	if err := ensureTopics(ctx, cfg.Kafka); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	svc, err := anomaly.New(cfg.Anomaly, anomaly.Deps{
		Pool: pool, Kafka: cfg.Kafka, Logger: logger, Registerer: reg,
	})
	if err != nil {
		return err
	}

	store := auth.NewStore(pool)
	authn := auth.NewAuthenticator(auth.NewVerifier(store, cfg.Auth.CacheTTL), anomaly.Scopes(),
		cfg.Auth.KeyHeader, logger)
	srv, err := server.New(cfg.Server, logger, server.WithRegistry(reg),
		server.WithUnaryInterceptors(authn.Unary()), server.WithStreamInterceptors(authn.Stream()))
	if err != nil {
		return err
	}
	srv.Register(svc)

	group := server.NewGroup(logger, cfg.Server.ShutdownTimeout)
	group.Add("grpc", srv)
	group.Add("anomaly", svc)
	return group.Run(ctx)
}

func ensureTopics(ctx context.Context, kcfg kafka.Config) error {
	cl, err := kafka.NewClient(kcfg)
	if err != nil {
		return err
	}
	defer cl.Close()
	return kafka.EnsureTopics(ctx, cl,
		kcfg.TopicSpec(kcfg.Topics.UsagePriced), kcfg.TopicSpec(kcfg.Topics.Anomalies),
		kcfg.TopicSpec(kcfg.Topics.UsageDLQ))
}
