// Command ingest-otlp receives OpenTelemetry traces (OTLP/gRPC on :4317,
// OTLP/HTTP on :4318) and writes the GenAI usage they describe to Kafka.
// Settings come from the environment and flags; run with -h to list them.
package main

import (
	"context"
	"errors"

	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/service"
	ingestotlp "github.com/costplane/costplane/services/ingest-otlp"
)

// settings is the configuration of the standalone process. The receiver
// serves OTLP rather than gRPC of its own, so it has no server block.
type settings struct {
	service.Base
	OTLP  ingestotlp.Config
	Kafka kafka.Config
	Auth  auth.Config
}

// Validate checks that the settings can work.
func (s settings) Validate() error {
	errs := []error{s.Base.Validate(), s.OTLP.Validate(), s.Kafka.Validate(), s.Auth.Validate()}
	if len(s.Kafka.Brokers) == 0 {
		errs = append(errs, errors.New("KAFKA_BROKERS must name at least one broker"))
	}
	return errors.Join(errs...)
}

func main() {
	var s settings
	service.Main("ingest-otlp", &s, &s.Base, func(ctx context.Context, p *service.Process) error {
		return run(ctx, s, p)
	})
}

func run(ctx context.Context, s settings, p *service.Process) error {
	producer, err := kafka.NewProducer(s.Kafka, kafka.WithLogger(p.Logger),
		kafka.WithRegisterer(p.Registry))
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
		Logger:   p.Logger,
		Verifier: auth.NewVerifier(auth.NewStore(p.Pool), s.Auth.CacheTTL),
		Producer: producer,
		Registry: p.Registry,
	})
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}
