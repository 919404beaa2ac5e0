// Command ingest-otlp receives OpenTelemetry traces (OTLP/gRPC on :4317,
// OTLP/HTTP on :4318) and writes the GenAI usage they describe to Kafka.
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
	ingestotlp "github.com/costplane/costplane/services/ingest-otlp"
)

// settings is the configuration of the standalone process.
type settings struct {
	DatabaseURL      string `env:"DATABASE_URL" default:"postgres://postgres@127.0.0.1:5432/costplane?sslmode=disable" help:"PostgreSQL URL, for API keys"`
	DatabaseMaxConns int32  `env:"DATABASE_MAX_CONNS" default:"4" help:"connection limit"`
	LogLevel         string `env:"LOG_LEVEL" default:"info" help:"debug, info, warn or error"`

	OTLP  ingestotlp.Config
	Kafka kafka.Config
	Auth  auth.Config
}

// Validate checks that the settings can work.
func (s settings) Validate() error {
	errs := []error{s.OTLP.Validate(), s.Kafka.Validate(), s.Auth.Validate()}
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
	if err := config.Load("ingest-otlp", &s, os.Args[1:], os.LookupEnv); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	level, _ := log.ParseLevel(s.LogLevel) // Validate has checked it.
	logger := log.New(os.Stderr, level, "ingest-otlp")

	if err := run(ctx, s, logger); err != nil {
		logger.Error("ingest-otlp failed", slog.Any("error", err))
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
	producer, err := kafka.NewProducer(s.Kafka, kafka.WithLogger(logger),
		kafka.WithRegisterer(reg))
	if err != nil {
		return err
	}
	defer producer.Close()
	spec := s.Kafka.TopicSpec(s.Kafka.Topics.Usage)
	if err := kafka.EnsureTopics(ctx, producer.Client(), spec); err != nil {
		return err
	}

	s.OTLP.Topic = s.Kafka.Topics.Usage
	s.OTLP.KeyHeader = s.Auth.KeyHeader
	svc, err := ingestotlp.New(s.OTLP, ingestotlp.Deps{
		Logger:   logger,
		Verifier: auth.NewVerifier(auth.NewStore(pool), s.Auth.CacheTTL),
		Producer: producer,
		Registry: reg,
	})
	if err != nil {
		return err
	}

	return svc.Run(ctx)
}
