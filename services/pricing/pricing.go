// Package pricing is costplane's pricing service. It turns
// costplane.usage.v1 into costplane.usage.priced.v1 and answers price
// questions over gRPC (and REST through the gateway).
//
// Its parts, all started by Service.Run:
//
//   - the pricing consumer: a kafka.TxnRunner that prices every usage
//     record with the catalog and the tenant's rates and produces the
//     PricedUsage, with the consumed offsets, in one Kafka transaction;
//     records that do not decode go to the DLQ with the reason;
//   - the tenant-rate cache, refreshed by LISTEN/NOTIFY and polling, so a
//     rate change applies within seconds;
//   - the ledger: a kafka.Runner copying the priced topic into
//     pricing.ledger, the history repricing works from;
//   - the reprice worker, which runs the jobs StartReprice creates.
//
// The gRPC service registers on any *grpc.Server whose calls pass through
// an auth.Authenticator configured with Scopes. Migrate must have run
// before either serves.
package pricing

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	pricingv1 "github.com/costplane/costplane/proto/gen/go/costplane/pricing/v1"

	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/pg"
	"github.com/costplane/costplane/libs/server"
	"github.com/costplane/costplane/services/pricing/catalog"
	"github.com/costplane/costplane/services/pricing/internal/ledger"
	"github.com/costplane/costplane/services/pricing/internal/pricer"
	"github.com/costplane/costplane/services/pricing/internal/rates"
	"github.com/costplane/costplane/services/pricing/internal/reprice"
	"github.com/costplane/costplane/services/pricing/pricebook"
)

// Schema is the PostgreSQL schema the service owns.
const Schema = "pricing"

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate creates or upgrades the pricing schema.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	if err := pg.Migrate(ctx, pool, Schema, migrations, "migrations"); err != nil {
		return fmt.Errorf("migrating pricing schema: %w", err)
	}
	return nil
}

// Deps are what the service needs from its host.
type Deps struct {
	Logger *slog.Logger
	Pool   *pgxpool.Pool
	// Kafka names the brokers and topics. Run needs brokers; the gRPC
	// service alone does not.
	Kafka kafka.Config
	// Registry receives the metrics; nil keeps them private.
	Registry prometheus.Registerer
	// Book prices events; nil loads the embedded catalog.
	Book *pricebook.Book
}

// Service is the pricing service: the gRPC API and, through Run, the
// consumers and the reprice worker.
type Service struct {
	pricingv1.UnimplementedPricingServiceServer

	cfg      Config
	log      *slog.Logger
	pool     *pgxpool.Pool
	kafka    kafka.Config
	registry prometheus.Registerer
	book     *pricebook.Book

	rates   *rates.Store
	cache   *rates.Cache
	jobs    *reprice.Store
	worker  *reprice.Worker
	metrics *pricer.Metrics

	ledgerRunner atomic.Pointer[kafka.Runner]
	running      atomic.Bool
}

// New checks the settings and builds the service. It connects to nothing.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("checking pricing config: %w", err)
	}
	if deps.Logger == nil || deps.Pool == nil {
		return nil, errors.New("creating pricing service: logger and pool are required")
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	if deps.Book == nil {
		cat, err := catalog.Load()
		if err != nil {
			return nil, fmt.Errorf("creating pricing service: %w", err)
		}
		deps.Book = pricebook.New(cat)
	}

	s := &Service{
		cfg: cfg, log: deps.Logger, pool: deps.Pool, kafka: deps.Kafka,
		registry: deps.Registry, book: deps.Book,
		rates: rates.NewStore(deps.Pool),
		jobs:  reprice.NewStore(deps.Pool),
	}
	s.cache = rates.NewCache(s.rates, deps.Logger.With("component", "rates"),
		cfg.RatesPoll, cfg.RatesMaxStale)
	var err error
	if s.metrics, err = pricer.NewMetrics(deps.Registry); err != nil {
		return nil, err
	}
	if s.worker, err = s.newWorker(); err != nil {
		return nil, err
	}
	if err := s.registerCacheAge(); err != nil {
		return nil, err
	}
	return s, nil
}

// Register registers the gRPC service on g.
func (s *Service) Register(g *grpc.Server) {
	pricingv1.RegisterPricingServiceServer(g, s)
}

// Scopes returns the scope each RPC requires, for auth.NewAuthenticator:
// read for questions, admin for rates and reprices.
func Scopes() auth.MethodScopes {
	return auth.MethodScopes{
		pricingv1.PricingService_ListModels_FullMethodName:    auth.ScopeRead,
		pricingv1.PricingService_GetModelPrice_FullMethodName: auth.ScopeRead,
		pricingv1.PricingService_PriceUsage_FullMethodName:    auth.ScopeRead,
		pricingv1.PricingService_ListRates_FullMethodName:     auth.ScopeAdmin,
		pricingv1.PricingService_CreateRate_FullMethodName:    auth.ScopeAdmin,
		pricingv1.PricingService_DeleteRate_FullMethodName:    auth.ScopeAdmin,
		pricingv1.PricingService_StartReprice_FullMethodName:  auth.ScopeAdmin,
		pricingv1.PricingService_GetReprice_FullMethodName:    auth.ScopeAdmin,
		pricingv1.PricingService_ListReprices_FullMethodName:  auth.ScopeAdmin,
	}
}

