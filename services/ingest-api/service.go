// Package ingestapi implements costplane.ingest.v1.IngestService: programs
// report usage events and business outcomes in batches, over gRPC or over
// REST through the gateway (POST /v1/usage, POST /v1/outcomes).
//
// A batch is all or nothing. Every item is checked, every problem is
// reported in one INVALID_ARGUMENT whose BadRequest names the field and the
// index ("events[3].quantities[0].amount"), and a batch with any bad item
// publishes nothing. Clients therefore never have to work out which items
// of a failed call landed.
//
// A success means Kafka acknowledged every record. When Kafka cannot take
// them the answer is UNAVAILABLE with a RetryInfo (503 with Retry-After on
// REST), never success. Some records of a failed call may have been
// written; retrying the same batch is harmless because ids are stable:
// usage events keep the event_id the client sent, or get one derived from
// their content when it sent none, and outcomes must carry an outcome_id.
// Downstream stores keep one row per tenant and id.
//
// The tenant is the one of the caller's API key, which must hold the ingest
// scope. The service registers on any *grpc.Server whose calls pass through
// an auth.Authenticator configured with Scopes:
//
//	svc, err := ingestapi.New(cfg, ingestapi.Deps{Logger: l, Producer: p})
//	srv.Register(svc)
package ingestapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"

	ingestv1 "github.com/costplane/costplane/proto/gen/go/costplane/ingest/v1"

	"github.com/costplane/costplane/libs/apierr"
	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/kafka"
)

// Producer writes records and returns only once Kafka acknowledged every
// one of them. *kafka.Producer is the implementation; its errors wrap
// kafka.ErrUnavailable when a retry may succeed.
type Producer interface {
	Produce(ctx context.Context, recs ...*kgo.Record) error
}

// Deps are what the service needs from its host.
type Deps struct {
	Logger   *slog.Logger
	Producer Producer
	// Registry receives the metrics; nil keeps them private.
	Registry prometheus.Registerer
	// Now is the clock that bounds event times; nil means time.Now.
	Now func() time.Time
}

// Service implements IngestService.
type Service struct {
	ingestv1.UnimplementedIngestServiceServer

	cfg      Config
	log      *slog.Logger
	producer Producer
	metrics  *metrics
	now      func() time.Time
}

// New returns the service.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("checking ingest-api config: %w", err)
	}
	if deps.Logger == nil || deps.Producer == nil {
		return nil, errors.New("ingest-api needs a logger and a producer")
	}
	reg := deps.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if cfg.UsageTopic == "" {
		cfg.UsageTopic = kafka.TopicUsage
	}
	if cfg.OutcomesTopic == "" {
		cfg.OutcomesTopic = kafka.TopicOutcomes
	}

	return &Service{
		cfg: cfg, log: deps.Logger, producer: deps.Producer, metrics: m, now: deps.Now,
	}, nil
}

// Register registers the service on g.
func (s *Service) Register(g *grpc.Server) {
	ingestv1.RegisterIngestServiceServer(g, s)
}

// Scopes returns the scope each RPC requires, for auth.NewAuthenticator.
func Scopes() auth.MethodScopes {
	return auth.MethodScopes{
		ingestv1.IngestService_ReportUsage_FullMethodName:    auth.ScopeIngest,
		ingestv1.IngestService_ReportOutcomes_FullMethodName: auth.ScopeIngest,
	}
}

// caller returns the authenticated principal. Its absence means the server
// was built without the authenticator, so the call is refused.
func caller(ctx context.Context) (auth.Principal, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return auth.Principal{}, apierr.Unauthenticated("missing API key")
	}
	return p, nil
}
