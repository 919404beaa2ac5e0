package costplane

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/pg"
	"github.com/costplane/costplane/libs/server"
	"github.com/costplane/costplane/services/admin"
	"github.com/costplane/costplane/services/costplane/internal/devkafka"
	"github.com/costplane/costplane/services/costplane/internal/devpg"
	"github.com/costplane/costplane/services/gateway"
	ingestapi "github.com/costplane/costplane/services/ingest-api"
	ingestotlp "github.com/costplane/costplane/services/ingest-otlp"
	"github.com/costplane/costplane/services/loadgen"
)

// stack is what the process runs on: a database pool and Kafka brokers,
// with the embedded parts to stop at the end.
type stack struct {
	pool    *pgxpool.Pool
	brokers []string
	closers []func()
}

func (s *stack) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}

// Run starts every service and blocks until ctx ends or one fails, then
// stops them in reverse order and the embedded stack last.
func Run(ctx context.Context, cfg Config, logger *slog.Logger, stdout io.Writer) error {
	st, err := startStack(ctx, cfg, logger)
	defer st.close()
	if err != nil {
		return err
	}

	token, err := bootstrap(ctx, cfg, st.pool)
	if err != nil {
		return err
	}

	group, err := buildServices(ctx, cfg, st, token, logger)
	if err != nil {
		return err
	}

	printBanner(stdout, cfg, st.brokers, token)
	return group.Run(ctx)
}

func startStack(ctx context.Context, cfg Config, logger *slog.Logger) (*stack, error) {
	st := &stack{brokers: cfg.Kafka.Brokers}

	dbURL := cfg.DatabaseURL
	if dbURL == "" {
		cluster := &devpg.Cluster{
			Dir:      filepath.Join(cfg.DataDir, "postgres"),
			Port:     cfg.EmbeddedPGPort,
			Database: "costplane",
			BinDir:   cfg.PostgresBinDir,
			Log:      logger,
		}
		if err := cluster.Start(ctx); err != nil {
			return st, fmt.Errorf("starting embedded postgres: %w", err)
		}
		st.closers = append(st.closers, func() {
			if err := cluster.Stop(context.Background()); err != nil {
				logger.Error("stopping embedded postgres", slog.Any("error", err))
			}
		})
		dbURL = cluster.URL()
	}

	pool, err := pg.Connect(ctx, dbURL, cfg.DatabaseMaxConns)
	if err != nil {
		return st, err
	}
	st.pool = pool
	st.closers = append(st.closers, pool.Close)

	if len(st.brokers) == 0 {
		b, err := devkafka.Start(cfg.EmbeddedKafkaPort, filepath.Join(cfg.DataDir, "kafka"))
		if err != nil {
			return st, err
		}
		st.closers = append(st.closers, b.Close)
		st.brokers = b.Addrs()
		logger.Info("embedded kafka started", slog.Any("brokers", st.brokers))
	}

	return st, nil
}

// bootstrap migrates the auth schema and makes sure the operator tenant
// has a development key, which is kept in the data directory so every
// start can print it. Only its hash is in the database.
func bootstrap(ctx context.Context, cfg Config, pool *pgxpool.Pool) (string, error) {
	if err := auth.Migrate(ctx, pool); err != nil {
		return "", err
	}
	if err := migratePipeline(ctx, pool); err != nil {
		return "", err
	}

	keyFile := filepath.Join(cfg.DataDir, "dev-api-key")
	devKey := cfg.DevAPIKey
	if devKey == "" {
		if b, err := os.ReadFile(keyFile); err == nil {
			devKey = strings.TrimSpace(string(b))
		}
	}

	token, err := auth.NewStore(pool).Bootstrap(ctx, cfg.BootstrapTenant, devKey)
	if err != nil {
		return "", err
	}
	if token != "" && cfg.DevAPIKey == "" {
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			return "", fmt.Errorf("creating data dir: %w", err)
		}
		if err := os.WriteFile(keyFile, []byte(token+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("saving development key: %w", err)
		}
	}

	return token, nil
}