// Run starts the consumers, the rate cache and the reprice worker, and
// stops them when ctx ends. It needs Kafka brokers in Deps.Kafka.
func (s *Service) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("running pricing: already running")
	}
	defer s.running.Store(false)

	if err := s.ensureTopics(ctx); err != nil {
		return err
	}
	if !s.loadRates(ctx) {
		return nil // ctx ended first
	}
	txn, err := s.newPricingRunner()
	if err != nil {
		return err
	}
	led, err := s.newLedgerRunner()
	if err != nil {
		return err
	}
	s.ledgerRunner.Store(led)

	// Stopping waits at most for one open Kafka transaction to end.
	g := server.NewGroup(s.log, s.kafka.TransactionTimeout+5*time.Second)
	g.Add("rates", server.RunFunc(s.cache.Run))
	g.Add("ledger", led)
	g.Add("pricing", txn)
	g.Add("reprice", s.worker)
	return g.Run(ctx)
}

func (s *Service) ensureTopics(ctx context.Context) error {
	cl, err := kafka.NewClient(s.kafka)
	if err != nil {
		return fmt.Errorf("running pricing: %w", err)
	}
	defer cl.Close()
	t := s.kafka.Topics
	specs := []kafka.TopicSpec{
		s.kafka.TopicSpec(t.Usage), s.kafka.TopicSpec(t.UsagePriced), s.kafka.TopicSpec(t.UsageDLQ),
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, cl, specs...); err != nil {
		return fmt.Errorf("running pricing: %w", err)
	}
	return nil
}

// loadRates retries the first load of the rate cache until it succeeds,
// since nothing may be priced without the tenants' rates. It reports
// false when ctx ended first.
func (s *Service) loadRates(ctx context.Context) bool {
	pause := 500 * time.Millisecond
	for {
		err := s.cache.Load(ctx)
		if err == nil {
			return true
		}
		s.log.Warn("loading tenant rates failed, will retry", "error", err)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(pause):
		}
		pause = min(2*pause, 10*time.Second)
	}
}

func (s *Service) newPricingRunner() (*kafka.TxnRunner, error) {
	p, err := pricer.New(pricer.Config{
		Book: s.book, Rates: s.cache, Topic: s.kafka.Topics.UsagePriced,
		Workers: s.cfg.Workers, Log: s.log, Metrics: s.metrics,
	})
	if err != nil {
		return nil, err
	}
	rc := kafka.TxnRunnerConfig{
		Group:           s.cfg.Group,
		Topics:          []string{s.kafka.Topics.Usage},
		TransactionalID: s.cfg.TransactionalID,
		DLQTopic:        s.kafka.Topics.UsageDLQ,
	}
	return kafka.NewTxnRunner(s.kafka, rc, p.Handle,
		kafka.WithLogger(s.log.With("component", "pricing")), kafka.WithRegisterer(s.registry))
}

func (s *Service) newLedgerRunner() (*kafka.Runner, error) {
	rc := kafka.RunnerConfig{
		Group:        s.cfg.LedgerGroup,
		Topics:       []string{s.kafka.Topics.UsagePriced},
		OffsetsTable: Schema + ".kafka_offsets",
		DLQTopic:     s.kafka.Topics.UsageDLQ,
	}
	l := ledger.New(s.log.With("component", "ledger"))
	return kafka.NewRunner(s.kafka, s.pool, rc, l.Handle,
		kafka.WithLogger(s.log.With("component", "ledger")), kafka.WithRegisterer(s.registry))
}

func (s *Service) newWorker() (*reprice.Worker, error) {
	host, err := os.Hostname()
	if err != nil {
		return nil, fmt.Errorf("creating pricing service: naming the reprice worker: %w", err)
	}
	txnID := s.cfg.RepriceTransactionalID
	if txnID == "" {
		txnID = "costplane-pricing-reprice-" + host
	}
	return reprice.NewWorker(reprice.WorkerConfig{
		Pool: s.pool, Book: s.book, Rates: s.rates.Load,
		Kafka: s.kafka, Topic: s.kafka.Topics.UsagePriced,
		TransactionalID: txnID,
		Owner:           fmt.Sprintf("%s-%d-%s", host, os.Getpid(), randomHex(4)),
		Chunk:           s.cfg.RepriceChunk,
		Poll:            s.cfg.RepricePoll,
		Lease:           s.cfg.RepriceLease,
		Settle:          s.cfg.RepriceSettle,
		CaughtUp:        s.ledgerCaughtUp,
		Log:             s.log.With("component", "reprice"),
		Registry:        s.registry,
	})
}

// ledgerCaughtUp waits, up to RepriceCatchUp, until the ledger consumer
// has stored every committed priced record.
func (s *Service) ledgerCaughtUp(ctx context.Context) error {
	r := s.ledgerRunner.Load()
	if r == nil {
		return errors.New("the ledger consumer is not running in this process")
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RepriceCatchUp)
	defer cancel()
	for {
		lag, err := r.Lag(ctx)
		if err == nil && lag == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("reading the ledger's lag: %w", err)
			}
			return fmt.Errorf("ledger still %d records behind after %s", lag, s.cfg.RepriceCatchUp)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (s *Service) registerCacheAge() error {
	g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "costplane_pricing_rates_age_seconds",
		Help: "Time since the tenant-rate cache was last confirmed current.",
	}, func() float64 { return s.cache.Age().Seconds() })
	err := s.registry.Register(g)
	var are prometheus.AlreadyRegisteredError
	if err != nil && !errors.As(err, &are) {
		return fmt.Errorf("registering pricing metrics: %w", err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// newID returns an id that sorts by creation time: prefix, the time in
// nanoseconds as 16 hex digits, and 8 random hex digits.
func newID(prefix string, now time.Time) string {
	return fmt.Sprintf("%s_%016x%s", prefix, now.UnixNano(), randomHex(4))
}
