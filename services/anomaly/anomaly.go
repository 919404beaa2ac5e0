// Package anomaly is the anomaly detection service. It consumes priced
// usage and finds, per tenant:
//
//   - runaway runs and sessions, while they run: cost above a multiple of
//     the P95 cost of the agent's (or app's) completed runs or sessions,
//     and above a floor;
//   - tool loops and retry loops: one tool, or one request, repeated in a
//     run beyond a threshold;
//   - spend on a model or provider a scope never used before;
//   - spend spikes per dimension set, against a seasonal baseline.
//
// Anomalies are stored in PostgreSQL and published to
// costplane.anomalies.v1 as canonical protobuf JSON, through an outbox
// written in the same transaction as the detection (see README.md).
// AnomalyService lists them, changes their status and configures
// detection per tenant.
//
// New builds the service on a migrated database (see Migrate); Register
// adds its gRPC service to a server, and Run runs the consumer, the
// publisher and the spike evaluator until the context ends.
package anomaly

import (
	"context"
	"embed"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"

	"github.com/costplane/costplane/libs/apierr"
	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/pg"
	"github.com/costplane/costplane/libs/server"
	anomalyv1 "github.com/costplane/costplane/proto/gen/go/costplane/anomaly/v1"
	"github.com/costplane/costplane/services/anomaly/internal/alert"
	"github.com/costplane/costplane/services/anomaly/internal/consumer"
	"github.com/costplane/costplane/services/anomaly/internal/detect"
	"github.com/costplane/costplane/services/anomaly/internal/policy"
	"github.com/costplane/costplane/services/anomaly/internal/publish"
	"github.com/costplane/costplane/services/anomaly/internal/spike"
)

// Schema is the PostgreSQL schema the service owns.
const Schema = "anomaly"

// OffsetsTable keeps the consumer group's offsets beside the state they
// describe.
const OffsetsTable = "anomaly.kafka_offsets"

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate creates or upgrades the anomaly schema.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return pg.Migrate(ctx, pool, Schema, migrations, "migrations")
}

// Deps are what the service runs on.
type Deps struct {
	Pool   *pgxpool.Pool
	Kafka  kafka.Config
	Logger *slog.Logger
	// Registerer, when set, receives the service's metrics.
	Registerer prometheus.Registerer
	// RunnerOptions are added to the consumer's options. They must not
	// set WithOnCommit: use OnCommit.
	RunnerOptions []kafka.Option
	// OnCommit, when set, is called after each committed batch.
	OnCommit func(kafka.Commit)
}

// Service implements AnomalyService and runs the detectors.
type Service struct {
	anomalyv1.UnimplementedAnomalyServiceServer

	cfg       Settings
	deps      Deps
	log       *slog.Logger
	policies  *policy.Cache
	gate      *alert.Gate
	consumer  *consumer.Consumer
	publisher *publish.Publisher
	evaluator *spike.Evaluator
	now       func() time.Time
}

// New builds the service; it connects to nothing until called or run.
func New(cfg Settings, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		cfg: cfg, deps: deps, log: log, policies: policy.NewCache(cfg.SettingsTTL), now: time.Now,
	}

	metrics, err := consumer.NewMetrics(deps.Registerer)
	if err != nil {
		return nil, err
	}
	s.gate = alert.NewGate(s.policies, 10*time.Second, metrics.Dropped)
	s.publisher, err = publish.New(publish.Config{
		Topic:           deps.Kafka.Topics.Anomalies,
		TransactionalID: cfg.TransactionalID,
		Batch:           cfg.PublishBatch,
		Poll:            cfg.PublishPoll,
		RecoverTimeout:  30 * time.Second,
	}, deps.Kafka, deps.Pool, log.With("component", "anomaly-publisher"), deps.Registerer)
	if err != nil {
		return nil, err
	}
	s.evaluator, err = spike.New(s.spikeConfig(), deps.Pool, s.policies, s.gate,
		log.With("component", "spike-evaluator"), s.publisher.Notify, deps.Registerer)
	if err != nil {
		return nil, err
	}
	s.consumer = consumer.New(s.consumerConfig(), detect.New(s.detectConfig()), s.policies,
		s.gate, metrics, log.With("component", "anomaly-consumer"), s.publisher.Notify)
	return s, nil
}

