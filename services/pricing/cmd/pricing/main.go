// Command pricing runs costplane's pricing service: the consumer that
// prices costplane.usage.v1 into costplane.usage.priced.v1, the pricing
// ledger, the reprice worker, and the PricingService gRPC API. Settings
// come from the environment and flags; run with -h to list them.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/config"
	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/log"
	"github.com/costplane/costplane/libs/pg"
	"github.com/costplane/costplane/libs/server"
	"github.com/costplane/costplane/services/pricing"
)

// settings is the configuration of the standalone process.
type settings struct {
	DatabaseURL      string `env:"DATABASE_URL" default:"postgres://postgres@127.0.0.1:5432/costplane?sslmode=disable" help:"PostgreSQL URL"`
	DatabaseMaxConns int32  `env:"DATABASE_MAX_CONNS" default:"10" help:"connection limit"`
	LogLevel         string `env:"LOG_LEVEL" default:"info" help:"debug, info, warn or error"`

	Pricing pricing.Config
	Server  server.Config
	Kafka   kafka.Config
	Auth    auth.Config
}

// Validate checks the settings.
func (s settings) Validate() error {
	errs := []error{s.Pricing.Validate(), s.Server.Validate(), s.Kafka.Validate(), s.Auth.Validate()}
	if len(s.Kafka.Brokers) == 0 {
		errs = append(errs, errors.New("KAFKA_BROKERS must name at least one broker"))
	}
	if s.DatabaseURL == "" {
		errs = append(errs, errors.New("DATABASE_URL must not be empty"))
	}
	if s.DatabaseMaxConns < 0 {
		errs = append(errs, errors.New("DATABASE_MAX_CONNS must not be negative"))
	}
	if _, err := log.ParseLevel(s.LogLevel); err != nil {
		errs = append(errs, fmt.Errorf("LOG_LEVEL: %w", err))
	}
	return errors.Join(errs...)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var s settings
	if err := config.Load("pricing", &s, os.Args[1:], os.LookupEnv); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	level, _ := log.ParseLevel(s.LogLevel) // Validate has checked it.
	logger := log.New(os.Stderr, level, "pricing")

	if err := run(ctx, s, logger); err != nil {
		logger.Error("pricing failed", slog.Any("error", err))
		os.Exit(1)
	}
}

func run(ctx context.Context, s settings, logger *slog.Logger) error {
	pool, err := pg.Connect(ctx, s.DatabaseURL, s.DatabaseMaxConns)
	if err != nil {
		return err
	}
	defer pool.Close()
	// The key store is shared by every service; migrating it here too
	// lets pricing start before the admin service.
	if err := auth.Migrate(ctx, pool); err != nil {
		return err
	}
	if err := pricing.Migrate(ctx, pool); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	svc, err := pricing.New(s.Pricing, pricing.Deps{
		Logger: logger, Pool: pool, Kafka: s.Kafka, Registry: reg,
	})
	if err != nil {
		return err
	}

	verifier := auth.NewVerifier(auth.NewStore(pool), s.Auth.CacheTTL)
	authn := auth.NewAuthenticator(verifier, pricing.Scopes(), s.Auth.KeyHeader, logger)
	srv, err := server.New(s.Server, logger, server.WithRegistry(reg),
		server.WithUnaryInterceptors(authn.Unary()), server.WithStreamInterceptors(authn.Stream()))
	if err != nil {
		return err
	}
	srv.Register(svc)

	g := server.NewGroup(logger, s.Server.ShutdownTimeout+s.Kafka.TransactionTimeout)
	g.Add("consumers", svc)
	g.Add("grpc", srv)
	return g.Run(ctx)
}
