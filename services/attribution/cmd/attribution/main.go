// Command attribution runs costplane's attribution service: the consumers
// that write the cost store from priced usage and outcomes, and the gRPC
// services that read it. Settings come from the environment and flags;
// run with -h to list them.
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

	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/config"
	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/log"
	"github.com/costplane/costplane/libs/pg"
	"github.com/costplane/costplane/libs/server"
	"github.com/costplane/costplane/services/attribution"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var cfg attribution.Config
	if err := config.Load("attribution", &cfg, os.Args[1:], os.LookupEnv); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	level, _ := log.ParseLevel(cfg.LogLevel) // Validate has checked it.
	logger := log.New(os.Stderr, level, "attribution")

	if err := run(ctx, cfg, logger); err != nil {
		logger.Error("attribution failed", slog.Any("error", err))
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg attribution.Config, logger *slog.Logger) error {
	pool, err := pg.Connect(ctx, cfg.DatabaseURL, cfg.DatabaseMaxConns)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := auth.Migrate(ctx, pool); err != nil {
		return err
	}
	if err := attribution.Migrate(ctx, pool); err != nil {
		return err
	}
	if err := ensureTopics(ctx, cfg.Kafka); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	svc, err := attribution.New(cfg.Attribution, attribution.Deps{
		Pool: pool, Kafka: cfg.Kafka, Logger: logger, Registerer: reg,
	})
	if err != nil {
		return err
	}
	authn := auth.NewAuthenticator(auth.NewVerifier(auth.NewStore(pool), cfg.Auth.CacheTTL),
		attribution.Scopes(), cfg.Auth.KeyHeader, logger)
	srv, err := server.New(cfg.Server, logger, server.WithRegistry(reg),
		server.WithUnaryInterceptors(authn.Unary()), server.WithStreamInterceptors(authn.Stream()))
	if err != nil {
		return err
	}
	srv.Register(svc)

	group := server.NewGroup(logger, cfg.Server.ShutdownTimeout)
	group.Add("grpc", srv)
	group.Add("attribution", svc)
	return group.Run(ctx)
}

// ensureTopics creates the topics the service reads and dead-letters to.
func ensureTopics(ctx context.Context, kcfg kafka.Config) error {
	cl, err := kafka.NewClient(kcfg)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return kafka.EnsureTopics(ctx, cl, kcfg.TopicSpec(kcfg.Topics.UsagePriced),
		kcfg.TopicSpec(kcfg.Topics.Outcomes), kcfg.TopicSpec(kcfg.Topics.UsageDLQ))
}
