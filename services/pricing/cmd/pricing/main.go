// Command pricing runs costplane's pricing service: the consumer that
// prices costplane.usage.v1 into costplane.usage.priced.v1, the pricing
// ledger, the reprice worker, and the PricingService gRPC API. Settings
// come from the environment and flags; run with -h to list them.
package main

import (
	"context"
	"errors"

	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/server"
	"github.com/costplane/costplane/libs/service"
	"github.com/costplane/costplane/services/pricing"
)

// settings is the configuration of the standalone process.
type settings struct {
	service.Base
	Pricing pricing.Config
	Server  server.Config
	Kafka   kafka.Config
	Auth    auth.Config
}

// Validate checks the settings.
func (s settings) Validate() error {
	errs := []error{s.Base.Validate(), s.Pricing.Validate(), s.Server.Validate(),
		s.Kafka.Validate(), s.Auth.Validate()}
	if len(s.Kafka.Brokers) == 0 {
		errs = append(errs, errors.New("KAFKA_BROKERS must name at least one broker"))
	}
	return errors.Join(errs...)
}

func main() {
	var s settings
	service.Main("pricing", &s, &s.Base, func(ctx context.Context, p *service.Process) error {
		return run(ctx, s, p)
	})
}

func run(ctx context.Context, s settings, p *service.Process) error {
	if err := pricing.Migrate(ctx, p.Pool); err != nil {
		return err
	}
	svc, err := pricing.New(s.Pricing, pricing.Deps{
		Logger: p.Logger, Pool: p.Pool, Kafka: s.Kafka, Registry: p.Registry,
	})
	if err != nil {
		return err
	}
	srv, err := p.GRPC(s.Server, s.Auth, pricing.Scopes(), svc)
	if err != nil {
		return err
	}

	// The consumers may need a transaction timeout to abort what is open.
	g := server.NewGroup(p.Logger, s.Server.ShutdownTimeout+s.Kafka.TransactionTimeout)
	g.Add("consumers", svc)
	g.Add("grpc", srv)
	return g.Run(ctx)
}
