// Command ingest-api serves costplane's IngestService (ReportUsage and
// ReportOutcomes) over gRPC and publishes what it accepts to Kafka.
// Settings come from the environment and flags; run with -h to list them.
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
	ingestapi "github.com/costplane/costplane/services/ingest-api"
)

// settings is the configuration of the standalone process.
type settings struct {
	DatabaseURL      string `env:"DATABASE_URL" default:"postgres://postgres@127.0.0.1:5432/costplane?sslmode=disable" help:"PostgreSQL URL, for API keys"`
	DatabaseMaxConns int32  `env:"DATABASE_MAX_CONNS" default:"4" help:"connection limit"`
	LogLevel         string `env:"LOG_LEVEL" default:"info" help:"debug, info, warn or error"`

	Ingest ingestapi.Config
	Server server.Config
	Kafka  kafka.Config
	Auth   auth.Config
}

// Validate checks the settings.
func (s settings) Validate() error {
	errs := []error{s.Ingest.Validate(), s.Server.Validate(), s.Kafka.Validate(), s.Auth.Validate()}
	if len(s.Kafka.Brokers) == 0 {
		errs = append(errs, errors.New("KAFKA_BROKERS must name at least one broker"))
	}
	if s.DatabaseURL == "" {
		errs = append(errs, errors.New("DATABASE_URL must not be empty"))
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
	if err := config.Load("ingest-api", &s, os.Args[1:], os.LookupEnv); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	level, _ := log.ParseLevel(s.LogLevel) // Validate has checked it.
	logger := log.New(os.Stderr, level, "ingest-api")

	if err := run(ctx, s, logger); err != nil {
		logger.Error("ingest-api failed", slog.Any("error", err))
		os.Exit(1)
	}
}

func run(ctx context.Context, s settings, logger *slog.Logger) error {
	pool, err := pg.Connect(ctx, s.DatabaseURL, s.DatabaseMaxConns)
	if err != nil {
		return err
	}
	defer pool.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	producer, err := newProducer(ctx, s.Kafka, logger, reg)
	if err != nil {
		return err
	}
	defer producer.Close()

	s.Ingest.UsageTopic = s.Kafka.Topics.Usage
	s.Ingest.OutcomesTopic = s.Kafka.Topics.Outcomes
	svc, err := ingestapi.New(s.Ingest, ingestapi.Deps{
		Logger: logger, Producer: producer, Registry: reg,
	})
	if err != nil {
		return err
	}

	verifier := auth.NewVerifier(auth.NewStore(pool), s.Auth.CacheTTL)
	authn := auth.NewAuthenticator(verifier, ingestapi.Scopes(), s.Auth.KeyHeader, logger)
	srv, err := server.New(s.Server, logger, server.WithRegistry(reg),
		server.WithUnaryInterceptors(authn.Unary()), server.WithStreamInterceptors(authn.Stream()))
	if err != nil {
		return err
	}
	srv.Register(svc)

	return srv.Run(ctx)
}

// newProducer opens the producer and creates the two topics the service
// writes when they are missing.
func newProducer(ctx context.Context, cfg kafka.Config, logger *slog.Logger,
	reg prometheus.Registerer,
) (*kafka.Producer, error) {
	producer, err := kafka.NewProducer(cfg, kafka.WithLogger(logger), kafka.WithRegisterer(reg))
	if err != nil {
		return nil, err
	}
	specs := []kafka.TopicSpec{cfg.TopicSpec(cfg.Topics.Usage), cfg.TopicSpec(cfg.Topics.Outcomes)}
	if err := kafka.EnsureTopics(ctx, producer.Client(), specs...); err != nil {
		producer.Close()
		return nil, err
	}
	return producer, nil
}