func (s *Service) detectConfig() detect.Config {
	c := detect.DefaultConfig()
	c.RunIdle, c.DoneGrace = s.cfg.RunIdle, s.cfg.RunDoneGrace
	c.MinBaseline, c.BaselineDays = s.cfg.MinBaseline, s.cfg.BaselineDays
	return c
}

func (s *Service) consumerConfig() consumer.Config {
	c := consumer.DefaultConfig()
	c.Group, c.Topic = s.cfg.Group, s.deps.Kafka.Topics.UsagePriced
	c.SessionIdle = s.cfg.SessionIdle
	c.NewSpendWindow, c.NewSpendMinAge = s.cfg.NewSpendWindow, s.cfg.NewSpendMinAge
	return c
}

func (s *Service) spikeConfig() spike.Config {
	return spike.Config{
		Window:       s.cfg.SpikeWindow,
		MinHistory:   s.cfg.SpikeMinHistory,
		Cooldown:     s.cfg.SpikeCooldown,
		Lateness:     s.cfg.SpikeLateness,
		Weeks:        s.cfg.SpikeWeeks,
		Interval:     s.cfg.EvalInterval,
		ActiveFor:    time.Minute,
		Retention5m:  s.cfg.Retention5m,
		Retention1h:  s.cfg.Retention1h,
		BaselineDays: s.cfg.BaselineDays,
	}
}

// Register registers the gRPC service on g.
func (s *Service) Register(g *grpc.Server) {
	anomalyv1.RegisterAnomalyServiceServer(g, s)
}

// Scopes returns the scope each RPC requires, for auth.NewAuthenticator.
// Reading needs read; changing what every reader of the tenant sees
// (status, settings, suppressions) needs admin.
func Scopes() auth.MethodScopes {
	read, admin := auth.ScopeRead, auth.ScopeAdmin
	return auth.MethodScopes{
		anomalyv1.AnomalyService_ListAnomalies_FullMethodName:         read,
		anomalyv1.AnomalyService_GetAnomaly_FullMethodName:            read,
		anomalyv1.AnomalyService_GetAnomalySettings_FullMethodName:    read,
		anomalyv1.AnomalyService_ListSuppressions_FullMethodName:      read,
		anomalyv1.AnomalyService_AcknowledgeAnomaly_FullMethodName:    admin,
		anomalyv1.AnomalyService_ResolveAnomaly_FullMethodName:        admin,
		anomalyv1.AnomalyService_MarkFalsePositive_FullMethodName:     admin,
		anomalyv1.AnomalyService_UpdateAnomalySettings_FullMethodName: admin,
		anomalyv1.AnomalyService_DeleteSuppression_FullMethodName:     admin,
	}
}

// Run consumes priced usage, publishes anomalies and judges spend
// series until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	kcfg := s.deps.Kafka
	kcfg.MaxPollRecords = s.cfg.MaxPollRecords
	onCommit := func(c kafka.Commit) {
		s.consumer.Committed(c)
		s.evaluator.Notify()
		if s.deps.OnCommit != nil {
			s.deps.OnCommit(c)
		}
	}
	opts := append([]kafka.Option{
		kafka.WithLogger(s.log),
		kafka.WithOnCommit(onCommit),
		kafka.WithClientOpts(kgo.OnPartitionsAssigned(s.consumer.Assigned)),
	}, s.deps.RunnerOptions...)
	if s.deps.Registerer != nil {
		opts = append(opts, kafka.WithRegisterer(s.deps.Registerer))
	}
	runner, err := kafka.NewRunner(kcfg, s.deps.Pool, kafka.RunnerConfig{
		Group: s.cfg.Group, Topics: []string{kcfg.Topics.UsagePriced},
		OffsetsTable: OffsetsTable,
	}, s.consumer.Handle, opts...)
	if err != nil {
		return err
	}

	group := server.NewGroup(s.log, s.cfg.QueryTimeout)
	group.Add("anomaly-publisher", s.publisher)
	group.Add("anomaly-spike-evaluator", s.evaluator)
	group.Add("anomaly-consumer", runner)
	return group.Run(ctx)
}

// tenant returns the caller's tenant. Its absence means the server was
// built without the authenticator, so the call is refused.
func tenant(ctx context.Context) (string, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return "", apierr.Unauthenticated("missing API key")
	}
	return p.TenantID, nil
}
