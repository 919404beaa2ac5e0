// Command ingest-api serves costplane's IngestService (ReportUsage and
// ReportOutcomes) over gRPC and publishes what it accepts to Kafka.
// Settings come from the environment and flags; run with -h to list them.
package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/server"
	"github.com/costplane/costplane/libs/service"
	ingestapi "github.com/costplane/costplane/services/ingest-api"
)

// settings is the configuration of the standalone process.
type settings struct {
	service.Base
	Ingest ingestapi.Config
	Server server.Config
	Kafka  kafka.Config
	Auth   auth.Config
}

// Validate checks the settings.
func (s settings) Validate() error {
	errs := []error{s.Base.Validate(), s.Ingest.Validate(), s.Server.Validate(),
		s.Kafka.Validate(), s.Auth.Validate()}
	if len(s.Kafka.Brokers) == 0 {
		errs = append(errs, errors.New("KAFKA_BROKERS must name at least one broker"))
	}
	return errors.Join(errs...)
}

func main() {
	var s settings
	service.Main("ingest-api", &s, &s.Base, func(ctx context.Context, p *service.Process) error {
		return run(ctx, s, p)
	})
}

func run(ctx context.Context, s settings, p *service.Process) error {
	producer, err := newProducer(ctx, s.Kafka, p.Logger, p.Registry)
	if err != nil {
		return err
	}
	defer producer.Close()

	s.Ingest.UsageTopic = s.Kafka.Topics.Usage
	s.Ingest.OutcomesTopic = s.Kafka.Topics.Outcomes
	svc, err := ingestapi.New(s.Ingest, ingestapi.Deps{
		Logger: p.Logger, Producer: producer, Registry: p.Registry,
	})
	if err != nil {
		return err
	}
	srv, err := p.GRPC(s.Server, s.Auth, ingestapi.Scopes(), svc)
	if err != nil {
		return err
	}
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