func buildServices(ctx context.Context, cfg Config, st *stack, token string,
	logger *slog.Logger) (*server.Group, error) {

	kcfg := cfg.Kafka
	kcfg.Brokers = st.brokers
	if err := ensureTopics(ctx, kcfg, logger); err != nil {
		return nil, err
	}

	// The gRPC server and the OTLP receiver keep separate registries, since
	// both count gRPC calls under the same names; /metrics serves both.
	reg, otlpReg := prometheus.NewRegistry(), prometheus.NewRegistry()
	producer, err := kafka.NewProducer(kcfg, kafka.WithLogger(logger),
		kafka.WithRegisterer(reg))
	if err != nil {
		return nil, err
	}
	st.closers = append(st.closers, producer.Close)

	store := auth.NewStore(st.pool)
	verifier := auth.NewVerifier(store, cfg.Auth.CacheTTL)

	ingest, err := ingestapi.New(cfg.IngestAPI, ingestapi.Deps{
		Logger: logger, Producer: producer, Registry: reg,
	})
	if err != nil {
		return nil, err
	}

	pipe, err := buildPipeline(cfg, st, kcfg, logger)
	if err != nil {
		return nil, err
	}

	scopes := auth.MergeScopes(admin.Scopes(), ingestapi.Scopes(), pipe.scopes)
	authn := auth.NewAuthenticator(verifier, scopes, cfg.Auth.KeyHeader, logger)
	scfg := cfg.Server
	scfg.MetricsAddr = ""
	grpcSrv, err := server.New(scfg, logger, server.WithRegistry(reg),
		server.WithUnaryInterceptors(authn.Unary()),
		server.WithStreamInterceptors(authn.Stream()))
	if err != nil {
		return nil, err
	}
	grpcSrv.Register(admin.New(store, logger), ingest)
	grpcSrv.Register(pipe.services...)

	otlpCfg := cfg.OTLP
	otlpCfg.MetricsAddr = ""
	otlpCfg.KeyHeader = cfg.Auth.KeyHeader
	otlpCfg.Topic = kcfg.Topics.Usage
	otlp, err := ingestotlp.New(otlpCfg, ingestotlp.Deps{
		Logger: logger, Verifier: verifier, Producer: producer, Registry: otlpReg,
	})
	if err != nil {
		return nil, err
	}

	gw, err := gateway.New(cfg.Gateway, logger)
	if err != nil {
		return nil, err
	}

	group := server.NewGroup(logger, cfg.Server.ShutdownTimeout)
	group.Add("grpc", grpcSrv)
	group.Add("otlp", otlp)
	group.Add("gateway", gw)
	for _, r := range pipe.runners {
		group.Add(r.name, r.run)
	}
	if cfg.Server.MetricsAddr != "" {
		gatherers := append(prometheus.Gatherers{reg, otlpReg}, pipe.registries...)
		metrics := promhttp.HandlerFor(gatherers, promhttp.HandlerOpts{})
		group.Add("metrics", server.NewHTTP("metrics", cfg.Server.MetricsAddr, metrics,
			cfg.Server.ShutdownTimeout, logger))
	}
	if cfg.DemoRuns > 0 && token != "" {
		group.Add("demo", demoLoad(cfg, token, logger))
	}
	return group, nil
}

// demoLoad sends a short burst of generated agent traffic once the
// receivers listen. It then waits for shutdown, because a member of the
// group that returns stops the others.
func demoLoad(cfg Config, token string, logger *slog.Logger) server.Runner {
	return server.RunFunc(func(ctx context.Context) error {
		lcfg := loadgen.DefaultConfig()
		lcfg.APIKey = token
		lcfg.OTLPEndpoint = localAddr(cfg.OTLP.GRPCAddr)
		lcfg.APIEndpoint = localAddr(cfg.Server.GRPCAddr)
		lcfg.Count = cfg.DemoRuns
		lcfg.Rate = 50

		if err := waitListening(ctx, lcfg.OTLPEndpoint, lcfg.APIEndpoint); err == nil {
			stats, err := loadgen.Generate(ctx, lcfg, logger)
			if err != nil {
				logger.Warn("demo load incomplete", slog.Any("error", err))
			} else {
				logger.Info("demo load sent", slog.Any("stats", stats))
			}
		}
		<-ctx.Done()
		return nil
	})
}

// localAddr turns a listen address such as ":4317" into one to dial.
func localAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil || host == "" || host == "0.0.0.0" || host == "::" {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return listen
}

func waitListening(ctx context.Context, addrs ...string) error {
	for _, addr := range addrs {
		for {
			conn, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				conn.Close()
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

func ensureTopics(ctx context.Context, kcfg kafka.Config, logger *slog.Logger) error {
	cl, err := kafka.NewClient(kcfg)
	if err != nil {
		return err
	}
	defer cl.Close()

	tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := kafka.EnsureTopics(tctx, cl, kcfg.TopicSpecs()...); err != nil {
		return fmt.Errorf("creating topics: %w", err)
	}
	logger.Info("topics ready")
	return nil
}

func printBanner(w io.Writer, cfg Config, brokers []string, token string) {
	host := func(addr string) string {
		if strings.HasPrefix(addr, ":") {
			return "localhost" + addr
		}
		return addr
	}
	fmt.Fprintf(w, "\ncostplane is running\n\n")
	fmt.Fprintf(w, "  REST API      http://%s/v1\n", host(cfg.Gateway.Addr))
	fmt.Fprintf(w, "  OpenAPI       http://%s/openapi.json\n", host(cfg.Gateway.Addr))
	fmt.Fprintf(w, "  gRPC          %s\n", host(cfg.Server.GRPCAddr))
	fmt.Fprintf(w, "  OTLP/gRPC     %s\n", host(cfg.OTLP.GRPCAddr))
	fmt.Fprintf(w, "  OTLP/HTTP     http://%s/v1/traces\n", host(cfg.OTLP.HTTPAddr))
	if cfg.Server.MetricsAddr != "" {
		fmt.Fprintf(w, "  metrics       http://%s/metrics\n", host(cfg.Server.MetricsAddr))
	}
	fmt.Fprintf(w, "  Kafka         %s\n", strings.Join(brokers, ","))
	if token != "" {
		fmt.Fprintf(w, "\n  API key (tenant %s, all scopes):\n    %s\n", cfg.BootstrapTenant, token)
		fmt.Fprintf(w, "\n  try: curl -H 'Authorization: Bearer %s' http://%s/v1/whoami\n",
			token, host(cfg.Gateway.Addr))
	} else {
		fmt.Fprintf(w, "\n  tenant %s already has keys; create one with POST /v1/api-keys\n",
			cfg.BootstrapTenant)
	}
	fmt.Fprintln(w)
}
