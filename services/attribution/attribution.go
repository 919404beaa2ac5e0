// Package attribution is the attribution service: it consumes priced
// usage and outcomes into the cost store (DESIGN §5–§7) and answers cost
// questions over gRPC: the Cost Explorer, Cost Categories, Perspectives,
// unit economics, and run and session detail.
//
// Reads need the read scope; writes of categories and perspectives need
// the admin scope, because they change what every reader of the tenant
// sees. Every call is scoped to the caller's tenant.
//
// New builds the service on a migrated database (see Migrate); Register
// adds its gRPC services to a server, and Run runs its consumers and the
// store maintenance until the context ends.
package attribution

import (
	"context"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/costplane/costplane/libs/apierr"
	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/server"
	attributionv1 "github.com/costplane/costplane/proto/gen/go/costplane/attribution/v1"
	"github.com/costplane/costplane/services/attribution/internal/category"
	"github.com/costplane/costplane/services/attribution/internal/detail"
	"github.com/costplane/costplane/services/attribution/internal/docs"
	"github.com/costplane/costplane/services/attribution/internal/econ"
	"github.com/costplane/costplane/services/attribution/internal/explore"
	"github.com/costplane/costplane/services/attribution/internal/ingest"
)

// OffsetsTable keeps the consumer groups' offsets, beside the data they
// describe.
const OffsetsTable = "attribution.kafka_offsets"

// Deps are what the service runs on.
type Deps struct {
	Pool   *pgxpool.Pool
	Kafka  kafka.Config
	Logger *slog.Logger
	// Registerer, when set, receives the consumers' metrics.
	Registerer prometheus.Registerer
	// RunnerOptions are added to both consumers' options.
	RunnerOptions []kafka.Option
}

// Service implements the attribution gRPC services and runs the
// consumers.
type Service struct {
	attributionv1.UnimplementedCostExplorerServiceServer
	attributionv1.UnimplementedCostCategoryServiceServer
	attributionv1.UnimplementedPerspectiveServiceServer
	attributionv1.UnimplementedUnitEconomicsServiceServer
	attributionv1.UnimplementedRunServiceServer

	cfg          Settings
	deps         Deps
	log          *slog.Logger
	store        *ingest.Store
	explorer     *explore.Explorer
	cats         *category.Store
	perspectives *docs.Store
	detail       *detail.Reader
	econ         *econ.Calculator
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
	cats := category.NewStore(deps.Pool)
	ex := explore.New(deps.Pool, cats)
	var labelKeys []string
	if len(cfg.RollupLabelKeys) > 0 {
		labelKeys = cfg.RollupLabelKeys
	}
	return &Service{
		cfg: cfg, deps: deps, log: log,
		store: ingest.New(ingest.Config{
			DefaultCurrency: cfg.DefaultCurrency, LabelKeys: labelKeys,
			Retention: cfg.RawRetention,
		}, log),
		explorer:     ex,
		cats:         cats,
		perspectives: docs.NewStore(deps.Pool, docs.Perspectives),
		detail:       detail.New(deps.Pool),
		econ:         econ.New(deps.Pool, ex),
	}, nil
}

// Register registers the gRPC services on g.
func (s *Service) Register(g *grpc.Server) {
	attributionv1.RegisterCostExplorerServiceServer(g, s)
	attributionv1.RegisterCostCategoryServiceServer(g, s)
	attributionv1.RegisterPerspectiveServiceServer(g, s)
	attributionv1.RegisterUnitEconomicsServiceServer(g, s)
	attributionv1.RegisterRunServiceServer(g, s)
}

// Scopes returns the scope each RPC requires, for auth.NewAuthenticator.
func Scopes() auth.MethodScopes {
	read, admin := auth.ScopeRead, auth.ScopeAdmin
	return auth.MethodScopes{
		attributionv1.CostExplorerService_QueryCosts_FullMethodName:         read,
		attributionv1.CostExplorerService_ExportCostsCsv_FullMethodName:     read,
		attributionv1.CostCategoryService_GetCostCategory_FullMethodName:    read,
		attributionv1.CostCategoryService_ListCostCategories_FullMethodName: read,
		attributionv1.CostCategoryService_CreateCostCategory_FullMethodName: admin,
		attributionv1.CostCategoryService_UpdateCostCategory_FullMethodName: admin,
		attributionv1.CostCategoryService_DeleteCostCategory_FullMethodName: admin,
		attributionv1.PerspectiveService_GetPerspective_FullMethodName:      read,
		attributionv1.PerspectiveService_ListPerspectives_FullMethodName:    read,
		attributionv1.PerspectiveService_CreatePerspective_FullMethodName:   admin,
		attributionv1.PerspectiveService_UpdatePerspective_FullMethodName:   admin,
		attributionv1.PerspectiveService_DeletePerspective_FullMethodName:   admin,
		attributionv1.UnitEconomicsService_GetUnitEconomics_FullMethodName:  read,
		attributionv1.RunService_GetRun_FullMethodName:                      read,
		attributionv1.RunService_ListRuns_FullMethodName:                    read,
		attributionv1.RunService_GetSession_FullMethodName:                  read,
		attributionv1.RunService_ListSessions_FullMethodName:                read,
	}
}

// Run consumes priced usage and outcomes into the store and maintains its
// partitions and retention, until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	opts := append([]kafka.Option{kafka.WithLogger(s.log)}, s.deps.RunnerOptions...)
	if s.deps.Registerer != nil {
		opts = append(opts, kafka.WithRegisterer(s.deps.Registerer))
	}
	priced, err := kafka.NewRunner(s.deps.Kafka, s.deps.Pool, kafka.RunnerConfig{
		Group: s.cfg.PricedGroup, Topics: []string{s.deps.Kafka.Topics.UsagePriced},
		OffsetsTable: OffsetsTable,
	}, s.store.HandlePriced, opts...)
	if err != nil {
		return err
	}
	outcomes, err := kafka.NewRunner(s.deps.Kafka, s.deps.Pool, kafka.RunnerConfig{
		Group: s.cfg.OutcomesGroup, Topics: []string{s.deps.Kafka.Topics.Outcomes},
		OffsetsTable: OffsetsTable,
	}, s.store.HandleOutcomes, opts...)
	if err != nil {
		return err
	}
	maint := ingest.NewMaintainer(s.deps.Pool, ingest.Retention{
		Raw: s.cfg.RawRetention, Hourly: s.cfg.HourlyRetention, Runs: s.cfg.RunRetention,
	}, s.cfg.PartitionsAhead, s.log)

	group := server.NewGroup(s.log, s.cfg.QueryTimeout)
	group.Add("attribution-priced-consumer", priced)
	group.Add("attribution-outcomes-consumer", outcomes)
	group.Add("attribution-maintenance", server.RunFunc(func(ctx context.Context) error {
		return maint.Run(ctx, s.cfg.MaintenanceInterval)
	}))
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
