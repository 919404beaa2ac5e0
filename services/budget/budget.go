// Package budget is the budget service: budgets on any scope of AI spend,
// spend tracking from costplane.usage.priced.v1, seasonal forecasts,
// threshold alerts on costplane.budget.alerts.v1 (and webhooks), and a
// budget check that gateways call before sending a request.
//
// Its parts, all started by Service.Run:
//
//   - the spend consumer: a kafka.Runner whose handler (internal/spend)
//     adds each batch to the daily spend stores and the budget periods and
//     raises the alerts the new totals cross, in the transaction that
//     stores the consumed offsets;
//   - the alert publisher, draining the alert outbox to Kafka, and the
//     webhook deliverer;
//   - the projector, refitting each budget's forecast;
//   - the state refresher, keeping the in-memory state that CheckBudget
//     answers from in step with other members of the group;
//   - maintenance, applying retention.
//
// The gRPC service registers on any *grpc.Server whose calls pass through
// an auth.Authenticator configured with Scopes. Migrate must have run
// before either serves.
package budget

import (
	"context"
	"embed"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	budgetv1 "github.com/costplane/costplane/proto/gen/go/costplane/budget/v1"

	"github.com/costplane/costplane/libs/apierr"
	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/pg"
	"github.com/costplane/costplane/libs/server"
	"github.com/costplane/costplane/services/budget/internal/alerts"
	"github.com/costplane/costplane/services/budget/internal/live"
	"github.com/costplane/costplane/services/budget/internal/projector"
	"github.com/costplane/costplane/services/budget/internal/scope"
	"github.com/costplane/costplane/services/budget/internal/spend"
)

// Schema is the PostgreSQL schema the service owns.
const Schema = "budget"

// OffsetsTable keeps the consumer group's offsets beside the spend.
const OffsetsTable = "budget.kafka_offsets"

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate creates or upgrades the budget schema.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	if err := pg.Migrate(ctx, pool, Schema, migrations, "migrations"); err != nil {
		return fmt.Errorf("migrating budget schema: %w", err)
	}
	return nil
}

