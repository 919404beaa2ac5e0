package costplane

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/pg"
	"github.com/costplane/costplane/libs/server"
	"github.com/costplane/costplane/services/admin"
	"github.com/costplane/costplane/services/costplane/internal/devkafka"
	"github.com/costplane/costplane/services/costplane/internal/devpg"
	"github.com/costplane/costplane/services/gateway"
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

	group, err := buildServices(ctx, cfg, st, logger)
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

func buildServices(ctx context.Context, cfg Config, st *stack, logger *slog.Logger) (
	*server.Group, error) {

	kcfg := cfg.Kafka
	kcfg.Brokers = st.brokers
	if err := ensureTopics(ctx, kcfg, logger); err != nil {
		return nil, err
	}

	store := auth.NewStore(st.pool)
	verifier := auth.NewVerifier(store, cfg.Auth.CacheTTL)
	scopes := auth.MergeScopes(admin.Scopes())
	authn := auth.NewAuthenticator(verifier, scopes, cfg.Auth.KeyHeader, logger)

	grpcSrv, err := server.New(cfg.Server, logger,
		server.WithUnaryInterceptors(authn.Unary()),
		server.WithStreamInterceptors(authn.Stream()))
	if err != nil {
		return nil, err
	}
	grpcSrv.Register(admin.New(store, logger))

	gw, err := gateway.New(cfg.Gateway, logger)
	if err != nil {
		return nil, err
	}

	group := server.NewGroup(logger, cfg.Server.ShutdownTimeout)
	group.Add("grpc", grpcSrv)
	group.Add("gateway", gw)
	return group, nil
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