// Deps are what the service needs from its host.
type Deps struct {
	Pool   *pgxpool.Pool
	Kafka  kafka.Config
	Logger *slog.Logger
	// Producer publishes alerts; nil makes Run create one on Kafka.
	Producer alerts.Producer
	// Registerer receives the metrics; nil keeps them private.
	Registerer prometheus.Registerer
	// RunnerOptions are added to the consumer's options.
	RunnerOptions []kafka.Option
	// Perspectives resolves perspective scopes; nil refuses them.
	Perspectives Perspectives
	// Categories resolves category:<id> scope filters; nil uses
	// Perspectives when it implements Categories, else refuses them.
	Categories Categories
	// HTTPClient posts webhooks; nil uses one with the configured
	// timeout that refuses private addresses unless
	// BUDGET_WEBHOOK_ALLOW_PRIVATE is set.
	HTTPClient *http.Client
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Service implements BudgetService and runs the budget pipeline.
type Service struct {
	budgetv1.UnimplementedBudgetServiceServer

	cfg     Settings
	deps    Deps
	log     *slog.Logger
	now     func() time.Time
	keys    scope.LabelKeys
	metrics *metrics

	categories Categories

	state     *live.State
	raiser    *alerts.Raiser
	tracker   *spend.Tracker
	publisher *alerts.Publisher
	projector *projector.Projector
}

// New builds the service; it connects to nothing until called or run.
func New(cfg Settings, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Pool == nil {
		return nil, fmt.Errorf("creating budget service: a database pool is required")
	}
	s := &Service{cfg: cfg, deps: deps, log: deps.Logger, now: deps.Now,
		keys: scope.NewLabelKeys(cfg.LabelKeys)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.categories = deps.Categories
	if c, ok := deps.Perspectives.(Categories); ok && s.categories == nil {
		s.categories = c
	}
	m, err := newMetrics(deps.Registerer)
	if err != nil {
		return nil, err
	}
	s.metrics = m

	s.state = live.New()
	s.raiser = alerts.NewRaiser(s.state)
	s.publisher = alerts.NewPublisher(deps.Pool, deps.Kafka.Topics.BudgetAlerts,
		cfg.PublishInterval, s.log)
	s.tracker = spend.NewTracker(spend.Options{
		Logger: s.log, LabelKeys: s.keys, Raiser: s.raiser, Now: s.now, Notify: s.committed,
	})
	s.projector = projector.New(deps.Pool, s.state, s.raiser, projector.Options{
		HistoryDays: cfg.HistoryDays, Interval: cfg.ForecastInterval, Now: s.now,
		Logger: s.log, OnRaised: s.raised,
	})
	return s, nil
}

// Register registers the gRPC service on g.
func (s *Service) Register(g *grpc.Server) {
	budgetv1.RegisterBudgetServiceServer(g, s)
}

// Scopes returns the scope each RPC requires, for auth.NewAuthenticator.
// CheckBudget needs read: its answer tells how much of a budget is left.
func Scopes() auth.MethodScopes {
	read, admin := auth.ScopeRead, auth.ScopeAdmin
	return auth.MethodScopes{
		budgetv1.BudgetService_CreateBudget_FullMethodName:     admin,
		budgetv1.BudgetService_UpdateBudget_FullMethodName:     admin,
		budgetv1.BudgetService_DeleteBudget_FullMethodName:     admin,
		budgetv1.BudgetService_GetBudget_FullMethodName:        read,
		budgetv1.BudgetService_ListBudgets_FullMethodName:      read,
		budgetv1.BudgetService_GetBudgetStatus_FullMethodName:  read,
		budgetv1.BudgetService_ListBudgetAlerts_FullMethodName: read,
		budgetv1.BudgetService_Forecast_FullMethodName:         read,
		budgetv1.BudgetService_CheckBudget_FullMethodName:      read,
	}
}

// Run loads the in-memory state, then consumes priced usage, publishes
// and delivers alerts, keeps forecasts and state current and applies
// retention, until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	if err := s.loadState(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}

	producer := s.deps.Producer
	if producer == nil {
		p, err := kafka.NewProducer(s.deps.Kafka, kafka.WithLogger(s.log))
		if err != nil {
			return err
		}
		defer p.Close()
		producer = p
	}

	opts := append([]kafka.Option{kafka.WithLogger(s.log),
		kafka.WithOnCommit(s.tracker.AfterCommit)}, s.deps.RunnerOptions...)
	if s.deps.Registerer != nil {
		opts = append(opts, kafka.WithRegisterer(s.deps.Registerer))
	}
	consumer, err := kafka.NewRunner(s.deps.Kafka, s.deps.Pool, kafka.RunnerConfig{
		Group: s.cfg.Group, Topics: []string{s.deps.Kafka.Topics.UsagePriced},
		OffsetsTable: OffsetsTable,
	}, s.tracker.Handle, opts...)
	if err != nil {
		return err
	}

	deliverer := alerts.NewDeliverer(s.deps.Pool, s.webhookClient(), alerts.DeliveryOptions{
		MaxAttempts: s.cfg.WebhookMaxAttempts, BackoffMin: s.cfg.WebhookBackoffMin,
		BackoffMax: s.cfg.WebhookBackoffMax, Secret: s.cfg.WebhookSecret,
		Interval: s.cfg.PublishInterval, Logger: s.log, Now: s.now,
		OnResult: s.metrics.webhook,
	})

	group := server.NewGroup(s.log, s.cfg.QueryTimeout)
	group.Add("budget-spend-consumer", consumer)
	group.Add("budget-alert-publisher", server.RunFunc(func(ctx context.Context) error {
		return s.publisher.Run(ctx, s.countingProducer(producer))
	}))
	group.Add("budget-webhooks", deliverer)
	group.Add("budget-projector", s.projector)
	group.Add("budget-state-refresh", server.RunFunc(s.refreshLoop))
	group.Add("budget-maintenance", server.RunFunc(s.maintenanceLoop))
	return group.Run(ctx)
}

func (s *Service) webhookClient() *http.Client {
	if s.deps.HTTPClient != nil {
		return s.deps.HTTPClient
	}
	return alerts.NewWebhookClient(s.cfg.WebhookTimeout, s.cfg.WebhookAllowPrivate)
}

// committed receives what each committed consumer batch changed.
func (s *Service) committed(c spend.Committed) {
	if c.Set != nil {
		s.state.SetBudgets(c.Set)
	}
	s.state.ApplyTotals(c.Totals, s.now())
	s.projector.MarkStale(c.Late...)
	if c.Raised > 0 {
		s.metrics.raised.Add(float64(c.Raised))
		s.publisher.Notify()
	}
}

// raised is called when a transaction outside the consumer raised alerts.
func (s *Service) raised() { s.publisher.Notify() }

// tenant returns the caller's tenant. Its absence means the server was
// built without the authenticator, so the call is refused.
func tenant(ctx context.Context) (string, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return "", apierr.Unauthenticated("missing API key")
	}
	return p.TenantID, nil
}
